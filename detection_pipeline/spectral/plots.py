"""Pictures of the clusterability test: shuffled n-cuts per shuffle method with the true n-cut marked."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from utils.atomic_io import atomic_path


def draw_shuffle_histogram(true_ncut: float, shuffles: dict, path: Path, title: str = "") -> None:
    """One histogram per shuffle method (shuffles: {method: {ncuts, z, p, ...}}), stacked vertically,
    the true n-cut as a red line; z and p in each legend."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

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
        ax.legend(fontsize=8, loc="upper left")
    axes[-1].set_xlabel("n-cut (lower: more clusterable)")
    if title:
        fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=110)
