"""Layered picture of a pruned network and its modules.

One row per layer (inputs at the bottom, outputs at the top). Every module gets one column band over all
rows, as in the published pictures: its kept units sit in that band in every row, and one shaded rounded
box in its colour spans the layers it covers. Surviving edges are drawn between kept units: straight between
consecutive layers, as arcs when they skip layers (a DAG network's skip blocks), in the module colour when
both ends share a module and grey otherwise. Dropped units (partition -1) are not drawn; each row's label
says how many survive. Input and output units are labelled with their original indices (and the picture
says so when grouping modules reordered them); rows too wide for one label per unit get one label per
module run instead ("0–7, 16–23 …").

Array conventions (shared with `export.py`):
- `arch`: layer widths, inputs first; `masks[l]`/`weights[l]`: shape (arch[l+1], arch[l]), torch Linear
  layout (row = unit in layer l+1, column = unit in layer l);
- `partition`: int array of shape (sum(arch),), module id per unit layer by layer, -1 = dropped;
- `skips`: optional `utils.network.Block` list (source, target, weight, mask (arch[target], arch[source])).
"""

from __future__ import annotations

import os
import textwrap
from dataclasses import dataclass

import numpy as np

from detection_pipeline.export import LayerEdges, kept_layer_edges, kept_skip_edges, split_partition
from utils.atomic_io import atomic_path

# Rows narrower than this many slots are spread as if they had this many, so that a 3-unit output row
# is not squeezed into the middle of a 700-unit-wide picture.
_MIN_ROW_SLOTS = 8
_SWEEPS = 6  # barycentre passes (alternating up/down); more rarely helps
_CROSSING_COUNT_MAX_EDGES = 3000  # above this, skip crossing counts and keep the last sweep
_MAX_LEGEND_MODULES = 24
_MAX_UNIT_LABELS = 32  # wider input/output rows (digits: 128 inputs) get one index-range label per module
_BOX_HALF_HEIGHT = 0.2  # rows are 1 data unit apart
_CROSS_MODULE_GREY = "#8a8a8a"
_MAX_PIXEL_WIDTH = 2400
_LEGEND_FONTSIZE = 8.5
_TITLE_FONTSIZE = 12
_LEGEND_COLUMN_INCHES = 3.1  # enough for "module 12: 1234 units, layers 0–4"
_ARC_POINTS = 24  # polyline points per skip-edge arc
_ARC_BULGE = 0.2  # control point's distance from the chord, as a fraction of the chord's screen length


@dataclass
class _Layout:
    """Where every drawn unit goes.

    `order[l]`: int array of kept unit indices of layer l, left to right (modules contiguous);
    `x[l]`: float array of shape (arch[l],), x in [0, 1] of each unit, NaN for dropped units;
    `step[l]`: distance between neighbouring units of row l (data units).
    """

    order: list[np.ndarray]
    x: list[np.ndarray]
    step: list[float]


def draw_modules(
    arch,
    masks,
    partition,
    path: str | os.PathLike,
    title: str | None = None,
    weights=None,
    input_labels=None,
    output_labels=None,
    skips=None,
) -> None:
    """Draw the layered network with its modules and write it to `path` as PNG (atomically).

    `masks`, optional `weights`: lists of arrays of shape (arch[l+1], arch[l]); `partition`: shape
    (sum(arch),), -1 = dropped. `title`: caller's description (task, arch, density, options); a default
    naming arch and density is used when None. `input_labels` / `output_labels`: optional sequences of
    arch[0] / arch[-1] strings used instead of unit indices on the input / output rows. `skips`: the
    network's skip blocks (drawn as arcs; their own weights set the line widths when `weights` is given).
    """
    fig = modules_figure(arch, masks, partition, title, weights, input_labels, output_labels, skips)
    # Fixed margins instead of bbox_inches="tight": tight renders the figure twice, which doubles the
    # cost of wide networks with tens of thousands of edges.
    dpi = min(150.0, _MAX_PIXEL_WIDTH / fig.get_figwidth())
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=dpi, facecolor="white", pil_kwargs={"compress_level": 3})


