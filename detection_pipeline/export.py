"""Export a pruned network with its modules as a GraphML file (for Gephi, Cytoscape, networkx).

Conventions shared with `draw.py`:
- `arch`: layer widths, inputs first, outputs last; layer l has arch[l] units.
- `masks[l]`: 0/1 array of shape (arch[l+1], arch[l]) -- torch Linear layout, row = unit in layer l+1,
  column = unit in layer l. `weights[l]` has the same shape.
- `partition`: int array of shape (sum(arch),), module id per unit listed layer by layer; -1 = dropped.
- `skips`: optional list of `utils.network.Block` (source, target > source + 1, weight, mask of shape
  (arch[target], arch[source])): the edges of a DAG network that skip layers (`LayeredNetwork.skips`).
  Every writer takes them, so a network with skip connections is exported and drawn with all its edges.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from utils.atomic_io import atomic_path

if TYPE_CHECKING:
    import networkx as nx


@dataclass(frozen=True)
class LayerEdges:
    """Surviving edges from layer `layer` to layer `target` (None: `layer + 1`), between kept units only.

    `src`, `dst`: int arrays of shape (E,), unit indices within their own layers;
    `weight`: float array of shape (E,) or None when no weights were given.
    """

    layer: int
    src: np.ndarray
    dst: np.ndarray
    weight: np.ndarray | None
    target: int | None = None

    @property
    def upper(self) -> int:
        """The layer the edges enter."""
        return self.layer + 1 if self.target is None else self.target


def split_partition(arch, partition) -> list[np.ndarray]:
    """Cut the flat partition (shape (sum(arch),)) into one int array per layer (shape (arch[l],))."""
    arch = [int(a) for a in arch]
    partition = np.asarray(partition).astype(int).ravel()
    if partition.shape[0] != sum(arch):
        raise ValueError(f"partition has {partition.shape[0]} entries, arch {arch} has {sum(arch)} units")
    bounds = np.cumsum([0, *arch])
    return [partition[bounds[i] : bounds[i + 1]] for i in range(len(arch))]


def kept_layer_edges(arch, masks, partition, weights=None) -> list[LayerEdges]:
    """Unmasked edges between units that the partition keeps, one `LayerEdges` per weight layer."""
    arch = [int(a) for a in arch]
    if len(masks) != len(arch) - 1:
        raise ValueError(f"{len(masks)} masks for arch {arch}: expected {len(arch) - 1}")
    if weights is not None and len(weights) != len(masks):
        raise ValueError(f"{len(weights)} weight arrays for {len(masks)} masks")
    per_layer = split_partition(arch, partition)
    out = []
    for layer, mask in enumerate(masks):
        mask = np.asarray(mask)
        if mask.shape != (arch[layer + 1], arch[layer]):
            raise ValueError(
                f"masks[{layer}] has shape {mask.shape}, expected {(arch[layer + 1], arch[layer])}"
            )
        # Dropped units take their edges with them: zero their rows/columns before nonzero().
        keep = (mask != 0) & (per_layer[layer + 1][:, None] >= 0) & (per_layer[layer][None, :] >= 0)
        dst, src = np.nonzero(keep)
        w = None
        if weights is not None:
            w = np.asarray(weights[layer], dtype=float)[dst, src]
        out.append(LayerEdges(layer, src, dst, w))
    return out


def kept_skip_edges(arch, skips, partition, weighted: bool = False) -> list[LayerEdges]:
    """Unmasked edges of the skip blocks (see the module docstring) between kept units, one `LayerEdges`
    per block with `target` set; `weighted`: carry each block's own weights. [] when skips is None."""
    arch = [int(a) for a in arch]
    per_layer = split_partition(arch, partition)
    out = []
    for block in skips or ():
        s, t = int(block.source), int(block.target)
        if not 0 <= s < t - 1 < len(arch) - 1:
            raise ValueError(
                f"a skip block joins layer s to a layer t > s + 1 of arch {arch}, got {s} -> {t}"
            )
        mask = np.asarray(block.mask)
        if mask.shape != (arch[t], arch[s]):
            raise ValueError(f"skip block {s} -> {t} has shape {mask.shape}, expected {(arch[t], arch[s])}")
        keep = (mask != 0) & (per_layer[t][:, None] >= 0) & (per_layer[s][None, :] >= 0)
        dst, src = np.nonzero(keep)
        w = np.asarray(block.weight, dtype=float)[dst, src] if weighted else None
        out.append(LayerEdges(s, src, dst, w, target=t))
    return out


