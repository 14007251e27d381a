"""CNNs: layer lists, masked conv layers, channel graphs, users' state_dicts, gradual pruning."""

from __future__ import annotations

import subprocess
import sys
from collections import OrderedDict
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn
from torch.nn import functional as F

from models.cnn import CNN
from models.from_network import network_of, torch_model
from tests.conftest import out_folder
from utils.cnn_graph import anchor_scope
from utils.cnn_spec import layer_shapes, parse_cnn
from utils.errors import InputError
from utils.network_files import load_network_file, network_from_state_dict

ROOT = Path(__file__).resolve().parents[1]


# ------------------------------------------------------------------------------------------ layer lists


def test_parse_and_shapes():
    specs = parse_cnn("conv:16:3 pool:2 conv:32:3 pool:2 fc:64")
    assert [(s.kind, s.size, s.pool) for s in specs] == [("conv", 16, 2), ("conv", 32, 2), ("fc", 64, 1)]
    assert layer_shapes(specs, (1, 8, 8)) == [(16, 4, 4), (32, 2, 2), (64,)]
    # valid padding: 8 - 3 + 1 = 6
    assert layer_shapes(parse_cnn("conv:4:3:0"), (1, 8, 8)) == [(4, 6, 6)]


@pytest.mark.parametrize(
    "spec, shape, words",
    [
        ("conv:16:3 blob:2", (1, 8, 8), "unknown layer kind 'blob'"),
        ("pool:2 conv:4:3", (1, 8, 8), "a pool must follow a conv layer"),
        ("fc:8 conv:4:3", (1, 8, 8), "conv layers must come before fc"),
        ("conv:4:3 pool:4 conv:8:3 pool:4", (1, 8, 8), "8x2x2"),  # the shape at the failing layer
        ("conv:4:9:0", (1, 8, 8), "1x8x8"),
    ],
)
def test_layer_list_errors_say_where(spec, shape, words):
    with pytest.raises(InputError, match=words):
        layer_shapes(parse_cnn(spec), shape)


# ----------------------------------------------------------------------------------------------- model


def test_cnn_forward_and_masks():
    torch.manual_seed(0)
    model = CNN("conv:4:3 pool:2 fc:6", (1, 8, 8), 3).eval()
    x = torch.randn(5, 64)
    acts = model(x)
    assert [tuple(a.shape) for a in acts] == [(5, 1, 8, 8), (5, 4, 4, 4), (5, 6), (5, 3)]
    assert torch.equal(model.logits(x), model.logits(x.view(5, 1, 8, 8)))
    # The same computation in plain torch (masks all ones).
    conv, fc, out = model.layers
    h = F.max_pool2d(F.relu(F.conv2d(x.view(5, 1, 8, 8), conv.weight, conv.bias, padding=1)), 2)
    h = F.relu(F.linear(h.flatten(1), fc.weight, fc.bias))
    assert torch.allclose(model.logits(x), F.linear(h, out.weight, out.bias), atol=1e-6)
    # A masked kernel slice does not contribute: changing its weight changes nothing.
    with torch.no_grad():
        conv.weight_mask[2] = 0.0
        before = model.logits(x)
        conv.weight[2] += 100.0
    assert torch.equal(before, model.logits(x))
    assert model.arch == [1, 4, 6, 3]
    with pytest.raises(InputError, match="1x8x8 images"):
        model(torch.randn(2, 65))


# ------------------------------------------------------------------------------------------ channel graph


def _bn_model():
    torch.manual_seed(1)
    model = CNN("conv:3:3 pool:2 conv:4:3 fc:5", (2, 6, 6), 4, batch_norm=True)
    model.train()
    for _ in range(4):
        model(torch.randn(8, 72))  # running statistics away from 0 / 1
    with torch.no_grad():
        for norm in model.norms.values():
            norm.weight.uniform_(-2.0, 2.0)
    return model.eval()