def modules_figure(
    arch,
    masks,
    partition,
    title: str | None = None,
    weights=None,
    input_labels=None,
    output_labels=None,
    skips=None,
):
    """The matplotlib Figure `draw_modules` writes (same arguments, no path)."""
    arch = [int(a) for a in arch]
    modules = split_partition(arch, partition)
    edges = kept_layer_edges(arch, masks, partition, weights)
    skip_edges = kept_skip_edges(arch, skips, partition, weighted=weights is not None)
    _check_labels(input_labels, arch[0], "input_labels")
    _check_labels(output_labels, arch[-1], "output_labels")

    # The layout follows the consecutive edges only, so a network without skips is laid out as before.
    layout = _layout(arch, modules, edges)
    colours = _module_colours(layout, modules)
    handles = _legend_handles(modules, colours, edges + skip_edges)
    all_masks = [*masks, *(block.mask for block in skips or ())]
    title_lines = _title_lines(arch, all_masks, modules, edges + skip_edges, title, layout)
    frame = _frame(arch, layout, title_lines, len(handles), input_labels, output_labels)

    _draw_boxes(frame, layout, modules, colours)
    _draw_edges(frame, layout, modules, edges, colours, skip_edges)
    _draw_units(frame, layout, modules, colours)
    _draw_row_labels(frame, arch, layout)
    _draw_unit_labels(frame, layout, 0, input_labels, below=True)
    _draw_unit_labels(frame, layout, len(arch) - 1, output_labels, below=False)
    _draw_legend(frame, handles)
    _draw_titles(frame, title_lines)
    return frame.fig


def _check_labels(labels, n: int, name: str) -> None:
    if labels is not None and len(labels) != n:
        raise ValueError(f"{name} has {len(labels)} entries, the layer has {n} units")


# ---------------------------------------------------------------------------------------------- layout


def _layout(arch: list[int], modules: list[np.ndarray], edges: list[LayerEdges]) -> _Layout:
    """Order units by module, then reduce edge crossings with alternating barycentre sweeps."""
    n_layers = len(arch)
    rank = _module_first_seen(modules)
    order = [_initial_order(m, rank) for m in modules]
    layout = _positions(arch, modules, order)
    best, best_crossings = layout, _crossings(layout, edges)
    for sweep in range(_SWEEPS):
        upward = sweep % 2 == 0
        layers = range(1, n_layers) if upward else range(n_layers - 2, -1, -1)
        for layer in layers:
            bary = _barycentres(layout, edges, layer, from_below=upward)
            order[layer] = _sorted_row(
                modules[layer], layout.x[layer], bary, keep_index_order=_is_io(layer, n_layers)
            )
            layout = _positions(arch, modules, order)
        crossings = _crossings(layout, edges)
        if crossings is None or crossings < best_crossings:
            best, best_crossings = layout, crossings
    return _module_bands(arch, modules, best)


def _module_bands(arch: list[int], modules: list[np.ndarray], rows: _Layout) -> _Layout:
    """One x band per module over all rows (so one box can span the module's layers).

    Modules are ordered by the mean x of their units in the row-wise layout `rows` (which the barycentre
    sweeps chose to reduce crossings); a band is as wide as the module's widest row; inside its band a
    module's units of each row keep their row-wise order and are centred. All rows share one spacing.
    """
    ids = sorted({int(m) for row in modules for m in row[row >= 0].tolist()})
    if not ids:
        return rows
    mean_x, width = {}, {}
    for m in ids:
        xs = np.concatenate([rows.x[l][row == m] for l, row in enumerate(modules)])
        mean_x[m] = float(np.nanmean(xs))
        width[m] = max(int(np.sum(row == m)) for row in modules)
    ordered = sorted(ids, key=lambda m: (mean_x[m], m))
    total_units = sum(width.values())
    gap = max(1.0, 0.03 * total_units)
    start, cursor = {}, 0.0
    for m in ordered:
        start[m] = cursor
        cursor += width[m] - 1 + 1 + gap
    span = cursor - gap - 1  # slot of the last unit of the last band
    step = 1.0 / max(span, _MIN_ROW_SLOTS - 1)
    order, xs = [], []
    for l, row in enumerate(modules):
        x = np.full(arch[l], np.nan)
        units = []
        for m in ordered:
            members = rows.order[l][row[rows.order[l]] == m]
            if members.size:
                slots = start[m] + (width[m] - members.size) / 2.0 + np.arange(members.size)
                x[members] = 0.5 + (slots - span / 2.0) * step
                units.append(members)
        order.append(np.concatenate(units) if units else np.zeros(0, dtype=int))
        xs.append(x)
    return _Layout(order=order, x=xs, step=[step] * len(arch))


