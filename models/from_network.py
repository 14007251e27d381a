"""Between live torch models and the one network type: `network_of(model)` gives a model's
`LayeredNetwork`; `torch_model(network)` is the reverse.

`torch_model(network)` gives our MLP (or the DAG network when the network has skip connections) with the
network's weights, biases, masks and batch norm statistics, in eval mode; forward returns the activations of
every layer ([x, hidden_1, ..., logits]).
"""

from __future__ import annotations

import numpy as np
import torch

from utils.errors import InputError


def network_of(model, source: str = "model"):
    """The LayeredNetwork of a live model of models/ (weights copied to numpy, on CPU): an MLP or DAG
    network (its activation kept), or a CNN as its channel graph (its layer list and input shape kept in
    the layout for a forward pass)."""
    from models.cnn import CNN
    from models.mlp import MLP
    from utils.cnn_graph import network_from_cnn_state
    from utils.network_files import network_from_state_dict

    if isinstance(model, CNN):
        return network_from_cnn_state(model.state_dict(), model.spec, model.input_shape, source)
    if isinstance(model, MLP):
        return network_from_state_dict(model.state_dict(), source, activation=model.activation_name)
    raise InputError(f"{type(model).__name__} is not a model of models/ (MLP, DAGNetwork, CNN)")


def torch_model(network, device: torch.device | str = "cpu", cnn: str | None = None, input_shape=None):
    """The torch module that computes `network` (eval mode, on `device`).

    Channel networks (conv layers) need their layer list and input shape: `cnn` / `input_shape`, else the
    ones kept in network.layout (a checkpoint of ours has them in its config.json).
    """
    if network.has_conv:
        return cnn_model(network, device, cnn, input_shape)
    if network.skips:
        from models.dag import DAGNetwork

        model = DAGNetwork.from_network(network)
    else:
        from models.mlp import MLP

        batch_norm = any(n is not None for n in network.norms[:-1])
        activation = network.activation
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


def cnn_model(network, device: torch.device | str = "cpu", cnn: str | None = None, input_shape=None):
    """Our CNN (models/cnn.py) computing the channel network `network` (eval mode).

    A channel edge o <- c masked or zeroed in the graph (masks[i] 0 or weights[i] 0, e.g. by a lesion)
    zeroes the whole kernel slice; a unit with no kept incoming edge and zero bias is silenced (bias mask 0)
    so that batch norm cannot revive it: a lesion that zeroes a channel's incoming weights and bias
    silences that channel.
    """
    from models.cnn import CNN
    from utils.cnn_graph import check_layout_fits
    from utils.cnn_spec import parse_cnn

    cnn = cnn or network.layout.get("cnn")
    input_shape = input_shape or network.layout.get("input_shape")
    if not cnn or input_shape is None:
        raise InputError(
            "this network has conv layers; a forward pass needs its layer list and image shape: give --cnn "
            '"conv:C:K pool:P ... fc:N" and --input_shape C H W'
        )
    specs = parse_cnn(cnn)
    check_layout_fits(network, specs, input_shape)
    flags = [norm is not None for norm in network.norms[:-1]]
    model = CNN(specs, input_shape, network.arch[-1], batch_norm=flags)
    state = {}
    alive = network.layout.get("unit_alive")
    for i in range(network.depth):
        keep = (network.masks[i] != 0) & (network.weights[i] != 0)
        kernel = network.kernels[i]
        if kernel is None:
            weight = network.weights[i] * keep
        elif kernel.ndim == 4:
            weight = kernel * keep[:, :, None, None]
        else:  # conv -> fc boundary: (out, C*H*W), each channel feeds a run of H*W inputs
            positions = kernel.shape[1] // network.arch[i]
            weight = kernel * np.repeat(keep, positions, axis=1)
        weight = np.ascontiguousarray(weight, dtype=np.float32)
        bias = network.biases[i].astype(np.float32)
        unit_on = np.ones(network.arch[i + 1], dtype=np.float32)
        if i < network.depth - 1:
            dead = ~keep.any(axis=1) & (bias == 0)
            if alive is not None:
                dead |= ~np.asarray(alive[i], dtype=bool)
            unit_on[dead] = 0.0
        state[f"layers.{i}.weight"] = torch.from_numpy(weight)
        state[f"layers.{i}.weight_mask"] = torch.from_numpy((weight != 0).astype(np.float32))
        state[f"layers.{i}.bias"] = torch.from_numpy(bias)
        state[f"layers.{i}.bias_mask"] = torch.from_numpy(unit_on)
        norm = network.norms[i]
        if norm is not None and i < network.depth - 1:
            prefix = f"norms.{i}."
            for key, name in (
                ("weight", "gamma"),
                ("bias", "beta"),
                ("running_mean", "mean"),
                ("running_var", "var"),
            ):
                state[prefix + key] = torch.as_tensor(np.asarray(norm[name]), dtype=torch.float32)
            state[prefix + "num_batches_tracked"] = torch.tensor(0)
    model.load_state_dict(state)
    return model.to(device).eval()