def test_channel_graph_by_hand():
    model = _bn_model()
    net = network_of(model)
    assert net.arch == [2, 3, 4, 5, 4]
    assert net.kinds == ["conv", "conv", "fc", "fc"]
    k = model.layers[1].weight.detach().numpy()
    by_hand = np.array([[np.abs(k[o, c]).sum() for c in range(3)] for o in range(4)])
    np.testing.assert_allclose(net.weights[1], by_hand, rtol=1e-6)
    # conv -> fc: fc weight (5, 4*3*3), channel c feeds inputs c*9 .. c*9+8
    w = model.layers[2].weight.detach().numpy()
    by_hand = np.array([[np.abs(w[o, c * 9 : (c + 1) * 9]).sum() for c in range(4)] for o in range(5)])
    np.testing.assert_allclose(net.weights[2], by_hand, rtol=1e-6)
    # batch norm folded: L1 norm of the folded kernel K * gamma / sqrt(var + eps)
    bn = model.norms["1"]
    scale = (bn.weight / torch.sqrt(bn.running_var + bn.eps)).detach().numpy()
    folded = np.abs(k * scale[:, None, None, None]).sum(axis=(2, 3))
    np.testing.assert_allclose(np.abs(net.folded_weights()[1]), folded, rtol=1e-5)
    assert net.kernels[0].shape == (3, 2, 3, 3)
    adjacency = net.adjacency(symmetric=True)
    assert adjacency.shape == (sum(net.arch),) * 2
    # anchor's scope: conv layers only, without the first conv layer's weights
    anchor = anchor_scope(net)
    assert anchor.arch == [3, 4] and anchor.kinds == ["conv"]


def test_torch_model_round_trip_and_channel_lesion():
    model = _bn_model()
    net = network_of(model)
    x = torch.randn(6, 72)
    rebuilt = torch_model(net)
    assert torch.allclose(rebuilt.logits(x), model.logits(x), atol=1e-5)
    # A lesion zeroes channel 1 of layer 1 (its incoming edges and bias): its activation is 0 everywhere.
    net.weights[0][1] = 0.0
    net.biases[0][1] = 0.0
    acts = torch_model(net)(x)
    assert float(acts[1][:, 1].detach().abs().max()) == 0.0
    assert float(acts[1][:, 0].detach().abs().max()) > 0.0


# ---------------------------------------------------------------------------- users' own state_dicts


class PlainModuleDictCNN(nn.Module):
    """A CNN written as the anchor writes them (one ModuleDict per layer), not with our classes."""

    def __init__(self):
        super().__init__()
        self.layer1 = nn.ModuleDict({"conv": nn.Conv2d(1, 4, 3, padding=1), "bn": nn.BatchNorm2d(4)})
        self.layer2 = nn.ModuleDict({"conv": nn.Conv2d(4, 6, 3, padding=1), "maxPool": nn.MaxPool2d(2)})
        self.layer3 = nn.ModuleDict({"fc": nn.Linear(6 * 4 * 4, 12), "drop": nn.Dropout(0.5)})
        self.layer4 = nn.ModuleDict({"fc": nn.Linear(12, 10)})

    def forward(self, x):
        x = F.relu(self.layer1["bn"](self.layer1["conv"](x)))
        x = self.layer2["maxPool"](F.relu(self.layer2["conv"](x)))
        x = self.layer3["drop"](F.relu(self.layer3["fc"](x.flatten(1))))
        return self.layer4["fc"](x)


def plain_sequential_cnn():
    return nn.Sequential(
        OrderedDict(
            [
                ("0_conv", nn.Conv2d(1, 5, 3, padding=1)),
                ("0_bn", nn.BatchNorm2d(5)),
                ("0_relu", nn.ReLU()),
                ("0_maxPool", nn.MaxPool2d(2)),
                ("1_flatten", nn.Flatten()),
                ("2_fc", nn.Linear(5 * 4 * 4, 7)),
                ("2_relu", nn.ReLU()),
                ("3_fc", nn.Linear(7, 10)),
            ]
        )
    )