def _is_io(layer: int, n_layers: int) -> bool:
    return layer == 0 or layer == n_layers - 1


def _module_first_seen(modules: list[np.ndarray]) -> dict[int, int]:
    """Module id -> rank of its first unit scanning layers bottom-up (a stable initial module order)."""
    rank: dict[int, int] = {}
    for row in modules:
        for m in row[row >= 0].tolist():
            rank.setdefault(m, len(rank))
    return rank


def _initial_order(row: np.ndarray, rank: dict[int, int]) -> np.ndarray:
    """Kept units of one row (module ids shape (n,)) grouped by module rank, by index within a module."""
    kept = np.flatnonzero(row >= 0)
    keys = np.array([rank[m] for m in row[kept].tolist()], dtype=int)
    return kept[np.lexsort((kept, keys))]


def _barycentres(layout: _Layout, edges: list[LayerEdges], layer: int, from_below: bool) -> np.ndarray:
    """Mean x of each unit's neighbours in the row below (or above); own x where it has none. Shape (n,)."""
    x = layout.x[layer]
    if from_below:
        e = edges[layer - 1]
        own, other, other_x = e.dst, e.src, layout.x[layer - 1]
    else:
        e = edges[layer]
        own, other, other_x = e.src, e.dst, layout.x[layer + 1]
    n = x.shape[0]
    sums = np.bincount(own, weights=other_x[other], minlength=n)
    counts = np.bincount(own, minlength=n)
    return np.where(counts > 0, sums / np.maximum(counts, 1), x)


def _sorted_row(row: np.ndarray, x: np.ndarray, bary: np.ndarray, keep_index_order: bool) -> np.ndarray:
    """New left-to-right order of one row's kept units: modules by mean barycentre, then units within.

    Input and output rows keep index order inside a module so that their labels read in sequence.
    """
    kept = np.flatnonzero(row >= 0)
    if kept.size == 0:
        return kept
    ids, inverse = np.unique(row[kept], return_inverse=True)
    module_bary = np.bincount(inverse, weights=bary[kept]) / np.bincount(inverse)
    module_x = np.bincount(inverse, weights=x[kept]) / np.bincount(inverse)
    # Ties (e.g. unconnected modules) fall back to the current position, so sweeps do not shuffle them.
    module_rank = np.empty(ids.size, dtype=int)
    module_rank[np.lexsort((ids, module_x, module_bary))] = np.arange(ids.size)
    within = kept.astype(float) if keep_index_order else bary[kept]
    return kept[np.lexsort((kept, x[kept], within, module_rank[inverse]))]


def _positions(arch: list[int], modules: list[np.ndarray], order: list[np.ndarray]) -> _Layout:
    """x of every unit: evenly spaced slots with a gap between modules, each row centred on 0.5."""
    xs, steps = [], []
    for n, row, units in zip(arch, modules, order, strict=True):
        x = np.full(n, np.nan)
        if units.size == 0:
            xs.append(x)
            steps.append(1.0)
            continue
        labels = row[units]
        group = np.concatenate([[0], np.cumsum(labels[1:] != labels[:-1])])
        gap = max(1.0, 0.03 * units.size)  # wide rows need wider gaps to show the grouping at all
        slots = np.arange(units.size) + gap * group
        width = slots[-1]
        step = 1.0 / max(width, _MIN_ROW_SLOTS - 1)
        x[units] = 0.5 + (slots - width / 2) * step
        xs.append(x)
        steps.append(step)
    return _Layout(order=list(order), x=xs, step=steps)


def _crossings(layout: _Layout, edges: list[LayerEdges]) -> int | None:
    """Number of pairwise edge crossings (between straight edges of adjacent rows); None if too many edges."""
    if sum(e.src.size for e in edges) > _CROSSING_COUNT_MAX_EDGES:
        return None
    total = 0
    for e in edges:
        lo = layout.x[e.layer][e.src]
        hi = layout.x[e.layer + 1][e.dst]
        # Two edges cross when their ends are in opposite order on the two rows.
        total += int(np.sum(np.triu((lo[:, None] - lo[None, :]) * (hi[:, None] - hi[None, :]) < 0)))
    return total


