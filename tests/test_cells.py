"""Cell networks: the graph file, the model, training, and the cell-level analyses.

References are independent of the code under test: shapes and edges written out by hand, forward hooks
that zero a cell's output in the real module (the lesion drops), per-class accuracies counted here, and
L1 norms of weight slices taken directly from the module's parameters.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from models.cells import CellNetwork, cell_level_network, cell_output_norms, prune_cells
from tests.conftest import REPO, call_main
from utils.cell_graph import parse_cell_edgelist, read_cell_graph
from utils.errors import InputError

EXAMPLE = REPO / "datasets" / "structures" / "cells-6conv.edgelist"
TRAIN = [
    "--experiment", "train", "--task", "digits_10way", "--structure", str(EXAMPLE),
    "--lr", "0.01", "--batch_size", "32", "--loss", "CE", "--seed", "0",
]  # fmt: skip


def test_shipped_example_is_six_conv_cells_with_one_skip():
    graph = read_cell_graph(EXAMPLE)
    assert graph.nodes == ("a", "b", "c", "d", "e", "f")
    assert all(spec[0].text() == "conv:8:3" for spec in graph.specs)
    depth = graph.depths()
    skips = [(s, t) for s, t in graph.edges if depth[t] > depth[s] + 1]
    assert [(graph.nodes[s], graph.nodes[t]) for s, t in skips] == [("a", "d")]
    assert graph.inputs == [0] and graph.outputs == [4, 5]


def test_a_graph_without_cell_attributes_is_not_a_cell_graph():
    assert read_cell_graph(REPO / "datasets" / "structures" / "skip-4-12-12-4.edgelist") is None


def test_graphml_cells_read_like_the_edge_list(tmp_path):
    import networkx as nx

    graph = nx.DiGraph()
    for node in "xyz":
        graph.add_node(node, cell="fc:6")
    graph.add_edges_from([("x", "y"), ("x", "z"), ("y", "z")])
    nx.write_graphml(graph, tmp_path / "g.graphml")
    cells = read_cell_graph(tmp_path / "g.graphml")
    assert cells.nodes == ("x", "y", "z") and cells.edges == ((0, 1), (0, 2), (1, 2))
    assert cells.kind() == "fc"


@pytest.mark.parametrize(
    "text, words",
    [
        (
            "# cell a conv:8:3\n# cell b conv:16:3\n# cell c conv:8:3\na b\na c\nb c\n",
            "'b'",
        ),
        ("# cell a conv:8:3\n# cell b conv:8:3\na b\nb a\n", "cycle"),
        ("# cell a conv:8:x\n# cell b conv:8:3\na b\n", "does not parse"),
        ("# cell a conv:8:3\na b\n", "no cell spec"),
        ("# cell a conv:100000:3\n# cell b conv:8:3\na b\n", "needs"),  # sized before allocating
        ("# cell a.x conv:8:3\n# cell b conv:8:3\na.x b\n", "no '.'"),
    ],
)
def test_bad_cell_graphs_are_one_line_exit_2_before_any_work(tmp_path, capsys, text, words):
    path = tmp_path / "bad.edgelist"
    path.write_text(text)
    results = tmp_path / "res"
    argv = [*TRAIN, "--structure", str(path), "--epochs", "1", "--result_path", results]
    argv += ["--visualization_path", tmp_path / "vis"]
    rc, out, err = call_main([str(a) for a in argv], capsys)
    lines = [line for line in err.strip().splitlines() if line]
    assert rc == 2 and len(lines) == 1 and lines[0].startswith("error") and words in lines[0], err
    assert str(path) in lines[0] or "bad.edgelist" in lines[0]
    assert not results.exists()


def test_mismatched_widths_name_both_cells():
    graph = parse_cell_edgelist("# cell a conv:8:3\n# cell b conv:4:3\n# cell c conv:8:3\na c\nb c\n", "g")
    with pytest.raises(InputError, match="'a'.*'b'|'b'.*'a'"):
        CellNetwork(graph, (1, 8, 8), 10)


def _hand_forward(model: CellNetwork, x: torch.Tensor, zeroed=()) -> torch.Tensor:
    """The cell network's function written out with torch.nn.functional, cells in `zeroed` output 0."""
    import torch.nn.functional as F

    def conv(layer, h):
        return F.conv2d(h, layer.weight * layer.weight_mask, layer.bias * layer.bias_mask, padding=1)

    h0 = F.relu(conv(model.stem, x.view(-1, 1, 8, 8)))
    out = {}
    for node, preds in [
        ("a", []),
        ("b", ["a"]),
        ("c", ["a"]),
        ("d", ["a", "b", "c"]),
        ("e", ["d"]),
        ("f", ["d"]),
    ]:
        h = h0 if not preds else sum(out[p] for p in preds)
        y = F.relu(conv(model.cells[node].layers[0], h))
        out[node] = torch.zeros_like(y) if node in zeroed else y
    feats = torch.cat([out["e"].mean((2, 3)), out["f"].mean((2, 3))], 1)
    return F.linear(feats, model.head.weight * model.head.weight_mask, model.head.bias * model.head.bias_mask)


