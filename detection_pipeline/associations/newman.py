"""Newman's modularity Q of a weighted graph and its maximisation (docs/associations.md).

adjacency: (n, n) non-negative, symmetric, zero diagonal. labels: int (n,), -1 for units in no cluster
(they still count in the total weight, as in the anchor). Q = Tr(e) - sum_c a_c b_c with
e = P^T A P / sum(A).

`maximise_q` = recursive spectral bisection (deterministic) then Monte Carlo refinement (seeded):
* bisection "newman" (default): Newman (2006): split a group on the sign of the leading eigenvector (most
  positive eigenvalue) of its generalised modularity matrix B_g - diag(B_g 1); keep a split only if Q rises.
* bisection "svd": the anchor's variant: the first right singular vector of the plain submatrix B[g][:, g]
  (the largest |eigenvalue|, which can be a negative one whose split is then rejected).
* Monte Carlo: `steps` times pick an alive unit at random, score its move to every non-empty cluster and
  to one empty cluster (delta Q), choose the temperature so the entropy (nats) of softmax(delta Q / T) is
  `target_entropy`, sample the move; the best partition seen is returned.
Units whose row sum is below 1e-15 of the total are dead: label -1.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from utils.errors import InputError

DEAD = 1e-15
BISECTIONS = ("newman", "svd")


def q_value(adjacency: np.ndarray, labels: np.ndarray) -> float:
    """Newman's Q (float) of `labels` (n,) on `adjacency` (n, n); -1 labels belong to no cluster."""
    adjacency = np.asarray(adjacency, dtype=np.float64)
    labels = np.asarray(labels)
    total = adjacency.sum()
    if total <= 0:
        return 0.0
    kept = labels >= 0
    if not kept.any():
        return 0.0
    ids = np.unique(labels[kept], return_inverse=True)[1]
    one_hot = np.zeros((len(labels), ids.max() + 1))
    one_hot[np.flatnonzero(kept), ids] = 1.0
    e = one_hot.T @ adjacency @ one_hot / total
    return float(np.trace(e) - e.sum(1) @ e.sum(0))


def effective_clusters(labels: np.ndarray) -> float:
    """exp(entropy of the cluster sizes) over labelled units (-1 ignored); 0 when none."""
    labels = np.asarray(labels)
    counts = np.bincount(np.unique(labels[labels >= 0], return_inverse=True)[1])
    if counts.size == 0:
        return 0.0
    p = counts / counts.sum()
    return float(np.exp(-(p * np.log(p)).sum()))


