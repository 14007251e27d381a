"""The shuffles' fast path: the same spectral clustering as scikit-learn's, computed from the edge blocks.

scikit-learn's `SpectralClustering(affinity="precomputed", eigen_solver="arpack", assign_labels="kmeans")`
(cluster.py) embeds the graph with `spectral_embedding(norm_laplacian=True, drop_first=False)`: the K
eigenvectors x of the normalised Laplacian L = I - D^-1/2 A D^-1/2 with the smallest eigenvalues (ARPACK,
shift-invert near 0), each divided by sqrt(degree) (u = D^-1/2 x; no eigenvalue scaling, trivial vector
kept; the sign flip it applies changes no k-means result). Then k-means (k-means++, Lloyd, best inertia of
n_init runs). This module computes the same objective faster:

- embedding. When every block joins layers of opposite parity (an MLP, or skips over an odd number of
  layers) the graph is bipartite between even and odd layers: D^-1/2 A D^-1/2 = [[0, S], [Sᵀ, 0]] and its
  largest eigenvalues are the largest singular values σ of S, with eigenvectors [S v / σ; v] / √2 where
  SᵀS v = σ² v. SᵀS on the smaller side is a few small dense products of the blocks; a dense eigh of it
  (LAPACK evr, top K only) is exact, with no sparse factorisation. Other graphs (skips over an even number
  of layers, as in residual networks) use scikit-learn's own `spectral_embedding` on the sparse graph.
- k-means: all n_init runs at once in numpy (float64, k-means++ with 2 + ln K local trials, Lloyd until
  the labels stop changing or the centre shift falls under 1e-4 × mean feature variance, as scikit-learn).
  The random draws differ from scikit-learn's, so a single clustering differs as one seed from another;
  the distribution of n-cuts over shuffles is the same (tests/test_spectral_fast.py checks it).
- n-cut from the blocks: cut(c) = vol(c) - weight inside c, no sparse matrix built.
"""

from __future__ import annotations

import warnings

import numpy as np

from detection_pipeline.spectral.cluster import NCUT_EPSILON
from detection_pipeline.spectral.graph import WeightBlock

EIGEN_GRAM = "gram"  # bipartite graph: dense eigh of SᵀS
EIGEN_DENSE = "dense"  # any graph up to DENSE_NODES nodes: dense eigh of D^-1/2 A D^-1/2
EIGEN_LOBPCG = "lobpcg"  # larger graphs: LOBPCG, residuals checked
EIGEN_LANCZOS = "lanczos"  # when LOBPCG's residuals are too large: ARPACK Lanczos
DENSE_NODES = 800


def is_bipartite_by_parity(blocks: list[WeightBlock]) -> bool:
    """True when every block joins an even layer to an odd one."""
    return all((b.target - b.source) % 2 == 1 for b in blocks)


def _degrees(absolute: list[WeightBlock], arch: list[int]) -> list[np.ndarray]:
    """Per layer (arch[l],) float64: the sum of |w| at each unit (incoming and outgoing)."""
    degree = [np.zeros(width) for width in arch]
    for b in absolute:
        degree[b.target] += b.weight.sum(axis=1, dtype=np.float64)
        degree[b.source] += b.weight.sum(axis=0, dtype=np.float64)
    return degree


