"""Pictures of the clusterability test (shuffled n-cuts per method, the true n-cut marked) and of the
stability sweep (n-cut and partition agreement against K)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from utils.atomic_io import atomic_path


def draw_shuffle_histogram(true_ncut: float, shuffles: dict, path: Path, title: str = "") -> None:
    """One histogram per shuffle method (shuffles: {method: {ncuts, z, p, ...}}), stacked vertically,
    the true n-cut as a red line; z and p in each legend."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.ticker import MaxNLocator

    methods = list(shuffles)
    fig = Figure(figsize=(7.0, 2.4 * len(methods) + 0.6))
    FigureCanvasAgg(fig)
    axes = fig.subplots(len(methods), 1, squeeze=False)[:, 0]
    values = np.concatenate([np.asarray(shuffles[m]["ncuts"], float) for m in methods] + [[true_ncut]])
    low, high = float(values.min()), float(values.max())
    pad = 0.05 * (high - low) or 0.05 * abs(high) or 0.05
    bins = np.linspace(low - pad, high + pad, 31)
    for ax, method in zip(axes, methods):
        stats = shuffles[method]
        ncuts = np.asarray(stats["ncuts"], float)
        label = f"{method} ({ncuts.size} shuffles)"
        ax.hist(ncuts, bins=bins, color="#7a9cc6", edgecolor="white", label=label)
        marked = f"true {true_ncut:.4g} (z {stats['z']:.2f}, p {stats['p']:.3g})"
        ax.axvline(true_ncut, color="#c0392b", lw=2, label=marked)
        ax.set_ylabel("shuffles")
        ax.yaxis.set_major_locator(MaxNLocator(integer=True))
        ax.legend(fontsize=8, loc="upper left")
    axes[-1].set_xlabel("n-cut (lower: more clusterable)")
    if title:
        fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=110)


def draw_stability(rows: list[dict], path: Path, title: str = "") -> None:
    """Left: n-cut against K (mean ± std over seeds, every seed as a dot). Right: mean and minimum
    pairwise adjusted Rand index of the seeds' partitions against K."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(10.0, 3.8))
    FigureCanvasAgg(fig)
    left, right = fig.subplots(1, 2)
    ks = [r["n_clusters"] for r in rows]
    for row in rows:
        left.scatter([row["n_clusters"]] * len(row["ncuts"]), row["ncuts"], s=10, color="#7a9cc6", zorder=2)
    left.errorbar(ks, [r["ncut_mean"] for r in rows], yerr=[r["ncut_std"] for r in rows], color="#2c3e50")
    left.set_xlabel("K (clusters)")
    left.set_ylabel("n-cut")
    left.set_xticks(ks)
    if rows and rows[0]["ari_mean"] is not None:
        right.plot(ks, [r["ari_mean"] for r in rows], "o-", label="mean ARI over seed pairs")
        right.plot(ks, [r["ari_min"] for r in rows], "s--", label="min ARI")
        right.set_ylim(-0.05, 1.05)
        right.legend(fontsize=8)
    right.set_xlabel("K (clusters)")
    right.set_ylabel("adjusted Rand index")
    right.set_xticks(ks)
    if title:
        fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=110)


def draw_learning_curve(rows: list[dict], path: Path, title: str = "") -> None:
    """n-cut against epoch: the true network's, and each shuffle method's mean ± std (rows: {epoch, ncut,
    shuffles: {method: {mean, std}}})."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(7.0, 4.0))
    FigureCanvasAgg(fig)
    ax = fig.subplots()
    epochs = [r["epoch"] for r in rows]
    ax.plot(epochs, [r["ncut"] for r in rows], "o-", color="#c0392b", label="true network")
    for method in rows[0]["shuffles"] if rows else []:
        mean = np.array([r["shuffles"][method]["mean"] for r in rows])
        std = np.array([r["shuffles"][method]["std"] for r in rows])
        (line,) = ax.plot(epochs, mean, "s--", label=f"{method} shuffles (mean ± std)")
        ax.fill_between(epochs, mean - std, mean + std, color=line.get_color(), alpha=0.2)
    ax.set_xlabel("epoch")
    ax.set_xticks(epochs)
    ax.set_ylabel("n-cut (lower: more clusterable)")
    ax.legend(fontsize=8)
    if title:
        ax.set_title(title, fontsize=9)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=110)
