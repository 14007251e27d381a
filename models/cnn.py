"""Masked convolutional networks: a masked conv layer and one CNN class for any conv / pool / fc stack.

A layer list is a string like "conv:16:3 pool:2 conv:32:3 pool:2 fc:64" (docs/networks.md):
`conv:C:K` = C channels, K×K kernel, same padding (`conv:C:K:P` gives padding P instead), batch norm if
asked, ReLU; `pool:P` = P×P max pool (stride P) after the conv layer before it; `fc:N` = N ReLU units. The
output layer (a plain linear layer to the task's outputs) is added by the model, so the spec names hidden
layers only. Dropout, when asked, follows every hidden layer's activation (and pool).

Layer i of the model (self.layers[i]) is a MaskedConv2d or a MaskedLinear with `weight_mask` / `bias_mask`
buffers like models/mlp.py: the effective weight is weight × mask in every forward. `arch` counts units per
layer as the channel graph sees them: [input channels, channels or units of every hidden layer, outputs].
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from models.layer_masks import LayerListMasks
from models.mlp import MaskedLinear
from utils.cnn_spec import LayerSpec, layer_shapes, parse_cnn, spec_text
from utils.errors import InputError

__all__ = ["CNN", "MaskedConv2d", "LayerSpec", "build_cnn", "layer_shapes", "parse_cnn", "spec_text"]


class MaskedConv2d(nn.Conv2d):
    """nn.Conv2d whose weight (out, in, K, K) and bias (out,) are multiplied by 0/1 mask buffers."""

    def __init__(self, in_channels: int, out_channels: int, kernel: int, padding: int):
        super().__init__(in_channels, out_channels, kernel, padding=padding)
        self.register_buffer("weight_mask", torch.ones_like(self.weight))
        self.register_buffer("bias_mask", torch.ones(out_channels))
        nn.init.kaiming_normal_(self.weight, nonlinearity="relu")
        nn.init.zeros_(self.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self._conv_forward(x, self.weight * self.weight_mask, self.bias * self.bias_mask)


class CNN(LayerListMasks, nn.Module):
    """Masked CNN for a parsed layer list (see the module docstring).

    input_shape: (C, H, W); n_outputs: width of the output layer. batch_norm: True (every hidden layer),
    False, or one bool per hidden layer (networks read from other people's state_dicts). forward takes
    images (batch, C, H, W) or flat rows (batch, C*H*W), which it reshapes, so the training loop's flat
    task tensors work unchanged.
    """

    def __init__(
        self,
        layers: list[LayerSpec] | str,
        input_shape,
        n_outputs: int,
        batch_norm=False,
        dropout: float | None = None,
    ):
        super().__init__()
        self.specs = parse_cnn(layers) if isinstance(layers, str) else list(layers)
        self.input_shape = tuple(int(s) for s in input_shape)
        self.shapes = layer_shapes(self.specs, self.input_shape)
        self.activation_name = "relu"
        depth = len(self.specs)
        flags = [bool(batch_norm)] * depth if isinstance(batch_norm, bool) else [bool(b) for b in batch_norm]
        if len(flags) != depth:
            raise InputError(
                f"batch norm flags for {len(flags)} layers, but the CNN has {depth} hidden layers"
            )
        modules, norms = [], {}
        previous = self.input_shape
        for i, spec in enumerate(self.specs):
            if spec.kind == "conv":
                modules.append(MaskedConv2d(previous[0], spec.size, spec.kernel, spec.padding))
            else:
                modules.append(MaskedLinear(_numel(previous), spec.size))
            if flags[i]:
                norms[str(i)] = (
                    nn.BatchNorm2d(spec.size) if spec.kind == "conv" else nn.BatchNorm1d(spec.size)
                )
            previous = self.shapes[i]
        modules.append(MaskedLinear(_numel(previous), int(n_outputs)))
        self.layers = nn.ModuleList(modules)
        self.norms = nn.ModuleDict(norms) if norms else None
        self.dropout = nn.Dropout(dropout) if dropout else None
        self.arch = [self.input_shape[0], *(s.size for s in self.specs), int(n_outputs)]

    @property
    def spec(self) -> str:
        return spec_text(self.specs)

    def images(self, x: torch.Tensor) -> torch.Tensor:
        """(batch, C*H*W) or (batch, C, H, W) -> (batch, C, H, W); InputError for any other size."""
        c, h, w = self.input_shape
        if x.dim() == 2 and x.shape[1] == c * h * w:
            return x.view(x.shape[0], c, h, w)
        if x.dim() == 4 and tuple(x.shape[1:]) == self.input_shape:
            return x
        raise InputError(
            f"this CNN takes {c}x{h}x{w} images ({c * h * w} values each), got inputs of shape "
            f"{'x'.join(map(str, x.shape[1:]))}; check --input_shape and the task"
        )

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        """x -> [x as images (batch, C, H, W), layer 1, ..., logits (batch, n_outputs)].

        Conv entries are post-ReLU (and post-pool) maps (batch, C', H', W'); fc entries (batch, N); the
        last entry is the output pre-activation. A pruned channel or unit (bias mask 0) outputs exactly
        zero even when batch norm would shift it, so a lesion that zeroes a unit's mask silences it.
        """
        h = self.images(x)
        activations = [h]
        for i in range(len(self.layers)):
            h = self.step(i, h)
            activations.append(h)
        return activations

    def step(self, i: int, h: torch.Tensor) -> torch.Tensor:
        """Layer i+1's entry of forward() from layer i's: h (batch, C, H, W) or (batch, N)."""
        layer = self.layers[i]
        if isinstance(layer, MaskedLinear) and h.dim() > 2:
            h = h.flatten(1)  # channel-major (C, H, W) order, as torch's view does
        h = layer(h)
        if i == len(self.layers) - 1:
            return h
        if self.norms is not None and str(i) in self.norms:
            h = self.norms[str(i)](h)
        h = F.relu(h)
        mask = layer.bias_mask
        h = h * (mask.view(1, -1, 1, 1) if h.dim() == 4 else mask)
        pool = self.specs[i].pool if self.specs[i].kind == "conv" else 1
        if pool > 1:
            h = F.max_pool2d(h, pool)
        if self.dropout is not None:
            h = self.dropout(h)
        return h

    def logits(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward(x)[-1]

    def units_kept(self) -> list[int]:
        """Channels / units alive per layer (bias mask 1); inputs and outputs always count."""
        return [self.arch[0], *(int(layer.bias_mask.sum()) for layer in self.layers[:-1]), self.arch[-1]]


def _numel(shape) -> int:
    n = 1
    for s in shape:
        n *= int(s)
    return n


def build_cnn(
    spec: str, input_shape, n_outputs: int, batch_norm: bool, dropout, device: torch.device | str = "cpu"
) -> CNN:
    """The CNN named by spec (--cnn), batch_norm (--bn) and dropout for images of `input_shape` and
    `n_outputs` outputs, on `device`."""
    model = CNN(spec, input_shape, n_outputs, batch_norm, dropout)
    return model.to(device)
