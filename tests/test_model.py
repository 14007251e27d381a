"""The masked MLP: masks in the state_dict, activations per layer, masking, init, activations, batch norm."""

from __future__ import annotations

import math

import pytest
import torch

from models.mlp import MLP, MaskedLinear
from run.common import build_model
from run.parser import parse_config


def test_masks_are_buffers_in_the_state_dict():
    model = MLP([4, 6, 5, 3])
    state = model.state_dict()
    for i in range(3):
        assert f"layers.{i}.weight_mask" in state and f"layers.{i}.bias_mask" in state
    buffers = dict(model.named_buffers())
    assert "layers.0.weight_mask" in buffers
    assert "layers.0.weight_mask" not in dict(model.named_parameters())
    assert state["layers.1.weight_mask"].shape == (5, 6) and state["layers.1.bias_mask"].shape == (5,)


def test_masks_travel_with_load_state_dict():
    torch.manual_seed(0)
    model = MLP([4, 6, 3])
    mask = (torch.rand(6, 4) > 0.5).float()
    model.set_masks([mask, torch.ones(3, 6)], [torch.tensor([1.0, 0, 1, 1, 1, 1]), torch.ones(3)])
    fresh = MLP([4, 6, 3])
    fresh.load_state_dict(model.state_dict())
    assert torch.equal(fresh.layers[0].weight_mask, mask)
    assert fresh.layers[0].bias_mask.tolist() == [1, 0, 1, 1, 1, 1]
    x = torch.randn(7, 4)
    assert torch.equal(fresh.logits(x), model.logits(x))


def test_forward_returns_one_activation_per_layer():
    arch = [4, 24, 10, 3]
    model = MLP(arch)
    x = torch.randn(5, 4)
    acts = model(x)
    assert len(acts) == len(arch)
    assert [tuple(a.shape) for a in acts] == [(5, w) for w in arch]
    assert acts[0] is x
    assert (acts[1] >= 0).all() and (acts[2] >= 0).all()  # relu hidden units
    assert torch.equal(model.logits(x), acts[-1])
    # last entry is the pre-activation: it can be negative
    assert (acts[-1] < 0).any()


def test_forward_matches_a_hand_computation_with_masks():
    torch.manual_seed(1)
    model = MLP([3, 4, 2])
    m0 = torch.tensor([[1.0, 0, 1], [0, 1, 1], [1, 1, 1], [0, 0, 0]])
    model.set_masks([m0, torch.ones(2, 4)], [torch.tensor([1.0, 1, 1, 0]), torch.tensor([0.0, 1])])
    with torch.no_grad():
        for layer in model.layers:
            layer.bias.uniform_(-1, 1)
    x = torch.randn(6, 3)
    l0, l1 = model.layers
    h = torch.relu(x @ (l0.weight * m0).T + l0.bias * torch.tensor([1.0, 1, 1, 0]))
    out = h @ l1.weight.T + l1.bias * torch.tensor([0.0, 1])
    acts = model(x)
    assert torch.allclose(acts[1], h, atol=1e-6) and torch.allclose(acts[2], out, atol=1e-6)
    assert (acts[1][:, 3] == 0).all()


def test_masked_weights_have_no_effect_and_get_no_gradient():
    torch.manual_seed(2)
    model = MLP([4, 8, 3])
    masks = [torch.ones(8, 4), torch.ones(3, 8)]
    masks[0][2, 1] = 0
    masks[1][0, 5] = 0
    model.set_masks(masks)
    x = torch.randn(10, 4)
    before = model.logits(x).detach().clone()
    with torch.no_grad():
        model.layers[0].weight[2, 1] = 1000.0
        model.layers[1].weight[0, 5] = -1000.0
    assert torch.equal(model.logits(x), before)
    model.logits(x).sum().backward()
    assert model.layers[0].weight.grad[2, 1] == 0 and model.layers[1].weight.grad[0, 5] == 0
    assert model.layers[0].weight.grad.abs().sum() > 0
    with torch.no_grad():
        model.layers[0].weight[2, 0] += 1.0  # an unmasked weight does matter
    assert not torch.equal(model.logits(x), before)


def test_masked_bias_has_no_effect():
    model = MLP([2, 3, 2])
    model.set_masks(model.masks(), [torch.tensor([1.0, 0, 1]), torch.ones(2)])
    x = torch.randn(4, 2)
    before = model(x)[1].detach().clone()
    with torch.no_grad():
        model.layers[0].bias[1] = 50.0
    assert torch.equal(model(x)[1], before)


def test_kaiming_normal_init_and_zero_bias():
    torch.manual_seed(3)
    layer = MaskedLinear(1000, 400)
    std = float(layer.weight.detach().std())
    assert std == pytest.approx(math.sqrt(2 / 1000), rel=0.03)
    assert abs(float(layer.weight.detach().mean())) < 0.002
    assert torch.equal(layer.bias, torch.zeros(400))
    assert torch.equal(layer.weight_mask, torch.ones(400, 1000)) and torch.equal(
        layer.bias_mask, torch.ones(400)
    )
    model = MLP([500, 300, 2])
    assert float(model.layers[1].weight.detach().std()) == pytest.approx(math.sqrt(2 / 300), rel=0.15)
    assert all(float(l.bias.detach().abs().sum()) == 0 for l in model.layers)


