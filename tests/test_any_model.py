"""Any PyTorch model: networks written here in plain torch, traced into unit graphs, and every method on
every kind of network (the method x network matrix); lesion drops against zeroing the same units by hand in
the real module."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from tests.conftest import REPO, call_main, one_error_line

PUBLISHED = sorted((REPO / "tests" / "data" / "reference_networks").glob("*__6-24-3__*.npz"))[0]


# -- networks written from scratch -------------------------------------------------------------------------


class BnCnn(nn.Module):
    """conv-BN-ReLU-maxpool, conv-BN-ReLU, adaptive average pool, flatten, linear."""

    def __init__(self):
        super().__init__()
        self.conv1, self.bn1 = nn.Conv2d(1, 4, 3, padding=1), nn.BatchNorm2d(4)
        self.conv2, self.bn2 = nn.Conv2d(4, 6, 3, padding=1), nn.BatchNorm2d(6)
        self.pool = nn.MaxPool2d(2)
        self.head = nn.AdaptiveAvgPool2d(2)
        self.fc = nn.Linear(24, 3)

    def forward(self, x):
        h = self.pool(torch.relu(self.bn1(self.conv1(x))))
        h = torch.relu(self.bn2(self.conv2(h)))
        return self.fc(torch.flatten(self.head(h), 1))


class ResCnn(nn.Module):
    """A stem conv and one residual block (conv-BN-ReLU-conv-BN + identity, ReLU), pooled, linear."""

    def __init__(self):
        super().__init__()
        self.stem, self.bn0 = nn.Conv2d(1, 4, 3, padding=1), nn.BatchNorm2d(4)
        self.conv1, self.bn1 = nn.Conv2d(4, 4, 3, padding=1), nn.BatchNorm2d(4)
        self.conv2, self.bn2 = nn.Conv2d(4, 4, 3, padding=1), nn.BatchNorm2d(4)
        self.fc = nn.Linear(4, 3)

    def forward(self, x):
        h = torch.relu(self.bn0(self.stem(x)))
        h = torch.relu(self.bn2(self.conv2(torch.relu(self.bn1(self.conv1(h))))) + h)
        return self.fc(h.mean(dim=(2, 3)))


class MaskedLinear(nn.Module):
    def __init__(self, n_in, n_out, density, generator):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(n_out, n_in, generator=generator) / n_in**0.5)
        self.bias = nn.Parameter(torch.randn(n_out, generator=generator) * 0.1)
        self.register_buffer("mask", (torch.rand(n_out, n_in, generator=generator) < density).float())

    def forward(self, x):
        return nn.functional.linear(x, self.weight * self.mask, self.bias)


class DeepstructDag(nn.Module):
    """A masked DAG network whose incoming blocks each have their own activation, summed."""

    def __init__(self):
        super().__init__()
        g = torch.Generator().manual_seed(3)
        self.l10 = MaskedLinear(6, 8, 0.7, g)
        self.l21, self.l20 = MaskedLinear(8, 8, 0.7, g), MaskedLinear(6, 8, 0.5, g)
        self.l32, self.l31 = MaskedLinear(8, 3, 0.8, g), MaskedLinear(8, 3, 0.5, g)

    def forward(self, x):
        h1 = torch.relu(self.l10(x))
        h2 = torch.relu(self.l21(h1)) + torch.relu(self.l20(x))
        return self.l32(h2) + self.l31(h1)


def _seq_mlp():
    return nn.Sequential(
        nn.Linear(6, 8), nn.ReLU(), nn.Linear(8, 8), nn.ReLU(), nn.Dropout(0.1), nn.Linear(8, 3)
    )


def _randomise_bn(model: nn.Module, seed: int) -> nn.Module:
    g = torch.Generator().manual_seed(seed)
    for module in model.modules():
        if isinstance(module, nn.BatchNorm2d):
            module.running_mean.copy_(torch.randn(module.num_features, generator=g) * 0.3)
            module.running_var.copy_(torch.rand(module.num_features, generator=g) + 0.5)
            module.weight.data.copy_(torch.randn(module.num_features, generator=g))
            module.bias.data.copy_(torch.randn(module.num_features, generator=g) * 0.2)
    return model.eval()


def _export(model: nn.Module, shape, path: Path) -> Path:
    example = torch.randn(4, *shape)
    program = torch.export.export(model.eval(), (example,), dynamic_shapes=({0: torch.export.Dim.AUTO},))
    torch.export.save(program, str(path))
    return path


def _batch(path: Path, model, shape, n: int = 60, seed: int = 0) -> Path:
    """inputs and the model's own predictions as targets, with a fifth of them changed (not all right)."""
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, *shape, generator=g)
    with torch.no_grad():
        out = model(x)
        out = out[-1] if isinstance(out, list) else out
    targets = out.argmax(1).numpy()
    targets[::5] = (targets[::5] + 1) % out.shape[1]
    np.savez(path, inputs=x.numpy(), targets=targets.astype(np.int64))
    return path


