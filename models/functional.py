"""A network's runnable module for functional analyses (lesions, associations, accuracy).

A traced network (models/trace.py) carries its module in layout["module"]. Our own networks (MLP, CNN, DAG)
are rebuilt as our torch models (models/from_network.py) and traced the same way, so every functional
method can run a network through one interface; the trace must give back the same layers, or it is refused.
"""

from __future__ import annotations

import numpy as np
import torch

from utils.errors import InputError


class _Logits(torch.nn.Module):
    """Our models return every layer's activations; the trace follows the logits."""

    def __init__(self, model: torch.nn.Module):
        super().__init__()
        self.model = model

    def forward(self, x):
        return self.model(x)[-1]


def with_module(network):
    """`network` with layout["module"] set (a TracedModel computing it); returned as is when it has one."""
    if network.layout.get("module") is not None:
        return network
    from models.from_network import torch_model
    from models.trace import trace_module

    shape = network.layout.get("input_shape") if network.has_conv else [network.arch[0]]
    model = torch_model(network)  # raises when a CNN lacks its layer list / image shape
    example = torch.randn(2, *[int(s) for s in shape], generator=torch.Generator().manual_seed(0))
    traced = trace_module(_Logits(model), example, source=network.source or "network")
    if list(traced.network.arch) != list(network.arch):
        raise InputError(
            f"{network.source or 'the network'}: its torch model traces to layers "
            f"{traced.network.arch}, not {network.arch}; it cannot be run for this analysis"
        )
    network.layout["module"] = traced
    network.layout.setdefault("input_shape", [int(s) for s in np.atleast_1d(shape)])
    return network
