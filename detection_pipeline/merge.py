"""Merging per-layer clusters into modules across layers, bottom-up.

Layer 0's clusters are the first modules. For each next layer, the lower "clusters" are the modules of the
layer below (as merged so far) and the upper ones are the layer's clusters (output units: singletons). An
upper cluster j joins lower module i when edges(i, j) is more than `threshold` of both i's edges going up
and j's edges coming in (at the output layer only the incoming share counts). When several i qualify the
one appearing first in the lower layer wins. Upper clusters that join nothing become new modules.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp


def _onehot(labels: np.ndarray, n_groups: int) -> sp.csr_matrix:
    """(n_groups, n_units) 0/1 membership matrix."""
    n = len(labels)
    return sp.csr_matrix((np.ones(n), (labels, np.arange(n))), shape=(n_groups, n))


def _dense_ids(labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Relabel to 0..g-1 in order of first appearance; returns (new labels, original id of each group)."""
    uniq, first, inverse = np.unique(labels, return_index=True, return_inverse=True)
    order = np.argsort(first, kind="stable")
    rank = np.empty_like(order)
    rank[order] = np.arange(len(order))
    return rank[inverse], uniq[order]


def _join(edges: np.ndarray, lower_module: np.ndarray, threshold: float, is_output: bool, n_modules: int):
    """Module of each upper cluster from edges (n_lower_groups, n_upper_clusters): the first lower group
    whose share of the cluster's incoming edges (and, below the outputs, of its own outgoing ones) exceeds
    the threshold, else a new module. Returns (module per upper cluster, modules so far)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        share_in = edges / edges.sum(axis=0, keepdims=True)
        share_out = edges / edges.sum(axis=1, keepdims=True)
    joins = share_in > threshold
    if not is_output:
        joins &= share_out > threshold
    has = joins.any(axis=0)
    target = np.empty(joins.shape[1], dtype=np.int64)
    target[has] = lower_module[np.argmax(joins[:, has], axis=0)]  # first qualifying lower module
    target[~has] = n_modules + np.arange(int((~has).sum()))
    return target, n_modules + int((~has).sum())


def merge_layers(
    blocks: list[sp.csr_matrix], layer_labels: list[np.ndarray], threshold: float
) -> list[np.ndarray]:
    """Module id per alive unit of every layer.

    blocks[i]: (n_{i+1}, n_i) 0/1 sparse edges of the condensed graph; layer_labels[i]: (n_i,) cluster label
    per unit for every non-output layer (len(blocks) arrays). Returns len(blocks)+1 int arrays; module ids
    are 0..M-1 in order of creation (layer by layer, first appearance within a layer).
    """
    labels0, _ = _dense_ids(np.asarray(layer_labels[0]))
    modules = [labels0]
    n_modules = int(labels0.max()) + 1 if len(labels0) else 0
    depth = len(blocks)
    for layer in range(1, depth + 1):
        is_output = layer == depth
        n_upper = blocks[layer - 1].shape[0]
        upper = np.arange(n_upper) if is_output else np.asarray(layer_labels[layer])
        upper, _ = _dense_ids(upper)
        # lower groups = modules present in the layer below, in order of first appearance there
        lower, lower_module = _dense_ids(modules[layer - 1])
        edges = (
            _onehot(lower, len(lower_module)) @ blocks[layer - 1].T @ _onehot(upper, upper.max() + 1).T
        ).toarray()
        target, n_modules = _join(edges, lower_module, threshold, is_output, n_modules)
        modules.append(target[upper])
    return modules


def merge_layers_dag(
    graph_blocks: list[tuple[tuple[int, int], sp.csr_matrix]], arch: list[int], layer_labels, threshold: float
) -> list[np.ndarray]:
    """`merge_layers` for a graph with skip edges. graph_blocks: ((source, target), (n_t, n_s) 0/1 sparse)
    for every block. The lower groups of layer t are the modules of all layers below it, in order of first
    appearance scanning from layer t-1 downwards, and edges are counted from all their units into layer t;
    with only consecutive blocks this is exactly `merge_layers`."""
    depth = len(arch) - 1
    into: dict[int, list[tuple[int, sp.csr_matrix]]] = {}
    for (source, target), block in graph_blocks:
        into.setdefault(target, []).append((source, block))
    labels0, _ = _dense_ids(np.asarray(layer_labels[0]))
    modules = [labels0]
    n_modules = int(labels0.max()) + 1 if len(labels0) else 0
    for layer in range(1, depth + 1):
        is_output = layer == depth
        upper = np.arange(arch[layer]) if is_output else np.asarray(layer_labels[layer])
        upper, _ = _dense_ids(upper)
        below = np.concatenate([modules[l] for l in range(layer - 1, -1, -1)])
        _, lower_module = _dense_ids(below)
        rank = {int(m): k for k, m in enumerate(lower_module)}
        edges = np.zeros((len(lower_module), int(upper.max()) + 1 if len(upper) else 0))
        for source, block in into.get(layer, ()):
            lower = np.array([rank[int(m)] for m in modules[source]], dtype=np.int64)
            edges += (
                _onehot(lower, len(lower_module)) @ block.T @ _onehot(upper, edges.shape[1]).T
            ).toarray()
        target, n_modules = _join(edges, lower_module, threshold, is_output, n_modules)
        modules.append(target[upper])
    return modules