def _trained_stats(module):
    module.train()
    with torch.no_grad():
        for _ in range(3):
            module(torch.randn(16, 1, 8, 8))
    return module.eval()


@pytest.mark.parametrize(
    "build, cnn",
    [(PlainModuleDictCNN, "conv:4:3 conv:6:3 pool:2 fc:12"), (plain_sequential_cnn, "conv:5:3 pool:2 fc:7")],
)
def test_users_state_dict_gives_same_predictions(tmp_path, build, cnn):
    torch.manual_seed(2)
    plain = _trained_stats(build())
    path = tmp_path / "user.pt"
    torch.save(plain.state_dict(), path)
    net = load_network_file(path)
    assert net.kinds[0] == "conv"
    x = torch.randn(9, 1, 8, 8)
    ours = torch_model(net, cnn=cnn, input_shape=(1, 8, 8))
    with torch.no_grad():
        assert torch.allclose(ours.logits(x), plain(x), atol=1e-5)


def test_users_state_dict_errors_name_the_key(tmp_path):
    state = plain_sequential_cnn().state_dict()
    state["2_linear.weight"] = state.pop("2_fc.weight")
    with pytest.raises(InputError, match="2_linear.weight"):
        network_from_state_dict(state, "user.pt")
    net = network_from_state_dict(plain_sequential_cnn().state_dict(), "user.pt")
    with pytest.raises(InputError, match="2_fc.weight"):
        torch_model(net, cnn="conv:5:3 fc:7", input_shape=(1, 8, 8))  # forgot the pool: 320 != 80 inputs
    with pytest.raises(InputError, match="0_conv.weight"):
        torch_model(net, cnn="conv:5:5 pool:2 fc:7", input_shape=(1, 8, 8))


