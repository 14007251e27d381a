"""A masked network whose connections are exactly the edges of a layered DAG (skip connections included).

Layer 0 holds the inputs; a unit of layer t >= 1 sums its edges from every earlier layer plus its bias,
then applies the hidden activation (outputs stay logits, as in the MLP). Edges between consecutive layers
live in `layers[t-1]` (a MaskedLinear, bias included, so the state_dict keys match the MLP's), edges from
layer s to layer t > s + 1 in `skips["s_t"]` (weight and weight_mask only: a unit's bias lives once, in its
consecutive layer). Masks start as the graph's edges; pruning can only remove edges, never add one.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from models.mlp import MLP


class MaskedSkip(nn.Module):
    """Skip edges from a lower layer: weight (out, in) times a 0/1 weight_mask buffer, no bias."""

    def __init__(self, in_features: int, out_features: int):
        super().__init__()
        self.in_features, self.out_features = in_features, out_features
        self.weight = nn.Parameter(torch.zeros(out_features, in_features))
        self.register_buffer("weight_mask", torch.ones(out_features, in_features))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.linear(x, self.weight * self.weight_mask)


class DAGNetwork(MLP):
    """A layered DAG network. arch: layer widths; masks: {(s, t): 0/1 array (arch[t], arch[s])} for every
    pair of layers joined by at least one edge (consecutive pairs without edges get an all-zero mask).

    Weights start Kaiming-normal over each unit's real fan-in (its number of incoming edges, all blocks
    together), biases zero.
    """

    def __init__(
        self,
        arch: list[int],
        masks: dict[tuple[int, int], np.ndarray],
        activation: str = "relu",
        batch_norm: bool = False,
        dropout: float | None = None,
    ):
        super().__init__(arch, activation, batch_norm, dropout)
        self.skips = nn.ModuleDict()
        fan_in = [np.zeros(a) for a in arch]
        for (_, t), mask in masks.items():
            fan_in[t] = fan_in[t] + np.asarray(mask != 0).sum(axis=1)
        for s, t in sorted(masks):
            if t == s + 1:
                continue
            self.skips[f"{s}_{t}"] = MaskedSkip(arch[s], arch[t])
        with torch.no_grad():
            for s, t, module in self.masked_layers():
                mask = masks.get((s, t))
                mask = np.zeros((arch[t], arch[s])) if mask is None else np.asarray(mask != 0)
                module.weight_mask.copy_(torch.as_tensor(mask, dtype=torch.float32))
                std = torch.as_tensor(np.sqrt(2.0 / np.maximum(fan_in[t], 1)), dtype=torch.float32)
                module.weight.copy_(torch.randn(module.weight.shape) * std[:, None])

    def masked_layers(self) -> list[tuple[int, int, nn.Module]]:
        """Consecutive layers first (in order), then the skips sorted by (source, target)."""
        skips = sorted(
            ((int(k.split("_")[0]), int(k.split("_")[1]), m) for k, m in self.skips.items()),
            key=lambda b: (b[0], b[1]),
        )
        return [*super().masked_layers(), *skips]

    def _skips_into(self) -> dict[int, list[tuple[int, nn.Module]]]:
        into: dict[int, list[tuple[int, nn.Module]]] = {}
        for s, t, module in self.masked_layers()[len(self.layers) :]:
            into.setdefault(t, []).append((s, module))
        return into

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        """x: (batch, arch[0]) -> [x, hidden_1, ..., logits] (post-activation hidden units, output logits)."""
        activations = [x]
        last = len(self.layers) - 1
        into = self._skips_into()
        for i, layer in enumerate(self.layers):
            z = layer(activations[i])
            for s, module in into.get(i + 1, ()):
                z = z + module(activations[s])
            if i < last:
                if self.norms is not None:
                    z = self.norms[i](z)
                z = self._act(z)
                if self.norms is not None:
                    z = z * layer.bias_mask
                if self.dropout is not None:
                    z = self.dropout(z)
            activations.append(z)
        return activations

    @classmethod
    def from_structure(cls, network, activation: str = "relu", batch_norm: bool = False, dropout=None):
        """A fresh (randomly initialised) network on the edges of a LayeredNetwork read from a graph."""
        masks = {
            (b.source, b.target): b.mask for b in network.blocks() if b.mask.any() or b.target == b.source + 1
        }
        return cls(network.arch, masks, activation, batch_norm, dropout)

    @classmethod
    def from_network(cls, network) -> DAGNetwork:
        """A network with the LayeredNetwork's weights, biases and masks (eval use: lesions, associations)."""
        model = cls.from_structure(network, network.activation)
        with torch.no_grad():
            for (_, _, module), block in zip(model.masked_layers(), _ordered_blocks(network), strict=True):
                module.weight.copy_(torch.as_tensor(block.weight * block.mask, dtype=torch.float32))
                module.weight_mask.copy_(torch.as_tensor(block.mask, dtype=torch.float32))
            for layer, bias in zip(model.layers, network.biases, strict=True):
                layer.bias.copy_(torch.as_tensor(bias, dtype=torch.float32))
        return model


def _ordered_blocks(network):
    consecutive = network.blocks()[: network.depth]
    skips = sorted((b for b in network.skips if b.mask.any()), key=lambda b: (b.source, b.target))
    return consecutive + skips
