"""A live torch model from a `LayeredNetwork` (the reverse of `LayeredNetwork.from_model`).

`torch_model(network)` gives our MLP (or the DAG network when the network has skip connections) with the
network's weights, biases, masks and batch norm statistics, in eval mode; forward returns the activations of
every layer ([x, hidden_1, ..., logits]).
"""

from __future__ import annotations

import numpy as np
import torch

from utils.errors import InputError


def torch_model(network, device: torch.device | str = "cpu"):
    """The torch module that computes `network` (eval mode, on `device`)."""
    if any(kind != "fc" for kind in network.kinds):
        raise InputError("this network has conv layers; build it with its CNN layer list (--cnn)")
    if network.skips:
        from models.dag import DAGNetwork

        model = DAGNetwork.from_network(network)
    else:
        from models.mlp import MLP

        batch_norm = any(n is not None for n in network.norms[:-1])
        activation = network.activation if network.activation != "linear" else "relu"
        model = MLP(network.arch, activation, batch_norm=batch_norm)
        state = {}
        for i in range(network.depth):
            mask = network.masks[i].astype(np.float32)
            state[f"layers.{i}.weight"] = torch.from_numpy(network.weights[i] * mask)
            state[f"layers.{i}.weight_mask"] = torch.from_numpy(mask)
            state[f"layers.{i}.bias"] = torch.from_numpy(network.biases[i].copy())
            state[f"layers.{i}.bias_mask"] = torch.ones(network.arch[i + 1])
            norm = network.norms[i]
            if batch_norm and i < network.depth - 1:
                if norm is None:
                    raise InputError(f"layer {i} has no batch norm statistics while others do")
                state[f"norms.{i}.weight"] = torch.as_tensor(norm["gamma"], dtype=torch.float32)
                state[f"norms.{i}.bias"] = torch.as_tensor(norm["beta"], dtype=torch.float32)
                state[f"norms.{i}.running_mean"] = torch.as_tensor(norm["mean"], dtype=torch.float32)
                state[f"norms.{i}.running_var"] = torch.as_tensor(norm["var"], dtype=torch.float32)
                state[f"norms.{i}.num_batches_tracked"] = torch.tensor(0)
        model.load_state_dict(state)
    return model.to(device).eval()