def test_forward_and_gated_copies_match_the_hand_written_network():
    torch.manual_seed(0)
    model = CellNetwork(read_cell_graph(EXAMPLE), (1, 8, 8), 10).eval()
    x = torch.randn(9, 64)
    assert torch.allclose(model(x), _hand_forward(model, x), atol=1e-5)
    gates = torch.ones(2, 6)
    gates[1, [1, 4]] = 0  # cells b and e
    copies = model.gated_logits(x, gates)
    assert torch.allclose(copies[1], _hand_forward(model, x, zeroed=("b", "e")), atol=1e-5)


def test_checkpoint_and_export_round_trip(tmp_path):
    torch.manual_seed(1)
    model = CellNetwork(read_cell_graph(EXAMPLE), (1, 8, 8), 10).eval()
    torch.save(model.state_dict(), tmp_path / "model.pt")
    back = CellNetwork.from_state_dict(torch.load(tmp_path / "model.pt", weights_only=True))
    x = torch.randn(4, 1, 8, 8)
    assert torch.equal(back(x), model(x))
    program = torch.export.export(model, (x,))
    torch.export.save(program, tmp_path / "model.pt2")
    loaded = torch.export.load(tmp_path / "model.pt2").module()
    assert torch.allclose(loaded(x), model(x), atol=1e-6)


def test_cell_graph_edge_weights_are_l1_norms_of_connecting_weights():
    torch.manual_seed(2)
    model = CellNetwork(read_cell_graph(EXAMPLE), (1, 8, 8), 10)
    with torch.no_grad():
        model.cells["b"].layers[0].bias_mask[3] = 0  # channel 3 of b is dead: d's weights from it drop out
        model.cells["b"].layers[0].weight_mask[3] = 0
    net = cell_level_network(model)
    names = [name for layer in net.layout["unit_names"] for name in layer]
    offsets = net.offsets
    w_d = model.cells["d"].layers[0].weight.detach().abs()
    expected_bd = float(w_d.sum()) - float(w_d[:, 3].sum())
    expected_cd = float(w_d.sum())
    layer_b, layer_d = 2, 3
    b = names.index("b") - offsets[layer_b]
    c = names.index("c") - offsets[layer_b]
    assert net.weights[layer_b][0, b] == pytest.approx(expected_bd, rel=1e-5)
    assert net.weights[layer_b][0, c] == pytest.approx(expected_cd, rel=1e-5)
    skip = [blk for blk in net.skips if (blk.source, blk.target) == (1, layer_d)][0]
    assert skip.weight[0, 0] == pytest.approx(expected_cd, rel=1e-5)  # a is whole: d's full input norm
    head = model.head.weight.detach().abs()
    assert net.weights[-1][7, names.index("f") - offsets[4]] == pytest.approx(
        float(head[7, 8:].sum()), rel=1e-5
    )


def test_prune_cells_removes_the_weakest_outputs():
    torch.manual_seed(3)
    model = CellNetwork(read_cell_graph(EXAMPLE), (1, 8, 8), 10)
    x = torch.rand(20, 64)
    norms = {}
    hooks = [
        model.cells[n].register_forward_hook(
            lambda m, i, o, n=n: norms.__setitem__(n, float(o.detach().abs().sum() / 20))
        )
        for n in model.graph.nodes
    ]
    model.eval()
    model(x)
    for h in hooks:
        h.remove()
    assert np.allclose(cell_output_norms(model, x).numpy(), [norms[n] for n in model.graph.nodes], rtol=1e-5)
    pruned = prune_cells(model, x, 2)
    candidates = sorted((v, n) for n, v in norms.items() if n not in ("a", "d"))  # a and d are cut vertices
    assert pruned == [n for _, n in candidates[:2]]
    assert model.cells_kept() == [n for n in model.graph.nodes if n not in pruned]
    with pytest.raises(ValueError):
        prune_cells(model, x, 10)