def _gram_embedding(scaled: list[WeightBlock], arch: list[int], n_clusters: int):
    """(N, K) eigenvectors x of D^-1/2 A D^-1/2 for the K largest eigenvalues (unit norm, global node
    order), or None when fewer than K singular values are positive (then the graph needs ARPACK).

    scaled: float32 blocks of S entries d_t^-1/2 |w| d_s^-1/2. SᵀS and its eigh in float32: the rounding
    (~1e-7 of the largest eigenvalue, 1) is far below the gaps between the K eigenvalues kept."""
    offsets = np.concatenate([[0], np.cumsum(arch)])
    even = [layer for layer in range(len(arch)) if layer % 2 == 0]
    odd = [layer for layer in range(len(arch)) if layer % 2 == 1]
    small, large = (odd, even) if sum(arch[i] for i in odd) <= sum(arch[i] for i in even) else (even, odd)
    start = {}
    for side in (small, large):
        position = 0
        for layer in side:
            start[layer] = position
            position += arch[layer]
    n_small = sum(arch[i] for i in small)
    n_large = sum(arch[i] for i in large)
    if n_clusters > min(n_small, n_large):
        return None
    # S as (large, small) blocks: each block is oriented so its rows are on the large side.
    pieces = []
    for b in scaled:
        if b.source in small:
            pieces.append((b.target, b.source, b.weight))  # rows: target (large), columns: source (small)
        else:
            pieces.append((b.source, b.target, b.weight.T))
    gram = np.zeros((n_small, n_small), np.float32)
    by_row: dict[int, list] = {}
    for row_layer, col_layer, weight in pieces:
        by_row.setdefault(row_layer, []).append((col_layer, weight))
    for parts in by_row.values():
        for i, (ci, wi) in enumerate(parts):
            for cj, wj in parts[i:]:
                product = wi.T @ wj
                si, sj = start[ci], start[cj]
                gram[si : si + arch[ci], sj : sj + arch[cj]] += product
                if ci != cj or wi is not wj:
                    gram[sj : sj + arch[cj], si : si + arch[ci]] += product.T
    from scipy.linalg import eigh

    values, vectors = eigh(gram, subset_by_index=[n_small - n_clusters, n_small - 1], driver="evr")
    sigma = np.sqrt(np.clip(values, 0.0, None))
    if sigma.min() <= 1e-10 * max(sigma.max(), 1.0):
        return None
    big = np.zeros((n_large, n_clusters), np.float32)
    for row_layer, col_layer, weight in pieces:
        big[start[row_layer] : start[row_layer] + arch[row_layer]] += (
            weight @ vectors[start[col_layer] : start[col_layer] + arch[col_layer]]
        )
    big /= sigma.astype(np.float32)
    embedding = np.empty((int(offsets[-1]), n_clusters))
    for side, values_side in ((small, vectors), (large, big)):
        for layer in side:
            embedding[offsets[layer] : offsets[layer + 1]] = values_side[
                start[layer] : start[layer] + arch[layer]
            ]
    return embedding / np.sqrt(2.0)


def spectral_embedding_blocks(
    blocks: list[WeightBlock], arch: list[int], n_clusters: int, rng: np.random.Generator
) -> tuple[np.ndarray, str]:
    """((N, K) embedding u = D^-1/2 x as scikit-learn's spectral_embedding with drop_first=False, which
    route computed it). blocks: nonnegative float32 weights of a graph with no zero-degree node."""
    degree = _degrees(blocks, arch)
    root = [np.sqrt(d) for d in degree]
    embedding = None
    if is_bipartite_by_parity(blocks):
        inverse = [(1.0 / r).astype(np.float32) for r in root]
        scaled = [
            WeightBlock(
                b.source, b.target, b.weight * inverse[b.target][:, None] * inverse[b.source][None, :]
            )
            for b in blocks
        ]
        embedding = _gram_embedding(scaled, arch, n_clusters)
    if embedding is not None:
        return embedding / np.concatenate(root)[:, None], EIGEN_GRAM
    from detection_pipeline.spectral.graph import adjacency_from_blocks

    adjacency = adjacency_from_blocks(blocks, arch)
    vectors, route = _general_eigenvectors(adjacency, np.concatenate(root), n_clusters, rng)
    return vectors / np.concatenate(root)[:, None], route


def _general_eigenvectors(adjacency, root: np.ndarray, k: int, rng: np.random.Generator):
    """((N, K) top eigenvectors of M = D^-1/2 A D^-1/2, route) for any graph. Small graphs: dense eigh.
    Larger: LOBPCG (block K + 8, float32 products, the trivial vector sqrt(d) in the start block), kept
    when every residual ‖M x - λ x‖ is under 1e-3 (‖M‖ = 1) in float64; otherwise ARPACK Lanczos on M.
    (scikit-learn's shift-invert near 0 gains little on these graphs: the eigenvalues wanted end in a
    cluster, where the inverted spectrum is as crowded, and each step is a sparse LU solve.)"""
    import scipy.sparse as sp

    inverse = sp.diags(1.0 / root)
    matrix = (inverse @ adjacency @ inverse).tocsr()
    n = matrix.shape[0]
    if n <= DENSE_NODES:
        from scipy.linalg import eigh

        _, vectors = eigh(matrix.toarray(), subset_by_index=[n - k, n - 1])
        return vectors, EIGEN_DENSE
    from scipy.sparse.linalg import eigsh, lobpcg

    start = rng.standard_normal((n, k + 8))
    start[:, 0] = root
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # lobpcg's "not reaching the requested tolerance": checked below
        values, vectors = lobpcg(
            matrix.astype(np.float32), start.astype(np.float32), largest=True, tol=1e-4, maxiter=500
        )
    order = np.argsort(values)[::-1][:k]
    vectors = np.linalg.qr(vectors[:, order].astype(np.float64))[0]
    ritz = np.einsum("ij,ij->j", vectors, matrix @ vectors)
    residual = np.linalg.norm(matrix @ vectors - vectors * ritz, axis=0)
    if np.all(np.isfinite(residual)) and residual.max() < 1e-3:
        return vectors, EIGEN_LOBPCG
    _, vectors = eigsh(matrix, k=k, which="LA", v0=root / np.linalg.norm(root), tol=1e-10)
    return vectors, EIGEN_LANCZOS