def test_seeded_models_are_identical():
    torch.manual_seed(5)
    a = MLP([4, 24, 4])
    torch.manual_seed(5)
    b = MLP([4, 24, 4])
    for key, value in a.state_dict().items():
        assert torch.equal(value, b.state_dict()[key])


def test_sigmoid_hidden_activation():
    torch.manual_seed(0)
    model = MLP([3, 5, 2], activation="sigmoid")
    x = torch.randn(4, 3)
    acts = model(x)
    pre = model.layers[0](x)
    assert torch.allclose(acts[1], torch.sigmoid(pre))
    assert ((acts[1] > 0) & (acts[1] < 1)).all()


def test_straight_through_step_activation():
    torch.manual_seed(0)
    model = MLP([3, 5, 2], activation="ste")
    x = torch.randn(8, 3, requires_grad=True)
    acts = model(x)
    pre = model.layers[0](x)
    assert torch.equal(acts[1], (pre > 0).float())
    # straight-through: d hidden / d pre-activation is the identity
    g = torch.randn(8, 5)
    (grad_x,) = torch.autograd.grad(acts[1], x, g)
    w = model.layers[0].weight * model.layers[0].weight_mask
    assert torch.allclose(grad_x, g @ w, atol=1e-6)


def test_unknown_activation_is_an_error():
    with pytest.raises(ValueError, match="tanh"):
        MLP([2, 3, 1], activation="tanh")


@pytest.mark.parametrize("activation", ["relu", "sigmoid", "ste"])
def test_batch_norm_keeps_a_pruned_unit_at_exactly_zero(activation):
    torch.manual_seed(4)
    model = MLP([4, 6, 5, 2], activation=activation, batch_norm=True)
    weights = [m.clone() for m in model.masks()]
    biases = [torch.ones(6), torch.ones(5), torch.ones(2)]
    weights[0][3, :] = 0
    biases[0][3] = 0
    weights[1][:, 3] = 0
    weights[1][1, :] = 0
    biases[1][1] = 0
    weights[2][:, 1] = 0
    model.set_masks(weights, biases)
    with torch.no_grad():
        model.norms[0].bias.fill_(0.7)  # a BN shift would turn a dead unit on
        model.norms[1].bias.fill_(0.7)
    x = torch.randn(16, 4)
    for mode in (True, False):
        model.train(mode)
        acts = model(x)
        assert torch.equal(acts[1][:, 3], torch.zeros(16)), mode
        assert torch.equal(acts[2][:, 1], torch.zeros(16)), mode
        assert (acts[1][:, 0] != 0).any()


def test_dropout_only_in_training_mode():
    torch.manual_seed(0)
    model = MLP([4, 64, 2], dropout=0.5)
    x = torch.randn(32, 4)
    model.eval()
    assert torch.equal(model.logits(x), model.logits(x))
    model.train()
    hidden = model(x)[1]
    assert (hidden == 0).float().mean() > 0.3  # relu zeros plus about half dropped


def test_density_and_units_kept():
    model = MLP([4, 5, 3, 2])
    assert model.density() == 100.0
    assert model.units_kept() == [4, 5, 3, 2]
    weights = [torch.ones(5, 4), torch.ones(3, 5), torch.ones(2, 3)]
    weights[0][1, :] = 0  # 4 weights
    weights[1][:, 1] = 0  # 3 weights
    weights[2][0, 0] = 0  # 1 weight
    biases = [torch.tensor([1.0, 0, 1, 1, 1]), torch.tensor([1.0, 1, 0]), torch.ones(2)]
    model.set_masks(weights, biases)
    total = 4 * 5 + 5 * 3 + 3 * 2
    assert model.density() == pytest.approx(100.0 * (total - 8) / total)
    assert model.units_kept() == [4, 4, 2, 2]
    assert [tuple(m.shape) for m in model.masks()] == [(5, 4), (3, 5), (2, 3)]


def test_set_masks_without_bias_masks_keeps_them():
    model = MLP([2, 3, 1])
    model.set_masks(model.masks(), [torch.tensor([0.0, 1, 1]), torch.ones(1)])
    model.set_masks([torch.zeros(3, 2), torch.ones(1, 3)])
    assert model.layers[0].bias_mask.tolist() == [0, 1, 1]
    assert model.density() == pytest.approx(100 * 3 / 9)


def test_build_model_follows_the_config():
    config = parse_config(
        [
            "--arch",
            "4",
            "7",
            "5",
            "4",
            "--hidden_layer_activation",
            "sigmoid",
            "--bn",
            "1",
            "--dropout",
            "0.1",
        ]
    )
    model = build_model(config, "cpu")
    assert model.arch == [4, 7, 5, 4]
    assert model.activation_name == "sigmoid"
    assert model.norms is not None and len(model.norms) == 2
    assert model.dropout is not None and model.dropout.p == 0.1
    plain = build_model(parse_config([]), "cpu")
    assert plain.norms is None and plain.dropout is None and plain.arch == [4, 24, 4]
