"""Networks as graphs: LayeredNetwork, graph files both ways, DAG networks with skip
connections, export_graph, saliency masks, the method registry and the layer contract."""

from __future__ import annotations

import json
from pathlib import Path

import networkx as nx
import numpy as np
import pytest
import torch

from detection_pipeline.methods import find_modules
from models.dag import DAGNetwork
from models.from_network import network_of, torch_model
from models.mlp import MLP
from tests.conftest import REPO, call_main, one_error_line, out_folder
from utils.errors import InputError
from utils.graph_io import network_from_networkx, network_to_networkx, read_graph, write_graph
from utils.network import Block, LayeredNetwork
from utils.network_files import network_from_state_dict, read_npz_network
from utils.saliency import saliency_masks

SHIPPED = sorted((REPO / "tests" / "data" / "reference_networks").glob("*.npz"))
FORMATS = {"graphml": ".graphml", "edgelist": ".edgelist", "npz": ".npz"}
STRUCTURE = REPO / "datasets" / "structures" / "skip-4-12-12-4.edgelist"


def _manual_forward(network: LayeredNetwork, x: np.ndarray) -> np.ndarray:
    """Logits by plain numpy, block by block (the independent reference for torch_model)."""
    h = [x.astype(np.float64)]
    for t in range(1, len(network.arch)):
        z = np.asarray(network.biases[t - 1], np.float64).copy()
        for block in network.blocks():
            if block.target == t:
                z = z + h[block.source] @ block.kept.T
        h.append(np.maximum(z, 0) if t < len(network.arch) - 1 else z)
    return h[-1]


def test_adjacency_is_the_whole_network_by_hand():
    w0 = np.array([[1.0, -2.0], [0.0, 3.0]])
    w1 = np.array([[4.0, -5.0]])
    net = LayeredNetwork(
        [2, 2, 1], [w0, w1], [np.zeros(2), np.zeros(1)], [np.array([[1, 1], [0, 1]]), np.ones((1, 2))]
    )
    a = net.adjacency().toarray()
    expected = np.zeros((5, 5))
    expected[0, 2], expected[1, 2], expected[1, 3] = 1, 2, 3  # input -> hidden (|w|), masked edge absent
    expected[2, 4], expected[3, 4] = 4, 5
    assert np.array_equal(a, expected)
    assert np.array_equal(net.adjacency(weighted=False).toarray(), expected > 0)
    assert np.array_equal(net.adjacency(symmetric=True).toarray(), expected + expected.T)
    assert net.density == pytest.approx(100 * 5 / 6)


@pytest.mark.parametrize("fmt", FORMATS)
def test_mlp_to_graph_to_network_gives_identical_outputs(fmt, tmp_path):
    torch.manual_seed(0)
    model = MLP([5, 7, 6, 3])
    with torch.no_grad():
        model.layers[1].weight_mask[:, 2] = 0  # a masked column must stay masked through the file
        model.layers[0].bias.normal_()
    source = network_of(model)
    path = write_graph(source, tmp_path / f"g{FORMATS[fmt]}", fmt)
    back = read_graph(path)
    x = torch.rand(11, 5)
    expected = model(x)[-1]
    got = torch_model(back)(x)[-1]
    assert torch.allclose(expected, got, atol=1e-6)
    assert back.arch == source.arch and back.n_edges() == source.n_edges()


def test_networkx_round_trip_and_deepstruct_layers():
    net = read_npz_network(SHIPPED[0])
    graph = network_to_networkx(net, partition=np.arange(net.n_units))
    assert graph.nodes["L0_1"]["layer"] == 0 and graph.nodes["L1_3"]["index"] == 3
    back = network_from_networkx(graph)
    assert (back.adjacency() != net.adjacency()).nnz == 0
    # Without layer attributes, a node's layer is the longest path from an input (deepstruct).
    plain = nx.DiGraph([("a", "b"), ("b", "c"), ("a", "c"), ("c", "d")])
    dag = network_from_networkx(plain)
    assert dag.arch == [1, 1, 1, 1]
    assert [(b.source, b.target) for b in dag.skips] == [(0, 2)]


def test_dag_forward_by_hand():
    """x -> h (one unit) -> y, plus a skip x -> y: y = w_hy * relu(w_xh x + b_h) + w_xy x + b_y."""
    w_xh, b_h, w_hy, w_xy, b_y = 2.0, -1.0, 3.0, -0.5, 0.25
    net = LayeredNetwork(
        [1, 1, 1],
        [np.array([[w_xh]]), np.array([[w_hy]])],
        [np.array([b_h]), np.array([b_y])],
        [np.ones((1, 1)), np.ones((1, 1))],
        skips=[Block(0, 2, np.array([[w_xy]]), np.ones((1, 1)))],
    )
    model = torch_model(net)
    assert isinstance(model, DAGNetwork)
    for x in (-1.0, 0.3, 2.0):
        y = w_hy * max(w_xh * x + b_h, 0.0) + w_xy * x + b_y
        assert model(torch.tensor([[x]]))[-1].item() == pytest.approx(y, abs=1e-6)
    assert network_of(model).adjacency().nnz == 3


