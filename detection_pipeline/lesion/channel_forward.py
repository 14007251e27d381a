"""Lesioned copies of a channel network (conv layers) through its torch model (docs/networks.md).

A lesion zeroes a channel's (or an fc unit's) incoming kernel slices and bias. Our CNN then outputs exactly
0 for it: a silenced channel is multiplied by its bias mask after batch norm and ReLU, and max pooling of
zeros is zero. So a lesioned copy is the intact activation of the lesioned layer with the lesioned channels
set to 0, run through the layers above; all copies of a chunk run as one batch of copies x samples images,
layer by layer (models.cnn.CNN.step). Later lesions (double tests) zero channels of a higher layer per copy.
"""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import torch


class ChannelForward:
    """Same interface as forward.DenseForward, for a network with conv layers.

    network: a LayeredNetwork whose layout names its layer list and image shape (or a torch_model error
    says to give --cnn / --input_shape). x: (batch, C*H*W) test inputs.
    """

    chunk_floats = 2**22  # floats in one copies x samples activation map (16 MB)

    def __init__(self, network, x: np.ndarray):
        from models.from_network import torch_model

        self.model = torch_model(network)
        self.net = SimpleNamespace(arch=list(network.arch), lesion_value=0.0, depth=network.depth)
        self.batch = int(x.shape[0])
        with torch.no_grad():
            self.acts = self.model(torch.from_numpy(np.asarray(x, dtype=np.float32)))
        self.logits = self.acts[-1]
        self._numel = [int(a[0].numel()) for a in self.acts]  # values per sample at each layer

    def row_floats(self, layer: int) -> int:
        return self.batch * max(self._numel[layer:])

    def prepare(self, layer: int) -> None:
        """Nothing to share between chunks: the intact activations are computed once in __init__."""

    @staticmethod
    def _zero(h: torch.Tensor, copies: int, lesioned: torch.Tensor) -> torch.Tensor:
        """h (copies*batch, C, ...) with the channels lesioned[c] (bool (copies, C)) of copy c set to 0."""
        shape = h.shape
        keep = (~lesioned).to(h.dtype).view(copies, 1, shape[1], *([1] * (h.dim() - 2)))
        return (h.view(copies, -1, *shape[1:]) * keep).view(shape)

    @torch.no_grad()
    def lesioned(self, layer: int, idx: torch.Tensor, later: dict) -> torch.Tensor:
        """Logits (copies, batch, outputs) of copies lesioned at hidden `layer` by channel indices idx
        (copies, k), plus bool masks later[m] (copies, arch[m]) at hidden layers m > layer."""
        copies = idx.shape[0]
        base = self.acts[layer]
        width = base.shape[1]
        lesioned = torch.zeros(copies, width, dtype=torch.bool)
        lesioned.scatter_(1, idx, True)
        h = base.unsqueeze(0).expand(copies, *base.shape).reshape(copies * self.batch, *base.shape[1:])
        h = self._zero(h, copies, lesioned)
        for i in range(layer, self.net.depth):
            h = self.model.step(i, h)
            if i + 1 in later:
                h = self._zero(h, copies, later[i + 1])
        return h.view(copies, self.batch, -1)