# -------------------------------------------------------------------------------------------- colours


# Twelve colours that stay distinct from each other and from the grey of between-module edges (every pair
# at least 27 CIE-Lab units apart; tab20's light/dark pairs are 17): tab10 without its grey, then navy,
# maroon and mint.
_PALETTE_12 = [
    "#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b",
    "#e377c2", "#bcbd22", "#17becf", "#000075", "#800000", "#aaffc3",
]  # fmt: skip


def _module_colours(layout: _Layout, modules: list[np.ndarray]) -> dict[int, tuple]:
    """Module id -> RGB colour in drawing order: up to 12 modules each get a distinct palette colour,
    more get evenly spaced turbo colours."""
    from matplotlib import colormaps
    from matplotlib.colors import to_rgb

    seen: list[int] = []
    for row, units in zip(modules, layout.order, strict=True):
        for m in row[units].tolist():
            if m not in seen:
                seen.append(m)
    if len(seen) <= len(_PALETTE_12):
        palette = [to_rgb(c) for c in _PALETTE_12]
    else:
        cmap = colormaps["turbo"]
        palette = [cmap(v) for v in np.linspace(0.05, 0.95, len(seen))]
    return {m: tuple(palette[i % len(palette)])[:3] for i, m in enumerate(seen)}


# --------------------------------------------------------------------------------------------- figure


@dataclass
class _Frame:
    """The figure, its single axes, and the axes size in inches (x in [-0.03, 1.03], row l at y = l)."""

    fig: object
    ax: object
    width_in: float
    height_in: float

    @property
    def pts_per_x(self) -> float:
        lo, hi = self.ax.get_xlim()
        return self.width_in * 72 / (hi - lo)

    @property
    def aspect(self) -> float:
        """Screen length of one x unit over that of one y unit."""
        (x0, x1), (y0, y1) = self.ax.get_xlim(), self.ax.get_ylim()
        return (self.width_in / (x1 - x0)) / (self.height_in / (y1 - y0))


