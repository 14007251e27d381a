"""The association matrices' names and the small pieces both ways of computing them share (matrices.py
from our layers, module_matrices.py through a traced module's own forward)."""

from __future__ import annotations

import numpy as np

from utils.errors import InputError

BASE_ASSOCIATIONS = ("forward_cov", "forward_jac", "backward_jac", "backward_hess")
ASSOCIATIONS = BASE_ASSOCIATIONS + tuple(f"{name}_norm" for name in BASE_ASSOCIATIONS)
NEEDS_TARGETS = ("backward_hess", "backward_hess_norm")
UPSTREAM = ("forward_cov", "forward_jac", "forward_cov_norm", "forward_jac_norm")
NORM_FLOOR = 1e-12
CHUNK = 512  # samples per vmap call: bounds the (chunk, d, n_in) Jacobians in memory


def base_of(name: str) -> str:
    check_association(name)
    return name[: -len("_norm")] if name.endswith("_norm") else name


def check_association(name: str) -> None:
    if name not in ASSOCIATIONS:
        raise InputError(f"unknown association {name!r} (choose from {', '.join(ASSOCIATIONS)})")


def normalised(matrix: np.ndarray) -> np.ndarray:
    """|M| / (s s^T) with s = max(sqrt(|diag M|), 1e-12): (d, d) -> (d, d)."""
    scale = np.maximum(np.sqrt(np.abs(np.diag(matrix))), NORM_FLOOR)
    return np.abs(matrix) / np.outer(scale, scale)


def loss_fn(loss: str, output_groups: list[list[int]]):
    """Per-sample loss of logits (m,) against target (m,), as --loss defines it (utils.training)."""
    from utils.training import per_sample_loss

    def one(logits, target):
        return per_sample_loss(logits[None], target[None], loss, output_groups)[0]

    return one
