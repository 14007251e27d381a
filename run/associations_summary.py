"""--experiment associations_summary: gather every associations/comparison.json under --result_path (the
shell/associations_sweep.sh layout), read the regularisation from each run's config.json (dropout, l1,
weight_decay as L2), and write associations_summary.json plus associations_summary.png: mean Q over
hidden layers against regularisation strength, one line per association, one panel per regulariser; and
the mean ARI between association partitions within upstream, within downstream and across."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from utils.errors import InputError

SUMMARY_FILE = "associations_summary.json"
PICTURE_FILE = "associations_summary.png"


def regularisation(comparison_path: Path) -> dict:
    """{"dropout": p, "l1": s, "l2": s, "seed": k} of the run an associations/comparison.json belongs to,
    from the run's config.json (the training folder), missing values as 0."""
    from run.saved_config import check_saved_config
    from utils.files import read_json

    config_file = comparison_path.parent.parent / "config.json"
    if not config_file.is_file():
        raise InputError(f"{comparison_path} is not inside a training run (no {config_file})")
    config = check_saved_config(read_json(config_file, "run config"), str(config_file))
    return {
        "dropout": float(config.get("dropout") or 0.0),
        "l1": float(config.get("l1") or 0.0),
        "l2": float(config.get("weight_decay") or 0.0),
        "seed": int(config.get("seed", 0)),
    }


def agreement_groups(comparison: dict, score: str = "ari") -> dict:
    """Mean `score` over layers for pairs within upstream, within downstream, and across; an association
    against its own normalised version ("twins", e.g. forward_cov|forward_cov_norm) counts apart."""
    from detection_pipeline.associations.matrices import UPSTREAM

    groups = {"upstream": [], "downstream": [], "across": [], "twins": []}
    for pairs in comparison["layers"].values():
        for key, scores in pairs.items():
            a, b = key.split("|")
            kind = {2: "upstream", 0: "downstream", 1: "across"}[(a in UPSTREAM) + (b in UPSTREAM)]
            if a.removesuffix("_norm") == b.removesuffix("_norm"):
                kind = "twins"
            groups[kind].append(scores.get(score, np.nan))
    return {name: float(np.nanmean(values)) if values else None for name, values in groups.items()}


def collect(root: Path) -> list[dict]:
    from utils.files import read_json

    rows = []
    for path in sorted(root.rglob("associations/comparison.json")):
        comparison = read_json(path, "comparison file")
        if "Q" not in comparison:
            continue
        row = {"path": str(path.parent), **regularisation(path)}
        row["Q"] = {name: float(np.mean(q)) for name, q in comparison["Q"].items()}
        row["effective_clusters"] = {
            name: float(np.mean(v)) for name, v in comparison.get("effective_clusters", {}).items()
        }
        row["agreement_ari"] = agreement_groups(comparison)
        row["test_accuracy"] = comparison.get("test_accuracy")
        rows.append(row)
    return rows


def draw(rows: list[dict], path: Path) -> None:
    from detection_pipeline.associations.draw import _figure, _save

    kinds = [k for k in ("dropout", "l1", "l2") if any(r[k] > 0 for r in rows)] or ["dropout"]
    names = list(rows[0]["Q"])
    figure = _figure(4.2 * len(kinds) + 1.5, 3.6)
    for p, kind in enumerate(kinds):
        ax = figure.add_subplot(1, len(kinds), p + 1)
        others = [k for k in ("dropout", "l1", "l2") if k != kind]
        chosen = [r for r in rows if all(r[o] == 0 for o in others)]  # the other regularisers off
        strengths = sorted({r[kind] for r in chosen})
        for name in names:
            means = [np.mean([r["Q"][name] for r in chosen if r[kind] == s]) for s in strengths]
            spread = [np.std([r["Q"][name] for r in chosen if r[kind] == s]) for s in strengths]
            style = "-" if name.startswith("forward") else "--"
            ax.errorbar(range(len(strengths)), means, yerr=spread, label=name, ls=style, marker="o", ms=3)
        ax.set_xticks(range(len(strengths)), [f"{s:g}" for s in strengths])
        ax.set_xlabel({"dropout": "dropout p", "l1": "L1 strength", "l2": "L2 (weight decay)"}[kind])
        ax.set_ylabel("mean Q over hidden layers")
    figure.axes[-1].legend(fontsize=7, loc="center left", bbox_to_anchor=(1.02, 0.5))
    figure.suptitle("Newman Q of association matrices against regularisation (mean ± sd over seeds)")
    _save(figure, path)


def run(config) -> dict:
    from utils.atomic_io import write_json_atomic

    root = Path(config.result_path)
    rows = collect(root)
    if not rows:
        raise InputError(
            f"no associations/comparison.json under {root}; run shell/associations_sweep.sh first"
        )
    draw(rows, root / PICTURE_FILE)
    write_json_atomic(root / SUMMARY_FILE, {"runs": rows})
    print(f"associations_summary: {len(rows)} runs -> {root / SUMMARY_FILE}, {root / PICTURE_FILE}")
    return {"rows": rows}
