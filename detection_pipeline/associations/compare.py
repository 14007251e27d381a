"""Comparing two partitions of the same units (docs/associations.md): scikit-learn's adjusted Rand and NMI,
variation of information, the greedy alignment score with a permutation null, transfer Q and the Spearman
correlation of two association matrices.

Labels are int (n,) cluster ids; -1 (a unit one method dropped) removes that unit from both sides.
"""

from __future__ import annotations

import numpy as np

from detection_pipeline.associations.newman import q_value


def _compact(labels: np.ndarray) -> np.ndarray:
    return np.unique(labels, return_inverse=True)[1].reshape(-1)


def shared_units(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """bool (n,): units labelled (>= 0) in both partitions."""
    return (np.asarray(a) >= 0) & (np.asarray(b) >= 0)


def _greedy_matched(tables: np.ndarray) -> np.ndarray:
    """Greedy matching on contingency tables (S, k1, k2): repeatedly take the largest cell and strike its
    row and column; returns the matched totals (S,). Vectorised over the S tables."""
    tables = tables.astype(np.float64).copy()
    s, k1, k2 = tables.shape
    total = np.zeros(s)
    rows = np.arange(s)
    for _ in range(min(k1, k2)):
        flat = tables.reshape(s, -1).argmax(1)
        i, j = flat // k2, flat % k2
        total += np.maximum(tables[rows, i, j], 0.0)
        tables[rows, i, :] = -1.0
        tables[rows, :, j] = -1.0
    return total


def _tables(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Contingency tables (S, k1, k2) of label rows a (S, n) against b (n,)."""
    k1, k2 = int(a.max()) + 1, int(b.max()) + 1
    s = a.shape[0]
    cells = (np.arange(s)[:, None] * k1 + a) * k2 + b[None, :]
    return np.bincount(cells.ravel(), minlength=s * k1 * k2).reshape(s, k1, k2)


def alignment_score(a: np.ndarray, b: np.ndarray) -> float:
    """Fraction of units the greedy one-to-one cluster matching puts together (1 = same partition)."""
    a, b = _compact(a), _compact(b)
    return float(_greedy_matched(_tables(a[None], b))[0] / len(a))


def alignment_null(a: np.ndarray, b: np.ndarray, n_shuffle: int = 1000, seed: int = 0) -> np.ndarray:
    """Alignment scores (n_shuffle,) of `a` with its units permuted against `b` (all shuffles at once)."""
    from utils.limits import check_memory

    check_memory(3 * 8 * n_shuffle * len(a), f"--n_shuffle {n_shuffle} permutations of {len(a)} units",
                 "lower --n_shuffle")  # fmt: skip
    a, b = _compact(a), _compact(b)
    rng = np.random.default_rng(seed)
    shuffled = rng.permuted(np.tile(a, (n_shuffle, 1)), axis=1)
    return _greedy_matched(_tables(shuffled, b)) / len(a)


def variation_of_information(a: np.ndarray, b: np.ndarray) -> float:
    """VI = H(a) + H(b) - 2 I(a; b) in nats (0 = same partition)."""
    from sklearn.metrics import mutual_info_score

    def entropy(labels):
        p = np.bincount(_compact(labels)) / len(labels)
        return float(-(p * np.log(p)).sum())

    return max(entropy(a) + entropy(b) - 2.0 * float(mutual_info_score(a, b)), 0.0)


def compare_labels(a: np.ndarray, b: np.ndarray, n_shuffle: int = 1000, seed: int = 0) -> dict:
    """Scores of two partitions of one layer (units dropped by either are left out).

    p is the permutation p-value (1 + #{null >= score}) / (1 + n_shuffle); the anchor reports
    mean(null > score), which is 0 more often and is not a valid p-value when scores tie."""
    from sklearn.metrics import adjusted_rand_score, normalized_mutual_info_score

    keep = shared_units(a, b)
    a, b = np.asarray(a)[keep], np.asarray(b)[keep]
    if len(a) < 2:
        return {"n_units": int(len(a))}
    score = alignment_score(a, b)
    null = alignment_null(a, b, n_shuffle, seed)
    return {
        "n_units": int(len(a)),
        "ari": float(adjusted_rand_score(a, b)),
        "nmi": float(normalized_mutual_info_score(a, b)),
        "vi": variation_of_information(a, b),
        "alignment": score,
        "alignment_null_mean": float(null.mean()),
        "alignment_p": float((1 + np.count_nonzero(null >= score - 1e-12)) / (1 + n_shuffle)),
    }


def without_diagonal(matrix: np.ndarray) -> np.ndarray:
    out = np.array(matrix, dtype=np.float64)
    np.fill_diagonal(out, 0.0)
    return out


def transfer_q(adjacency_a: np.ndarray, labels_a: np.ndarray, labels_b: np.ndarray) -> dict:
    """Q of association a under partition b, and that divided by (Q of a under its own partition + 1e-3)
    (the anchor's normalisation)."""
    adjacency = without_diagonal(adjacency_a)
    own = q_value(adjacency, labels_a)
    moved = q_value(adjacency, labels_b)
    return {"transfer_q": moved, "transfer_q_norm": moved / (own + 1e-3)}


def spearman_upper(matrix_a: np.ndarray, matrix_b: np.ndarray, keep: np.ndarray | None = None) -> dict:
    """Spearman r and p between the upper triangles (off the diagonal) of two (n, n) matrices."""
    from scipy.stats import spearmanr

    a, b = np.asarray(matrix_a), np.asarray(matrix_b)
    if keep is not None:
        a, b = a[np.ix_(keep, keep)], b[np.ix_(keep, keep)]
    upper = np.triu_indices(len(a), 1)
    result = spearmanr(a[upper], b[upper])
    return {"spearman_r": float(result.statistic), "spearman_p": float(result.pvalue)}


def compare_many(entries: list[dict], n_shuffle: int = 1000, seed: int = 0) -> dict:
    """Every pair of partitions, layer by layer.

    entries[i]: {"name": str, "labels": [(arch[l],) int per layer], "matrices": {layer: (arch[l], arch[l])}}
    (matrices only for association methods). Returns {"names": [...], "layers": {str(l): {"a|b": scores}}}
    for layers where at least two units are labelled in some pair; scores hold compare_labels' fields,
    transfer Q both ways where a side has a matrix, and the Spearman r when both have one."""
    names = [entry["name"] for entry in entries]
    layers: dict[str, dict] = {}
    n_layers = len(entries[0]["labels"])
    for layer in range(n_layers):
        pairs = {}
        for i in range(len(entries)):
            for j in range(i + 1, len(entries)):
                a, b = entries[i], entries[j]
                la, lb = np.asarray(a["labels"][layer]), np.asarray(b["labels"][layer])
                keep = shared_units(la, lb)
                if keep.sum() < 2:
                    continue
                scores = compare_labels(la, lb, n_shuffle, seed)
                ma, mb = a.get("matrices", {}).get(layer), b.get("matrices", {}).get(layer)
                masked_a, masked_b = np.where(keep, la, -1), np.where(keep, lb, -1)
                if ma is not None:
                    scores["transfer_q_ab"], scores["transfer_q_ab_norm"] = transfer_q(
                        ma, masked_a, masked_b
                    ).values()
                if mb is not None:
                    scores["transfer_q_ba"], scores["transfer_q_ba_norm"] = transfer_q(
                        mb, masked_b, masked_a
                    ).values()
                if ma is not None and mb is not None:
                    scores.update(spearman_upper(without_diagonal(ma), without_diagonal(mb), keep))
                pairs[f"{names[i]}|{names[j]}"] = scores
        if pairs:
            layers[str(layer)] = pairs
    return {"names": names, "layers": layers}


def agreement_matrix(comparison: dict, layer: str, score: str = "ari") -> np.ndarray:
    """(k, k) of `score` between the k partitions in one layer of `compare_many`'s result (1 on the
    diagonal, nan where a pair was not comparable)."""
    names = comparison["names"]
    out = np.full((len(names), len(names)), np.nan)
    np.fill_diagonal(out, 1.0)
    for key, scores in comparison["layers"].get(layer, {}).items():
        a, b = key.split("|")
        i, j = names.index(a), names.index(b)
        out[i, j] = out[j, i] = scores.get(score, np.nan)
    return out
