"""The four weight shuffles of the clusterability test (docs/spectral.md), applied to each edge block alone.

Every function takes one float32 weight matrix (zeros where no edge is kept) and a numpy Generator and
returns a new matrix of the same shape:
- `layer`: permute all entries, zeros included (the anchor 000 calls it `all`);
- `layer_nonzero`: permute the nonzero values among the nonzero positions (the mask is kept; `nonzero`);
- `layer_nonzero_distribution`: keep the mask, draw the nonzero values from a Gaussian KDE of the layer's
  nonzero values with bandwidth 0.01 (a KDE sample: a random data point plus N(0, 0.01²) noise);
- `layer_all_distribution`: `layer`, then `layer_nonzero_distribution`.
"""

from __future__ import annotations

import numpy as np

from utils.errors import InputError

KDE_BANDWIDTH = 0.01


def shuffle_layer(weight: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    return rng.permutation(weight.ravel()).reshape(weight.shape)


def shuffle_layer_nonzero(weight: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    flat = weight.ravel()
    nonzero = np.flatnonzero(flat)
    out = np.zeros_like(flat)
    out[nonzero] = flat[nonzero[rng.permutation(nonzero.size)]]
    return out.reshape(weight.shape)


def shuffle_layer_nonzero_distribution(weight: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    flat = weight.ravel()
    nonzero = np.flatnonzero(flat)
    out = np.zeros_like(flat)
    if nonzero.size:
        values = flat[nonzero].astype(np.float64)
        picks = values[rng.integers(0, nonzero.size, size=nonzero.size)]
        out[nonzero] = (picks + rng.normal(0.0, KDE_BANDWIDTH, size=nonzero.size)).astype(flat.dtype)
    return out.reshape(weight.shape)


def shuffle_layer_all_distribution(weight: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    return shuffle_layer_nonzero_distribution(shuffle_layer(weight, rng), rng)


SHUFFLES = {
    "layer": shuffle_layer,
    "layer_nonzero": shuffle_layer_nonzero,
    "layer_nonzero_distribution": shuffle_layer_nonzero_distribution,
    "layer_all_distribution": shuffle_layer_all_distribution,
}
# Fixed order: a method's position is part of each shuffle's seed, so it must never change.
SHUFFLE_METHODS = tuple(SHUFFLES)


def check_method(method: str) -> None:
    if method not in SHUFFLES:
        raise InputError(f"unknown shuffle method {method!r} (choose from {', '.join(SHUFFLE_METHODS)})")


def shuffle_weights(weights: list[np.ndarray], method: str, rng: np.random.Generator) -> list[np.ndarray]:
    """Each matrix of `weights` shuffled by `method`, in order, from one Generator."""
    check_method(method)
    return [SHUFFLES[method](w, rng) for w in weights]
