"""--experiment compare_partitions: two or more modules.json (any methods) compared layer by layer:
ARI, NMI, VI, greedy alignment with its permutation p-value, transfer Q and Spearman r between association
matrices (newman partitions carry theirs). Writes comparison.json and agreement.png into --out.
Partitions of different networks (their recorded fingerprints differ) are refused: units of two networks are
not the same units, whatever their widths."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from run.parser import ConfigError
from utils.errors import InputError

COMPARISON_FILE = "comparison.json"
AGREEMENT_FILE = "agreement.png"


def entry_name(data: dict, path: Path) -> str:
    method = str(data.get("method", "unknown"))
    if data.get("association"):
        method = f"{method}:{data['association']}"
    return method


def load_entry(path: Path) -> dict:
    """{"name", "path", "arch", "labels" per layer, "matrices" {layer: matrix}} from a modules.json."""
    from detection_pipeline.partition import Partition
    from utils.errors import InputError
    from utils.files import read_json

    partition = Partition.from_file(path)
    data = read_json(path, "partition file")
    matrices = {}
    for entry in data.get("layers", []) if isinstance(data.get("layers"), list) else []:
        if isinstance(entry, dict) and "association_matrix" in entry and "layer" in entry:
            try:
                matrix = np.asarray(entry["association_matrix"], dtype=np.float64)
                layer = int(entry["layer"])
            except (TypeError, ValueError, OverflowError):
                raise InputError(
                    f"partition file {path}: layer {entry['layer']!r} has an association_matrix that is not "
                    "a square matrix of numbers"
                ) from None
            if matrix.ndim != 2 or matrix.shape[0] != matrix.shape[1] or not np.isfinite(matrix).all():
                raise InputError(
                    f"partition file {path}: the association_matrix of layer {layer} is not a finite square "
                    "matrix"
                )
            matrices[layer] = matrix
    return {
        "name": entry_name(data, path),
        "path": str(path),
        "network": partition.network,
        "arch": partition.arch,
        "labels": partition.by_layer(),
        "matrices": matrices,
    }


def same_network(entries: list[dict]) -> dict:
    """The network record the entries share ({} when none records one). InputError naming both files and
    both networks when two recorded networks differ."""
    recorded = [e for e in entries if e["network"]]
    for entry in recorded[1:]:
        first = recorded[0]
        if entry["network"]["fingerprint"] != first["network"]["fingerprint"]:
            raise InputError(
                f"{entry['path']} and {first['path']} are partitions of different networks "
                f"({entry['network']['source'] or 'unknown'}, fingerprint {entry['network']['fingerprint']}; "
                f"{first['network']['source'] or 'unknown'}, fingerprint {first['network']['fingerprint']}); "
                "compare partitions found on one network"
            )
    return dict(recorded[0]["network"]) if recorded else {}


def unique_names(entries: list[dict]) -> None:
    """Number repeated names in order (sculpt#1, sculpt#2)."""
    names = [entry["name"] for entry in entries]
    for i, entry in enumerate(entries):
        if names.count(names[i]) > 1:
            entry["name"] = f"{names[i]}#{names[: i + 1].count(names[i])}"


def agreement_panels(comparison: dict, score: str = "ari") -> dict[str, np.ndarray]:
    from detection_pipeline.associations.compare import agreement_matrix

    panels = {f"layer {layer}": agreement_matrix(comparison, layer, score) for layer in comparison["layers"]}
    if len(panels) > 1:
        panels["mean over layers"] = np.nanmean(np.stack(list(panels.values())), axis=0)
    return panels


def write_comparison(out: Path, comparison: dict, title: str) -> dict:
    from detection_pipeline.associations.draw import draw_agreement
    from utils.atomic_io import write_json_atomic

    paths = {"comparison": out / COMPARISON_FILE, "picture": out / AGREEMENT_FILE}
    draw_agreement(comparison["names"], agreement_panels(comparison), paths["picture"], "ARI", title)
    write_json_atomic(paths["comparison"], comparison)
    return paths


def run(config) -> dict:
    from detection_pipeline.associations.compare import compare_many

    files = config.partitions or []
    if len(files) < 2:
        raise ConfigError("--experiment compare_partitions needs --partitions with two or more modules.json")
    entries = [load_entry(Path(f)) for f in files]
    arch = entries[0]["arch"]
    for entry in entries[1:]:
        if entry["arch"] != arch:
            raise InputError(
                f"{entry['path']} has arch {' '.join(map(str, entry['arch']))} but {entries[0]['path']} has "
                f"{' '.join(map(str, arch))}; compare partitions of one network"
            )
    network = same_network(entries)
    unique_names(entries)
    comparison = compare_many(entries, config.n_shuffle, config.seed)
    if not comparison["layers"]:
        raise InputError("no layer has two units labelled by every pair of partitions; nothing to compare")
    comparison["partitions"] = [{"name": e["name"], "path": e["path"]} for e in entries]
    comparison["n_shuffle"] = config.n_shuffle
    comparison["network"] = network
    out = Path(config.out) if config.out else Path(config.result_path) / "compare_partitions"
    paths = write_comparison(out, comparison, f"agreement between {len(entries)} partitions (ARI)")
    mean_ari = float(
        np.nanmean([s.get("ari", np.nan) for layer in comparison["layers"].values() for s in layer.values()])
    )
    print(f"compare_partitions: {len(entries)} partitions, mean ARI {mean_ari:.3f} -> {paths['comparison']}")
    if not config.quiet:
        print(f"picture -> {paths['picture']}")
    return {"comparison": comparison, "paths": paths}
