"""Masks recomputed from saliency |w| (deepstruct's "recompute mask from saliency", global or per layer).

    saliency_masks(weights, masks=None, threshold=T)                 keep edges with |w| > T
    saliency_masks(weights, masks=None, prune_percent=P, scope=...)  prune the P% smallest |w| (ties at
                                                                      the cut pruned), counting masked
                                                                      weights as zero
    saliency_masks(weights, masks=None, keep_percent=K, scope=...)   the same with P = 100 - K

weights / masks: lists of tensors or arrays of any shapes (one per layer); scope "global" cuts all layers at
one percentile, "layer" each at its own. Returns float 0/1 tensors of the weights' shapes, already combined
with `masks` (a masked edge never comes back). The edge-pruning search uses it with one global cut.
"""

from __future__ import annotations

import math

import numpy as np
import torch


def percentile_cut(values: torch.Tensor, percent: float) -> torch.Tensor:
    """Bool mask of entries at or below the `percent` percentile (linear interpolation) of `values`."""
    cut = linear_percentile(values, min(max(percent, 0.0), 100.0))
    return values <= torch.as_tensor(cut, dtype=values.dtype, device=values.device)


def linear_percentile(values: torch.Tensor, percent: float) -> float:
    """np.percentile(values in float64, percent) (method "linear"), with numpy's own float64 steps: index
    (n - 1) * percent / 100 into the sorted values, then numpy's two-sided lerp. The same number as numpy
    (tests/test_pruning.py checks it on random and tied values) without numpy's per-call overhead, which
    the edge-pruning searches of a grid pay thousands of times. percent in [0, 100]; values non-empty."""
    flat = values.detach().flatten().double()
    n = flat.numel()
    virtual = (n - 1) * (percent / 100.0)
    if virtual >= n - 1:
        return float(flat.max())
    below = math.floor(virtual)
    a, b = (float(v) for v in torch.sort(flat).values[below : below + 2])
    gamma = virtual - below
    if gamma >= 0.5:
        return b - (b - a) * (1 - gamma)
    return a + (b - a) * gamma


def saliency_masks(
    weights,
    masks=None,
    *,
    threshold: float | None = None,
    prune_percent: float | None = None,
    keep_percent: float | None = None,
    scope: str = "global",
) -> list[torch.Tensor]:
    given = sum(v is not None for v in (threshold, prune_percent, keep_percent))
    if given != 1:
        raise ValueError("give exactly one of threshold, prune_percent, keep_percent")
    if scope not in ("global", "layer"):
        raise ValueError(f"unknown scope {scope!r} (choose global or layer)")
    weights = [torch.as_tensor(w) for w in weights]
    masks = [torch.ones_like(w) for w in weights] if masks is None else [torch.as_tensor(m) for m in masks]
    if len(masks) != len(weights) or any(m.shape != w.shape for m, w in zip(masks, weights)):
        raise ValueError("masks must match the weights one for one, shape for shape")
    magnitudes = [(w * m).detach().abs() for w, m in zip(weights, masks)]
    if threshold is not None:
        if not np.isfinite(threshold) or threshold < 0:
            raise ValueError(f"threshold must be a finite number >= 0, got {threshold}")
        prune = [mag <= threshold for mag in magnitudes]
    else:
        percent = prune_percent if prune_percent is not None else 100.0 - keep_percent
        if not 0.0 <= percent <= 100.0:
            raise ValueError(f"percentages must lie in [0, 100], got {percent}")
        if scope == "layer":
            prune = [percentile_cut(mag, percent) for mag in magnitudes]
        else:
            sizes = [mag.numel() for mag in magnitudes]
            flat = percentile_cut(torch.cat([mag.flatten() for mag in magnitudes]), percent)
            prune = [p.view_as(mag) for p, mag in zip(torch.split(flat, sizes), magnitudes)]
    return [m * (~p).to(m.dtype) for m, p in zip(masks, prune)]