# -- k-means, all runs at once --------------------------------------------------------------------------
def _kmeans_plusplus(
    x: np.ndarray, x2: np.ndarray, k: int, runs: int, rng: np.random.Generator
) -> np.ndarray:
    """(runs, k, d) float64 k-means++ seeds (greedy: 2 + ln k candidates per step, the one that lowers the
    potential most), as scikit-learn's. x (n, d); x2 (n,) squared norms. Distances in float32 (x has unit
    mean variance, kmeans_best)."""
    n = x.shape[0]
    trials = 2 + int(np.log(k))
    x32, x2_32 = x.astype(np.float32), x2.astype(np.float32)
    centers = np.empty((runs, k, x.shape[1]))
    first = rng.integers(0, n, runs)
    centers[:, 0] = x[first]
    closest = x32[first] @ x32.T  # (runs, n) squared distance to the nearest seed so far
    closest *= -2.0
    closest += x2_32
    closest += x2_32[first][:, None]
    np.maximum(closest, 0.0, out=closest)
    rows = np.arange(runs)
    for c in range(1, k):
        cumulative = np.cumsum(closest, axis=1, dtype=np.float64)
        # one searchsorted over all runs: shift run r's cumulative sums above those of runs < r
        shift = np.concatenate([[0.0], np.cumsum(cumulative[:, -1])[:-1]])
        draws = rng.random((runs, trials)) * cumulative[:, -1:] + shift[:, None]
        cumulative += shift[:, None]
        candidates = np.searchsorted(cumulative.ravel(), draws.ravel()).reshape(runs, trials)
        candidates -= (rows * n)[:, None]
        np.clip(candidates, 0, n - 1, out=candidates)
        distance = (x32[candidates.ravel()] @ x32.T).reshape(runs, trials, n)
        distance *= -2.0
        distance += x2_32
        distance += x2_32[candidates][:, :, None]
        np.minimum(distance, closest[:, None, :], out=distance)
        np.maximum(distance, 0.0, out=distance)
        best = distance.sum(axis=2, dtype=np.float64).argmin(axis=1)
        closest = distance[rows, best]
        centers[:, c] = x[candidates[rows, best]]
    return centers


def _assign(x_aug: np.ndarray, centers: np.ndarray) -> np.ndarray:
    """labels int16 (runs, n): the nearest centre of every point in every run. x_aug float32 (n, d + 1) is
    [x, 1]; centers (runs, k, d). One product gives ‖c‖² - 2 x·c, the squared distance less ‖x‖²; the first
    centre at the minimum wins, as argmin (the first k where the score equals the minimum, via a max over
    k-weighted matches: a reduction over the middle axis is far cheaper in numpy than argmin there)."""
    runs, k, d = centers.shape
    augmented = np.empty((runs, k, d + 1), np.float32)
    augmented[:, :, :d] = -2.0 * centers
    augmented[:, :, d] = (centers**2).sum(axis=2)
    score = (augmented.reshape(runs * k, d + 1) @ x_aug.T).reshape(runs, k, -1)
    at_min = score == score.min(axis=1, keepdims=True)
    rank = np.arange(k, 0, -1, dtype=np.int16)[None, :, None]  # k for centre 0 ... 1 for centre k-1
    return k - (at_min * rank).max(axis=1)