def _frame(arch, layout: _Layout, title_lines, n_legend, input_labels, output_labels) -> _Frame:
    """Figure sized by the widest row and the depth (both capped), with fixed margins for the text.

    A bare Agg-backed Figure rather than pyplot: no display is ever needed, no global backend is switched
    (which would close a notebook user's open figures), and nothing has to be closed afterwards.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    widest = max((u.size for u in layout.order), default=1)
    n_rows = len(arch)
    ax_w = _axes_width(layout)
    # Wide rows carry many more edges, so they get more height between rows.
    ax_h = float(np.clip(n_rows * (1.15 + 0.45 * min(1.0, widest / 100)), 3.0, 10.0))
    per_column = max(4, int(ax_h * 72 / (_LEGEND_FONTSIZE * 1.5)))
    n_cols = int(np.ceil(n_legend / per_column))
    left = 1.25  # row labels
    right = 0.3 + _LEGEND_COLUMN_INCHES * n_cols
    bottom = 0.25 + _label_room(layout, 0, input_labels, ax_w)
    top = 0.3 + 0.22 * len(title_lines) + _label_room(layout, n_rows - 1, output_labels, ax_w)
    fig_w, fig_h = left + ax_w + right, bottom + ax_h + top
    fig = Figure(figsize=(fig_w, fig_h))
    FigureCanvasAgg(fig)
    ax = fig.add_axes((left / fig_w, bottom / fig_h, ax_w / fig_w, ax_h / fig_h))
    ax.set_xlim(-0.03, 1.03)
    ax.set_ylim(-0.3, n_rows - 0.7)
    ax.set_axis_off()
    return _Frame(fig, ax, ax_w, ax_h)


def _axes_width(layout: _Layout) -> float:
    """Inches of the drawing area: grows with the widest kept row, capped for very wide networks."""
    widest = max((u.size for u in layout.order), default=1)
    return float(np.clip(0.32 * widest, 6.0, 16.0))


def _label_style(
    layout: _Layout, layer: int, labels, width_in: float
) -> tuple[list[str], float, bool] | None:
    """(texts, font size, vertical?) for the unit labels of a row, or None when the row is too crowded."""
    units = layout.order[layer]
    step_pts = layout.step[layer] * width_in * 72 / 1.06
    if units.size == 0 or step_pts < 6 or units.size > _MAX_UNIT_LABELS:
        return None  # unreadable: one label per module run instead (_draw_range_labels)
    texts = [str(labels[i]) if labels is not None else str(i) for i in units.tolist()]
    fontsize = float(np.clip(0.75 * step_pts, 5.0, 9.0))
    vertical = max(len(t) for t in texts) * fontsize * 0.62 > 0.9 * step_pts
    return texts, fontsize, vertical


def _label_room(layout: _Layout, layer: int, labels, width_in: float) -> float:
    """Inches needed beside the row for its unit labels (they sit outside the axes)."""
    style = _label_style(layout, layer, labels, width_in)
    if style is None:
        return 14 / 72 if layout.order[layer].size else 0.0  # one line of range labels
    texts, fontsize, vertical = style
    extent = max(len(t) for t in texts) * fontsize * 0.62 if vertical else fontsize * 1.3
    return min(2.0, (extent + 4) / 72)


def _draw_boxes(frame: _Frame, layout: _Layout, modules, colours) -> None:
    """One rounded, shaded box per module around its band, from its lowest to its highest layer."""
    from matplotlib.patches import FancyBboxPatch

    aspect = frame.aspect
    step = layout.step[0] if layout.step else 1.0
    pad = float(np.clip(0.42 * step, 0.002, 0.03))
    for m, colour in colours.items():
        layers = [l for l, row in enumerate(modules) if np.any(row == m)]
        xs = np.concatenate([layout.x[l][modules[l] == m] for l in layers])
        x0, x1 = float(np.min(xs)) - pad, float(np.max(xs)) + pad
        y0, y1 = layers[0] - _BOX_HALF_HEIGHT, layers[-1] + _BOX_HALF_HEIGHT
        # The box style works in (x, y / aspect) space; a radius of r there is r x units wide and
        # r * aspect y units tall, which is round on screen.
        radius = min(0.5 * _BOX_HALF_HEIGHT / aspect, 0.5 * (x1 - x0))
        frame.ax.add_patch(
            FancyBboxPatch(
                (x0, y0),
                x1 - x0,
                y1 - y0,
                boxstyle=f"round,pad=0,rounding_size={radius}",
                mutation_aspect=aspect,
                facecolor=(*colour, 0.13),
                edgecolor=(*colour, 0.85),
                linewidth=1.0,
                zorder=0,
            )
        )


def _edge_style(n_edges: int) -> tuple[float, float]:
    """(base line width, alpha) for a layer pair with `n_edges` edges: thinner and fainter when crowded.

    Chosen per layer pair so that a sparse pair (e.g. the few edges into the outputs) stays visible next to
    a dense one.
    """
    base_lw = float(np.clip(1.6 / np.sqrt(max(n_edges, 1) / 40), 0.2, 1.4))
    alpha = float(np.clip(np.sqrt(120 / max(n_edges, 1)), 0.05, 0.75))
    return base_lw, alpha


def _weight_reference(edges: list[LayerEdges]) -> float:
    """|weight| that gets the full line width: the 99th percentile, so one outlier does not thin the rest."""
    weights = [np.abs(e.weight) for e in edges if e.weight is not None and e.weight.size]
    return float(np.percentile(np.concatenate(weights), 99)) if weights else 0.0


def _draw_edges(
    frame: _Frame, layout: _Layout, modules, edges: list[LayerEdges], colours, skip_edges=()
) -> None:
    """All surviving edges as LineCollections: grey between modules underneath, module colour within;
    consecutive layers' edges straight, then the skip edges as arcs.

    Segments are built as one (E, 2, 2) array per layer pair (arcs (E, _ARC_POINTS, 2)) and colours as
    (E, 4) RGBA arrays, so tens of thousands of edges stay cheap.
    """
    from matplotlib.colors import to_rgb

    skip_edges = list(skip_edges)
    if not any(e.src.size for e in [*edges, *skip_edges]):
        return
    w_ref = _weight_reference([*edges, *skip_edges])
    ids = np.array(sorted(colours), dtype=int)
    table = np.array([colours[m] for m in ids.tolist()], dtype=float).reshape(-1, 3)
    grey = np.array(to_rgb(_CROSS_MODULE_GREY))
    for group in (edges, skip_edges):  # straight lines first, then the arcs (each grey underneath)
        segs, rgba, widths, same = [], [], [], []
        for e in group:
            if e.src.size == 0:
                continue
            segs.append(_segments(e, layout, frame.aspect))
            m0, m1 = modules[e.layer][e.src], modules[e.upper][e.dst]
            inside = m0 == m1
            base_lw, alpha = _edge_style(e.src.size)
            colour = np.where(inside[:, None], table[np.searchsorted(ids, m0)], grey)
            # Within-module edges are a bit more opaque: they are what the picture is about.
            opacity = np.where(inside, min(1.0, 1.3 * alpha), alpha)
            rgba.append(np.column_stack([colour, opacity]))
            if e.weight is not None and w_ref > 0:
                widths.append(base_lw * np.clip(0.3 + 1.7 * np.abs(e.weight) / w_ref, 0.3, 2.5))
            else:
                widths.append(np.full(e.src.size, base_lw))
            same.append(inside)
        if segs:
            arrays = (np.concatenate(a) for a in (segs, rgba, widths, same))
            _add_lines(frame, *arrays)


def _segments(e: LayerEdges, layout: _Layout, aspect: float) -> np.ndarray:
    """(E, 2, 2) straight segments between consecutive layers, (E, _ARC_POINTS, 2) arcs for skip edges."""
    lo, hi = e.layer, e.upper
    x0, x1 = layout.x[lo][e.src], layout.x[hi][e.dst]
    if e.target is not None:
        return _arcs(x0, lo, x1, hi, aspect)
    return np.stack(
        [np.column_stack([x0, np.full_like(x0, lo)]), np.column_stack([x1, np.full_like(x1, hi)])], 1
    )


def _add_lines(
    frame: _Frame, segs: np.ndarray, rgba: np.ndarray, widths: np.ndarray, same: np.ndarray
) -> None:
    """Two LineCollections of (E, K, 2) polylines: between modules (grey, underneath), then within."""
    from matplotlib.collections import LineCollection

    for subset, zorder in ((~same, 1), (same, 2)):  # grey underneath
        if subset.any():
            frame.ax.add_collection(
                LineCollection(segs[subset], colors=rgba[subset], linewidths=widths[subset], zorder=zorder)
            )


def _arcs(x0: np.ndarray, y0: int, x1: np.ndarray, y1: int, aspect: float) -> np.ndarray:
    """(E, _ARC_POINTS, 2) quadratic Bezier arcs from (x0, y0) to (x1, y1), x arrays (E,).

    The control point sits off the chord's midpoint, perpendicular to it on screen (`aspect`: screen length
    of one x unit over one y unit) by _ARC_BULGE of its length, on the side away from the picture's centre,
    so an edge skipping a row bends around that row's units instead of running through them.
    """
    dx, dy = (x1 - x0) * aspect, float(y1 - y0)  # chord on screen, in y units
    side = np.where((x0 + x1) / 2 < 0.5, -1.0, 1.0)
    # (dy, -dx) is the chord turned clockwise (pointing right for an upward chord), as long as the chord.
    cx = (x0 + x1) / 2 + side * _ARC_BULGE * dy / aspect
    cy = (y0 + y1) / 2 - side * _ARC_BULGE * dx
    t = np.linspace(0.0, 1.0, _ARC_POINTS)[None, :]
    a, b, c = (1 - t) ** 2, 2 * (1 - t) * t, t**2
    xs = a * x0[:, None] + b * cx[:, None] + c * x1[:, None]
    ys = a * y0 + b * cy[:, None] + c * y1
    return np.stack([xs, ys], axis=2)


def _draw_units(frame: _Frame, layout: _Layout, modules, colours) -> None:
    """Kept units as filled circles; the marker size follows the row's spacing so wide rows stay legible."""
    for layer, (row, units) in enumerate(zip(modules, layout.order, strict=True)):
        if units.size == 0:
            continue
        diameter = float(np.clip(0.7 * layout.step[layer] * frame.pts_per_x, 1.5, 12.0))
        frame.ax.scatter(
            layout.x[layer][units],
            np.full(units.size, layer),
            s=diameter**2,
            c=[colours[m] for m in row[units].tolist()],
            edgecolors="white" if diameter >= 5 else "none",
            linewidths=0.6,
            zorder=3,
        )


