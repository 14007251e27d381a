"""The weight graph of a layered network, as the spectral clusterability method sees it (docs/spectral.md).

Nodes: every unit of every layer, in the global order of LayeredNetwork (inputs first). Edges: |w| of every
kept weight, undirected. Before that: batch norm folded into the weights (W·γ/√(var+ε)) and, by default,
the clustering normalisation (each hidden unit's incoming L2 norm scaled to 1, ε 1e-5, its outgoing weights
multiplied by the same factor, layer by layer, in float32 as the anchor does: a ReLU network computes the
same function). Then nodes that do not belong to a component touching both the first and the last layer
are removed ("components"), or only the zero-degree nodes ("zero_degree"). Sparse throughout.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from utils.errors import InputError

PRUNE_MODES = ("components", "zero_degree")
NORM_EPSILON = np.float32(1e-5)


@dataclass
class WeightBlock:
    """Edges from layer `source` to layer `target`: weight float32 (arch[target], arch[source]), zero where
    no edge is kept."""

    source: int
    target: int
    weight: np.ndarray


@dataclass
class WeightGraph:
    """adjacency: float64 CSR (n, n) over the kept nodes (symmetric, no self loops); kept: bool (N,) over
    all units of the network; arch: the network's widths."""

    adjacency: sp.csr_matrix
    kept: np.ndarray
    arch: list[int]

    @property
    def n_nodes(self) -> int:
        return int(self.adjacency.shape[0])

    def expand(self, labels: np.ndarray) -> np.ndarray:
        """Labels of the kept nodes (n,) -> labels of all units (N,), -1 for the removed ones."""
        out = np.full(self.kept.shape[0], -1, dtype=np.int64)
        out[self.kept] = labels
        return out


def folded_blocks(network) -> list[WeightBlock]:
    """The network's edge blocks (consecutive layers first, then skips) as effective float32 weights:
    masked entries zero, batch norm after a layer folded into its incoming weights (γ/√(var+ε) per row)."""
    blocks = []
    for block in network.blocks():
        weight = block.weight * (block.mask != 0).astype(np.float32)
        norm = network.norms[block.target - 1] if block.target - 1 < len(network.norms) else None
        if norm is not None and block.target < len(network.arch) - 1:
            scale = np.asarray(norm["gamma"], np.float32) / np.sqrt(
                np.asarray(norm["var"], np.float32) + np.float32(norm.get("eps", 1e-5))
            )
            weight = weight * scale[:, None]
        blocks.append(WeightBlock(block.source, block.target, weight.astype(np.float32, copy=False)))
    return blocks


def normalize_blocks(blocks: list[WeightBlock], n_layers: int, copy: bool = True) -> list[WeightBlock]:
    """The clustering normalisation, hidden layer by hidden layer (1 .. n_layers-2) in order: s = L2 norm of
    the unit's incoming weights (all blocks into the layer, as already rescaled) + 1e-5; incoming divided by
    s, outgoing multiplied by s. float32 arithmetic, as the anchor. Returns new blocks (copy=False: the
    given float32 weight arrays are rescaled in place)."""
    if copy:
        blocks = [WeightBlock(b.source, b.target, b.weight.copy()) for b in blocks]
    for layer in range(1, n_layers - 1):
        into = [b for b in blocks if b.target == layer]
        if not into:
            continue
        if len(into) == 1:
            norm = np.linalg.norm(into[0].weight, axis=1)
        else:
            norm = np.sqrt(sum((b.weight.astype(np.float32) ** 2).sum(axis=1) for b in into))
        s = (norm + NORM_EPSILON).astype(np.float32)
        for b in into:
            b.weight /= s[:, None]
        for b in blocks:
            if b.source == layer:
                b.weight *= s[None, :]
    return blocks