def _update(x_aug: np.ndarray, labels: np.ndarray, k: int, old: np.ndarray) -> np.ndarray:
    """(runs, k, d) means of each run's clusters (float64); an empty cluster keeps its old centre. One
    product of the one-hot labels (runs·k, n) with x_aug float32 (n, d + 1) = [x, 1] gives the sums and,
    in its last column, the counts."""
    runs, n = labels.shape
    onehot = (labels[:, None, :] == np.arange(k, dtype=labels.dtype)[None, :, None]).astype(np.float32)
    sums = (onehot.reshape(runs * k, n) @ x_aug).reshape(runs, k, -1).astype(np.float64)
    counts = sums[:, :, -1:]
    return np.where(counts > 0, sums[:, :, :-1] / np.maximum(counts, 1), old)


def kmeans_best(
    x: np.ndarray, k: int, n_init: int, rng: np.random.Generator, max_iter: int = 300
) -> tuple[np.ndarray, float]:
    """(labels int (n,), inertia) of the best of n_init k-means runs on x (n, d), run side by side.

    Centres and the stopping rule in float64; the assignment products in float32 after scaling x to unit
    mean variance (a global scale changes no k-means result), which can only flip near-exact ties."""
    x = np.asarray(x, np.float64)
    x = x - x.mean(axis=0)
    spread = float(np.mean(np.var(x, axis=0)))
    if spread > 0:
        x = x / np.sqrt(spread)
    tol = 1e-4 * float(np.mean(np.var(x, axis=0)))
    x2 = (x * x).sum(axis=1)
    x_aug = np.hstack([x, np.ones((x.shape[0], 1))]).astype(np.float32)
    centers = _kmeans_plusplus(x, x2, k, n_init, rng)
    if k >= 2**15:
        raise ValueError(f"k-means with {k} clusters: at most {2**15 - 1}")
    labels = np.full((n_init, x.shape[0]), -1, np.int16)
    active = np.arange(n_init)
    for _ in range(max_iter):
        if active.size == 0:
            break
        new_labels = _assign(x_aug, centers[active])
        moved = _update(x_aug, new_labels, k, centers[active])
        shift = ((moved - centers[active]) ** 2).sum(axis=(1, 2))
        stable = (new_labels == labels[active]).all(axis=1)
        labels[active] = new_labels
        centers[active] = moved
        active = active[~(stable | (shift <= tol))]
    # inertia of each run's final centres (scikit-learn's last E-step), in float64
    distance = x2[None, None, :] + (centers**2).sum(axis=2)[:, :, None] - 2.0 * (centers @ x.T)
    inertia = distance.min(axis=1).sum(axis=1)
    best = int(inertia.argmin())
    scale = spread if spread > 0 else 1.0
    return distance[best].argmin(axis=0).astype(np.int64), float(inertia[best]) * scale


# -- n-cut from blocks ------------------------------------------------------------------------------
def ncut_blocks(
    blocks: list[WeightBlock], arch: list[int], labels: np.ndarray, epsilon: float = NCUT_EPSILON
):
    """The n-cut (cluster.ncut) of labels int (N,) (global node order, all >= 0) on the graph of
    nonnegative blocks: Σ_c (vol(c) - inside(c)) / (vol(c) + ε), clusters in ascending label order."""
    offsets = np.concatenate([[0], np.cumsum(arch)])
    clusters, index = np.unique(labels, return_inverse=True)
    m = clusters.size
    per_layer = [index[offsets[i] : offsets[i + 1]] for i in range(len(arch))]
    vol = np.zeros(m)
    inside = np.zeros(m)
    for b in blocks:
        target, source = per_layer[b.target], per_layer[b.source]
        vol += np.bincount(target, weights=b.weight.sum(axis=1, dtype=np.float64), minlength=m)
        vol += np.bincount(source, weights=b.weight.sum(axis=0, dtype=np.float64), minlength=m)
        onehot = np.zeros((source.size, m))
        onehot[np.arange(source.size), source] = 1.0
        into = np.matmul(b.weight, onehot, dtype=np.float64)[
            np.arange(target.size), target
        ]  # weight from each target into its cluster
        inside += 2.0 * np.bincount(target, weights=into, minlength=m)
    return float(sum(((vol - inside) / (vol + epsilon)).tolist()))