@pytest.fixture(scope="module")
def zoo(tmp_path_factory):
    """{kind: (network file, input batch)} for every kind of network of the matrix."""
    from models.cnn import CNN
    from models.dag import DAGNetwork
    from models.mlp import MLP
    from utils.cnn_spec import parse_cnn
    from utils.graph_io import read_graph, write_graph

    root = tmp_path_factory.mktemp("zoo")
    torch.manual_seed(0)
    out = {}
    mlp = MLP([6, 8, 8, 3]).eval()
    (root / "mlp").mkdir()
    torch.save(mlp.state_dict(), root / "mlp" / "model.pt")
    out["our_mlp"] = (root / "mlp" / "model.pt", _batch(root / "mlp.npz", mlp, (6,)))
    cnn = CNN(parse_cnn("conv:4:3 pool:2 fc:6"), (1, 8, 8), 3, batch_norm=True).eval()
    (root / "cnn").mkdir()
    torch.save(cnn.state_dict(), root / "cnn" / "model.pt")
    (root / "cnn" / "metrics.json").write_text(json.dumps({"cnn": cnn.spec, "input_shape": [1, 8, 8]}))
    out["our_cnn"] = (root / "cnn" / "model.pt", _batch(root / "cnn.npz", cnn, (1, 8, 8)))
    structure = read_graph(REPO / "datasets" / "structures" / "skip-4-12-12-4.edgelist")
    dag = DAGNetwork.from_structure(structure).eval()
    (root / "dag").mkdir()
    torch.save(dag.state_dict(), root / "dag" / "model.pt")
    out["our_dag"] = (root / "dag" / "model.pt", _batch(root / "dag.npz", dag, (4,)))
    seq = _seq_mlp().eval()
    (root / "seq").mkdir()
    torch.save(seq.state_dict(), root / "seq" / "seq.pt")
    out["sequential_mlp"] = (root / "seq" / "seq.pt", _batch(root / "seq.npz", seq, (6,)))
    bn = _randomise_bn(BnCnn(), 1)
    out["bn_cnn_pt2"] = (_export(bn, (1, 8, 8), root / "bn_cnn.pt2"), _batch(root / "bn.npz", bn, (1, 8, 8)))
    res = _randomise_bn(ResCnn(), 2)
    out["residual_cnn_pt2"] = (
        _export(res, (1, 8, 8), root / "res.pt2"),
        _batch(root / "res.npz", res, (1, 8, 8)),
    )
    ds = DeepstructDag().eval()
    out["deepstruct_dag_pt2"] = (_export(ds, (6,), root / "dag.pt2"), _batch(root / "ds.npz", ds, (6,)))
    from models.from_network import network_of as network_of_model
    from utils.network_files import read_npz_network

    published = read_npz_network(PUBLISHED)
    from models.from_network import torch_model

    pub_batch = _batch(root / "pub.npz", torch_model(published), (6,))
    out["published_npz"] = (PUBLISHED, pub_batch)
    network = network_of_model(mlp)
    for fmt, suffix in (("graphml", ".graphml"), ("edgelist", ".edgelist"), ("npz", ".npz")):
        path = write_graph(network, root / f"graph{suffix}", fmt)
        out[f"graph_{fmt}"] = (path, out["our_mlp"][1])
    return out


METHODS = (
    "sculpt",
    "spectral",
    "newman",
    "associations",
    "clusterability",
    "lesion",
    "export_graph",
    "compare",
)
KINDS = (
    "our_mlp", "our_cnn", "our_dag", "sequential_mlp", "bn_cnn_pt2", "residual_cnn_pt2", "deepstruct_dag_pt2",
    "published_npz", "graph_graphml", "graph_edgelist", "graph_npz",
)  # fmt: skip
# Cells that refuse, with the words their one line must hold.
REFUSED = {
    # this pruned network keeps a single unit of its hidden layer that the inputs move: Q needs two
    ("published_npz", "associations"): "fewer than 2 alive units",
}