def _draw_row_labels(frame: _Frame, arch: list[int], layout: _Layout) -> None:
    """Row names and kept/total unit counts left of the picture."""
    from matplotlib.transforms import blended_transform_factory

    trans = blended_transform_factory(frame.ax.transAxes, frame.ax.transData)
    last = len(arch) - 1
    for layer, n in enumerate(arch):
        name = "inputs" if layer == 0 else "outputs" if layer == last else f"hidden {layer}"
        frame.ax.text(
            -0.01,
            layer,
            f"{name}\n{layout.order[layer].size}/{n} kept",
            transform=trans,
            ha="right",
            va="center",
            fontsize=9,
            color="#333333",
        )


def _draw_unit_labels(frame: _Frame, layout: _Layout, layer: int, labels, below: bool) -> None:
    """Original index (or caller's label) of each unit of an input/output row; when the row is too
    crowded for that, one label per module run of the row with its index ranges."""
    style = _label_style(layout, layer, labels, frame.width_in)
    y = layer - _BOX_HALF_HEIGHT if below else layer + _BOX_HALF_HEIGHT
    if style is None:
        _draw_range_labels(frame, layout, layer, labels, y, below)
        return
    texts, fontsize, vertical = style
    for x, text in zip(layout.x[layer][layout.order[layer]].tolist(), texts, strict=True):
        frame.ax.annotate(
            text,
            (x, y),
            xytext=(0, -3 if below else 3),
            textcoords="offset points",
            ha="center",
            va="top" if below else "bottom",
            rotation=90 if vertical else 0,
            fontsize=fontsize,
            color="#222222",
            annotation_clip=False,
        )