def _prepared(adjacency: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(A / sum A with zero diagonal (n, n) float64, alive mask (n,))."""
    a = np.array(adjacency, dtype=np.float64)
    if a.ndim != 2 or a.shape[0] != a.shape[1]:
        raise InputError(f"an association matrix must be square, got shape {a.shape}")
    if not np.all(np.isfinite(a)) or (a < 0).any():
        raise InputError("an association matrix must be finite and non-negative")
    np.fill_diagonal(a, 0.0)
    a = (a + a.T) / 2
    total = a.sum()
    if total <= 0:
        return a, np.zeros(len(a), dtype=bool)
    a /= total
    return a, a.sum(1) >= DEAD


def spectral_bisection(adjacency: np.ndarray, bisection: str = "newman") -> np.ndarray:
    """Recursive bisection: labels int (n,) 0..k-1, -1 for dead units."""
    if bisection not in BISECTIONS:
        raise InputError(f"unknown bisection {bisection!r} (choose from {', '.join(BISECTIONS)})")
    a, alive = _prepared(adjacency)
    degree = a.sum(1)
    b = a - np.outer(degree, degree)
    labels = np.where(alive, 0, -1)
    queue = [np.flatnonzero(alive)] if alive.sum() >= 2 else []
    next_id = 1
    while queue:
        group = queue.pop(0)
        sub = b[np.ix_(group, group)]
        if bisection == "newman":
            values, vectors = np.linalg.eigh(sub - np.diag(sub.sum(1)))
            if values[-1] <= 1e-12:
                continue
            vector = vectors[:, -1]
        else:
            vector = np.linalg.svd(sub)[2][0]
        side = vector >= 0
        if side.all() or not side.any():
            continue
        # Q gained by the split = (within-group B kept) - (B before) = -2 * sum of B across the cut.
        gain = -2.0 * sub[np.ix_(side, ~side)].sum()
        if gain <= 1e-12:
            continue
        labels[group[~side]] = next_id
        next_id += 1
        queue += [group[side], group[~side]]
    return labels


# Inverse temperatures (times the spread of the move scores) searched for the entropy target: a coarse
# log-spaced grid, then a fine grid inside the bracket found; both vectorised over chains and grid points.
LOG_BETA_RANGE = (-3.0, 8.0)
GRID = 16
GRID_PASSES = 3


_FRACTIONS = np.linspace(0.0, 1.0, GRID)
_LN10 = np.log(10.0)
_MASKED = -1e12  # x of a move that is not allowed: exp(beta * x) is exactly 0 for every beta searched


def _entropies(x: np.ndarray, log_beta: np.ndarray) -> np.ndarray:
    """Entropy (nats) of softmax(beta * x): x (C, k) (masked moves at -1e12); log_beta (C, g) -> (C, g)."""
    beta = np.exp(log_beta * _LN10)[:, :, None]
    z = np.exp(beta * x[:, None, :])
    total = z.sum(2)
    return np.log(total) - beta[:, :, 0] * (z * x[:, None, :]).sum(2) / total


def entropy_temperatures(delta: np.ndarray, allowed: np.ndarray, target: float) -> np.ndarray:
    """T (C,) with entropy(softmax(delta / T)) = target over the allowed moves; nan where all moves tie.

    delta, allowed: (C, k). Three grid passes of the bisection at once (relative precision < 1 % in T)."""
    top = np.where(allowed, delta, -np.inf).max(1)
    spread = top - np.where(allowed, delta, np.inf).min(1)
    safe = np.where(spread > 0, spread, 1.0)
    x = np.where(allowed, (delta - top[:, None]) / safe[:, None], _MASKED)  # allowed moves in [-1, 0]
    low = LOG_BETA_RANGE[0] + np.zeros(len(delta))
    step = (LOG_BETA_RANGE[1] - LOG_BETA_RANGE[0]) / (GRID - 1) + np.zeros(len(delta))
    for _ in range(GRID_PASSES):
        log_beta = low[:, None] + (step * (GRID - 1))[:, None] * _FRACTIONS[None, :]
        above = np.count_nonzero(_entropies(x, log_beta) > target, axis=1)  # entropy falls as beta grows
        low = low + step * np.maximum(above - 1, 0)
        step = np.where((above > 0) & (above < GRID), step / (GRID - 1), 0.0)
    return np.where(spread > 0, safe / np.exp((low + step * (GRID - 1) / 2) * _LN10), np.nan)


@dataclass
class MonteCarloResult:
    labels: np.ndarray  # (n,) best partition seen, -1 dead
    q: float
    scores: np.ndarray = field(repr=False)  # (steps,) Q after each step
    temperatures: np.ndarray = field(repr=False)  # (steps,)


def monte_carlo(
    adjacency: np.ndarray,
    labels: np.ndarray,
    steps: int = 5000,
    target_entropy: float = 0.15,
    seed: int = 0,
) -> MonteCarloResult:
    """Refine `labels` (n,) by entropy-targeted Monte Carlo moves; returns the best partition seen."""
    return monte_carlo_batch([adjacency], [labels], steps, target_entropy, [seed])[0]


def monte_carlo_batch(
    adjacencies: list[np.ndarray],
    labels: list[np.ndarray],
    steps: int = 5000,
    target_entropy: float = 0.15,
    seeds: list[int] | None = None,
) -> list[MonteCarloResult]:
    """Independent Monte Carlo chains run in lockstep (one Python loop over steps for all of them).

    adjacencies[c]: (n_c, n_c); labels[c]: (n_c,) the start. Chain c draws from its own
    np.random.default_rng(seeds[c]), so its result does not depend on which chains run beside it."""
    seeds = [0] * len(adjacencies) if seeds is None else list(seeds)
    prepared = [_prepared(a) for a in adjacencies]
    results: list[MonteCarloResult | None] = [None] * len(adjacencies)
    chains = []
    for c, ((_, alive), start) in enumerate(zip(prepared, labels)):
        start = np.asarray(start, dtype=np.int64).copy()
        start[~alive] = -1
        if alive.sum() < 2:
            results[c] = MonteCarloResult(start, 0.0, np.zeros(0), np.zeros(0))
        else:
            start[alive] = np.unique(start[alive], return_inverse=True)[1]
            chains.append(c)
    if not chains:
        return results
    n = max(len(prepared[c][0]) for c in chains)
    n_chains = len(chains)
    from utils.limits import check_memory

    check_memory(
        # picks, draws, scores, temperatures (8 bytes per chain and step) and each chain's matrix
        8 * n_chains * (4 * steps + n * n),
        f"--mc_steps {steps} for {n_chains} chains (layers x --mc_restarts)",
        "lower --mc_steps or --mc_restarts",
    )
    a = np.zeros((n_chains, n, n))
    labels_now = np.full((n_chains, n), -1)
    picks = np.empty((n_chains, steps), dtype=np.int64)
    draws = np.empty((n_chains, steps))
    for row, c in enumerate(chains):
        matrix, alive = prepared[c]
        size = len(matrix)
        a[row, :size, :size] = matrix
        labels_now[row, :size] = np.where(alive, np.asarray(labels[c])[:size], -1)
        labels_now[row, :size][alive] = np.unique(np.asarray(labels[c])[alive], return_inverse=True)[1]
        rng = np.random.default_rng(seeds[c])
        units = np.flatnonzero(alive)
        picks[row] = units[rng.integers(0, len(units), steps)]
        draws[row] = rng.random(steps)
    rows = np.arange(n_chains)
    degree = a.sum(2)
    one_hot = np.zeros((n_chains, n, n))
    r, u = np.nonzero(labels_now >= 0)
    one_hot[r, u, labels_now[r, u]] = 1.0
    weight_to = a @ one_hot  # (C, n, clusters): weight from each unit into each cluster
    cluster_degree = np.einsum("cu,cuk->ck", degree, one_hot)
    sizes = one_hot.sum(1)
    q = np.einsum("cuk,cuv,cvk->c", one_hot, a, one_hot) - (cluster_degree**2).sum(1)
    best_q, best = q.copy(), labels_now.copy()
    scores = np.empty((n_chains, steps))
    temperatures = np.empty((n_chains, steps))
    temperature = np.ones(n_chains)
    first_empty = np.arange(n)[None, :]
    for step in range(steps):
        unit = picks[:, step]
        current = labels_now[rows, unit]
        # New clusters take the lowest free id, so ids stay small: look at the first k columns only.
        k = min(n, int(np.flatnonzero((sizes > 0).any(0))[-1]) + 2)
        empty = sizes[:, :k] == 0
        # Moves: every non-empty cluster and the first empty one.
        allowed = ~empty | (first_empty[:, :k] == np.where(empty.any(1), empty.argmax(1), -1)[:, None])
        k_i = degree[rows, unit][:, None]
        w = weight_to[rows, unit, :k]
        delta = 2.0 * (w - w[rows, current][:, None]) - 2.0 * k_i * (
            cluster_degree[:, :k] - cluster_degree[rows, current][:, None] + k_i
        )
        delta[rows, current] = 0.0
        found = entropy_temperatures(delta, allowed, target_entropy)
        temperature = np.where(np.isnan(found), temperature, found)
        top = np.where(allowed, delta, -np.inf).max(1, keepdims=True)
        weights = np.where(allowed, np.exp((np.where(allowed, delta, top) - top) / temperature[:, None]), 0.0)
        cumulative = np.cumsum(weights, 1)
        target = np.count_nonzero(cumulative < draws[:, step, None] * cumulative[:, -1:], axis=1)
        moved = np.flatnonzero(target != current)
        if moved.size:
            um, cm, tm = unit[moved], current[moved], target[moved]
            row_weights = a[moved, um]  # (M, n): the moving unit's weights to every unit
            weight_to[moved, :, cm] -= row_weights
            weight_to[moved, :, tm] += row_weights
            km = degree[moved, um]
            cluster_degree[moved, cm] -= km
            cluster_degree[moved, tm] += km
            sizes[moved, cm] -= 1
            sizes[moved, tm] += 1
            labels_now[moved, um] = tm
            q[moved] += delta[moved, tm]
            better = moved[q[moved] > best_q[moved] + 1e-15]
            best_q[better] = q[better]
            best[better] = labels_now[better]
        scores[:, step] = q
        temperatures[:, step] = temperature
    for row, c in enumerate(chains):
        size = len(prepared[c][0])
        found = _polished(prepared[c][0], best[row, :size].copy())
        results[c] = MonteCarloResult(found, q_value(prepared[c][0], found), scores[row], temperatures[row])
    return results


def _polished(a: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Greedy zero-temperature moves (the best single-unit move while it raises Q), then ids 0..k-1.

    An addition to the anchor's procedure: it can only raise Q of the best partition the chain saw."""
    alive = labels >= 0
    if alive.sum() < 2:
        return labels
    units = np.flatnonzero(alive)
    labels = labels.copy()
    labels[alive] = np.unique(labels[alive], return_inverse=True)[1]
    degree = a.sum(1)
    for _ in range(10 * len(units)):
        k = labels[alive].max() + 2  # existing clusters and one new
        one_hot = np.zeros((len(a), k))
        one_hot[units, labels[units]] = 1.0
        w = a @ one_hot  # (n, k)
        cd = degree @ one_hot  # (k,)
        own = labels[units]
        wu, ku = w[units], degree[units][:, None]
        delta = 2.0 * (wu - wu[np.arange(len(units)), own][:, None]) - 2.0 * ku * (
            cd[None, :] - cd[own][:, None] + ku
        )
        delta[np.arange(len(units)), own] = 0.0
        best = np.unravel_index(np.argmax(delta), delta.shape)
        if delta[best] <= 1e-12:
            break
        labels[units[best[0]]] = best[1]
        labels[alive] = np.unique(labels[alive], return_inverse=True)[1]
    return labels


@dataclass
class NewmanResult:
    labels: np.ndarray  # (n,) -1 dead
    q: float
    effective_clusters: float
    initial_q: float
    bisection: str


def maximise_q(
    adjacency: np.ndarray,
    steps: int = 5000,
    target_entropy: float = 0.15,
    seed: int = 0,
    bisection: str = "newman",
    restarts: int = 1,
) -> NewmanResult:
    """Spectral bisection then Monte Carlo refinement of Newman's Q on `adjacency` (n, n)."""
    return maximise_q_batch([adjacency], steps, target_entropy, [seed], bisection, restarts)[0]


def maximise_q_batch(
    adjacencies: list[np.ndarray],
    steps: int = 5000,
    target_entropy: float = 0.15,
    seeds: list[int] | None = None,
    bisection: str = "newman",
    restarts: int = 1,
) -> list[NewmanResult]:
    """`maximise_q` for many matrices, their Monte Carlo chains run together (same results as one by one).

    restarts > 1 runs that many chains per matrix from the same bisection (chain r of seed s draws from
    default_rng(s) for r = 0, else default_rng([s, r])) and keeps the highest Q; an addition to the
    anchor's single chain that makes the result less dependent on one chain's luck."""
    seeds = [0] * len(adjacencies) if seeds is None else list(seeds)
    if restarts < 1:
        raise InputError(f"restarts must be at least 1, got {restarts}")
    initials = [spectral_bisection(a, bisection) for a in adjacencies]
    initial_qs = [q_value(_prepared(a)[0], labels) for a, labels in zip(adjacencies, initials)]
    chain_seeds = [s if r == 0 else [s, r] for s in seeds for r in range(restarts)]
    refined = monte_carlo_batch(
        [a for a in adjacencies for _ in range(restarts)],
        [labels for labels in initials for _ in range(restarts)],
        steps,
        target_entropy,
        chain_seeds,
    )
    out = []
    for k, (initial, initial_q) in enumerate(zip(initials, initial_qs)):
        result = max(refined[k * restarts : (k + 1) * restarts], key=lambda found: found.q)
        labels, q = (result.labels, result.q) if result.q >= initial_q else (initial, initial_q)
        out.append(NewmanResult(labels, q, effective_clusters(labels), initial_q, bisection))
    return out
