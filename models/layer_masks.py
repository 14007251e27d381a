"""Masks of a model whose masked layers form one list (`self.layers`): the CNN and the cell network.

Each layer i is a MaskedConv2d or MaskedLinear with `weight_mask` / `bias_mask` buffers; the training and
pruning code sees the list as consecutive blocks (i, i + 1, layer).
"""

from __future__ import annotations

import torch


class LayerListMasks:
    """Mixin: masked_layers(), masks(), set_masks() and density() over `self.layers`."""

    def masked_layers(self) -> list[tuple[int, int, torch.nn.Module]]:
        """Every masked module as (position, position + 1, module), in `layers` order: the module holds the
        weights of the Block from layer position to position + 1."""
        return [(i, i + 1, layer) for i, layer in enumerate(self.layers)]

    def masks(self) -> list[torch.Tensor]:
        """Weight masks per layer: (out, in, K, K) for conv layers, (out, in) for linear ones."""
        return [layer.weight_mask for layer in self.layers]

    def set_masks(self, weight_masks, bias_masks=None) -> None:
        with torch.no_grad():
            for i, layer in enumerate(self.layers):
                layer.weight_mask.copy_(weight_masks[i])
                if bias_masks is not None:
                    layer.bias_mask.copy_(bias_masks[i])

    def density(self) -> float:
        """Percent of weights kept over all layers (conv kernels counted entry by entry)."""
        masks = self.masks()
        return 100.0 * sum(float(m.sum()) for m in masks) / sum(m.numel() for m in masks)
