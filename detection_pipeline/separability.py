"""The compare_expected separability tests of one layer: "every unit its own cluster" or "one cluster".

Both compare an observed overlap k_ij of two 0/1 feature vectors with its chance value under random
placement among N columns: x = k_i·k_j / N², expectation N·x, sd = √(N·x(1−x)).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np
import scipy.sparse as sp

from detection_pipeline.clustering import cut, linkage_tree


@dataclass
class TestOutcome:
    """Outcome of both tests: which fired, their z-scores and overlaps, and the resulting k (or None)."""

    separate: bool
    single: bool
    z_separate: float
    z_single: float
    overlap_separate: tuple[int, int, int]  # (k_i, k_j, k_ij) of the closest pair
    overlap_single: tuple[int, int, int]  # (k_i, k_j, k_ij) of the two halves' unions
    n_columns: int
    k: int | None

    def to_json(self) -> dict:
        out = asdict(self)
        for key in ("z_separate", "z_single"):
            out[key] = None if not math.isfinite(out[key]) else out[key]
        return out


def _chance(k_i: float, k_j: float, n_cols: int) -> tuple[float, float]:
    """Expected overlap N·x and its sd √(N·x(1−x)), x = k_i k_j / N²."""
    if n_cols == 0:
        return 0.0, 0.0
    x = k_i * k_j / n_cols**2
    mean = n_cols * x
    return mean, math.sqrt(max(n_cols * x * (1.0 - x), 0.0))


def _z(diff: float, sd: float) -> float:
    return diff / sd if sd > 0 else diff


def separate_test(restricted: sp.csr_matrix, n_cols: int, metric: str, linkage: str, tree=None):
    """Cluster the restricted rows (n, m) into n-1 clusters; is the one merged pair no closer than chance?

    Returns (fires, z, (k_i, k_j, k_ij)). The pair is the tree's first merge (a cut at n-1 keeps only it).
    `tree` may pass the restricted rows' linkage tree when it is already known.
    """
    if tree is None:
        tree = linkage_tree(restricted, metric, linkage)
    i, j = int(tree[0, 0]), int(tree[0, 1])
    rows = restricted[[i, j]]
    k_i, k_j = int(rows[0].nnz), int(rows[1].nnz)
    k_ij = int(rows[0].multiply(rows[1]).nnz)
    mean, sd = _chance(k_i, k_j, n_cols)
    fires = (k_ij < max(k_i, k_j) and k_ij <= mean) or k_ij < 1
    return fires, _z(mean - k_ij, sd), (k_i, k_j, k_ij)


def single_test(full: sp.csr_matrix, tree: np.ndarray, n_cols: int):
    """Split the unrestricted rows in two (the tree's 2-cut); do the halves' unions overlap by chance or more?

    `full` (n, m) binary rows, `tree` their linkage tree, `n_cols` the same N as the separate test.
    Returns (fires, z, (k_i, k_j, k_ij)).
    """
    labels = cut(tree, 2)
    onehot = sp.csr_matrix((np.ones(len(labels)), (labels, np.arange(len(labels)))), shape=(2, len(labels)))
    unions = (onehot @ full).toarray() > 0
    k_i, k_j = int(unions[0].sum()), int(unions[1].sum())
    k_ij = int((unions[0] & unions[1]).sum())
    mean, sd = _chance(k_i, k_j, n_cols)
    fires = (k_ij >= 1 and k_ij >= mean) or k_ij >= max(k_i, k_j)
    return fires, _z(k_ij - mean, sd), (k_i, k_j, k_ij)


def compare_expected(
    full: sp.csr_matrix,
    tree: np.ndarray,
    restricted: sp.csr_matrix,
    n_cols: int,
    metric: str,
    linkage: str,
    restricted_tree: np.ndarray | None = None,
) -> TestOutcome:
    """Run both tests on a layer of n >= 2 units; k = n (separate), 1 (single) or None (neither fired).

    full / restricted: binary feature rows (n, m) / (n, m') with all columns / only the next
    clusterability_step_size layers' columns; tree: linkage tree of `full`; n_cols: N, the number of units
    in those layers; restricted_tree: its tree when already built. When both fire the larger z-score wins,
    ties to single.
    """
    n = full.shape[0]
    sep, z_sep, ov_sep = separate_test(restricted, n_cols, metric, linkage, restricted_tree)
    one, z_one, ov_one = single_test(full, tree, n_cols)
    k = None
    if sep and one:
        k = 1 if z_one >= z_sep else n
    elif sep:
        k = n
    elif one:
        k = 1
    return TestOutcome(sep, one, float(z_sep), float(z_one), ov_sep, ov_one, int(n_cols), k)
