"""The shuffles' fast path (detection_pipeline/spectral/fast.py) against scikit-learn: the embedding spans
the same eigenvectors as sklearn's spectral_embedding, k-means reaches sklearn's inertia, the n-cut equals
cluster.ncut on the sparse graph, and over 100 shuffles the fast path's n-cuts have the exact path's
distribution (two-sample KS, means, the test's verdict)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from scipy.stats import ks_2samp

from detection_pipeline.spectral.cluster import ncut, spectral_labels
from detection_pipeline.spectral.fast import kmeans_best, ncut_blocks, spectral_embedding_blocks
from detection_pipeline.spectral.graph import WeightBlock, adjacency_from_blocks, folded_blocks, weight_graph
from detection_pipeline.spectral.significance import ShuffleJob, shuffled_ncut_info, statistics
from utils.network_files import load_network_file

DATA = Path(__file__).parent / "data" / "spectral"


def random_blocks(arch, skips=(), seed=0) -> list[WeightBlock]:
    rng = np.random.default_rng(seed)
    pairs = [(i, i + 1) for i in range(len(arch) - 1)] + list(skips)
    return [
        WeightBlock(s, t, np.abs(rng.standard_normal((arch[t], arch[s]))).astype(np.float32))
        for s, t in pairs
    ]


def sklearn_embedding(blocks, arch, k):
    from sklearn.manifold import spectral_embedding

    adjacency = adjacency_from_blocks(blocks, arch)
    maps = spectral_embedding(
        adjacency, n_components=k, eigen_solver="arpack", random_state=0, drop_first=False
    )
    return maps, np.sqrt(np.asarray(adjacency.sum(axis=1)).ravel())


@pytest.mark.parametrize(
    ("arch", "skips", "k", "route"),
    [
        ([30, 20, 20, 20, 5], (), 6, "gram"),
        ([30, 20, 20, 20, 5], ((1, 4),), 6, "gram"),
        ([20, 16, 16, 6], ((0, 2),), 6, "dense"),
        ([500, 200, 200, 50], ((0, 2),), 3, "lobpcg"),
    ],
)
def test_embedding_spans_sklearns_eigenvectors(arch, skips, k, route):
    """u = D^-1/2 x: D^1/2 u of both are orthonormal bases of the same K-dimensional eigenspace (LOBPCG
    stops at residual 1e-4, hence its looser match)."""
    blocks = random_blocks(arch, skips)
    ours, used = spectral_embedding_blocks(blocks, arch, k, np.random.default_rng(0))
    theirs, root = sklearn_embedding(blocks, arch, k)
    assert used == route and ours.shape == theirs.shape
    q_ours, _ = np.linalg.qr(ours * root[:, None])
    q_theirs, _ = np.linalg.qr(theirs * root[:, None])
    cosines = np.linalg.svd(q_ours.T @ q_theirs, compute_uv=False)
    assert cosines.min() > 1 - (1e-6 if route != "lobpcg" else 1e-4)


def test_kmeans_reaches_sklearns_inertia():
    from sklearn.cluster import KMeans

    rng = np.random.default_rng(3)
    x = np.concatenate([rng.normal(c, 0.6, (60, 5)) for c in rng.normal(0, 2, (8, 5))])
    labels, inertia = kmeans_best(x, 8, 25, np.random.default_rng(0))
    theirs = KMeans(8, n_init=25, random_state=0).fit(x)
    assert inertia == pytest.approx(theirs.inertia_, rel=1e-4)
    centres = np.stack([x[labels == c].mean(axis=0) for c in range(8)])
    recomputed = ((x - centres[labels]) ** 2).sum()
    assert recomputed == pytest.approx(theirs.inertia_, rel=1e-4)


def test_ncut_from_blocks_equals_the_sparse_ncut():
    arch = [12, 9, 9, 4]
    blocks = random_blocks(arch, ((0, 2),), seed=4)
    labels = np.random.default_rng(1).integers(0, 5, sum(arch))
    assert ncut_blocks(blocks, arch, labels) == pytest.approx(
        ncut(adjacency_from_blocks(blocks, arch), labels), rel=1e-12
    )


def test_fast_and_exact_shuffles_have_the_same_statistics():
    """100 `layer` shuffles of a pruned network at K = 8 on each path (the same shuffled weights; some
    shuffles leave nodes to remove): KS p > 0.05, means within one standard error, the same verdict at
    p < 0.05."""
    method, k = "layer", 8
    network = load_network_file(DATA / "pruned_s20.npz")
    graph = weight_graph(network)
    true = ncut(graph.adjacency, spectral_labels(graph.adjacency, k, 0))
    values, routes = {}, set()
    for solver in ("exact", "fast"):
        job = ShuffleJob(folded_blocks(network), network.arch, k, seed=0, solver=solver)
        results = [shuffled_ncut_info(job, method, i) for i in range(100)]
        values[solver] = np.array([v for v, _, _ in results])
        routes |= {r for _, r, _ in results}
    exact, fast = values["exact"], values["fast"]
    assert routes == {"exact", "fast-gram"}
    assert ks_2samp(exact, fast).pvalue > 0.05
    se = np.sqrt(exact.var(ddof=1) / exact.size + fast.var(ddof=1) / fast.size)
    assert abs(exact.mean() - fast.mean()) <= se
    assert (statistics(true, exact)["p"] < 0.05) == (statistics(true, fast)["p"] < 0.05)
