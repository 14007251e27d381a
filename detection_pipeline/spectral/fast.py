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
  SᵀS v = σ² v. SᵀS on the smaller side is a few dense products of the blocks (float32); its top K
  eigenvectors come from Lanczos on that small dense matrix (float64, tol 1e-10), with no sparse
  factorisation. Other graphs (skips over an even number of layers, as in residual networks): a dense eigh
  of D^-1/2 A D^-1/2 up to DENSE_NODES nodes, else LOBPCG (residuals checked) or Lanczos.
- k-means: all n_init runs side by side in numpy (k-means++ with 2 + ln K local trials, Lloyd until the
  labels stop changing or the summed squared centre shift falls under 1e-4 × mean feature variance, as
  scikit-learn; distance products in float32 over cache-sized blocks of points, centres in float64). The
  random draws differ from scikit-learn's, so a single clustering differs as one seed from another; the
  distribution of n-cuts over shuffles is the same (tests/test_spectral_fast.py and
  benchmarks/spectral_speed.py check it).
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


def _gram_embedding(scaled: list[WeightBlock], arch: list[int], n_clusters: int, rng: np.random.Generator):
    """(N, K) eigenvectors x of D^-1/2 A D^-1/2 for the K largest eigenvalues (unit norm, global node
    order), or None when fewer than K singular values are positive (then the graph needs ARPACK).

    scaled: float32 blocks of S entries d_t^-1/2 |w| d_s^-1/2. SᵀS in float32: the rounding (~1e-7 of the
    largest eigenvalue, 1) is far below the gaps between the K eigenvalues kept. rng: Lanczos start."""
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
    if n_clusters < n_small - 1:
        # Lanczos on the dense SᵀS (products are cheap, no factorisation): faster here than a full
        # tridiagonal reduction for the top K
        from scipy.sparse.linalg import eigsh

        values, vectors = eigsh(
            gram.astype(np.float64), k=n_clusters, which="LA", tol=1e-10, v0=rng.uniform(-1, 1, n_small)
        )
        vectors = vectors.astype(np.float32)
    else:
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
        scaled = []
        for b in blocks:
            weight = np.multiply(b.weight, inverse[b.target][:, None])
            weight *= inverse[b.source][None, :]
            scaled.append(WeightBlock(b.source, b.target, weight))
        embedding = _gram_embedding(scaled, arch, n_clusters, rng)
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
    n, d = x.shape
    trials = 2 + int(np.log(k))
    # squared distances straight from one product: [x, ‖x‖², 1] · [-2c, 1, ‖c‖²]
    left = np.hstack([x, x2[:, None], np.ones((n, 1))]).astype(np.float32)
    right = np.hstack([-2.0 * x, np.ones((n, 1)), x2[:, None]]).astype(np.float32)
    centers = np.empty((runs, k, d))
    first = rng.integers(0, n, runs)
    centers[:, 0] = x[first]
    closest = right[first] @ left.T  # (runs, n) squared distance to the nearest seed so far
    np.maximum(closest, 0.0, out=closest)
    rows = np.arange(runs)
    chunk = _chunk(runs * trials)
    for c in range(1, k):
        cumulative = np.cumsum(closest, axis=1, dtype=np.float64)
        # one searchsorted over all runs: shift run r's cumulative sums above those of runs < r
        shift = np.concatenate([[0.0], np.cumsum(cumulative[:, -1])[:-1]])
        draws = rng.random((runs, trials)) * cumulative[:, -1:] + shift[:, None]
        cumulative += shift[:, None]
        candidates = np.searchsorted(cumulative.ravel(), draws.ravel()).reshape(runs, trials)
        candidates -= (rows * n)[:, None]
        np.clip(candidates, 0, n - 1, out=candidates)
        points = right[candidates.ravel()]
        potential = np.zeros((runs, trials))
        for start in range(0, n, chunk):  # blocks of points: the (runs, trials, chunk) arrays stay in cache
            distance = (points @ left[start : start + chunk].T).reshape(runs, trials, -1)
            np.minimum(distance, closest[:, None, start : start + chunk], out=distance)
            potential += distance.sum(axis=2, dtype=np.float64)
        chosen = candidates[rows, potential.argmin(axis=1)]
        np.minimum(closest, np.maximum(right[chosen] @ left.T, 0.0), out=closest)
        centers[:, c] = x[chosen]
    return centers


def _augmented(centers: np.ndarray) -> np.ndarray:
    """float32 (runs, k, d + 1): [-2c, ‖c‖²], so that [x, 1] · it = ‖c‖² - 2 x·c."""
    runs, k, d = centers.shape
    augmented = np.empty((runs, k, d + 1), np.float32)
    augmented[:, :, :d] = centers
    augmented[:, :, :d] *= -2.0
    augmented[:, :, d] = (centers**2).sum(axis=2)
    return augmented