def index_ranges(indices, limit: int = 4) -> str:
    """'0–7, 16–23, 32–39 … (+5 runs)' for sorted int indices: runs of consecutive values, at most
    `limit` shown."""
    idx = np.asarray(sorted(int(i) for i in indices))
    if idx.size == 0:
        return ""
    breaks = np.flatnonzero(np.diff(idx) != 1)
    starts = np.concatenate([[idx[0]], idx[breaks + 1]])
    ends = np.concatenate([idx[breaks], [idx[-1]]])
    runs = [f"{a}" if a == b else f"{a}–{b}" for a, b in zip(starts.tolist(), ends.tolist())]
    text = ", ".join(runs[:limit])
    return text + (f" … (+{len(runs) - limit} runs)" if len(runs) > limit else "")


def _draw_range_labels(frame: _Frame, layout: _Layout, layer: int, labels, y: float, below: bool) -> None:
    """One label per module of a crowded row, centred under (over) its units: count and index ranges."""
    units = layout.order[layer]
    if units.size == 0:
        return
    x = layout.x[layer][units]
    # module runs of the row, left to right (a module is contiguous in its band)
    groups = np.split(np.arange(units.size), np.flatnonzero(np.diff(x) > 1.5 * layout.step[layer]) + 1)
    for group in groups:
        members = units[group]
        text = f"{members.size} units: " + (
            index_ranges(members) if labels is None else ", ".join(str(labels[i]) for i in members[:3]) + " …"
        )
        frame.ax.annotate(
            text,
            (float(np.mean(x[group])), y),
            xytext=(0, -3 if below else 3),
            textcoords="offset points",
            ha="center",
            va="top" if below else "bottom",
            fontsize=7.5,
            color="#222222",
            annotation_clip=False,
        )


