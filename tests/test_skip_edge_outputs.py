"""Networks with skip connections keep every kept edge in their outputs: network.graphml, the module
picture (skip edges drawn as arcs) and hidden-unit separability in scoring.

The reference is independent of the writers: the graph file read by networkx (its own edge-list parser),
restricted to the units the partition keeps.
"""

from __future__ import annotations

import json
from pathlib import Path

import networkx as nx
import numpy as np
from matplotlib.collections import LineCollection

from detection_pipeline import draw as draw_mod
from detection_pipeline.draw import modules_figure
from detection_pipeline.export import build_graph, write_graphml
from detection_pipeline.scoring import score_modules
from tests.conftest import call_main
from utils.graph_io import read_graph
from utils.network import Block
from utils.tasks.function_graph import FunctionGraph, find_graph
from utils.tasks.ground_truth import ground_truth_for

ARCH = [3, 3, 3, 2]
CONSECUTIVE = [
    ("L0_0", "L1_0"), ("L0_1", "L1_1"), ("L0_2", "L1_2"),
    ("L1_0", "L2_0"), ("L1_1", "L2_1"), ("L1_2", "L2_2"),
    ("L2_0", "L3_0"), ("L2_1", "L3_0"), ("L2_2", "L3_1"),
]  # fmt: skip
SKIPS = [("L0_0", "L2_0"), ("L0_2", "L2_1"), ("L1_0", "L3_0"), ("L0_1", "L3_1"), ("L1_2", "L3_1")]
# L0_1 and L1_1 dropped (their edges with them); L2_1 sits in module 0 but is fed by module 1's L0_2
MODULE = {
    "L0_0": 0, "L0_1": -1, "L0_2": 1,
    "L1_0": 0, "L1_1": -1, "L1_2": 1,
    "L2_0": 0, "L2_1": 0, "L2_2": 1,
    "L3_0": 0, "L3_1": 1,
}  # fmt: skip
PARTITION = np.array([MODULE[f"L{layer}_{i}"] for layer, n in enumerate(ARCH) for i in range(n)])


def _layer(node: str) -> int:
    return int(node[1 : node.index("_")])


def _graph_file(path: Path) -> Path:
    """The network as a sculpt edge list (arch header, 'source target weight' lines), distinct weights."""
    edges = CONSECUTIVE + SKIPS
    lines = ["# arch " + " ".join(map(str, ARCH))]
    lines += [f"{a} {b} {0.1 * (k + 1):g}" for k, (a, b) in enumerate(edges)]
    path.write_text("\n".join(lines) + "\n")
    return path


def _reference(path: Path, module: dict) -> nx.DiGraph:
    """networkx's reading of the file, restricted to the units with module >= 0."""
    graph = nx.read_edgelist(path, comments="#", create_using=nx.DiGraph, data=[("weight", float)])
    return graph.subgraph([n for n in graph if module.get(n, -1) >= 0]).copy()


def test_graphml_and_build_graph_hold_every_kept_edge_skips_included(tmp_path):
    path = _graph_file(tmp_path / "net.edgelist")
    network = read_graph(path)
    assert network.skips, "the file has skip edges"
    reference = _reference(path, MODULE)
    assert reference.number_of_edges() == 11  # by hand: 14 edges, 3 touch a dropped unit
    out = tmp_path / "network.graphml"
    write_graphml(network.arch, network.masks, PARTITION, out, weights=network.weights, skips=network.skips)
    for got in (nx.read_graphml(out), build_graph(network.arch, network.masks, PARTITION, network.weights,
                                                   network.skips)):  # fmt: skip
        assert set(got.edges) == set(reference.edges)
        for u, v in reference.edges:
            assert np.isclose(got.edges[u, v]["weight"], reference.edges[u, v]["weight"])
        assert {n: got.nodes[n]["module"] for n in got} == {n: m for n, m in MODULE.items() if m >= 0}
    # without the skips only the consecutive edges are written (what the writers did before)
    write_graphml(network.arch, network.masks, PARTITION, out)
    assert nx.read_graphml(out).number_of_edges() == sum(
        1 for u, v in reference.edges if _layer(v) == _layer(u) + 1
    )


def _drawn(fig) -> list[tuple[int, list[np.ndarray]]]:
    """(zorder, polylines) of every LineCollection of the picture's axes."""
    ax = fig.axes[0]
    return [(c.get_zorder(), c.get_segments()) for c in ax.collections if isinstance(c, LineCollection)]


