"""Lesioned copies of a traced torch module, run through the module's own forward (models/trace.py).

A lesioned unit's output (its feature or channel after any folded batch norm) is zeroed inside the exported
graph, so residual additions, pooling, batch norm and eval-mode dropout are whatever the module computes.
Same interface as forward.DenseForward (net, logits, row_floats, prepare, lesioned).
"""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import torch


class ModuleForward:
    """network: a LayeredNetwork traced from a module (layout["module"] is its TracedModel);
    x: (batch, prod(input_shape)) or (batch, *input_shape) inputs."""

    chunk_floats = 2**22

    def __init__(self, network, x: np.ndarray):
        self.traced = network.layout["module"]
        self.net = SimpleNamespace(arch=list(network.arch), lesion_value=0.0, depth=network.depth)
        shape = tuple(self.traced.input_shape)
        self.x = torch.from_numpy(np.asarray(x, dtype=np.float32)).reshape(len(x), *shape)
        self.batch = int(self.x.shape[0])
        self.logits = self.traced.logits(self.x)
        per_sample = int(np.prod(shape))
        self._floats = max(per_sample, max(network.arch)) * 16  # a rough size of one sample's activations

    def row_floats(self, layer: int) -> int:
        return self.batch * self._floats

    def prepare(self, layer: int) -> None:
        """Nothing shared: every copy runs the whole module."""

    @torch.no_grad()
    def lesioned(self, layer: int, idx: torch.Tensor, later: dict) -> torch.Tensor:
        """Logits (copies, batch, outputs) with units idx (copies, k) of hidden `layer` zeroed, plus bool
        masks later[m] (copies, arch[m]) at hidden layers m > layer."""
        copies = idx.shape[0]
        zero = torch.zeros(copies, self.net.arch[layer], dtype=torch.bool)
        zero.scatter_(1, idx, True)
        masks = {layer: zero, **later}
        return self.traced.lesioned(self.x, masks)
