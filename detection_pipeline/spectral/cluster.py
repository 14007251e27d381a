"""Spectral clustering of the weight graph, its n-cut, and the `spectral` module-finding method.

The clustering is scikit-learn's `SpectralClustering` with the anchors' settings (docs/spectral.md):
affinity "precomputed", eigen_solver "arpack", assign_labels "kmeans", n_init 25 (100 above 2000 nodes),
plus an explicit `random_state` (the anchors pass none and so draw numpy's global RandomState; an integer
seed s draws the same stream as `np.random.seed(s)`, which is how the reference labels were made).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from utils.errors import InputError

NCUT_EPSILON = 1e-9


@dataclass
class SpectralOptions:
    """n_clusters: K; seed: random_state of the clustering; normalize_weights: the clustering
    normalisation of the weight graph; graph_prune: "components" or "zero_degree" (graph.py)."""

    n_clusters: int = 4
    seed: int = 0
    normalize_weights: bool = True
    graph_prune: str = "components"
    needs_data = False


def n_init_for(n_nodes: int) -> int:
    return 100 if n_nodes > 2000 else 25


def check_clusters(n_clusters: int, n_nodes: int, what: str = "the weight graph") -> None:
    """InputError unless 1 <= K < n (ARPACK needs fewer eigenvectors than nodes)."""
    if n_clusters < 1:
        raise InputError(f"the number of clusters must be positive, got {n_clusters}")
    if n_clusters >= n_nodes:
        raise InputError(
            f"{n_clusters} clusters need more nodes than {what} has left ({n_nodes}); lower --n_clusters"
        )


def spectral_labels(adjacency: sp.csr_matrix, n_clusters: int, random_state) -> np.ndarray:
    """int (n,) cluster of each node of the (n, n) symmetric adjacency. random_state: int or RandomState."""
    from sklearn.cluster import SpectralClustering

    n = adjacency.shape[0]
    check_clusters(n_clusters, n)
    model = SpectralClustering(
        n_clusters=n_clusters,
        eigen_solver="arpack",
        affinity="precomputed",
        assign_labels="kmeans",
        n_init=n_init_for(n),
        random_state=random_state,
    )
    with warnings.catch_warnings():
        # "Graph is not fully connected": expected after zero-degree-only pruning; the result stands.
        warnings.simplefilter("ignore", UserWarning)
        return model.fit(adjacency).labels_.astype(np.int64)


def ncut(adjacency: sp.spmatrix, labels: np.ndarray, epsilon: float = NCUT_EPSILON) -> float:
    """Σ over clusters c (label -1 is no cluster) of cut(c, V∖c) / (vol(c) + ε), vol = sum of degrees in c.

    adjacency (n, n) symmetric; labels int (n,). cut = vol - (weight inside c), from one sparse × one-hot
    product (n, m); terms summed in ascending label order, as the anchor does."""
    labels = np.asarray(labels, dtype=np.int64).ravel()
    if labels.shape[0] != adjacency.shape[0]:
        raise InputError(f"{labels.shape[0]} labels for a graph of {adjacency.shape[0]} nodes")
    member = labels >= 0
    clusters, index = np.unique(labels[member], return_inverse=True)
    if clusters.size == 0:
        return 0.0
    onehot = np.zeros((labels.shape[0], clusters.size))
    onehot[np.flatnonzero(member), index] = 1.0
    into = sp.csr_matrix(adjacency) @ onehot  # (n, m): weight from each node into each cluster
    degree = np.asarray(adjacency.sum(axis=1)).ravel()
    vol = onehot.T @ degree
    inside = np.einsum("ij,ij->j", onehot, into)
    return float(sum(((vol - inside) / (vol + epsilon)).tolist()))


def spectral_method(network, data=None, options: SpectralOptions | None = None):
    """`--method spectral`: a Partition over all units (-1 for nodes the graph pruning removed), with the
    n-cut in its diagnostics."""
    from detection_pipeline.partition import Partition
    from detection_pipeline.spectral.graph import weight_graph

    options = options or SpectralOptions()
    graph = weight_graph(network, options.normalize_weights, options.graph_prune)
    labels = spectral_labels(graph.adjacency, options.n_clusters, options.seed)
    value = ncut(graph.adjacency, labels)
    return Partition(
        graph.expand(labels),
        network.arch,
        "spectral",
        {
            "ncut": value,
            "n_clusters": options.n_clusters,
            "seed": options.seed,
            "normalize_weights": options.normalize_weights,
            "graph_prune": options.graph_prune,
            "graph_nodes": graph.n_nodes,
            "removed_nodes": int((~graph.kept).sum()),
        },
    )