@pytest.mark.slow
def test_train_detect_and_lesion_cells_match_hand_zeroing(tmp_path, capsys):
    results, pictures = tmp_path / "res", tmp_path / "vis"
    where = ["--result_path", str(results), "--visualization_path", str(pictures), "--quiet"]
    rc, out, err = call_main([*TRAIN, "--epochs", "12", *where], capsys)
    assert rc == 0, err
    checkpoint = next(results.rglob("model.pt"))
    assert json.loads((checkpoint.parent / "metrics.json").read_text())["test_accuracy"] > 80
    rc, out, err = call_main(
        ["--experiment", "module_detection", "--checkpoint", str(checkpoint), "--level", "cells", "--method",
         "spectral", "--n_clusters", "2", *where],
        capsys,
    )  # fmt: skip
    assert rc == 0, err
    modules_file = next(results.rglob("cells/modules_spectral.json"))
    modules = json.loads(modules_file.read_text())
    assert sorted(modules["cells"]) == list("abcdef")
    assert sorted(n for names in modules["cell_modules"].values() for n in names) == list("abcdef")
    assert (next(pictures.rglob("cells/cells_spectral.png"))).stat().st_size > 0
    rc, out, err = call_main(
        ["--experiment", "lesion", "--checkpoint", str(checkpoint), "--level", "cells", "--partition",
         str(modules_file), "--task", "digits_10way", "--num_shuffles", "5", *where],
        capsys,
    )  # fmt: skip
    assert rc == 0, err
    lesion = json.loads(next(results.rglob("cells/lesion.json")).read_text())
    model = CellNetwork.from_state_dict(torch.load(checkpoint, weights_only=True)).eval()
    x, y = _digits_test(tmp_path)
    base = _per_class(_hand_forward(model, x), y)
    for entry in lesion["submodules"]:
        drop = base - _per_class(_hand_forward(model, x, zeroed=entry["cells"]), y)
        assert np.allclose(entry["output_drop"], drop, atol=1e-6), entry["cells"]
    # the unit level: the module traced like any torch model, units named after the cells' layers
    rc, out, err = call_main(
        ["--experiment", "module_detection", "--checkpoint", str(checkpoint), "--method", "spectral",
         "--n_clusters", "2", *where],
        capsys,
    )  # fmt: skip
    assert rc == 0, err
    units = json.loads(
        next(p for p in results.rglob("modules_spectral.json") if p.parent.name != "cells").read_text()
    )
    widths = [1, 8, 8, 16, 8, 16, 10]  # input, stem, a, b+c, d, e+f, outputs
    assert units["arch"] == widths and len(units["unit_names"]) == sum(widths)
    assert {n.split(":")[0] for n in units["unit_names"][9:17]} == {"cells.a.layers.0"}


def _digits_test(tmp_path):
    """The digits_10way test split as training saw it (inputs (n, 64), class indices (n,))."""
    from run.common import prepare
    from run.parser import parse_config

    task = prepare(parse_config([*TRAIN, "--result_path", str(tmp_path)])).task
    return torch.as_tensor(task.x_test, dtype=torch.float32), np.asarray(task.y_test).argmax(1)


def _per_class(logits: torch.Tensor, y: np.ndarray) -> np.ndarray:
    pred = logits.argmax(1).numpy()
    return np.array([100.0 * np.mean(pred[y == k] == k) for k in range(10)])


def test_level_cells_refuses_a_network_that_is_not_a_cell_network(tmp_path, capsys):
    rc, out, err = call_main(
        ["--experiment", "module_detection", "--checkpoint", str(REPO / "datasets" / "structures" /
         "skip-4-12-12-4.edgelist"), "--level", "cells", "--result_path", str(tmp_path / "r")],
        capsys,
    )  # fmt: skip
    assert rc == 2 and "--level cells" in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "r").exists()


def test_docs_page_names_the_shipped_example():
    text = (REPO / "docs" / "cells.md").read_text()
    assert "cells-6conv.edgelist" in text and Path(EXAMPLE).is_file()
