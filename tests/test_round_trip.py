"""export_graph -> file -> network keeps everything a method or a forward pass reads: activation, biases and
batch-norm statistics. References: the torch module built from the original network, and the spectral
partition of the original network."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from detection_pipeline.methods import find_modules
from detection_pipeline.spectral.cluster import SpectralOptions
from models.cnn import CNN
from models.from_network import network_of, torch_model
from models.mlp import MLP
from utils.graph_io import network_from_networkx, network_to_networkx, read_graph, write_graph

FORMATS = ["npz", "graphml", "edgelist"]


def _random_norm_statistics(model: torch.nn.Module, seed: int) -> None:
    """Batch-norm statistics far from the identity (as after training), so folding them matters."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, (torch.nn.BatchNorm1d, torch.nn.BatchNorm2d)):
                n = module.num_features
                module.weight.copy_(torch.rand(n, generator=g) * 3 + 0.1)
                module.bias.copy_(torch.randn(n, generator=g))
                module.running_mean.copy_(torch.randn(n, generator=g))
                module.running_var.copy_(torch.rand(n, generator=g) * 4 + 0.05)


def _bn_cnn() -> CNN:
    torch.manual_seed(0)
    model = CNN("conv:6:3 conv:8:3 conv:8:3 fc:12", (1, 8, 8), 4, batch_norm=True)
    _random_norm_statistics(model, 1)
    return model


@pytest.mark.parametrize("fmt", FORMATS)
def test_spectral_partition_of_a_cnn_with_batch_norm_survives_export(tmp_path, fmt):
    network = network_of(_bn_cnn())
    options = SpectralOptions(n_clusters=3, seed=0)
    expected = find_modules("spectral", network, None, options).labels
    back = read_graph(write_graph(network, tmp_path / f"g.{fmt}", fmt))
    for a, b in zip(network.folded_weights(), back.folded_weights()):
        np.testing.assert_allclose(np.abs(b), np.abs(a), rtol=1e-6, atol=1e-7)
    np.testing.assert_array_equal(find_modules("spectral", back, None, options).labels, expected)


@pytest.mark.parametrize("fmt", FORMATS + ["networkx"])
@pytest.mark.parametrize("activation", ["relu", "sigmoid", "linear"])
def test_an_mlp_with_batch_norm_computes_the_same_after_export(tmp_path, fmt, activation):
    torch.manual_seed(0)
    model = MLP([5, 7, 6, 3], activation=activation, batch_norm=True)
    _random_norm_statistics(model, 2)
    with torch.no_grad():
        for layer in model.layers:
            layer.bias.copy_(torch.randn(layer.bias.shape))
    model.eval()
    network = network_of(model)
    if fmt == "networkx":
        back = network_from_networkx(network_to_networkx(network))
    else:
        back = read_graph(write_graph(network, tmp_path / f"g.{fmt}", fmt))
    assert back.activation == activation
    x = torch.randn(32, 5)
    with torch.no_grad():
        expected = model.logits(x)
        got = torch_model(back).logits(x)
    torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-5)


def test_a_linear_network_stays_linear_in_torch():
    torch.manual_seed(0)
    model = MLP([3, 4, 2], activation="linear")
    network = network_of(model)
    x = torch.randn(8, 3)
    w0, b0 = model.layers[0].weight.detach(), model.layers[0].bias.detach()
    w1, b1 = model.layers[1].weight.detach(), model.layers[1].bias.detach()
    with torch.no_grad():
        got = torch_model(network).logits(x)
    torch.testing.assert_close(got, (x @ w0.T + b0) @ w1.T + b1)


def test_a_pruned_unit_stays_silent_through_batch_norm_after_export(tmp_path):
    torch.manual_seed(0)
    model = MLP([5, 7, 3], batch_norm=True)
    _random_norm_statistics(model, 3)
    with torch.no_grad():  # prune unit 2 of the hidden layer: its bias and incoming weights
        model.layers[0].bias_mask[2] = 0
        model.layers[0].weight_mask[2] = 0
    model.eval()
    back = read_graph(write_graph(network_of(model), tmp_path / "g.npz", "npz"))
    x = torch.randn(16, 5)
    with torch.no_grad():
        hidden = torch_model(back)(x)[1]
        assert float(hidden[:, 2].abs().max()) == 0.0
        torch.testing.assert_close(torch_model(back).logits(x), model.logits(x), rtol=1e-5, atol=1e-5)