def _legend_handles(modules: list[np.ndarray], colours, edges: list[LayerEdges]) -> list:
    """Legend entries: one per module by id (unit count and layer span), then the edge colours (and a
    line for the arcs when some of `edges` skip layers)."""
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch

    handles = []
    ids = sorted(colours)
    for m in ids[:_MAX_LEGEND_MODULES]:
        counts = [int(np.sum(row == m)) for row in modules]
        layers = [i for i, c in enumerate(counts) if c]
        span = f"layer {layers[0]}" if len(layers) == 1 else f"layers {layers[0]}–{layers[-1]}"
        total = sum(counts)
        handles.append(
            Patch(
                facecolor=(*colours[m], 0.35),
                edgecolor=colours[m],
                label=f"module {m}: {total} unit{'s' if total != 1 else ''}, {span}",
            )
        )
    if len(ids) > _MAX_LEGEND_MODULES:
        extra = len(ids) - _MAX_LEGEND_MODULES
        handles.append(Patch(facecolor="none", edgecolor="none", label=f"… and {extra} more modules"))
    if any(e.src.size for e in edges):
        handles.append(Line2D([], [], color="#555555", lw=1.2, label="edge within a module (its colour)"))
        handles.append(Line2D([], [], color=_CROSS_MODULE_GREY, lw=1.2, label="edge between modules"))
    if any(e.src.size for e in edges if e.target is not None):
        handles.append(
            Line2D(
                [],
                [],
                color="#555555",
                ls="none",
                marker=r"$\frown$",
                markersize=14,
                label="arc: edge skipping layers (same colours)",
            )
        )
    return handles


def _draw_legend(frame: _Frame, handles: list) -> None:
    per_column = max(4, int(frame.height_in * 72 / (_LEGEND_FONTSIZE * 1.5)))
    frame.ax.legend(
        handles=handles,
        loc="upper left",
        bbox_to_anchor=(1.0, 1.0),
        ncols=int(np.ceil(len(handles) / per_column)),
        fontsize=_LEGEND_FONTSIZE,
        frameon=False,
        title="modules (layer 0 = inputs)",
        title_fontsize=_LEGEND_FONTSIZE + 1,
        alignment="left",
    )


def _title_lines(arch, masks, modules, edges, title, layout: _Layout) -> list[str]:
    """The caller's title (or a default) wrapped to the picture width, then a line of statistics.

    masks: every block's mask (consecutive layers, then skips); edges: every block's kept edges."""
    total = sum(np.asarray(m).size for m in masks)
    unmasked = sum(int(np.count_nonzero(m)) for m in masks)
    density = 100.0 * unmasked / max(total, 1)
    if title is None:
        title = f"Modules of a pruned network: arch {list(arch)}, density {density:.2f}%"
    n_modules = len({int(m) for row in modules for m in row[row >= 0].tolist()})
    kept = sum(u.size for u in layout.order)
    drawn = sum(e.src.size for e in edges)
    arcs = sum(e.src.size for e in edges if e.target is not None)
    skipping = f", {arcs} skipping layers as arcs" if len(masks) > len(arch) - 1 else ""
    stats = (
        f"{n_modules} module{'s' if n_modules != 1 else ''} · {kept}/{sum(arch)} units kept · "
        f"{drawn} of {unmasked} unmasked edges drawn (between kept units{skipping}) · density {density:.2f}%"
    )
    reordered = [
        name
        for name, layer in (("inputs", 0), ("outputs", len(arch) - 1))
        if np.any(np.diff(layout.order[layer]) < 0)
    ]
    if reordered:
        stats += f" · {' and '.join(reordered)} reordered to group modules: labels are original indices"
    # Wrapped to the drawing plus one legend column; the title is centred over the whole figure.
    width_chars = int((_axes_width(layout) + _LEGEND_COLUMN_INCHES) * 72 / (0.55 * _TITLE_FONTSIZE))
    # Respect the caller's line breaks; wrap each line on its own.
    lines = [
        w for part in title.split("\n") for w in textwrap.wrap(part, width_chars, break_on_hyphens=False)
    ]
    return [*lines, stats]


def _draw_titles(frame: _Frame, lines: list[str]) -> None:
    """Title lines centred over the axes: caller's title large, the statistics line smaller and grey."""
    fig = frame.fig
    fig_h = fig.get_figheight()
    y = 1 - 0.15 / fig_h
    for i, line in enumerate(lines):
        is_stats = i == len(lines) - 1
        fig.text(
            0.5,
            y,
            line,
            ha="center",
            va="top",
            fontsize=9 if is_stats else _TITLE_FONTSIZE,
            color="#444444" if is_stats else "black",
        )
        y -= 0.22 / fig_h