def _spectral(network, batch, out: Path, capsys, k: int = 2) -> Path:
    rc, _, err = call_main(
        ["--experiment", "module_detection", "--method", "spectral", "--n_clusters", k,
         "--checkpoint", network, "--result_path", out, "--visualization_path", out / "v", "--quiet"],
        capsys,
    )  # fmt: skip
    assert rc == 0, err
    return next(out.rglob("modules_spectral.json"))


def _cell(kind: str, method: str, zoo, tmp_path: Path, capsys):
    network, batch = zoo[kind]
    r = tmp_path / "r"
    common = ["--checkpoint", network, "--result_path", r, "--visualization_path", tmp_path / "v", "--quiet"]
    if method in ("sculpt", "spectral", "newman"):
        extra = {"spectral": ["--n_clusters", "2"], "newman": ["--input_batch", batch, "--mc_steps", "30"]}
        argv = ["--experiment", "module_detection", "--method", method, *extra.get(method, []), *common]
    elif method == "associations":
        argv = [
            "--experiment",
            "associations",
            "--input_batch",
            batch,
            "--mc_steps",
            "20",
            "--n_shuffle",
            "10",
        ]
        argv += common
    elif method == "clusterability":
        argv = ["--experiment", "clusterability", "--num_shuffles", "3", "--n_clusters", "2", *common]
    elif method == "lesion":
        partition = _spectral(network, batch, tmp_path / "p", capsys)
        argv = [
            "--experiment",
            "lesion",
            "--input_batch",
            batch,
            "--num_shuffles",
            "5",
            "--partition",
            partition,
        ]
        argv += common
    elif method == "export_graph":
        argv = ["--experiment", "export_graph", "--output", tmp_path / "g.graphml", *common]
    else:
        a = _spectral(network, batch, tmp_path / "a", capsys, 2)
        b = _spectral(network, batch, tmp_path / "b", capsys, 3)
        argv = [
            "--experiment",
            "compare_partitions",
            "--partitions",
            a,
            b,
            "--out",
            tmp_path / "c",
            "--quiet",
        ]
        argv += ["--n_shuffle", "10"]
    return call_main(argv, capsys)


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("kind", KINDS)
def test_every_method_on_every_network_works_or_refuses_in_one_line(kind, method, zoo, tmp_path, capsys):
    rc, out, err = _cell(kind, method, zoo, tmp_path, capsys)
    if (kind, method) in REFUSED:
        assert rc == 2, out
        assert REFUSED[kind, method] in one_error_line(err)
        return
    assert rc == 0, err
    if method == "lesion":
        assert "intact accuracy" in out
        result = json.loads(next((tmp_path / "r").rglob("lesion.json")).read_text())
        assert all(len(e["unit_names"]) == len(e["units"]) for e in result["submodules"])


# -- lesion drops against zeroing the same units by hand in the real module ---------------------------------

HAND = {
    # model, input shape, {module producing units: module whose output a lesion zeroes (after its BN)}
    "mlp": (_seq_mlp, (6,), {"0": "0", "2": "2"}),
    "bn_cnn": (lambda: _randomise_bn(BnCnn(), 4), (1, 8, 8), {"conv1": "bn1", "conv2": "bn2"}),
    "residual_cnn": (
        lambda: _randomise_bn(ResCnn(), 5),
        (1, 8, 8),
        {"stem": "bn0", "conv1": "bn1", "conv2": "bn2"},
    ),
}


def _per_class_accuracy(logits: torch.Tensor, targets: np.ndarray, n_out: int) -> np.ndarray:
    pred = logits.argmax(1).numpy()
    return np.array([100.0 * np.mean(pred[targets == c] == c) for c in range(n_out)])


