"""Pruning while training (Zhu & Gupta 2017, "To prune, or not to prune"), the anchor's CNN recipe.

Sparsity follows the cubic schedule s(t) = s_f + (s_i - s_f) (1 - (t - t0) / (t1 - t0))^3 from s_i = 0 at
step t0 to s_f = --target_sparsity (percent of weights removed) at the last training step t1, where the
ramp covers the last --prune_epochs epochs. Every --prune_every optimizer steps inside the ramp (and at its
last step, so the target is met exactly) the masks are recomputed: the smallest |w| (already masked
weights count as zero, so pruned weights stay pruned) are masked, over all weight layers together
(`global`) or layer by layer (`layer`, each layer to the same sparsity), by utils.saliency.saliency_masks
(a percentile cut: ties at the cut go together). Biases are never pruned.

`GradualPruner` is what `utils.training.train` calls after each optimizer step; `done` tells it when an
epoch ends at the target sparsity (only such epochs may be chosen as the best one).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from utils.errors import InputError
from utils.masked_model import MaskedModel

SCOPES = ("global", "layer")


def cubic_sparsity(step: int, start: int, end: int, final: float, initial: float = 0.0) -> float:
    """Zhu & Gupta's sparsity (percent) at optimizer step `step` for a ramp from `start` to `end`."""
    if step <= start:
        return initial if step == start or end > start else final
    if step >= end:
        return final
    t = (step - start) / (end - start)
    return final + (initial - final) * (1.0 - t) ** 3


@dataclass(frozen=True)
class GradualPruningOptions:
    """--gradual_pruning (none | cubic), --target_sparsity (percent of weights removed), --prune_epochs
    (ramp over the last E epochs; None: all), --prune_every (steps between mask updates), --prune_scope."""

    schedule: str
    target_sparsity: float
    prune_epochs: int | None
    prune_every: int
    scope: str


@dataclass
class GradualPruner:
    """Cubic pruning of `model` (its `.layers` carry weight_mask buffers) during one training run.

    start / end: the optimizer steps where the ramp begins and ends; every: steps between mask updates.
    """

    model: object
    target: float
    start: int
    end: int
    every: int
    scope: str = "global"
    updates: int = 0
    current: float = 0.0  # the schedule's sparsity at the last mask update

    @property
    def done(self) -> bool:
        """True once the masks are at the target sparsity (after the ramp's last update)."""
        return self.current >= self.target

    def sparsity(self) -> float:
        """Percent of weights currently masked, over all layers."""
        masks = [block.weight_mask for _, _, block in self.model.masked_layers()]
        return 100.0 * sum(float((m == 0).sum()) for m in masks) / sum(m.numel() for m in masks)

    def after_step(self, step: int) -> None:
        """Called with the number of optimizer steps taken so far (1, 2, ...)."""
        if step < self.start or step > self.end:
            return
        if (step - self.start) % self.every and step != self.end:
            return
        self.apply(cubic_sparsity(step, self.start, self.end, self.target))

    @torch.no_grad()
    def apply(self, sparsity: float) -> None:
        from utils.saliency import saliency_masks

        layers = [block for _, _, block in self.model.masked_layers()]
        weights, current = [b.weight for b in layers], [b.weight_mask for b in layers]
        masks = saliency_masks(weights, current, prune_percent=sparsity, scope=self.scope)
        for layer, mask in zip(layers, masks):
            layer.weight_mask.copy_(mask)
            layer.weight.mul_(mask)  # pruned weights become zero, as TF's pruning wrapper does
        self.updates += 1
        self.current = sparsity


def gradual_pruner(model: MaskedModel, options: GradualPruningOptions, steps_per_epoch: int, epochs: int):
    """The pruner the options ask for, or None. The ramp covers the last `prune_epochs` epochs."""
    if options.schedule in (None, "none", "None"):
        return None
    if options.schedule != "cubic":
        raise InputError(f"unknown --gradual_pruning {options.schedule!r} (choose none, cubic)")
    if options.scope not in SCOPES:
        raise InputError(f"unknown pruning scope {options.scope!r} (choose {', '.join(SCOPES)})")
    prune_epochs = options.prune_epochs if options.prune_epochs is not None else epochs
    if not 0 < prune_epochs <= epochs:
        raise InputError(f"--prune_epochs must be in 1..--epochs ({epochs}), got {prune_epochs}")
    total = steps_per_epoch * epochs
    start = steps_per_epoch * (epochs - prune_epochs)
    return GradualPruner(
        model, float(options.target_sparsity), start, total, int(options.prune_every), options.scope
    )
