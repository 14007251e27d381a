"""Pruning while training (Zhu & Gupta 2017, "To prune, or not to prune"), the anchor's CNN recipe.

Sparsity follows the cubic schedule s(t) = s_f + (s_i - s_f) (1 - (t - t0) / (t1 - t0))^3 from s_i = 0 at
step t0 to s_f = --target_sparsity (percent of weights removed) at the last training step t1, where the
ramp covers the last --prune_epochs epochs. Every --prune_every optimizer steps inside the ramp (and at its
last step, so the target is met exactly) the masks are recomputed: the smallest |w| (already masked
weights count as zero, so pruned weights stay pruned) are masked, over all weight layers together
(`global`) or layer by layer (`layer`, each layer to the same sparsity). Biases are never pruned.

`GradualPruner` is what `utils.training.train` calls after each optimizer step; `done` tells it when an
epoch ends at the target sparsity (only such epochs may be chosen as the best one).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from utils.errors import InputError

SCOPES = ("global", "layer")


def cubic_sparsity(step: int, start: int, end: int, final: float, initial: float = 0.0) -> float:
    """Zhu & Gupta's sparsity (percent) at optimizer step `step` for a ramp from `start` to `end`."""
    if step <= start:
        return initial if step == start or end > start else final
    if step >= end:
        return final
    t = (step - start) / (end - start)
    return final + (initial - final) * (1.0 - t) ** 3


def magnitude_masks(weights: list[torch.Tensor], masks: list[torch.Tensor], sparsity: float, scope: str):
    """0/1 masks (shapes of `weights`) removing the `sparsity` percent of smallest |w * mask| entries,
    over all layers (global) or per layer. Exactly round(sparsity% * count) entries are removed (ties
    broken by position); entries already masked are among them."""
    if scope not in SCOPES:
        raise InputError(f"unknown pruning scope {scope!r} (choose {', '.join(SCOPES)})")
    magnitudes = [(w * m).detach().abs() for w, m in zip(weights, masks)]
    groups = [list(range(len(weights)))] if scope == "global" else [[i] for i in range(len(weights))]
    out = [None] * len(weights)
    for group in groups:
        flat = torch.cat([magnitudes[i].flatten() for i in group])
        # Already-masked entries sort first whatever their weight, so a pruned weight stays pruned.
        already = torch.cat([(masks[i] == 0).flatten() for i in group])
        n_prune = int(round(sparsity / 100.0 * flat.numel()))
        n_prune = max(n_prune, int(already.sum()))
        keep = torch.ones_like(flat)
        if n_prune > 0:
            order = torch.argsort(torch.where(already, torch.full_like(flat, -1.0), flat), stable=True)
            keep[order[:n_prune]] = 0.0
        for i, part in zip(group, torch.split(keep, [magnitudes[i].numel() for i in group])):
            out[i] = part.view_as(weights[i]).to(masks[i].dtype)
    return out


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
        masks = [layer.weight_mask for layer in self.model.layers]
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
        layers = self.model.layers
        masks = magnitude_masks(
            [l.weight for l in layers], [l.weight_mask for l in layers], sparsity, self.scope
        )
        for layer, mask in zip(layers, masks):
            layer.weight_mask.copy_(mask)
            layer.weight.mul_(mask)  # pruned weights become zero, as TF's pruning wrapper does
        self.updates += 1
        self.current = sparsity


def gradual_pruner(model, config, steps_per_epoch: int, epochs: int) -> GradualPruner | None:
    """The pruner --gradual_pruning asks for, or None. The ramp covers the last --prune_epochs epochs."""
    if getattr(config, "gradual_pruning", "none") in (None, "none", "None"):
        return None
    if config.gradual_pruning != "cubic":
        raise InputError(f"unknown --gradual_pruning {config.gradual_pruning!r} (choose none, cubic)")
    prune_epochs = config.prune_epochs if config.prune_epochs is not None else epochs
    if not 0 < prune_epochs <= epochs:
        raise InputError(f"--prune_epochs must be in 1..--epochs ({epochs}), got {prune_epochs}")
    total = steps_per_epoch * epochs
    start = steps_per_epoch * (epochs - prune_epochs)
    return GradualPruner(
        model, float(config.target_sparsity), start, total, int(config.prune_every), config.prune_scope
    )