@pytest.mark.parametrize("name", HAND)
def test_lesion_drops_equal_zeroing_the_units_by_hand_in_the_real_module(name, tmp_path, capsys):
    from models.trace import trace_module

    build, shape, zeroed_at = HAND[name]
    torch.manual_seed(7)
    model = build().eval()
    path = _export(model, shape, tmp_path / f"{name}.pt2")
    batch = _batch(tmp_path / "batch.npz", model, shape, n=90)
    arch = trace_module(model, torch.randn(2, *shape)).network.arch
    labels = [np.full(width, -1) for width in arch]
    for layer in range(1, len(arch) - 1):
        labels[layer] = 2 * layer + (np.arange(arch[layer]) % 2)  # two modules per hidden layer
    partition = tmp_path / "modules.json"
    partition.write_text(json.dumps({"partition": np.concatenate(labels).tolist(), "arch": arch}))
    rc, out, err = call_main(
        ["--experiment", "lesion", "--checkpoint", path, "--input_batch", batch, "--partition", partition,
         "--num_shuffles", "3", "--result_path", tmp_path / "r", "--visualization_path", tmp_path / "v"],
        capsys,
    )  # fmt: skip
    assert rc == 0, err
    result = json.loads(next((tmp_path / "r").rglob("lesion.json")).read_text())
    data = np.load(batch)
    x, targets = torch.from_numpy(data["inputs"]), data["targets"]
    with torch.no_grad(), np.errstate(invalid="ignore"):
        base = _per_class_accuracy(model(x), targets, arch[-1])
    assert f"intact accuracy {100.0 * np.mean(model(x).argmax(1).numpy() == targets):.2f}%" in out
    assert len(result["submodules"]) == 2 * (len(arch) - 2)
    modules = dict(model.named_modules())
    for entry in result["submodules"]:
        channels: dict[str, list[int]] = {}
        for unit in entry["unit_names"]:
            module, index = unit.rsplit(":", 1)
            channels.setdefault(zeroed_at[module], []).append(int(index))
        hooks = []
        for module, idx in channels.items():

            def zero(_module, _inputs, output, idx=idx):
                output = output.clone()
                output[:, idx] = 0.0
                return output

            hooks.append(modules[module].register_forward_hook(zero))
        with torch.no_grad(), np.errstate(invalid="ignore"):
            lesioned = _per_class_accuracy(model(x), targets, arch[-1])
        for hook in hooks:
            hook.remove()
        drops = np.array([np.nan if v is None else v for v in entry["output_drop"]])
        np.testing.assert_allclose(drops, base - lesioned, atol=1e-6)  # nan: a class absent from the batch
        assert np.isfinite(drops).sum() >= 2


def test_the_documented_python_example_runs():
    import re

    text = (REPO / "docs" / "own_models.md").read_text()
    code = re.search(r"```python\n(.*?)```", text, re.S).group(1)
    exec(compile(code, "docs/own_models.md", "exec"), {"__name__": "docs_example"})


def test_api_lesion_equals_the_cli_and_returns_typed_results(tmp_path):
    from run.api import (
        ClusterabilityResult,
        LesionResult,
        Partition,
        clusterability,
        find_modules,
        lesion_test,
    )

    torch.manual_seed(0)
    model = _randomise_bn(ResCnn(), 2)
    x = torch.randn(40, 1, 8, 8)
    y = model(x).argmax(1)
    partition = find_modules(model, "spectral", example=x[:2])
    assert isinstance(partition, Partition) and partition.labels.shape == (sum(partition.arch),)
    result = lesion_test(model, partition, x, y, example=x[:2], num_shuffles=5)
    assert isinstance(result, LesionResult) and result.intact_accuracy == 100.0
    test = clusterability(model, example=x[:2], n_clusters=2, num_shuffles=3)
    assert isinstance(test, ClusterabilityResult) and len(test.shuffled_ncuts) == 3
    from detection_pipeline.associations.method import NewmanOptions

    newman = find_modules(model, "newman", example=x[:2], inputs=x, options=NewmanOptions(mc_steps=20))
    assert newman.method == "newman" and newman.arch == partition.arch


class Attention(nn.Module):
    def __init__(self):
        super().__init__()
        self.q, self.k = nn.Linear(4, 4), nn.Linear(4, 4)
        self.out = nn.Linear(4, 2)

    def forward(self, x):
        weights = torch.softmax(self.q(x) @ self.k(x).T, dim=-1)
        return self.out(weights @ x)