def test_dag_file_round_trip_keeps_skips(tmp_path):
    structure = read_graph(STRUCTURE)
    assert structure.arch == [4, 12, 12, 4]
    assert sorted((b.source, b.target) for b in structure.skips) == [(0, 2), (1, 3)]
    torch.manual_seed(1)
    model = DAGNetwork.from_structure(structure)
    net = network_of(model)
    x = np.random.default_rng(0).random((9, 4)).astype(np.float32)
    assert np.allclose(model(torch.from_numpy(x))[-1].detach().numpy(), _manual_forward(net, x), atol=1e-5)
    for fmt, suffix in FORMATS.items():
        back = read_graph(write_graph(net, tmp_path / f"d{suffix}", fmt))
        assert np.allclose(
            torch_model(back)(torch.from_numpy(x))[-1].detach().numpy(), _manual_forward(net, x), atol=1e-5
        )


@pytest.mark.parametrize("fmt", FORMATS)
def test_export_graph_then_detect_gives_the_source_partition(fmt, tmp_path, capsys):
    npz = SHIPPED[1]
    expected = find_modules("sculpt", read_npz_network(npz)).labels
    out = tmp_path / f"net{FORMATS[fmt]}"
    rc, stdout, _ = call_main(
        ["--experiment", "export_graph", "--checkpoint", npz, "--graph_format", fmt, "--output", out], capsys
    )
    assert rc == 0 and out.is_file() and "wrote" in stdout
    rc, _, err = call_main(
        ["--experiment", "module_detection", "--checkpoint", out, "--result_path", tmp_path / "r",
         "--visualization_path", tmp_path / "v", "--quiet"],
        capsys,
    )  # fmt: skip
    assert rc == 0, err
    modules = json.loads((out_folder(tmp_path / "r", f"{tmp_path.name}_net") / "modules.json").read_text())
    assert modules["partition"] == expected.tolist()


def test_export_graph_carries_modules(tmp_path, capsys):
    npz = SHIPPED[0]
    labels = find_modules("sculpt", read_npz_network(npz)).labels
    part = tmp_path / "modules.json"
    part.write_text(json.dumps({"partition": labels.tolist()}))
    out = tmp_path / "g.graphml"
    rc, _, err = call_main(
        ["--experiment", "export_graph", "--checkpoint", npz, "--partition", part, "--output", out], capsys
    )
    assert rc == 0, err
    graph = nx.read_graphml(out)
    net = read_npz_network(npz)
    got = [graph.nodes[f"L{layer}_{i}"]["module"] for layer, w in enumerate(net.arch) for i in range(w)]
    assert got == labels.tolist()
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"partition": [0, 1, 2]}))
    rc, _, err = call_main(
        [
            "--experiment",
            "export_graph",
            "--checkpoint",
            npz,
            "--partition",
            bad,
            "--output",
            tmp_path / "x.graphml",
        ],
        capsys,
    )
    assert rc == 2 and "does not fit" in one_error_line(err)
    assert not (tmp_path / "x.graphml").exists()


def _edgelist(path: Path, arch, edges) -> Path:
    lines = ["# arch " + " ".join(map(str, arch))] + [f"{a} {b} 1" for a, b in edges]
    path.write_text("\n".join(lines) + "\n")
    return path


def test_bad_structures_are_one_line_errors(tmp_path, capsys):
    backwards = _edgelist(tmp_path / "back.edgelist", [4, 2, 4], [("L1_0", "L0_0"), ("L0_1", "L1_1")])
    cycle = tmp_path / "cycle.graphml"
    nx.write_graphml(nx.DiGraph([("a", "b"), ("b", "c"), ("c", "a")]), cycle)
    misfit = _edgelist(tmp_path / "misfit.edgelist", [3, 2, 4], [("L0_0", "L1_0"), ("L1_0", "L2_0")])
    for path, words in ((backwards, "later layer"), (cycle, "cycle"), (misfit, "does not fit")):
        rc, _, err = call_main(
            ["--experiment", "train", "--structure", path, "--result_path", tmp_path / "r", "--quiet"], capsys
        )
        assert rc == 2, err
        assert words in one_error_line(err)
    assert not (tmp_path / "r").exists()


