"""Pictures for associations: the agreement matrix between partitions, and association matrices with their
units sorted by cluster."""

from __future__ import annotations

import numpy as np

from utils.atomic_io import atomic_path


def _figure(width: float, height: float):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(width, height), dpi=110)
    FigureCanvasAgg(figure)
    return figure


def _save(figure, path) -> None:
    with atomic_path(path) as tmp:
        figure.savefig(tmp, format="png", bbox_inches="tight")


def draw_agreement(names: list[str], matrices: dict[str, np.ndarray], path, score: str = "ARI", title=""):
    """One heat map per panel (panel name -> (k, k) scores between the k partitions `names`)."""
    panels = list(matrices)
    k = len(names)
    size = 1.2 + 0.45 * k
    figure = _figure(size * len(panels) + 1.0, size + 0.8)
    for p, panel in enumerate(panels):
        ax = figure.add_subplot(1, len(panels), p + 1)
        values = matrices[panel]
        image = ax.imshow(values, vmin=-0.2 if score == "ARI" else 0.0, vmax=1.0, cmap="viridis")
        ax.set_xticks(range(k), names, rotation=60, ha="right", fontsize=7)
        ax.set_yticks(range(k), names if p == 0 else [""] * k, fontsize=7)
        ax.set_title(panel, fontsize=9)
        if k <= 12:
            for i in range(k):
                for j in range(k):
                    if np.isfinite(values[i, j]):
                        colour = "black" if values[i, j] > 0.6 else "white"
                        ax.text(
                            j, i, f"{values[i, j]:.2f}", ha="center", va="center", fontsize=6, color=colour
                        )
    figure.colorbar(image, ax=figure.axes, shrink=0.8, label=score)
    figure.suptitle(title or f"agreement between partitions ({score})", fontsize=10)
    _save(figure, path)


def sorted_order(labels: np.ndarray) -> np.ndarray:
    """Unit order (n,) grouping clusters together (larger clusters first, dead units last)."""
    labels = np.asarray(labels)
    sizes = np.bincount(labels[labels >= 0], minlength=1) if (labels >= 0).any() else np.zeros(1)
    rank = np.where(labels >= 0, -sizes[np.maximum(labels, 0)], 1)
    return np.lexsort((np.arange(len(labels)), labels, rank))


def draw_sorted_associations(matrices: dict, labels: dict, path, title: str = "") -> None:
    """Grid: one row per association, one column per hidden layer; each (n, n) matrix (diagonal removed)
    with units sorted by its own clusters, cluster borders drawn.

    matrices[name]: list of (arch[l], arch[l]); labels[name]: list of (arch[l],) labels per hidden layer."""
    names = list(matrices)
    n_layers = len(matrices[names[0]])
    figure = _figure(2.4 * n_layers + 0.6, 2.3 * len(names) + 0.6)
    for r, name in enumerate(names):
        for c in range(n_layers):
            ax = figure.add_subplot(len(names), n_layers, r * n_layers + c + 1)
            order = sorted_order(labels[name][c])
            matrix = np.array(matrices[name][c], dtype=np.float64)
            np.fill_diagonal(matrix, 0.0)
            shown = matrix[np.ix_(order, order)]
            ax.imshow(shown, cmap="magma", vmin=0.0, vmax=max(float(np.percentile(shown, 99)), 1e-300))
            sorted_labels = np.asarray(labels[name][c])[order]
            for edge in np.flatnonzero(np.diff(sorted_labels) != 0):
                ax.axhline(edge + 0.5, color="cyan", lw=0.6)
                ax.axvline(edge + 0.5, color="cyan", lw=0.6)
            ax.set_xticks([])
            ax.set_yticks([])
            if c == 0:
                ax.set_ylabel(name, fontsize=8)
            if r == 0:
                ax.set_title(f"hidden {c + 1}", fontsize=9)
    figure.suptitle(title or "association matrices, units sorted by their Newman clusters", fontsize=10)
    _save(figure, path)
