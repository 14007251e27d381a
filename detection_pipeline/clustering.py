"""Agglomerative clustering of one layer's feature rows, and the choice of the number of clusters k.

The published code fitted scikit-learn's AgglomerativeClustering(n_clusters=k, metric, linkage) once per
k. Without a connectivity matrix scikit-learn always builds the *full* tree (scipy's `linkage` on the rows,
or its own minimum-spanning-tree route for single linkage with a metric it knows) and cuts it with
`_hc_cut`, which undoes the last k-1 merges. So one tree per layer, cut at every k, gives exactly the labels
of the per-k fits; we build that same tree once.

Binary rows make many equal distances, and the merge order among equal distances decides the labels. We
therefore compute distances bit for bit as scipy's `pdist` does (checked in tests/test_detection.py):
scipy's cosine is 1 - dot / (|u| |v|) with each norm rooted separately and the ratio clipped at 1; its
jaccard and euclidean on 0/1 rows are ratios / roots of exact integer counts. We get the counts from one
sparse product X Xᵀ, so the cost is that product plus O(n²) per layer, never O(n² · features).
Identical rows are not merged before clustering: average linkage's size-weighted updates can change a
distance by one ulp, which can reorder ties, so deduplication would not keep scikit-learn's labels.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
from scipy.cluster import hierarchy
from scipy.spatial.distance import pdist

from utils.errors import InputError

LINKAGES = ("complete", "average", "single", "ward")
DISTANCES = ("cosine", "jaccard", "euclidean")
CRITERIA = ("modularity-metric", "ch-index", "silhouette", "db-index")


def check_options(linkage: str, distance: str, criterion: str) -> None:
    """Raise InputError for option values or combinations the clustering cannot run."""
    if linkage not in LINKAGES:
        raise InputError(f"--clustering_linkage {linkage!r} is unknown; choose from {', '.join(LINKAGES)}")
    if distance not in DISTANCES:
        raise InputError(
            f"--clustering_distance_measure {distance!r} is unknown; choose from {', '.join(DISTANCES)}"
        )
    if criterion not in CRITERIA:
        raise InputError(f"--stopping_criteria {criterion!r} is unknown; choose from {', '.join(CRITERIA)}")
    if linkage == "ward" and distance != "euclidean":
        # scikit-learn refuses this too; silently switching metric would hide a mistaken command line.
        raise InputError(
            f"--clustering_linkage ward needs --clustering_distance_measure euclidean (got {distance})"
        )


def _is_binary(x: sp.csr_matrix) -> bool:
    return bool(np.all(x.data == 1.0))


def _gram(x: sp.csr_matrix) -> np.ndarray:
    """X Xᵀ (n, n) of 0/1 rows: exact integer overlap counts, as float64.

    Sparse product when rows are sparse; dense float32 BLAS when the sparse product would cost more (its
    work grows with the squared column counts). float32 is exact here: every partial sum is an integer
    below 2^24 (fewer columns than that).
    """
    n, m = x.shape
    column_counts = np.bincount(x.indices, minlength=m).astype(np.float64)
    sparse_cost = float(np.dot(column_counts, column_counts))
    dense_cost = float(n) * n * m / 100.0  # BLAS does ~100 multiply-adds in the time of one sparse step
    if sparse_cost <= dense_cost or m >= 2**24 or n * m > 50_000_000:
        return (x @ x.T).toarray()
    dense = x.toarray().astype(np.float32)
    return (dense @ dense.T).astype(np.float64)


def condensed_distances(x: sp.csr_matrix, metric: str) -> np.ndarray:
    """Pairwise distances between the rows of x (n, m) in scipy's condensed order (length n(n-1)/2).

    Equal bit for bit to scipy.spatial.distance.pdist(x.toarray(), metric).
    """
    n = x.shape[0]
    if not _is_binary(x):
        # Real-valued rows (weighted euclidean features): sums are not exact, so use scipy itself.
        return pdist(x.toarray(), metric)
    gram = _gram(x)
    k = np.diag(gram).copy()
    i, j = np.triu_indices(n, 1)
    kij = gram[i, j]
    if metric == "cosine":
        norms = np.sqrt(k)
        with np.errstate(divide="ignore", invalid="ignore"):
            cos = kij / (norms[i] * norms[j])
        return 1.0 - np.minimum(cos, 1.0)
    if metric == "euclidean":
        return np.sqrt(k[i] + k[j] - 2.0 * kij)
    if metric == "jaccard":
        union = k[i] + k[j] - kij
        with np.errstate(divide="ignore", invalid="ignore"):
            out = (k[i] + k[j] - 2.0 * kij) / union
        out[union == 0] = 0.0
        return out
    raise ValueError(f"unknown metric {metric!r}")


def square(condensed: np.ndarray, n: int) -> np.ndarray:
    """Condensed distances as a full symmetric (n, n) matrix with zero diagonal."""
    out = np.zeros((n, n))
    i, j = np.triu_indices(n, 1)
    out[i, j] = condensed
    out[j, i] = condensed
    return out


def linkage_tree(
    x: sp.csr_matrix, metric: str, linkage: str, distances: np.ndarray | None = None
) -> np.ndarray:
    """The full merge tree scikit-learn builds for these rows, as a scipy linkage matrix (n-1, 4).

    Row t merges nodes Z[t, 0] and Z[t, 1] into node n + t; Z[t, 3] is its size (column 2, the height, is
    not used downstream). `distances` may pass the condensed distances when already computed.
    """
    n = x.shape[0]
    if linkage == "single" and metric in ("euclidean", "jaccard"):
        # scikit-learn's own MST route (it does not go through scipy here): use it to keep its ties.
        from sklearn.cluster import AgglomerativeClustering

        children = AgglomerativeClustering(n_clusters=1, metric=metric, linkage="single").fit(x.toarray())
        z = np.zeros((n - 1, 4))
        z[:, :2] = children.children_
        sizes = np.ones(2 * n - 1)
        for t, (a, b) in enumerate(children.children_):  # only on this non-default route: sizes for cophenet
            sizes[n + t] = sizes[a] + sizes[b]
        z[:, 3] = sizes[n:]
        return z
    if distances is None:
        distances = condensed_distances(x, metric)
    return hierarchy.linkage(distances, method=linkage)


def cut(tree: np.ndarray, k: int) -> np.ndarray:
    """Labels (n_leaves,) of the tree cut into k clusters: the state after the first n-k merges.

    Same partition as scikit-learn's `_hc_cut` (which splits the highest node k-1 times); label values are
    0..k-1 in order of first appearance.
    """
    n_leaves = tree.shape[0] + 1
    children = tree[:, :2].astype(np.intp)
    parent = np.arange(2 * n_leaves - 1)
    merges = n_leaves - k
    if merges > 0:
        nodes = np.arange(n_leaves, n_leaves + merges)
        parent[children[:merges, 0]] = nodes
        parent[children[:merges, 1]] = nodes
    # Follow parents to the root of each leaf's subtree by pointer doubling (log depth passes).
    root = parent.copy()
    while True:
        nxt = root[root]
        if np.array_equal(nxt, root):
            break
        root = nxt
    _, labels = np.unique(root[:n_leaves], return_inverse=True)
    first = np.full(k, n_leaves)
    np.minimum.at(first, labels, np.arange(n_leaves))
    order = np.argsort(np.argsort(first))
    return order[labels]


def merge_steps(tree: np.ndarray) -> np.ndarray:
    """For every pair (i < j) in condensed order, the 1-based merge step of `tree` that first joins them."""
    z = tree.copy()
    z[:, 2] = np.arange(1, z.shape[0] + 1)  # monotone heights = merge index, so cophenet returns the step
    return hierarchy.cophenet(z).astype(np.intp)


def modularity_scores(tree: np.ndarray, distances: np.ndarray, n: int) -> np.ndarray:
    """Modularity-metric score for every k in 2..n-1 (array index k-2), rounded to 8 decimals.

    With D the distance matrix scaled to sum 1, P the (n, k) one-hot labels and a = PᵀD1:
    score = trace(PᵀDP) - ‖a‖² = Σ_c (distance mass inside c - (mass of c's rows)²); lower is better.
    Going from k+1 to k clusters merges A and B, adding 2·D(A,B) - 2·a_A·a_B, so all k come from one pass
    over the pairs bucketed by the merge step that joins them.
    """
    total = 2.0 * distances.sum()
    if n < 3:
        return np.zeros(0)
    if total == 0:
        return np.zeros(n - 2)
    d = distances / total
    rows = square(d, n).sum(axis=1)
    i, j = np.triu_indices(n, 1)
    step = merge_steps(tree)
    within = np.cumsum(np.bincount(step, weights=2.0 * d, minlength=n)[1:])
    cross = np.cumsum(np.bincount(step, weights=2.0 * rows[i] * rows[j], minlength=n)[1:])
    after = within - (np.dot(rows, rows) + cross)  # after[t-1]: score after t merges, k = n - t
    ks = np.arange(2, n)
    return np.round(after[n - ks - 1], 8)


def criterion_scores(criterion: str, x: sp.csr_matrix, tree: np.ndarray, distances: np.ndarray) -> np.ndarray:
    """Score for every k in 2..n-1 (index k-2), oriented so that lower is better for every criterion."""
    n = x.shape[0]
    if criterion == "modularity-metric":
        return modularity_scores(tree, distances, n)
    from sklearn import metrics

    dense = x.toarray() if criterion != "silhouette" else None
    dist_sq = square(distances, n) if criterion == "silhouette" else None
    out = np.empty(max(n - 2, 0))
    for k in range(2, n):  # one sklearn call per k: these criteria have no cheap incremental form
        labels = cut(tree, k)
        if criterion == "silhouette":
            out[k - 2] = -metrics.silhouette_score(dist_sq, labels, metric="precomputed")
        elif criterion == "ch-index":
            out[k - 2] = -metrics.calinski_harabasz_score(dense, labels)
        else:
            out[k - 2] = metrics.davies_bouldin_score(dense, labels)
    return out


@dataclass
class KChoice:
    """The criterion's pick for one layer: best k (None when n < 3), its score, scores per k (2..n-1)."""

    k: int | None
    score: float
    scores: np.ndarray


def best_k(scores: np.ndarray) -> KChoice:
    """Lowest score wins; ties go to the larger k. No candidate (n <= 2): k None, score +inf."""
    if scores.size == 0:
        return KChoice(None, float("inf"), scores)
    finite = np.where(np.isnan(scores), np.inf, scores)
    best = finite.min()
    idx = int(np.flatnonzero(finite == best)[-1])
    return KChoice(idx + 2, float(scores[idx]), scores)