def test_picture_draws_skip_edges_as_arcs_grey_across_modules(tmp_path):
    path = _graph_file(tmp_path / "net.edgelist")
    network = read_graph(path)
    reference = _reference(path, MODULE)
    skipping = [(u, v) for u, v in reference.edges if _layer(v) > _layer(u) + 1]
    across = [(u, v) for u, v in skipping if MODULE[u] != MODULE[v]]
    assert len(skipping) == 4 and across == [("L0_2", "L2_1")]
    fig = modules_figure(network.arch, network.masks, PARTITION, weights=network.weights, skips=network.skips)
    drawn = _drawn(fig)
    lines = [seg for _, segs in drawn for seg in segs]
    arcs = [seg for seg in lines if len(seg) > 2]
    assert len(lines) == reference.number_of_edges()
    assert len(arcs) == len(skipping)
    # grey (between modules) collections sit underneath at zorder 1
    assert sum(len(seg) > 2 for z, segs in drawn if z == 1 for seg in segs) == len(across)
    # an arc joins its ends' rows and leaves the straight chord (it bends around the rows it skips)
    for arc in arcs:
        assert {round(arc[0, 1]), round(arc[-1, 1])} <= set(range(len(ARCH)))
        assert round(arc[-1, 1]) - round(arc[0, 1]) >= 2
        chord = np.interp(arc[:, 1], [arc[0, 1], arc[-1, 1]], [arc[0, 0], arc[-1, 0]])
        assert np.abs(arc[:, 0] - chord).max() > 1e-3
    stats = fig.texts[-1].get_text()
    total = len(CONSECUTIVE) + len(SKIPS)
    assert f"{reference.number_of_edges()} of {total} unmasked edges drawn" in stats
    assert f"{len(skipping)} skipping layers as arcs" in stats
    legend = [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
    assert any("skipping layers" in t for t in legend)


def test_module_detection_outputs_of_a_skip_network_hold_every_kept_edge(tmp_path, capsys, monkeypatch):
    path = _graph_file(tmp_path / "net.edgelist")
    figures = []
    real = draw_mod.modules_figure

    def recording(*args, **kwargs):
        figures.append(real(*args, **kwargs))
        return figures[-1]

    monkeypatch.setattr(draw_mod, "modules_figure", recording)
    rc, _, err = call_main(
        ["--experiment", "module_detection", "--checkpoint", path, "--result_path", tmp_path / "r",
         "--visualization_path", tmp_path / "v", "--quiet"],
        capsys,
    )  # fmt: skip
    assert rc == 0, err
    out = next((tmp_path / "r").rglob("network.graphml")).parent
    partition = json.loads((out / "modules.json").read_text())["partition"]
    nodes = [f"L{layer}_{i}" for layer, n in enumerate(ARCH) for i in range(n)]
    reference = _reference(path, dict(zip(nodes, partition, strict=True)))
    assert any(_layer(v) > _layer(u) + 1 for u, v in reference.edges), "kept skip edges to check"
    assert set(nx.read_graphml(out / "network.graphml").edges) == set(reference.edges)
    assert next((tmp_path / "v").rglob("modules.png")).is_file()
    (fig,) = figures
    assert sum(len(segs) for _, segs in _drawn(fig)) == reference.number_of_edges()


def test_hidden_separability_follows_skip_edges():
    """4 2 4 on arch 4 4 4 4, two perfect modules (units 0-1 serve a, 2-3 serve b) wired within modules;
    one skip edge from input 2 (group b) into hidden-2 unit 0 (module a) makes module a read both groups,
    which no sub-function of 4 2 4 does: hidden separability must fail with the skip and hold without."""
    arch = [4, 4, 4, 4]
    within = np.kron(np.eye(2), np.ones((2, 2))).astype(np.uint8)
    masks = [within] * 3
    partition = np.tile([0, 0, 1, 1], 4)
    truth = ground_truth_for(FunctionGraph.from_file(find_graph([4, 2, 4])))
    skip = np.zeros((4, 4), np.uint8)
    skip[0, 2] = 1  # (arch[2], arch[0]): input 2 -> hidden-2 unit 0
    assert score_modules(arch, partition, truth, masks=masks)["hidden_separability"] is True
    with_skip = score_modules(arch, partition, truth, masks=masks, skips=[Block(0, 2, skip, skip)])
    assert with_skip["hidden_separability"] is False and with_skip["success"] is False
    # downwards too: hidden-1 unit 0 (module a) feeding output 3 (group b) through a skip
    down = np.zeros((4, 4), np.uint8)
    down[3, 0] = 1  # (arch[3], arch[1])
    assert (
        score_modules(arch, partition, truth, masks=masks, skips=[Block(1, 3, down, down)])[
            "hidden_separability"
        ]
        is False
    )
    # a skip within a module changes nothing
    inside = np.zeros((4, 4), np.uint8)
    inside[1, 0] = 1
    assert (
        score_modules(arch, partition, truth, masks=masks, skips=[Block(0, 2, inside, inside)])[
            "hidden_separability"
        ]
        is True
    )


def test_sculpt_features_follow_skip_edges_like_networkx_paths():
    """Reachability features of a DAG with skips against networkx path enumeration: a unit's outgoing
    (incoming) row marks the units of later (earlier) layers joined to it by a path of 1..steps edges;
    weighted, the sum over those paths of the product of |w|."""
    from detection_pipeline.features import reachability
    from detection_pipeline.graph import LayeredGraph

    rng = np.random.default_rng(4)
    arch = [3, 4, 4, 3, 2]
    masks = [(rng.random((arch[i + 1], arch[i])) < 0.5).astype(np.uint8) for i in range(len(arch) - 1)]
    weights = [rng.normal(size=m.shape) for m in masks]
    skips = []
    for s, t in ((0, 2), (1, 3), (0, 4)):
        mask = (rng.random((arch[t], arch[s])) < 0.4).astype(np.uint8)
        skips.append(Block(s, t, rng.normal(size=mask.shape), mask))
    blocks = [Block(i, i + 1, w, m) for i, (w, m) in enumerate(zip(weights, masks, strict=True))] + skips
    offsets = np.concatenate([[0], np.cumsum(arch)])
    dag = nx.DiGraph()
    dag.add_nodes_from(range(offsets[-1]))
    for b in blocks:
        for t, s in zip(*np.nonzero(b.mask), strict=True):
            dag.add_edge(offsets[b.source] + s, offsets[b.target] + t, w=abs(float(b.weight[t, s])))
    graph = LayeredGraph.from_masks(masks, weights, skips)
    for layer in range(len(arch)):
        for direction, towards in (("outgoing", "out"), ("incoming", "in")):
            if (direction == "incoming" and layer == 0) or (
                direction == "outgoing" and layer == len(arch) - 1
            ):
                continue
            layers = range(layer + 1, len(arch)) if towards == "out" else range(layer)
            columns = [u for j in layers for u in range(offsets[j], offsets[j + 1])]
            for steps in (1, 2, 3):
                expected = np.zeros((arch[layer], len(columns)))
                for r, unit in enumerate(range(offsets[layer], offsets[layer + 1])):
                    for c, other in enumerate(columns):
                        a, b = (unit, other) if towards == "out" else (other, unit)
                        for path in nx.all_simple_paths(dag, a, b, cutoff=steps):
                            expected[r, c] += np.prod([dag.edges[p, q]["w"] for p, q in zip(path, path[1:])])
                got = reachability(graph, layer, steps, direction, weighted=True).matrix.toarray()
                assert np.allclose(got, expected)
                binary = reachability(graph, layer, steps, direction, weighted=False).matrix.toarray()
                assert np.array_equal(binary != 0, expected != 0)


def test_condense_counts_skip_edges_by_hand():
    """arch 2 2 2 2: hidden-1 unit 0 leaves only through a skip to output 0 (alive); hidden-2 unit 1 is
    entered only through a skip from input 1 and leaves nowhere (dead); input 1 then still feeds
    hidden-1 unit 1 (alive)."""
    from detection_pipeline.graph import LayeredGraph

    masks = [np.array([[1, 0], [0, 1]]), np.array([[0, 1], [0, 0]]), np.array([[1, 0], [0, 0]])]
    to_out = np.array([[1, 0], [0, 0]])  # (arch[3], arch[1]): hidden-1 unit 0 -> output 0
    from_in = np.array([[0, 0], [0, 1]])  # (arch[2], arch[0]): input 1 -> hidden-2 unit 1
    graph = LayeredGraph.from_masks(masks, skips=[Block(1, 3, to_out, to_out), Block(0, 2, from_in, from_in)])
    _, alive = graph.condense()
    assert [a.tolist() for a in alive] == [[True, True], [True, True], [True, False], [True, True]]