class Shared(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(4, 4)
        self.out = nn.Linear(4, 2)

    def forward(self, x):
        return self.out(self.fc(torch.relu(self.fc(x))))


@pytest.mark.parametrize(
    ("model", "words"), [(Attention, ["cannot be mapped", "in module"]), (Shared, ["used twice", "fc"])]
)
def test_unmappable_ops_are_refused_in_one_line_naming_op_and_module(model, words, tmp_path, capsys):
    path = _export(model(), (4,), tmp_path / "m.pt2")
    rc, _, err = call_main(
        ["--experiment", "module_detection", "--method", "spectral", "--checkpoint", path,
         "--result_path", tmp_path / "r"],
        capsys,
    )  # fmt: skip
    assert rc == 2
    line = one_error_line(err)
    assert all(word in line for word in words), line


def test_traced_graph_equals_the_weights_by_hand():
    """Folded conv edges = L1 norms of gamma/sqrt(var+eps)-scaled kernel slices; the residual is a skip."""
    from models.trace import trace_module

    model = _randomise_bn(ResCnn(), 9)
    network = trace_module(model, torch.randn(2, 1, 8, 8)).network
    assert network.arch == [1, 4, 4, 4, 3]
    bn = model.bn1
    scale = (bn.weight / torch.sqrt(bn.running_var + bn.eps)).detach().numpy()
    kernel = model.conv1.weight.detach().numpy()
    expected = np.abs(kernel).sum(axis=(2, 3)) * np.abs(scale)[:, None]
    np.testing.assert_allclose(network.weights[1], expected, rtol=1e-5)
    assert [(b.source, b.target) for b in network.skips] == [(1, 4)]  # the identity branch into fc
    np.testing.assert_allclose(network.skips[0].weight, model.fc.weight.detach().numpy(), rtol=1e-6)
    assert network.layout["unit_names"][3] == [f"conv2:{c}" for c in range(4)]


def test_deepstruct_dag_lesions_zero_the_summed_units_in_its_own_function():
    """Blocks with their own activation, summed: the traced graph has one unit set per layer with skip edges,
    and a lesion equals zeroing h1 / h2 in a forward written out by hand."""
    from run.api import lesion_test, network_of

    model = DeepstructDag().eval()
    x = torch.randn(120, 6, generator=torch.Generator().manual_seed(1))
    y = model(x).argmax(1).numpy()
    y[::4] = (y[::4] + 1) % 3
    network = network_of(model, example=x[:2])
    assert network.arch == [6, 8, 8, 3]
    assert [(b.source, b.target) for b in network.skips] == [(0, 2), (1, 3)]
    np.testing.assert_allclose(
        network.skips[0].weight, (model.l20.weight * model.l20.mask).detach(), rtol=1e-6
    )
    labels = np.concatenate([np.full(6, -1), np.arange(8) % 2, 2 + np.arange(8) % 2, np.full(3, -1)])
    from detection_pipeline.partition import Partition

    result = lesion_test(network, Partition(labels, network.arch), x, y, num_shuffles=3)

    def by_hand(layer, units):
        keep = [torch.ones(8), torch.ones(8)]
        keep[layer - 1][units] = 0.0
        with torch.no_grad():
            h1 = torch.relu(model.l10(x)) * keep[0]
            h2 = (torch.relu(model.l21(h1)) + torch.relu(model.l20(x))) * keep[1]
            return (model.l32(h2) + model.l31(h1)).argmax(1).numpy()

    intact = by_hand(1, [])
    for entry in result.submodules:
        lesioned = by_hand(entry["layer"], entry["units"])
        for c in range(3):
            own = y == c
            drop = 100.0 * (np.mean(intact[own] == c) - np.mean(lesioned[own] == c))
            assert entry["output_drop"][c] == pytest.approx(drop, abs=1e-6)


class ViewCnn(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv, self.pool, self.fc = nn.Conv2d(1, 3, 3), nn.MaxPool2d(2), nn.Linear(27, 2)

    def forward(self, x):
        return self.fc(self.pool(torch.relu(self.conv(x))).view(x.size(0), -1))


def test_reshape_by_the_batch_size_maps_positions_to_channels_and_any_batch_runs():
    from models.trace import trace_module

    model = ViewCnn().eval()
    traced = trace_module(model, torch.randn(4, 1, 8, 8))
    assert traced.network.arch == [1, 3, 2]
    weight = model.fc.weight.detach().numpy().reshape(2, 3, 9)  # channel-major flatten
    np.testing.assert_allclose(traced.network.weights[1], np.abs(weight).sum(axis=2), rtol=1e-6)
    x = torch.randn(7, 1, 8, 8)
    torch.testing.assert_close(traced.logits(x), model(x))
