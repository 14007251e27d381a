"""Success-rate pictures per task family, in the manner of the published success-rate figures.

    paths = plot_success_rates(rates, out_dir)      # one PNG per family: out_dir/success_<family>.png

`rates` are the dicts of run.study.summary.success_rates (family, task, depth, n_runs, n_failed, n_scored,
n_success, success_rate, rate_<criterion> ...). Each picture: success rate (y, 0-1) per task (x), one bar
per network depth (hidden layers) in every task's group, the count "successes/scored" above each bar and
failed runs noted under it. When a family's tasks differ only in their last number k (the number of
outputs), the x axis is k and each task prefix gets its own panel (input_overlap_exp: 8 2 k, 7 3 2 k, ...).
Drawn on a bare Agg Figure (no pyplot state); written atomically.
"""

from __future__ import annotations

import math
import os
import re
from pathlib import Path

import numpy as np

from utils.atomic_io import atomic_path

_MAX_COLUMNS = 3
_TITLE_FONTSIZE = 12
_NOTE_FONTSIZE = 7


def plot_success_rates(
    rates: list[dict], out_dir: str | os.PathLike, metric: str = "success_rate"
) -> list[Path]:
    """One PNG per family under `out_dir`; returns the paths written (sorted by family).

    Groups of family "unknown" (sculpt.json files that could not be read) are left out of the pictures.
    """
    by_family: dict[str, list[dict]] = {}
    for entry in rates:
        if entry["family"] == "unknown":  # unreadable files: listed in the CSVs, nothing to draw
            continue
        by_family.setdefault(entry["family"], []).append(entry)
    paths = []
    for family in sorted(by_family):
        path = Path(out_dir) / f"success_{_safe_name(family)}.png"
        plot_family(family, by_family[family], path, metric)
        paths.append(path)
    return paths


def _safe_name(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", str(name)).strip("._") or "unknown"


def _task_numbers(task: str) -> tuple[int, ...] | None:
    try:
        return tuple(int(v) for v in task.split())
    except ValueError:
        return None


def panels_for(tasks: list[str]) -> list[tuple[str, list[str], list[str]]]:
    """Split a family's tasks into panels: [(panel title, tasks, x tick labels)].

    Tasks that differ only in their last number k go in one panel per prefix with k as tick labels (when
    some prefix has several k); otherwise one panel with the whole task names.
    """
    numbers = {t: _task_numbers(t) for t in tasks}
    ordered = sorted(tasks, key=lambda t: (numbers[t] is None, numbers[t] or (), t))
    prefixes: dict[tuple, list[str]] = {}
    for task in ordered:
        n = numbers[task]
        prefixes.setdefault(n[:-1] if n and len(n) > 1 else (task,), []).append(task)
    if all(len(group) == 1 for group in prefixes.values()):
        return [("", ordered, ordered)]
    return [
        (" ".join(map(str, prefix)) + " k", group, [str(numbers[t][-1]) for t in group])
        for prefix, group in prefixes.items()
    ]


def plot_family(
    family: str, rates: list[dict], path: str | os.PathLike, metric: str = "success_rate"
) -> Path:
    """Draw one family's rates (bars per task and depth) and write `path` as PNG."""
    from matplotlib import colormaps
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.patches import Patch

    tasks = list(dict.fromkeys(e["task"] for e in rates))
    depths = sorted({e["depth"] for e in rates if e["depth"] is not None}) + (
        [None] if any(e["depth"] is None for e in rates) else []
    )
    lookup = {(e["task"], e["depth"]): e for e in rates}
    panels = panels_for(tasks)
    n_cols = min(len(panels), _MAX_COLUMNS)
    n_rows = math.ceil(len(panels) / n_cols)
    widest = max(len(p[1]) for p in panels)
    panel_w = max(3.2, 0.55 * widest * max(1, len(depths)) ** 0.5 + 1.2)
    # At least wide enough for the title and the footnote, however few panels there are.
    fig = Figure(figsize=(max(panel_w * n_cols + 0.6, 7.5), 3.3 * n_rows + 1.1))
    FigureCanvasAgg(fig)
    axes = fig.subplots(n_rows, n_cols, squeeze=False, sharey=True)
    cmap = colormaps["viridis"]
    colours = {d: cmap(v) for d, v in zip(depths, np.linspace(0.15, 0.8, max(len(depths), 1)), strict=False)}
    bar_w = 0.8 / max(len(depths), 1)
    for index, (title, panel_tasks, ticks) in enumerate(panels):
        ax = axes[index // n_cols][index % n_cols]
        for t, task in enumerate(panel_tasks):
            for d, depth in enumerate(depths):
                entry = lookup.get((task, depth))
                if entry is None:
                    continue
                x = t - 0.4 + bar_w * (d + 0.5)
                value = entry.get(metric)
                if value is not None:
                    ax.bar(x, value, bar_w * 0.92, color=colours[depth])
                note = _count_text(entry) if metric == "success_rate" or value is None else f"{value:.2f}"
                ax.text(
                    x,
                    (value or 0) + 0.02,
                    note,
                    ha="center",
                    va="bottom",
                    fontsize=_NOTE_FONTSIZE,
                    rotation=90,
                )
        ax.set_xticks(range(len(panel_tasks)))
        ax.set_xticklabels(ticks, rotation=0 if max(len(s) for s in ticks) <= 8 else 30, fontsize=8)
        ax.set_xlim(-0.6, len(panel_tasks) - 0.4)
        ax.set_ylim(0, 1.32)
        ax.set_yticks(np.linspace(0, 1, 6))
        ax.grid(axis="y", alpha=0.3)
        ax.set_axisbelow(True)
        ax.set_xlabel("k (outputs)" if title else "task (modularity)", fontsize=9, labelpad=10)
        if title:
            ax.set_title(title, fontsize=10)
        if index % n_cols == 0:
            ax.set_ylabel(metric.replace("_", " ").replace("rate ", "rate: "), fontsize=9)
    for index in range(len(panels), n_rows * n_cols):
        axes[index // n_cols][index % n_cols].set_visible(False)
    n_runs = sum(e["n_runs"] for e in rates)
    n_failed = sum(e["n_failed"] for e in rates)
    fig.suptitle(
        f"{family}: {metric.replace('_', ' ')} per task and depth ({n_runs} runs, {n_failed} failed)",
        fontsize=_TITLE_FONTSIZE,
    )
    fig.text(
        0.5,
        0.005,
        "numbers above bars: successes / scored runs;  +n✗: runs failed, unfinished or unreadable",
        ha="center",
        va="bottom",
        fontsize=_NOTE_FONTSIZE + 0.5,
        color="#444444",
    )
    legend = [Patch(color=colours[d], label=_depth_label(d)) for d in depths]
    fig.legend(
        handles=legend,
        loc="upper center",
        bbox_to_anchor=(0.5, 1 - 0.55 / fig.get_figheight()),
        ncol=max(len(legend), 1),
        fontsize=8,
        frameon=False,
    )
    fig.tight_layout(rect=(0, 0.03, 1, 1 - 0.75 / fig.get_figheight()))
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=120, facecolor="white")
    return Path(path)


def _depth_label(depth) -> str:
    if depth is None:
        return "depth unknown"
    return f"{depth} hidden layer" + ("" if depth == 1 else "s")


def _count_text(entry: dict) -> str:
    text = f"{entry['n_success']}/{entry['n_scored']}" if entry["n_scored"] else "0 scored"
    return text + (f" +{entry['n_failed']}✗" if entry["n_failed"] else "")