@pytest.mark.slow
def test_structure_dag_trains_prunes_and_is_scored(tmp_path, capsys):
    common = ["--structure", STRUCTURE, "--modularity", "4", "2", "4", "--result_path", tmp_path / "r",
              "--visualization_path", tmp_path / "v", "--quiet"]  # fmt: skip
    rc, out, err = call_main(["--experiment", "train", *common], capsys)
    assert rc == 0, err
    assert "test accuracy 100.00%" in out
    rc, out, err = call_main(
        ["--experiment", "sculpt", *common, "--unit_pruning_gradient", "50", "--pruning_gradient", "2.5"],
        capsys,
    )
    assert rc == 0, err
    record = json.loads(next((tmp_path / "r").rglob("sculpt.json")).read_text())
    assert record["status"] == "ok" and record["test_accuracy"] == 100.0
    assert record["score"] is not None and "success" in record["score"]
    modules = json.loads(Path(record["paths"]["modules"]).read_text())
    assert modules["arch"] == [4, 12, 12, 4] and modules["n_modules"] >= 1
    state = torch.load(Path(record["chosen"]["run"]) / "model.pt", weights_only=True)
    assert any(k.startswith("skips.") for k in state), "the DAG's skip connections are part of the network"
    # pruning only removes edges: nothing outside the structure graph is ever connected
    net = network_from_state_dict(state)
    structure = read_graph(STRUCTURE)
    assert (
        net.adjacency(weighted=False)
        - net.adjacency(weighted=False).multiply(structure.adjacency(weighted=False))
    ).nnz == 0
    assert net.density < structure.density
    # the study's network.graphml holds every kept edge, skips included: counted from the checkpoint's
    # masks (layers.<i> and skips.<s>_<t>) between the units the partition keeps
    kept = np.split(np.asarray(modules["partition"]) >= 0, np.cumsum(net.arch)[:-1])
    pairs = [(f"layers.{i}", i, i + 1) for i in range(len(net.arch) - 1)]
    pairs += [(k[: -len(".weight_mask")], *map(int, k.split(".")[1].split("_"))) for k in state
              if k.startswith("skips.") and k.endswith(".weight_mask")]  # fmt: skip
    expected = sum(
        int((state[f"{key}.weight_mask"].numpy() != 0)[np.ix_(kept[t], kept[s])].sum()) for key, s, t in pairs
    )
    graphml = nx.read_graphml(Path(record["paths"]["graphml"]))
    assert graphml.number_of_edges() == expected
    assert any(graphml.nodes[v]["layer"] - graphml.nodes[u]["layer"] > 1 for u, v in graphml.edges)


def test_saliency_masks_by_hand():
    w = [torch.tensor([[0.1, -0.5], [2.0, 0.0]]), torch.tensor([[-3.0, 0.2, 1.0]])]
    m = [torch.ones(2, 2), torch.tensor([[1.0, 1.0, 0.0]])]
    kept = saliency_masks(w, m, threshold=0.15)
    assert kept[0].tolist() == [[0, 1], [1, 0]] and kept[1].tolist() == [[1, 1, 0]]
    # global: 7 weights, masked ones count as 0 -> magnitudes 0.1 .5 2 0 3 .2 0; prune 3/7 of them
    top = saliency_masks(w, m, keep_percent=100 * 4 / 7 + 1e-9)
    assert top[0].tolist() == [[0, 1], [1, 0]] and top[1].tolist() == [[1, 1, 0]]
    per_layer = saliency_masks(w, None, prune_percent=50, scope="layer")
    assert per_layer[0].tolist() == [[0, 1], [1, 0]] and per_layer[1].tolist() == [[1, 0, 0]]
    with pytest.raises(ValueError):
        saliency_masks(w, m)


def test_unknown_method_and_misfit_partition(tmp_path, capsys):
    rc, _, err = call_main(
        ["--experiment", "module_detection", "--checkpoint", SHIPPED[0], "--method", "nope"], capsys
    )
    assert rc == 2 and "sculpt" in one_error_line(err)
    with pytest.raises(InputError):
        from detection_pipeline.partition import Partition

        Partition.from_json({"partition": [0, 1]}, "x").check_fits(read_npz_network(SHIPPED[0]))


def test_no_library_module_imports_run():
    """The layer contract by hand (lint-imports checks it in CI too)."""
    offenders = []
    for folder in ("models", "utils", "detection_pipeline"):
        for path in (REPO / folder).rglob("*.py"):
            text = path.read_text()
            if "from run" in text or "import run" in text:
                offenders.append(str(path.relative_to(REPO)))
    assert offenders == []
