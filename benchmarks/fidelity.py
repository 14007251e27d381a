"""End-to-end fidelity: our full-grid `sculpt` next to the published networks, run by run.

For every configuration x seed: train, prune units for every unit step and edges for every edge step
(the family scripts' published options, full grids), keep a network of the grid (sparsest, as `sculpt`
does), detect and score it with our scorer; then load the published networks of the same configuration
and seed (../shared/reference/models; their file stem names the unit and edge step kept) and score those
the same way. Every candidate of our grid is scored too, so the log can answer "which network of the grid
would have succeeded".

    nice python3 benchmarks/fidelity.py run --tag base --seeds 0 1 [--configs 4-1-2-8] [--extra "..."]
    python3 benchmarks/fidelity.py report --tag base [--tag other ...]

`run` appends one JSON line per (config, seed) to <log_dir>/<tag>.jsonl (finished runs are skipped) and
prints a row per run; `report` prints the run-by-run table, success counts (ours vs published on the same
seeds) and the median density ratio ours/published. `--extra` passes further CLI options to every run
(e.g. "--table_repeats 2"). Runs live under <result_path>/<tag>/ and are reused.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

REFERENCE = ROOT.parent / "shared" / "reference" / "models"
OPTIONS_TSV = ROOT / "shell" / "published_options.tsv"
UNIT_STEPS = "5 10 15 20 25 30 35 40 45 50 55 60 65 70"
EDGE_STEPS = "2.5 2.0 1.5 1.0 0.5"
# name -> (our dataset family, which also names the options table's rows; the published models' family;
# modularity; arch)
REUSE = ("increasing_reuse_non_separable", "non_separable_increasing_use")
SAME = {f: (f, f) for f in ("exemplar", "increasing_hierarchical_levels", "input_overlap_exp")}


def _arch(modularity: str, width: int, depth: int) -> str:
    parts = modularity.split()
    return " ".join([parts[0], *[str(width)] * depth, parts[-1]])


def _config(families: tuple[str, str], modularity: str, width: int = 24, depth: int = 2) -> tuple:
    return (*families, modularity, _arch(modularity, width, depth))


CONFIGS = {
    **{f"4-1-2-{k}": _config(REUSE, f"4 1 2 {k}") for k in (2, 4, 8, 12)},
    **{f"4-1-2-{k}-w{w}": _config(REUSE, f"4 1 2 {k}", w) for k in (4, 8) for w in (36, 48)},
    "4-1-2-8-d3": _config(REUSE, "4 1 2 8", depth=3),
    "4-1-2-16": _config(SAME["exemplar"], "4 1 2 16"),
    "4-1-2-16-d3": _config(SAME["exemplar"], "4 1 2 16", depth=3),
    "8-2-1-2-8-d3": _config(SAME["increasing_hierarchical_levels"], "8 2 1 2 8", 36, 3),
    **{m.replace(" ", "-"): _config(SAME["exemplar"], m) for m in ("6 3 3 3", "4 2 4", "4 1 4")},
    **{m.replace(" ", "-"): _config(SAME["input_overlap_exp"], m) for m in ("7 3 2 4", "6 3 2 8")},
}


def published_options(family: str, modularity: str, arch: list[int]) -> tuple[str, str, str]:
    """(lr, batch, epochs) of the family script for this task, depth and width."""
    depth, width = len(arch) - 2, arch[1]
    for line in OPTIONS_TSV.read_text().splitlines():
        if line.startswith("#") or not line.strip():
            continue
        f, m, d, w, lr, batch, epochs = line.split("\t")
        if f == family and m == modularity and int(d) == depth and int(w) == width:
            return lr, batch, epochs
    raise SystemExit(f"no published options for {family} {modularity} {arch}")


def run_name_steps(name: str, lr: str, batch: str, epochs: str) -> tuple[float, float]:
    """(unit step, edge step) from a published run name such as
    pruneactivation_gradient_productboolean0.1163040.02.5None1.0 (lr 0.1, batch 16, epochs 30)."""
    prefix = name.split("boolean", 1)[1]
    rest = prefix[len(f"{float(lr)}{int(batch)}{int(epochs)}") :]
    match = re.match(r"^(\d+\.\d)(\d+\.\d)None", rest)
    if not match:
        raise ValueError(f"cannot read steps from {name!r}")
    return float(match.group(1)), float(match.group(2))


def detect_and_score(network, truth, depth: int) -> dict:
    from detection_pipeline.detect import DetectionOptions, sculpt_method
    from detection_pipeline.scoring import score_modules

    steps = depth + 1
    try:
        partition = sculpt_method(
            network, None, DetectionOptions(feature_step_size=steps, clusterability_step_size=steps)
        )
    except ValueError as error:  # no path from inputs to outputs
        return {"success": False, "failed": [f"detection: {error}"], "n_modules": 0, "units": None}
    score = score_modules(
        network.arch, partition.labels, truth, n_hidden=depth, masks=network.masks, skips=network.skips
    )
    failed = [
        k
        for k in ("input_separability", "output_grouping", "hidden_separability", "modules_per_depth")
        if score.get(k) is False
    ]
    return {
        "success": bool(score["success"]),
        "failed": failed,
        "n_modules": int(score["n_modules"]),
        "units": partition.diagnostics["condensed_arch"],
        "modules_per_layer": score["modules_per_layer"],
    }


def published_runs(pub_family: str, modularity: str, arch: list[int], seed: int, options, truth) -> list:
    from utils.network_files import load_network_file

    index = REFERENCE / "index.json"
    if not index.is_file():
        return []
    rows = []
    for entry in json.loads(index.read_text()):
        if (
            entry["family"] == pub_family
            and entry["modularity"] == [int(m) for m in modularity.split()]
            and entry["arch"] == arch
            and entry["seed"] == seed
        ):
            path = REFERENCE.parent / entry["file"]
            name = str(np.load(path)["published_run_name"])
            unit, edge = run_name_steps(name, *options)
            network = load_network_file(path)
            rows.append(
                {
                    "file": entry["file"],
                    "unit_step": unit,
                    "edge_step": edge,
                    "density": float(network.density),
                    **detect_and_score(network, truth, len(arch) - 2),
                }
            )
    return rows


def one_run(args, name: str, seed: int) -> dict:
    from run.common import prepare
    from run.parser import ConfigError, parse_config
    from run.study.sculpt import choose_sparsest, prune_all
    from utils.network_files import network_from_state_dict
    from utils.tasks.ground_truth import ground_truth_for

    family, pub_family, modularity, arch_text = CONFIGS[name]
    arch = [int(a) for a in arch_text.split()]
    options = published_options(family, modularity, arch)
    lr, batch, epochs = options
    argv = (
        f"--experiment sculpt --task boolean --dataset_path {ROOT}/datasets/{family}/ "
        f"--result_path {args.result_path}/{args.tag}/ --modularity {modularity} --arch {arch_text} "
        f"--lr {lr} --batch_size {batch} --epochs {epochs} --seed {seed} --prune_acc_threshold 100 "
        f"--unit_pruning_gradient {args.unit_steps} --pruning_gradient {args.edge_steps} --quiet "
        f"{args.extra}"
    ).split()
    config = parse_config(argv)
    truth = ground_truth_for(config)
    published = published_runs(pub_family, modularity, arch, seed, options, truth)
    record = {"tag": args.tag, "config": name, "seed": seed, "extra": args.extra, "published": published}
    try:
        candidates = prune_all(prepare(config))
    except ConfigError as error:  # the dense network misses the threshold: no pruning, no network
        reason = str(error).split(",")[0]
        failed = {"unit_step": None, "edge_step": None, "density": None, "success": False}
        failed.update(failed=[f"untrained: {reason}"], n_modules=0, units=None)
        return dict(record, ours=failed, candidates=[])
    chosen = choose_sparsest(candidates)
    depth = len(arch) - 2
    for candidate in candidates:
        network = network_from_state_dict(torch_load(Path(candidate["run"]) / "model.pt"), candidate["run"])
        candidate.update(detect_and_score(network, truth, depth))
    return dict(record, ours=dict(chosen), candidates=candidates)


def torch_load(path: Path) -> dict:
    import torch

    return torch.load(path, map_location="cpu", weights_only=True)


def _steps(row) -> str:
    if row["unit_step"] is None:
        return "-"
    return f"{row['unit_step']:g}/{row['edge_step']:g}"


def _density(row) -> str:
    return "-" if row["density"] is None else f"{row['density']:.2f}%"


def _verdict(row) -> str:
    return "ok" if row["success"] else "FAIL " + ",".join(f[:10] for f in row["failed"])


def tied_sparsest(record: dict) -> list[dict]:
    """Every candidate at the sparsest density (the published study kept all of them: its seeds with
    several networks always share one density)."""
    if not record["candidates"]:
        return []
    low = min(c["density"] for c in record["candidates"])
    return [c for c in record["candidates"] if abs(c["density"] - low) < 1e-9]


def row_text(record: dict) -> str:
    ours = record["ours"]
    pubs = record["published"]
    pub_text = (
        "; ".join(
            f"{_steps(p)} {p['density']:.2f}% {p['units']} {p['n_modules']}m {_verdict(p)}" for p in pubs
        )
        or "n/a"
    )
    grid_ok = sum(c["success"] for c in record["candidates"])
    ties = tied_sparsest(record)
    tie_text = f" (tied sparsest: {sum(c['success'] for c in ties)}/{len(ties)} ok)" if len(ties) > 1 else ""
    return (
        f"| {record['config']} | {record['seed']} | {_steps(ours)} {_density(ours)} {ours['units']} "
        f"{ours['n_modules']}m {_verdict(ours)}{tie_text} | {grid_ok}/{len(record['candidates'])} | "
        f"{pub_text} |"
    )


HEADER = (
    "| config | seed | ours: unit/edge step, density, units per layer, modules, verdict | grid ok | "
    "published (same seed) |\n|---|---|---|---|---|"
)


def read_log(log: Path) -> list[dict]:
    if not log.is_file():
        return []
    return [json.loads(line) for line in log.read_text().splitlines() if line.strip()]


def cmd_run(args) -> None:
    log = Path(args.log_dir) / f"{args.tag}.jsonl"
    log.parent.mkdir(parents=True, exist_ok=True)
    done = {(r["config"], r["seed"]) for r in read_log(log)}
    print(HEADER, flush=True)
    for name in args.configs:
        for seed in args.seeds:
            if (name, seed) in done:
                continue
            record = one_run(args, name, seed)
            with log.open("a") as out:
                out.write(json.dumps(record) + "\n")
            print(row_text(record), flush=True)


def cmd_report(args) -> None:
    for tag in args.tag_list:
        records = read_log(Path(args.log_dir) / f"{tag}.jsonl")
        if args.seeds:
            records = [r for r in records if r["seed"] in args.seeds]
        print(f"\n### {tag} ({len(records)} runs)\n")
        print(HEADER)
        for record in sorted(records, key=lambda r: (r["config"], r["seed"])):
            print(row_text(record))
        ours = sum(r["ours"]["success"] for r in records)
        with_pub = [r for r in records if r["published"]]
        ours_pub = sum(r["ours"]["success"] for r in with_pub)
        pub = sum(any(p["success"] for p in r["published"]) for r in with_pub)
        tied = sum(any(c["success"] for c in tied_sparsest(r)) for r in records)
        ratios = [
            r["ours"]["density"] / r["published"][0]["density"]
            for r in with_pub
            if r["ours"]["density"] is not None
        ]
        print(
            f"\nours {ours}/{len(records)} successful; on seeds with a published network: ours "
            f"{ours_pub}/{len(with_pub)}, published {pub}/{len(with_pub)} (any of its files); median "
            f"density ratio ours/published {np.median(ratios) if ratios else float('nan'):.3f}; ours with "
            f"any of the tied sparsest networks {tied}/{len(records)}"
        )
        per_config: dict[str, list[int]] = {}
        for r in records:
            per_config.setdefault(r["config"], []).append(int(r["ours"]["success"]))
        print(
            "per config (ours): " + ", ".join(f"{k} {sum(v)}/{len(v)}" for k, v in sorted(per_config.items()))
        )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run")
    run.add_argument("--tag", required=True)
    run.add_argument("--configs", nargs="+", default=["4-1-2-8"], choices=sorted(CONFIGS))
    run.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    run.add_argument("--extra", default="", help="further CLI options for every run")
    run.add_argument("--unit_steps", default=UNIT_STEPS)
    run.add_argument("--edge_steps", default=EDGE_STEPS)
    run.add_argument("--result_path", default="/tmp/sculpt-fidelity")
    run.add_argument("--log_dir", default="benchmarks/fidelity_logs")
    report = sub.add_parser("report")
    report.add_argument("--tag", dest="tag_list", nargs="+", required=True)
    report.add_argument("--seeds", type=int, nargs="*")
    report.add_argument("--log_dir", default="benchmarks/fidelity_logs")
    args = parser.parse_args()
    cmd_run(args) if args.command == "run" else cmd_report(args)


if __name__ == "__main__":
    main()