def adjacency_from_blocks(blocks: list[WeightBlock], arch: list[int]) -> sp.csr_matrix:
    """(N, N) float64 CSR, entry |w| between the two units of every nonzero weight, symmetric, canonical
    (sorted indices, no explicit zeros).

    Built row block by row block: the rows of layer l are [|W| of every block into l, |W|ᵀ of every block
    out of l], side by side in the order of the partner layer, so the nonzeros come out in CSR order at
    once (no COO sort; each pair of layers has one block, so there are no duplicates)."""
    offsets = np.concatenate([[0], np.cumsum(arch)]).astype(np.int64)
    data, indices, counts = [], [], []
    for layer, width in enumerate(arch):
        parts = [(b.source, b.weight) for b in blocks if b.target == layer]
        parts += [(b.target, b.weight.T) for b in blocks if b.source == layer]
        if not parts:
            counts.append(np.zeros(width, np.int64))
            continue
        parts.sort(key=lambda part: part[0])
        rows = np.abs(np.hstack([w for _, w in parts]))
        columns = np.concatenate([offsets[partner] + np.arange(w.shape[1]) for partner, w in parts])
        r, c = np.nonzero(rows)
        data.append(rows[r, c].astype(np.float64))
        indices.append(columns[c])
        counts.append(np.bincount(r, minlength=width))
    n = int(offsets[-1])
    indptr = np.concatenate([[0], np.cumsum(np.concatenate(counts))])
    data = np.concatenate(data) if data else np.zeros(0)
    indices = np.concatenate(indices) if indices else np.zeros(0, np.int64)
    index_type = np.int32 if max(n, data.size) < 2**31 else np.int64
    return sp.csr_matrix((data, indices.astype(index_type), indptr.astype(index_type)), shape=(n, n))


def kept_nodes(adjacency: sp.csr_matrix, arch: list[int], prune: str = "components") -> np.ndarray:
    """bool (N,): nodes in a connected component that holds a first-layer and a last-layer node
    ("components"), or every node with nonzero degree ("zero_degree")."""
    if prune not in PRUNE_MODES:
        raise InputError(f"unknown graph pruning {prune!r} (choose from {', '.join(PRUNE_MODES)})")
    degree = np.asarray(adjacency.sum(axis=1)).ravel()
    if prune == "zero_degree":
        return degree > 0
    from scipy.sparse.csgraph import connected_components

    # The adjacency is symmetric, so strong components are the undirected ones; the strong search needs no
    # transposed copy and is several times faster on a 800k-edge graph.
    _, component = connected_components(adjacency, directed=True, connection="strong")
    n_first, n_last = arch[0], arch[-1]
    touching_first = np.unique(component[:n_first])
    touching_last = np.unique(component[len(component) - n_last :])
    return np.isin(component, np.intersect1d(touching_first, touching_last))


def graph_from_blocks(
    blocks: list[WeightBlock], arch: list[int], normalize: bool = True, prune: str = "components"
) -> WeightGraph:
    """The weight graph of already folded blocks (see the module docstring)."""
    if normalize:
        blocks = normalize_blocks(blocks, len(arch))
    adjacency = adjacency_from_blocks(blocks, arch)
    kept = kept_nodes(adjacency, arch, prune)
    if not kept.all():
        index = np.flatnonzero(kept)
        adjacency = adjacency[index][:, index].tocsr()
    return WeightGraph(adjacency, kept, list(arch))


def restrict_blocks(
    blocks: list[WeightBlock], arch: list[int], kept: np.ndarray
) -> tuple[list[WeightBlock], list[int]]:
    """The blocks and widths of the network without the units where `kept` (N,) is False (001 shuffles
    this smaller network: dead units do not take part in its shuffles)."""
    per_layer = np.split(np.asarray(kept, bool), np.cumsum(arch)[:-1])
    smaller = [
        WeightBlock(b.source, b.target, b.weight[per_layer[b.target]][:, per_layer[b.source]]) for b in blocks
    ]
    return smaller, [int(k.sum()) for k in per_layer]


def weight_graph(network, normalize: bool = True, prune: str = "components") -> WeightGraph:
    """The weight graph of a LayeredNetwork. Raises InputError when no edge is left."""
    graph = graph_from_blocks(folded_blocks(network), network.arch, normalize, prune)
    if graph.adjacency.nnz == 0:
        raise InputError(
            f"{network.source or 'the network'} has no edge joining its first and last layers; "
            "there is no weight graph to cluster"
        )
    return graph
