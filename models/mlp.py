"""Masked linear layers and one MLP class for every depth.

Masks are buffers, so they travel in the state_dict with the weights; the effective weight is
weight * weight_mask in every forward, so a masked edge neither contributes nor receives a useful gradient.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F


class MaskedLinear(nn.Linear):
    """nn.Linear whose weight (out, in) and bias (out,) are multiplied by 0/1 mask buffers."""

    def __init__(self, in_features: int, out_features: int):
        super().__init__(in_features, out_features)
        self.register_buffer("weight_mask", torch.ones(out_features, in_features))
        self.register_buffer("bias_mask", torch.ones(out_features))
        nn.init.kaiming_normal_(self.weight, nonlinearity="relu")
        nn.init.zeros_(self.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.linear(x, self.weight * self.weight_mask, self.bias * self.bias_mask)


class StraightThroughStep(torch.autograd.Function):
    """Heaviside step forward, identity (straight-through) gradient backward."""

    @staticmethod
    def forward(ctx, x):
        return (x > 0).to(x.dtype)

    @staticmethod
    def backward(ctx, grad):
        return grad


def hidden_activation(name: str):
    if name == "relu":
        return torch.relu
    if name == "sigmoid":
        return torch.sigmoid
    if name == "ste":
        return StraightThroughStep.apply
    if name == "linear":  # a network read from a graph or file may have linear hidden units
        return _identity
    raise ValueError(f"unknown hidden activation {name!r} (choose relu, sigmoid, ste, linear)")


def _identity(h: torch.Tensor) -> torch.Tensor:
    return h


class MLP(nn.Module):
    """Multi-layer perceptron of masked linear layers for any depth.

    arch = [n_inputs, hidden_1, ..., hidden_L, n_outputs]. Layer i (self.layers[i]) maps layer i to
    layer i+1 with a weight of shape (arch[i+1], arch[i]).
    """

    def __init__(
        self,
        arch: list[int],
        activation: str = "relu",
        batch_norm: bool = False,
        dropout: float | None = None,
    ):
        super().__init__()
        if len(arch) < 2:
            raise ValueError(f"arch needs at least input and output widths, got {arch}")
        self.arch = list(arch)
        self.activation_name = activation
        self._act = hidden_activation(activation)
        self.layers = nn.ModuleList(MaskedLinear(a, b) for a, b in zip(arch[:-1], arch[1:]))
        hidden = arch[1:-1]
        self.norms = nn.ModuleList(nn.BatchNorm1d(w) for w in hidden) if batch_norm else None
        self.dropout = nn.Dropout(dropout) if dropout else None

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        """x: (batch, arch[0]) -> [x, hidden_1, ..., hidden_L, logits], entry l of shape (batch, arch[l]).

        Hidden entries are post-activation values; the last entry is the output pre-activation (logits):
        apply `torch.sigmoid` for the sigmoid outputs (losses use the numerically stable logit forms).
        """
        activations = [x]
        for i in range(len(self.layers)):
            activations.append(self.step(i, activations[-1]))
        return activations

    def step(self, i: int, h: torch.Tensor) -> torch.Tensor:
        """Layer i -> layer i+1: h (..., arch[i]) -> (..., arch[i+1]) (post-activation for hidden layers)."""
        layer = self.layers[i]
        h = layer(h)
        if i < len(self.layers) - 1:
            if self.norms is not None:
                h = self.norms[i](h)
            h = self._act(h)
            # A pruned unit must output exactly zero even when batch norm would shift it.
            if self.norms is not None:
                h = h * layer.bias_mask
            if self.dropout is not None:
                h = self.dropout(h)
        return h

    def tail(self, h: torch.Tensor, start: int) -> torch.Tensor:
        """Logits from the activations of layer `start`: h (..., arch[start]) -> (..., arch[-1])."""
        for i in range(start, len(self.layers)):
            h = self.step(i, h)
        return h

    def logits(self, x: torch.Tensor) -> torch.Tensor:
        """x: (batch, arch[0]) -> output pre-activations (batch, arch[-1])."""
        return self.forward(x)[-1]

    # -- the prunable-model interface (utils/pruning.py uses only these, so any layered model can be pruned)
    def masked_layers(self) -> list[tuple[int, int, nn.Module]]:
        """Every masked weight block as (source layer, target layer, module with weight / weight_mask);
        the consecutive layers first, in order. A unit of layer t >= 1 is alive while
        `self.layers[t - 1].bias_mask` is 1 there."""
        return [(i, i + 1, layer) for i, layer in enumerate(self.layers)]

    def masks(self) -> list[torch.Tensor]:
        """Weight masks of `masked_layers()`; for an MLP masks[i] is (arch[i+1], arch[i])."""
        return [module.weight_mask for _, _, module in self.masked_layers()]

    def set_masks(
        self, weight_masks: list[torch.Tensor], bias_masks: list[torch.Tensor] | None = None
    ) -> None:
        """Copy 0/1 masks in place: weight masks one per entry of `masked_layers()`, bias masks (arch[i+1],)
        one per layer of `self.layers` (default: unchanged)."""
        with torch.no_grad():
            for (_, _, module), mask in zip(self.masked_layers(), weight_masks, strict=True):
                module.weight_mask.copy_(mask)
            if bias_masks is not None:
                for layer, mask in zip(self.layers, bias_masks, strict=True):
                    layer.bias_mask.copy_(mask)

    def density(self) -> float:
        """Percent of weights kept (unmasked) over all layers."""
        masks = self.masks()
        kept = sum(float(m.sum()) for m in masks)
        total = sum(m.numel() for m in masks)
        return 100.0 * kept / total

    def units_kept(self) -> list[int]:
        """Units alive per layer: a hidden unit is alive while its bias mask is 1 (all inputs and outputs)."""
        kept = [self.arch[0]]
        for layer in self.layers[:-1]:
            kept.append(int(layer.bias_mask.sum()))
        kept.append(self.arch[-1])
        return kept