def kept_edges(arch, masks, partition, weights=None, skips=None) -> list[LayerEdges]:
    """Every kept edge: the consecutive layers' `LayerEdges` (layer order), then the skip blocks'."""
    return kept_layer_edges(arch, masks, partition, weights) + kept_skip_edges(
        arch, skips, partition, weighted=weights is not None
    )


def node_id(layer: int, index: int) -> str:
    """GraphML node id of unit `index` in layer `layer`."""
    return f"L{layer}_{index}"


def build_graph(arch, masks, partition, weights=None, skips=None) -> nx.DiGraph:
    """The condensed network as a DiGraph: kept units as nodes, unmasked kept-to-kept edges as arcs
    (skip blocks' edges included).

    Node attributes: `layer`, `index` (original index within the layer), `module` (all Python ints, so
    GraphML stores them as integers). Edge attribute `weight` (float) when `weights` is given.
    """
    import networkx as nx  # only when exporting: drawing uses this module's edge lists without networkx

    graph = nx.DiGraph()
    for layer, modules in enumerate(split_partition(arch, partition)):
        kept = np.flatnonzero(modules >= 0)
        graph.add_nodes_from(
            (node_id(layer, int(i)), {"layer": layer, "index": int(i), "module": int(modules[i])})
            for i in kept
        )
    for edges in kept_edges(arch, masks, partition, weights, skips):
        lo, hi = edges.layer, edges.upper
        pairs = zip(edges.src.tolist(), edges.dst.tolist(), strict=True)
        if edges.weight is None:
            graph.add_edges_from((node_id(lo, s), node_id(hi, d)) for s, d in pairs)
        else:
            graph.add_edges_from(
                (node_id(lo, s), node_id(hi, d), {"weight": w})
                for (s, d), w in zip(pairs, edges.weight.tolist(), strict=True)
            )
    return graph


def write_graphml(arch, masks, partition, path: str | os.PathLike, weights=None, skips=None) -> None:
    """Write the condensed network (the graph `build_graph` gives: same nodes, arcs and attributes, skip
    edges included) to `path` as GraphML, atomically. Written as text, so detection does not import
    networkx."""
    layers = split_partition(arch, partition)
    edges = kept_edges(arch, masks, partition, weights, skips)
    keys = [
        '<key id="d0" for="node" attr.name="layer" attr.type="int"/>',
        '<key id="d1" for="node" attr.name="index" attr.type="int"/>',
        '<key id="d2" for="node" attr.name="module" attr.type="int"/>',
    ]
    if weights is not None:
        keys.append('<key id="d3" for="edge" attr.name="weight" attr.type="double"/>')
    out = [
        "<?xml version='1.0' encoding='utf-8'?>",
        '<graphml xmlns="http://graphml.graphdrawing.org/xmlns">',
        *keys,
        '<graph edgedefault="directed">',
    ]
    for layer, modules in enumerate(layers):
        out.extend(
            f'<node id="{node_id(layer, i)}"><data key="d0">{layer}</data><data key="d1">{i}</data>'
            f'<data key="d2">{int(modules[i])}</data></node>'
            for i in np.flatnonzero(modules >= 0).tolist()
        )
    for e in edges:
        lo, hi = e.layer, e.upper
        for k, (s, d) in enumerate(zip(e.src.tolist(), e.dst.tolist(), strict=True)):
            data = "" if e.weight is None else f'<data key="d3">{float(e.weight[k])!r}</data>'
            out.append(f'<edge source="{node_id(lo, s)}" target="{node_id(hi, d)}">{data}</edge>')
    out.append("</graph>\n</graphml>\n")
    with atomic_path(path) as tmp:
        Path(tmp).write_text("\n".join(out))
