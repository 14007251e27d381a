"""Pictures of lesion tests: a heatmap of per-output accuracy drops, and the layered sub-modules with
double-lesion effects as edges. Both read the lesion.json dict (detection_pipeline.lesion.lesion_tests)."""

from __future__ import annotations

import os

import numpy as np

from utils.atomic_io import atomic_path

_SIGNIFICANT = 0.05
_MAX_EDGES = 24


def _p_text(p) -> str:
    return "–" if p is None else f"{p:.3f}"


def _row_label(entry: dict) -> str:
    return f"L{entry['layer']} M{entry['module']} ({len(entry['units'])})"


def draw_heatmap(result: dict, path: str | os.PathLike, title: str = "") -> None:
    """Rows = sub-modules, columns = outputs; cell = accuracy drop (pp) when the sub-module is lesioned.
    Right margin: p_mean / p_spread (bold when ≤ 0.05; "untestable" rows in grey)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    entries = result["submodules"]
    drops = np.array([[np.nan if v is None else v for v in e["output_drop"]] for e in entries], dtype=float)
    rows, cols = drops.shape
    width = min(24.0, 5.5 + 0.45 * cols)
    height = min(30.0, 2.6 + 0.36 * rows)
    fig, ax = plt.subplots(figsize=(width, height))
    limit = max(1.0, float(np.nanmax(np.abs(drops))) if np.isfinite(drops).any() else 1.0)
    image = ax.imshow(drops, cmap="RdBu_r", vmin=-limit, vmax=limit, aspect="auto", interpolation="nearest")
    if rows * cols <= 600:
        for (r, c), value in np.ndenumerate(drops):
            if np.isfinite(value) and value != 0:
                colour = "white" if abs(value) > 0.6 * limit else "black"
                ax.text(c, r, f"{value:.0f}", ha="center", va="center", fontsize=7, color=colour)
    ax.set_yticks(range(rows), [_row_label(e) for e in entries], fontsize=8)
    modules = result.get("output_modules") or [None] * cols
    ax.set_xticks(
        range(cols), [f"{o}\nM{m}" if m is not None and m >= 0 else f"{o}" for o, m in enumerate(modules)]
    )
    ax.tick_params(axis="x", labelsize=7)
    ax.set_xlabel("output (and its module)")
    ax.set_ylabel("sub-module: hidden layer, module (units)")
    right = ax.twinx()
    right.set_ylim(ax.get_ylim())
    labels = []
    for r, entry in enumerate(entries):
        if entry["testable"]:
            labels.append(
                f"p_mean {_p_text(entry['p_mean'])}  p_spread {_p_text(entry['p_spread'])}  "
                f"p_range {_p_text(entry.get('p_range'))}"
            )
        else:
            ax.get_yticklabels()[r].set_color("#999999")
            labels.append("untestable")
    right.set_yticks(range(rows), labels, fontsize=8, family="monospace")
    for entry, label in zip(entries, right.get_yticklabels()):
        if not entry["testable"]:
            label.set_color("#999999")
        elif min(entry["p_mean"], entry["p_spread"], entry["p_range"]) <= _SIGNIFICANT:
            label.set_weight("bold")
    combined = result["combined_p"]
    line = (
        f"Fisher combined p: mean {_p_text(combined['mean'])}, spread {_p_text(combined['spread'])}, "
        f"range {_p_text(combined.get('range'))} "
        f"({combined['testable']} testable, {result['num_shuffles']} random sets each)"
    )
    heading = "accuracy drop (pp) per output when a sub-module is lesioned"
    ax.set_title("\n".join(t for t in (title, heading, line) if t), fontsize=9, pad=8)
    # A colour bar a fixed 0.9 inch below the heatmap, whatever the figure's height.
    axes_inches = height * ax.get_position().height
    bar = ax.inset_axes([0.3, -0.9 / axes_inches, 0.4, 0.12 / axes_inches])
    fig.colorbar(image, cax=bar, orientation="horizontal", label="accuracy drop (pp)")
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=110, bbox_inches="tight")
    plt.close(fig)


def _dependence(row: dict) -> float:
    """How much of B's damage A's lesion already does (0 independent .. 1 fully dependent), clipped."""
    value = row["b_given_a"].get("dependence")
    return 0.0 if value is None else float(np.clip(value, 0.0, 1.0))


def draw_dependencies(result: dict, path: str | os.PathLike, title: str = "") -> None:
    """Sub-modules as boxes, one row per hidden layer (first hidden at the bottom), box width ∝ units; an
    edge A → B per tested pair, width and colour = dependence of B on A (1 − B's extra damage with A
    lesioned / B's damage alone), solid when that extra damage is below random (p_below ≤ 0.05). With more
    than _MAX_EDGES pairs only the solid ones and those of dependence ≥ 0.5 are drawn."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib import cm, colors

    entries = result["submodules"]
    layers = sorted({e["layer"] for e in entries})
    place = {}
    for layer in layers:
        row = [e for e in entries if e["layer"] == layer]
        sizes = np.array([max(1, len(e["units"])) for e in row], dtype=float)
        widths = 0.9 * sizes / sizes.sum()
        gap = 0.1 / max(1, len(row))
        x = 0.0
        for entry, w in zip(row, widths):
            place[(layer, entry["module"])] = (x + gap / 2 + w / 2, layer, w, entry)
            x += w + gap
    fig, ax = plt.subplots(
        figsize=(max(9, 0.9 * max(len(place) // max(1, len(layers)), 1)), 1.2 + 1.6 * len(layers))
    )
    norm = colors.Normalize(vmin=0, vmax=1)
    cmap = plt.get_cmap("Purples")
    table = (result.get("double") or {}).get("table") or []
    shown = table
    if len(table) > _MAX_EDGES:
        shown = [r for r in table if r["b_given_a"]["p_below"] <= _SIGNIFICANT or _dependence(r) >= 0.5]
    for row in sorted(shown, key=_dependence):
        a, b = (
            place.get((row["a"]["layer"], row["a"]["module"])),
            place.get((row["b"]["layer"], row["b"]["module"])),
        )
        if a is None or b is None:
            continue
        dep = _dependence(row)
        solid = row["b_given_a"]["p_below"] <= _SIGNIFICANT
        ax.annotate(
            "",
            xy=(b[0], b[1] - 0.19),
            xytext=(a[0], a[1] + 0.19),
            arrowprops={
                "arrowstyle": "-|>",
                "color": cmap(0.25 + 0.75 * dep),
                "linewidth": 0.8 + 3.5 * dep,
                "linestyle": "-" if solid else "--",
                "shrinkA": 0,
                "shrinkB": 0,
            },
            zorder=1,
        )
        if len(shown) <= _MAX_EDGES:
            mid = (0.4 * a[0] + 0.6 * b[0], 0.4 * a[1] + 0.6 * b[1])
            ax.text(
                *mid,
                f"{dep:.2f}",
                fontsize=6.5,
                ha="center",
                va="center",
                color="#333333",
                bbox={"facecolor": "white", "edgecolor": "none", "pad": 0.5, "alpha": 0.8},
                zorder=4,
            )
    palette = plt.get_cmap("tab10")
    for x, layer, w, entry in place.values():
        face = palette(entry["module"] % 10) if entry["module"] >= 0 else "#cccccc"
        edge = "black" if entry["testable"] else "#aaaaaa"
        ax.add_patch(
            plt.Rectangle(
                (x - w / 2, layer - 0.18), w, 0.36, facecolor=face, edgecolor=edge, alpha=0.45, zorder=2
            )
        )
        p = entry["p_mean"]
        label = f"M{entry['module']} ({len(entry['units'])})" + (f"\np {p:.2f}" if p is not None else "")
        ax.text(x, layer, label, ha="center", va="center", fontsize=7.5, zorder=3)
    ax.set_xlim(-0.02, 1.02)
    ax.set_ylim(min(layers) - 0.6, max(layers) + 0.6)
    ax.set_yticks(layers, [f"hidden {layer}" for layer in layers])
    ax.set_xticks([])
    for side in ("top", "right", "bottom"):
        ax.spines[side].set_visible(False)
    mappable = cm.ScalarMappable(norm=norm, cmap=cmap)
    fig.colorbar(mappable, ax=ax, fraction=0.04, label="dependence of B on A")
    hidden = f" ({len(table) - len(shown)} weak ones hidden)" if len(shown) < len(table) else ""
    note = (
        "edges A → B: dependence = 1 − B's extra damage with A lesioned / B's damage alone; solid: extra "
        f"damage below random sets (p ≤ 0.05){hidden}; boxes: single-lesion p_mean"
        if table
        else "no double lesions (run with --double)"
    )
    import textwrap

    ax.set_title((title + "\n" if title else "") + textwrap.fill(note, 120), fontsize=9)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=110)
    plt.close(fig)
