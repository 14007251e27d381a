"""Reachability features of the units of one layer, computed per layer block with sparse products.

A unit's outgoing feature row lists the units of later layers it reaches within `steps` steps
(A + A^2 + ... + A^steps restricted to its row). In a layered graph a path from layer l to layer l+d has
exactly d edges, so the block for layer l+d is the plain d-step product and no sum over powers is needed.
Incoming features are the same on the transposed graph (units of earlier layers that reach the unit).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from detection_pipeline.graph import LayeredGraph


@dataclass
class Features:
    """Feature rows of one layer: `matrix` is (n_units, n_columns) sparse CSR, float64.

    `column_layers[c]` is the layer of column c and `column_distance[c]` its distance in layers from the
    clustered layer (1 = adjacent); columns cover every unit of the layers on the feature side, zero where
    not reached within `steps`.
    """

    matrix: sp.csr_matrix
    column_layers: np.ndarray
    column_distance: np.ndarray

    def restricted(self, max_distance: int) -> Features:
        """Only the columns of layers at most `max_distance` layers away (the separability tests' view)."""
        keep = self.column_distance <= max_distance
        if keep.all():
            return self
        return Features(self.matrix[:, keep].tocsr(), self.column_layers[keep], self.column_distance[keep])

    def binary(self) -> sp.csr_matrix:
        """The matrix with every nonzero set to 1."""
        out = self.matrix.copy()
        out.data = np.ones_like(out.data)
        return out


def _walk(first: sp.csr_matrix, steps_blocks: list[sp.csr_matrix], binarise: bool) -> list[sp.csr_matrix]:
    """Blocks for distances 1..len(steps_blocks)+1: first, first@B1, first@B1@B2, ... (binarised if asked)."""
    current = first.copy()
    if binarise:
        current.data = np.ones_like(current.data)
    out = [current]
    for block in steps_blocks:
        current = (current @ block).tocsr()
        current.eliminate_zeros()
        if binarise:
            current.data = np.ones_like(current.data)
        out.append(current)
    return out


def _side_dag(graph: LayeredGraph, layer: int, steps: int, towards: str, weighted: bool) -> Features:
    """Features of a graph with skip edges: paths of 1..steps edges on the whole adjacency (a path to a
    layer d away may be shorter than d), columns = every unit of all later (towards='out') or earlier
    ('in') layers. Without skips this gives the same rows as `_side` (a path to layer l+d has d edges)."""
    adjacency = graph.adjacency(weighted)
    offsets = np.concatenate([[0], np.cumsum(graph.arch)])
    if towards == "in":
        adjacency = adjacency.T.tocsr()
    rows = adjacency[offsets[layer] : offsets[layer + 1]]
    reach = sp.csr_matrix(rows.shape)
    current = rows
    for _ in range(steps):
        if not weighted:
            current = current.copy()
            current.data = np.ones_like(current.data)
        reach = reach + current
        current = (current @ adjacency).tocsr()
    if not weighted:
        reach.data = np.ones_like(reach.data)
    layers = list(range(layer + 1, graph.depth + 1)) if towards == "out" else list(range(0, layer))
    columns = np.concatenate([np.arange(offsets[j], offsets[j + 1]) for j in layers]) if layers else []
    matrix = reach.tocsc()[:, columns].tocsr()
    matrix.eliminate_zeros()
    column_layers = (
        np.concatenate([np.full(graph.arch[j], j) for j in layers]) if layers else np.zeros(0, int)
    )
    return Features(matrix, column_layers, np.abs(column_layers - layer))


def _side(graph: LayeredGraph, layer: int, steps: int, towards: str, weighted: bool) -> Features:
    """One direction's features. towards='out' walks up to later layers, 'in' down to earlier ones."""
    if graph.skips:
        return _side_dag(graph, layer, steps, towards, weighted)
    n = graph.arch[layer]
    if towards == "out":
        reach = range(layer + 1, min(graph.depth, layer + steps) + 1)
        mats = [graph.outgoing(j - 1, weighted) for j in reach]
    else:
        reach = range(layer - 1, max(0, layer - steps) - 1, -1)
        mats = [graph.incoming(j + 1, weighted) for j in reach]
    if not mats:
        empty = np.zeros(0, dtype=int)
        return Features(sp.csr_matrix((n, 0)), empty, empty)
    blocks = _walk(mats[0], mats[1:], binarise=not weighted)
    layers = list(reach)
    if towards == "in":  # keep columns in network order (earlier layers first)
        blocks, layers = blocks[::-1], layers[::-1]
    column_layers = np.concatenate([np.full(graph.arch[j], j) for j in layers])
    return Features(sp.hstack(blocks, format="csr"), column_layers, np.abs(column_layers - layer))


def reachability(
    graph: LayeredGraph, layer: int, steps: int, direction: str = "outgoing", weighted: bool = False
) -> Features:
    """Feature rows for the units of `layer` of a (condensed) graph.

    direction: 'outgoing' (units reached in later layers), 'incoming' (units reaching it from earlier
    layers) or 'bidirectional' (both, side by side). Layer 0 has no earlier layer, so it always uses
    outgoing features. weighted: sum over paths of the product of |weights| instead of 0/1 reachability.
    Returns Features with matrix shape (arch[layer], n_columns).
    """
    if layer == 0:
        direction = "outgoing"
    if direction == "outgoing":
        return _side(graph, layer, steps, "out", weighted)
    if direction == "incoming":
        return _side(graph, layer, steps, "in", weighted)
    if direction == "bidirectional":
        down = _side(graph, layer, steps, "in", weighted)
        up = _side(graph, layer, steps, "out", weighted)
        return Features(
            sp.hstack([down.matrix, up.matrix], format="csr"),
            np.concatenate([down.column_layers, up.column_layers]),
            np.concatenate([down.column_distance, up.column_distance]),
        )
    raise ValueError(f"unknown feature direction {direction!r} (outgoing, incoming, bidirectional)")