def _scores(x_aug: np.ndarray, centers: np.ndarray) -> np.ndarray:
    """float32 (runs, k, n): ‖c‖² - 2 x·c (the squared distance less ‖x‖²) from one product. x_aug float32
    (n, d + 1) is [x, 1]; centers (runs, k, d)."""
    runs, k, d = centers.shape
    return (_augmented(centers).reshape(runs * k, d + 1) @ x_aug.T).reshape(runs, k, -1)


def _first_minimum(score: np.ndarray) -> np.ndarray:
    """int16 (runs, n): argmin over the middle axis of (runs, k, n), the first centre on ties (a max over
    k-weighted matches: far cheaper in numpy than argmin over a middle axis)."""
    k = score.shape[1]
    rank = np.arange(k, 0, -1, dtype=np.int16)[None, :, None]  # k for centre 0 ... 1 for centre k-1
    return k - ((score == score.min(axis=1, keepdims=True)) * rank).max(axis=1)


CHUNK_ELEMENTS = 80_000  # entries of one block of scores (runs × k × points): it stays in cache


def _chunk(rows: int) -> int:
    """Points per block when each point has `rows` scores."""
    return max(64, CHUNK_ELEMENTS // max(rows, 1))


def _lloyd_step(x_aug: np.ndarray, centers: np.ndarray) -> np.ndarray:
    """One Lloyd iteration of every run: the new centres float64 (runs, k, d) of the points nearest to
    `centers` (an empty cluster keeps its centre). Per block of points: the scores, the one-hot membership,
    and its product with x_aug = [x, 1], which adds the sums and, in the last column, the counts. A point
    tied between two centres goes to the first."""
    runs, k, d = centers.shape
    n = x_aug.shape[0]
    augmented = _augmented(centers).reshape(runs * k, d + 1)
    sums = np.zeros((runs * k, d + 1), np.float32)
    chunk = _chunk(runs * k)
    member = np.empty((runs, k, min(chunk, n)), bool)
    for start in range(0, n, chunk):
        part = x_aug[start : start + chunk]
        score = (augmented @ part.T).reshape(runs, k, -1)
        block = member[:, :, : part.shape[0]]
        np.equal(score, score.min(axis=1, keepdims=True), out=block)
        sums += block.astype(np.float32).reshape(runs * k, -1) @ part
    sums = sums.reshape(runs, k, d + 1)
    tied = sums[:, :, d].sum(axis=1) > n + 0.5
    if tied.any():
        labels = _first_minimum(_scores(x_aug, centers[tied]))
        onehot = labels[:, None, :] == np.arange(k, dtype=labels.dtype)[None, :, None]
        sums[tied] = (onehot.astype(np.float32).reshape(-1, n) @ x_aug).reshape(-1, k, d + 1)
    sums = sums.astype(np.float64)
    counts = sums[:, :, d:]
    return np.where(counts > 0, sums[:, :, :d] / np.maximum(counts, 1), centers)


def kmeans_best(
    x: np.ndarray, k: int, n_init: int, rng: np.random.Generator, max_iter: int = 300
) -> tuple[np.ndarray, float]:
    """(labels int (n,), inertia) of the best of n_init k-means runs on x (n, d), run side by side.

    Each run stops as scikit-learn's Lloyd: when no label changes, or when the squared centre shift summed
    over centres is at most 1e-4 × the mean feature variance. Centres in float64; the distance products in
    float32 after scaling x to unit mean variance (a global scale changes no k-means result), which can
    only flip near-exact ties."""
    x = np.asarray(x, np.float64)
    x = x - x.mean(axis=0)
    variance = np.var(x, axis=0)
    spread = float(np.mean(variance))
    if spread > 0:
        # constant columns (the trivial eigenvector is constant once divided by sqrt(degree)) add nothing
        # to any distance; the tolerance still averages over all columns, as scikit-learn's
        x = x[:, variance > 1e-12 * variance.max()] / np.sqrt(spread)
    tol = 1e-4 * (1.0 if spread > 0 else 0.0)
    x2 = (x * x).sum(axis=1)
    x_aug = np.hstack([x, np.ones((x.shape[0], 1))]).astype(np.float32)
    if k >= 2**15:
        raise ValueError(f"k-means with {k} clusters: at most {2**15 - 1}")
    centers = _kmeans_plusplus(x, x2, k, n_init, rng)
    active = np.arange(n_init)
    for _ in range(max_iter):
        moved = _lloyd_step(x_aug, centers[active])
        # When no label changes, the new centres are the old ones to the bit (the same sums in the same
        # order), so scikit-learn's "labels unchanged" stop is the shift-0 case of its tolerance stop.
        done = ((moved - centers[active]) ** 2).sum(axis=(1, 2)) <= tol
        centers[active] = moved
        active = active[~done]
        if active.size == 0:
            break
    # scikit-learn's last E-step: labels and inertia of each run's final centres
    score = _scores(x_aug, centers)
    inertia = score.min(axis=1).sum(axis=1, dtype=np.float64) + x2.sum()
    best = int(inertia.argmin())
    scale = spread if spread > 0 else 1.0
    return _first_minimum(score[best : best + 1])[0].astype(np.int64), float(inertia[best]) * scale


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