def test_users_checkpoint_through_the_cli(tmp_path):
    torch.manual_seed(3)
    path = tmp_path / "user.pt"
    torch.save(_trained_stats(plain_sequential_cnn()).state_dict(), path)
    common = [
        sys.executable,
        "main.py",
        "--experiment",
        "module_detection",
        "--checkpoint",
        str(path),
        "--result_path",
        str(tmp_path / "out"),
        "--visualization_path",
        str(tmp_path / "vis"),
        "--input_shape",
        "1",
        "8",
        "8",
        "--quiet",
    ]
    done = subprocess.run(
        [*common, "--cnn", "conv:5:3 pool:2 fc:7"], cwd=ROOT, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    assert (out_folder(tmp_path / "out", f"{tmp_path.name}_user") / "modules.json").is_file()
    bad = subprocess.run([*common, "--cnn", "conv:5:3 fc:7"], cwd=ROOT, capture_output=True, text=True)
    assert bad.returncode == 2
    assert len(bad.stderr.strip().splitlines()) == 1 and "2_fc.weight" in bad.stderr


# ----------------------------------------------------------------------------------- gradual pruning


def test_cubic_schedule_by_hand():
    from utils.gradual_pruning import cubic_sparsity

    assert cubic_sparsity(0, 0, 100, 90.0) == 0.0
    assert cubic_sparsity(50, 0, 100, 90.0) == pytest.approx(90.0 * (1 - 0.5**3))
    assert cubic_sparsity(100, 0, 100, 90.0) == 90.0
    assert cubic_sparsity(20, 10, 110, 80.0) == pytest.approx(80.0 * (1 - 0.9**3))


def test_pruner_masks_smallest_and_keeps_pruned():
    from utils.gradual_pruning import GradualPruner

    model = CNN("conv:1:1", (1, 2, 2), 2)  # conv weight (1, 1, 1, 1) and an output layer (2, 4)
    with torch.no_grad():
        model.layers[0].weight.fill_(-0.05)
        model.layers[1].weight.copy_(torch.tensor([[0.1, -0.5, 0.3, 0.2], [0.6, -0.7, 0.8, 0.9]]))
    pruner = GradualPruner(model, 50.0, 0, 10, 1)
    pruner.apply(30.0)  # 30% of 9 weights: the 3 smallest |w| (0.05, 0.1, 0.2), a percentile cut
    assert model.layers[0].weight_mask.sum() == 0
    assert model.layers[1].weight_mask.tolist() == [[0, 1, 1, 0], [1, 1, 1, 1]]
    assert model.layers[1].weight[0, 0] == 0.0  # pruned weights are zeroed
    with torch.no_grad():
        model.layers[1].weight[0, 0] = 5.0  # a pruned weight that grew stays pruned (masked = zero)
    pruner.apply(50.0)
    assert model.layers[1].weight_mask[0, 0] == 0 and pruner.sparsity() == pytest.approx(500 / 9, abs=1e-9)
    assert model.layers[1].weight_mask[0, 3] == 0 and model.layers[1].weight_mask[0, 2] == 0


def test_training_with_cubic_pruning_reaches_target():
    import dataclasses

    from run.options import training_options
    from run.parser import parse_config
    from utils.gradual_pruning import GradualPruningOptions, gradual_pruner
    from utils.training import TaskTensors, train

    torch.manual_seed(0)
    g = torch.Generator().manual_seed(0)
    x = torch.randn(64, 16)
    y = F.one_hot((x[:, 0] > 0).long(), 2).float()
    data = TaskTensors(x, y, x, y, x, y, 0.0, "argmax", [[0, 1]], x, y)
    config = dataclasses.replace(
        training_options(parse_config([])), loss="CE", epochs=4, lr=0.01, weight_decay=0.0, batch_size=8
    )
    options = GradualPruningOptions(
        "cubic", target_sparsity=75.0, prune_epochs=2, prune_every=3, scope="global"
    )
    model = CNN("conv:4:3 fc:8", (1, 4, 4), 2)
    result = train(model, data, config, g, pruner=lambda m, s, e: gradual_pruner(m, options, s, e))
    assert result.metrics["best_epoch"] == 3  # only the last epoch is at the target sparsity
    assert 100.0 - model.density() == pytest.approx(75.0, abs=0.2)
    for layer in model.layers:  # pruned weights are zero, not only masked
        assert float((layer.weight * (1 - layer.weight_mask)).detach().abs().max()) == 0.0


# ------------------------------------------------------------------------------------ tasks and CLI


def _write_idx_folder(folder: Path, n_train=20, n_test=10):
    from utils.tasks.idx import MNIST_FILES, write_idx

    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for key, name in MNIST_FILES.items():
        n = n_train if key.startswith("train") else n_test
        if key.endswith("images"):
            write_idx(folder / name, rng.integers(0, 256, size=(n, 28, 28), dtype=np.uint8))
        else:
            write_idx(folder / name, np.arange(n, dtype=np.uint8) % 10)


@pytest.mark.parametrize(
    "task, option", [("fashion_mnist_10way", "--fashion_mnist_path"), ("kmnist_10way", "--kmnist_path")]
)
def test_idx_tasks_as_images(tmp_path, task, option):
    from run.options import task_options
    from run.parser import parse_config
    from utils.tasks import load_task

    folder = tmp_path / task
    argv = ["--task", task, option, str(folder), "--model", "CNN", "--cnn", "conv:4:3 pool:2 fc:8"]
    with pytest.raises(InputError, match="t10k-labels-idx1-ubyte"):
        load_task(task_options(parse_config(argv)))
    _write_idx_folder(folder)
    loaded = load_task(task_options(parse_config(argv)))
    assert loaded.image_shape == (1, 28, 28) and loaded.x_train.shape[1] == 784
    raw = load_task(task_options(parse_config([*argv, "--image_norm", "unit"])))
    mean, std = (0.5, 0.5) if task == "kmnist_10way" else (0.2860, 0.3530)
    np.testing.assert_allclose(loaded.x_test, (raw.x_test - mean) / std, rtol=1e-5, atol=1e-5)


def test_digit_tasks_image_shapes():
    from run.options import task_options
    from run.parser import parse_config
    from utils.tasks import load_task

    base = ["--model", "CNN", "--cnn", "conv:4:3 fc:8"]
    assert load_task(task_options(parse_config(["--task", "digits_10way", *base]))).image_shape == (1, 8, 8)
    two = load_task(task_options(parse_config(["--task", "digits", "--modularity", "128", "2", "20", *base])))
    assert two.image_shape == (1, 8, 16)


@pytest.mark.parametrize(
    "extra, words",
    [
        (["--cnn", "conv:16:3 pool:2 wat:3"], "unknown layer kind"),
        (["--cnn", "conv:4:3 pool:4 conv:8:3 pool:4", "--input_shape", "1", "8", "8"], "8x2x2"),
        (["--cnn", "conv:4:3", "--input_shape", "1", "8", "9"], "does not fit the 1x8x8 images"),
    ],
)
def test_bad_cnn_input_is_one_line_exit_2(tmp_path, extra, words):
    argv = [sys.executable, "main.py", "--experiment", "train", "--task", "digits_10way", "--loss", "CE"]
    argv += ["--model", "CNN", "--epochs", "1", "--result_path", str(tmp_path), *extra]
    done = subprocess.run(argv, cwd=ROOT, capture_output=True, text=True)
    assert done.returncode == 2
    assert len(done.stderr.strip().splitlines()) == 1 and words in done.stderr
    assert not any(tmp_path.iterdir())


def test_our_cnn_run_checkpoint_keeps_its_layout(tmp_path):
    from run.network_source import load_target
    from run.options import task_options
    from run.parser import parse_config
    from run.runs import load_checkpoint
    from utils.tasks import load_task

    cnn = "conv:4:3 pool:2 fc:8"
    argv = ["--experiment", "train", "--task", "digits_10way", "--loss", "CE", "--model", "CNN", "--cnn", cnn]
    argv += ["--epochs", "1", "--batch_size", "64", "--result_path", str(tmp_path / "r"), "--quiet"]
    argv += ["--gradual_pruning", "cubic", "--target_sparsity", "50", "--prune_every", "5"]
    done = subprocess.run([sys.executable, "main.py", *argv], cwd=ROOT, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    checkpoint = next((tmp_path / "r").rglob("model.pt"))
    assert not (checkpoint.parent / "network.npz").exists()  # a channel graph alone cannot run forward
    state = load_checkpoint(checkpoint)
    masks = [v for k, v in state.items() if k.endswith("weight_mask")]
    assert sum(float((m == 0).sum()) for m in masks) / sum(m.numel() for m in masks) == pytest.approx(
        0.5, abs=0.01
    )
    config = parse_config(["--experiment", "module_detection", "--checkpoint", str(checkpoint)])
    network = load_target(config).network
    assert network.layout["cnn"] == cnn and network.layout["input_shape"] == [1, 8, 8]
    model = CNN(cnn, (1, 8, 8), 10)
    model.load_state_dict(state)
    x = torch.as_tensor(load_task(task_options(parse_config(argv))).x_test[:20])
    assert torch.allclose(torch_model(network).logits(x), model.eval().logits(x), atol=1e-5)


def test_edge_pruning_search_on_a_cnn(tmp_path):
    import json

    argv = ["--experiment", "prune_edges", "--task", "digits_10way", "--loss", "CE", "--model", "CNN"]
    argv += ["--cnn", "conv:2:3 pool:2 fc:4", "--epochs", "1", "--batch_size", "128", "--lr", "0.01"]
    argv += [
        "--pruning_gradient",
        "50",
        "--prune_acc_threshold",
        "0",
        "--result_path",
        str(tmp_path),
        "--quiet",
    ]
    done = subprocess.run([sys.executable, "main.py", *argv], cwd=ROOT, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    metrics = json.loads(next(tmp_path.rglob("edges/*/metrics.json")).read_text())
    total = 2 * 9 + 4 * 2 * 16 + 10 * 4  # conv kernel entries, fc, output
    assert metrics["history"][0]["target_percent"] == 50.0 and metrics["history"][0]["accepted"]
    # every accepted step is a global magnitude cut over conv and fc weights together
    assert metrics["density"] == pytest.approx(100.0 * round(metrics["density"] * total / 100.0) / total)
    assert metrics["density"] < 50.0


def test_channel_unit_pruning_masks_and_scores():
    from utils.pruning import masks_from_alive, unit_scores

    torch.manual_seed(0)
    model = CNN("conv:3:3 pool:2 conv:4:3 fc:5", (1, 4, 4), 2)
    x = torch.randn(6, 16)
    y = F.one_hot(torch.randint(0, 2, (6,)), 2).float()
    scores = unit_scores(model, x, y, "activation_gradient_product", "CE", [[0, 1]])
    assert [tuple(s.shape) for s in scores] == [(3,), (4,), (5,)]
    # by hand for conv layer 2: mean over samples of sum over positions |a| * |dL/da|
    acts = model(x)
    for a in acts[1:-1]:
        a.retain_grad()
    F.cross_entropy(acts[-1], y.argmax(1), reduction="sum").backward()
    by_hand = (acts[2].abs() * acts[2].grad.abs()).sum(dim=(0, 2, 3)) / 6
    assert torch.allclose(scores[1], by_hand.detach(), atol=1e-6)
    alive = [
        torch.tensor([True, False, True]),
        torch.tensor([True, True, False, True]),
        torch.ones(5, dtype=bool),
    ]
    weight_masks, bias_masks = masks_from_alive(model, alive)
    assert (
        weight_masks[0][1].sum() == 0 and weight_masks[1][:, 1].sum() == 0 and weight_masks[1][2].sum() == 0
    )
    # the fc after conv 2 loses the 2x2 = 4 inputs of channel 2 (inputs 8..11)
    assert weight_masks[2][:, 8:12].sum() == 0 and weight_masks[2][:, :8].min() == 1
    assert bias_masks[1].tolist() == [1.0, 1.0, 0.0, 1.0]


def test_export_and_anchor_graph_of_a_users_cnn(tmp_path):
    import networkx as nx

    torch.manual_seed(4)
    path = tmp_path / "dict.pt"
    torch.save(_trained_stats(PlainModuleDictCNN()).state_dict(), path)
    base = [sys.executable, "main.py", "--checkpoint", str(path), "--result_path", str(tmp_path / "out")]
    base += ["--visualization_path", str(tmp_path / "vis"), "--quiet"]
    graph = tmp_path / "g.graphml"
    done = subprocess.run(
        [*base, "--experiment", "export_graph", "--graph_format", "graphml", "--output", str(graph)],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr
    assert nx.read_graphml(graph).number_of_nodes() == 1 + 4 + 6 + 12 + 10  # channels and units
    done = subprocess.run(
        [*base, "--experiment", "module_detection", "--cnn_graph", "anchor"],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr
    import json

    modules = json.loads(next((tmp_path / "out").rglob("anchor_graph/modules.json")).read_text())
    assert len(modules["partition"]) == 4 + 6  # conv 1's output channels and conv 2's, nothing else


# ------------------------------------------------------------------------------------- channel lesions


def test_channel_lesions_match_a_hooked_plain_module():
    """Lesioned copies (channels of conv 1, and also fc units above) against the user's own module with
    forward hooks that zero those channels after their ReLU: the definition of a lesion, computed apart."""
    from detection_pipeline.lesion.channel_forward import ChannelForward

    torch.manual_seed(5)
    plain = _trained_stats(plain_sequential_cnn())
    net = network_from_state_dict(plain.state_dict(), "user.pt")
    net.layout.update(cnn="conv:5:3 pool:2 fc:7", input_shape=[1, 8, 8])
    x = torch.randn(11, 1, 8, 8)
    forward = ChannelForward(net, x.flatten(1).numpy())
    idx = torch.tensor([[0, 3], [1, 4], [2, 2]])
    later = torch.zeros(3, 7, dtype=torch.bool)
    later[1, [0, 6]] = later[2, 3] = True
    out = forward.lesioned(1, idx, {2: later})
    assert out.shape == (3, 11, 10)
    for copy in range(3):
        channels, units = idx[copy], torch.nonzero(later[copy]).flatten()
        hooks = [
            plain[2].register_forward_hook(lambda m, i, o, c=channels: o.index_fill(1, c, 0.0)),
            plain[6].register_forward_hook(lambda m, i, o, u=units: o.index_fill(1, u, 0.0)),
        ]
        with torch.no_grad():
            expected = plain(x)
        for hook in hooks:
            hook.remove()
        torch.testing.assert_close(out[copy], expected, atol=1e-5, rtol=1e-5)
    with torch.no_grad():
        torch.testing.assert_close(forward.logits, plain(x), atol=1e-5, rtol=1e-5)


def test_users_cnn_through_clusterability_and_lesion(tmp_path):
    """A plain torch CNN's state_dict (not built by our code) runs through clusterability and lesion."""
    import json

    torch.manual_seed(6)
    path = tmp_path / "user.pt"
    torch.save(_trained_stats(plain_sequential_cnn()).state_dict(), path)
    base = [sys.executable, "main.py", "--checkpoint", str(path), "--result_path", str(tmp_path / "out")]
    base += ["--visualization_path", str(tmp_path / "vis"), "--input_shape", "1", "8", "8", "--quiet"]

    def main(*args):
        done = subprocess.run([*base, *args], cwd=ROOT, capture_output=True, text=True)
        assert done.returncode == 0, done.stderr
        return done

    main("--experiment", "clusterability", "--num_shuffles", "8")
    out = out_folder(tmp_path / "out", f"{tmp_path.name}_user")
    clusterability = json.loads((out / "clusterability.json").read_text())
    assert len(clusterability["shuffles"]["layer"]["ncuts"]) == 8
    cnn = ["--cnn", "conv:5:3 pool:2 fc:7"]
    main("--experiment", "module_detection", "--method", "spectral", "--n_clusters", "3", *cnn)
    partition = ["--partition", str(out / "modules_spectral.json")]  # spectral's own modules file
    main("--experiment", "lesion", "--task", "digits_10way", "--num_shuffles", "10", *cnn, *partition)
    lesion = json.loads((out / "lesion.json").read_text())
    assert lesion["arch"] == [1, 5, 7, 10] and lesion["test_samples"] > 0
    assert lesion["lesion_value"] == 0.0
    assert any(e["testable"] for e in lesion["submodules"])
    for entry in lesion["submodules"]:
        assert len(entry["output_drop"]) == 10
    assert (out_folder(tmp_path / "vis", f"{tmp_path.name}_user") / "lesion_heatmap.png").is_file()
    # without the layer list a forward pass is impossible: one line that says to give --cnn
    bad = subprocess.run(
        [*base, "--experiment", "lesion", "--task", "digits_10way", *partition],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert bad.returncode == 2 and "--cnn" in bad.stderr and len(bad.stderr.strip().splitlines()) == 1
    # association matrices of channels need inputs that fit: the default task's do not, and one line says
    # what to give (the task, or --input_batch), not a wrong-arch message
    bad = subprocess.run([*base, "--experiment", "associations"], cwd=ROOT, capture_output=True, text=True)
    assert bad.returncode == 2 and "--input_batch" in bad.stderr and len(bad.stderr.strip().splitlines()) == 1
