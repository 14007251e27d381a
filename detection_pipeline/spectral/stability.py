"""How stable is the spectral clustering? n-cut and partition agreement over clustering seeds, per K.

For each K, the graph is clustered with random_state = each seed; agreement is the adjusted Rand index
between every pair of seeds' partitions (1 = the same partition up to relabelling).
"""

from __future__ import annotations

from itertools import combinations

import numpy as np


def stability_row(adjacency, n_clusters: int, seeds: list[int]) -> dict:
    """One K: {n_clusters, seeds, ncuts (per seed), ncut_mean, ncut_std, ncut_min, ari_mean, ari_min,
    identical (fraction of seed pairs with the same partition), labels (per seed, (n,) lists)}."""
    from sklearn.metrics import adjusted_rand_score

    from detection_pipeline.spectral.cluster import ncut, spectral_labels

    labels = [spectral_labels(adjacency, n_clusters, seed) for seed in seeds]
    ncuts = np.array([ncut(adjacency, lab) for lab in labels])
    aris = (
        np.array([adjusted_rand_score(a, b) for a, b in combinations(labels, 2)]) if len(seeds) > 1 else None
    )
    return {
        "n_clusters": int(n_clusters),
        "seeds": [int(s) for s in seeds],
        "ncuts": ncuts.tolist(),
        "ncut_mean": float(ncuts.mean()),
        "ncut_std": float(ncuts.std()),
        "ncut_min": float(ncuts.min()),
        "ari_mean": None if aris is None else float(aris.mean()),
        "ari_min": None if aris is None else float(aris.min()),
        "identical": None if aris is None else float(np.mean(aris == 1.0)),
        "labels": [lab.tolist() for lab in labels],
    }


def sweep(adjacency, ks: list[int], seeds: list[int]) -> list[dict]:
    """stability_row for every K in `ks`."""
    return [stability_row(adjacency, k, seeds) for k in ks]
