"""The picture of a cell network's DAG, cells coloured by module (beside the layered module picture).

Cells sit in columns by depth (inputs left, as the cell graph's layers); an arrow A -> B is drawn with a
width proportional to its edge weight (the L1 norm of the weights that connect the cells) and in the
module's colour when both ends share a module, grey otherwise. Pruned cells (no weight left) are hollow.
"""

from __future__ import annotations

import os

import numpy as np

from detection_pipeline.draw import _PALETTE_12
from utils.atomic_io import atomic_path


def draw_cell_dag(
    nodes: list[str],
    depths: list[int],
    edges: list[tuple[int, int, float]],
    modules: np.ndarray,
    path: str | os.PathLike,
    title: str = "",
) -> None:
    """Draw cells `nodes` (n,) at `depths` (n,), `edges` as (source, target, weight) and module labels
    `modules` (n,) (-1 = dropped) into `path` as PNG (atomically)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.colors import to_rgb

    depths = np.asarray(depths)
    modules = np.asarray(modules)
    xs = depths.astype(float)
    ys = np.zeros(len(nodes))
    for d in np.unique(depths):
        members = np.flatnonzero(depths == d)
        ys[members] = np.arange(len(members)) - (len(members) - 1) / 2
    ids = [int(m) for m in dict.fromkeys(modules.tolist()) if m >= 0]
    colour = {m: to_rgb(_PALETTE_12[i % len(_PALETTE_12)]) for i, m in enumerate(sorted(ids))}
    fig, ax = plt.subplots(figsize=(2.0 + 1.6 * len(np.unique(depths)), 2.0 + 1.0 * np.ptp(ys)))
    top = max((w for _, _, w in edges), default=1.0) or 1.0
    for s, t, w in edges:
        same = modules[s] == modules[t] and modules[s] >= 0
        ax.annotate(
            "",
            xy=(xs[t], ys[t]),
            xytext=(xs[s], ys[s]),
            arrowprops={
                "arrowstyle": "-|>",
                "lw": 0.5 + 3.5 * w / top,
                "color": colour[int(modules[s])] if same else (0.6, 0.6, 0.6),
                "shrinkA": 14,
                "shrinkB": 14,
                "connectionstyle": "arc3,rad=0.15" if xs[t] - xs[s] > 1 else "arc3",
            },
        )
    for i, name in enumerate(nodes):
        m = int(modules[i])
        face = colour.get(m, (1.0, 1.0, 1.0))
        ax.scatter([xs[i]], [ys[i]], s=900, color=face, edgecolors="black", zorder=3)
        ax.text(xs[i], ys[i], name, ha="center", va="center", fontsize=9, zorder=4)
    for m in sorted(colour):
        ax.scatter([], [], s=80, color=colour[m], edgecolors="black", label=f"module {m}")
    ax.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0), frameon=False, fontsize=8)
    ax.set_xlim(xs.min() - 0.6, xs.max() + 0.6)
    ax.set_ylim(ys.min() - 0.8, ys.max() + 0.8)
    ax.axis("off")
    ax.set_title(title or "cell graph by module", fontsize=9)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=120, facecolor="white")
    plt.close(fig)
