"""Function graphs: the shipped graphs rebuild the shipped tables, ground truth, validation, table loading."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from utils.errors import SculptError
from utils.tasks.function_graph import (
    DATASETS_DIR,
    FunctionGraph,
    all_input_rows,
    find_graph,
    load_truth_table,
    read_truth_table,
    shipped_graphs,
    write_truth_table,
)

REFERENCE_TABLES = DATASETS_DIR.parent.parent / "shared" / "reference" / "truth_tables"
FAMILIES = (
    "exemplar",
    "increasing_reuse_non_separable",
    "input_overlap_exp",
    "increasing_hierarchical_levels",
)
SHIPPED_TABLES = sorted(p for f in FAMILIES for p in (DATASETS_DIR / f).glob("*.json"))


def graph_for(modularity, family=None) -> FunctionGraph:
    return FunctionGraph.from_file(find_graph(modularity, family))


def small_graph(**changes) -> dict:
    """A valid two-level graph; `changes` override top-level keys."""
    data = {
        "n_inputs": 3,
        "tables": {"MAJ": ["011", "101", "110", "111"]},
        "levels": [
            [
                {"name": "m", "gate": "MAJ", "children": [0, 1, 2]},
                {"name": "x", "gate": "xor", "children": [0, 2]},
            ],
            [{"name": "o", "gate": "or", "children": ["m", "x"]}],
        ],
        "outputs": ["m", "o"],
    }
    data.update(changes)
    return data


# ------------------------------------------------------------------------------- shipped data


def test_39_graphs_and_39_tables_are_shipped():
    graphs = shipped_graphs()
    assert len(graphs) == 39 and len(SHIPPED_TABLES) == 39
    assert {(p.parent.name, p.name) for p in graphs} == {(p.parent.name, p.name) for p in SHIPPED_TABLES}


@pytest.mark.parametrize("table_path", SHIPPED_TABLES, ids=lambda p: f"{p.parent.name}/{p.stem}")
def test_graph_rebuilds_shipped_table_bit_for_bit(table_path, tmp_path):
    graph = FunctionGraph.from_file(DATASETS_DIR / "graphs" / table_path.parent.name / table_path.name)
    inputs, outputs = graph.truth_table()
    shipped = json.loads(table_path.read_text())
    assert inputs.dtype == np.uint8 and outputs.dtype == np.uint8
    assert inputs.tolist() == shipped["inputs"]
    assert outputs.tolist() == shipped["outputs"]
    assert list(graph.modularity) == shipped["modularity"] and graph.family == shipped["family"]
    # The writer reproduces the file byte for byte, not only the bits.
    written = write_truth_table(tmp_path / table_path.name, graph.family, graph.modularity, inputs, outputs)
    assert written.read_bytes() == table_path.read_bytes()


@pytest.mark.skipif(not REFERENCE_TABLES.is_dir(), reason="../shared/reference is absent")
def test_shipped_tables_equal_the_published_reference():
    reference = sorted(REFERENCE_TABLES.glob("*/*.json"))
    assert len(reference) == 39
    for ref in reference:
        ours = DATASETS_DIR / ref.parent.name / ref.name
        assert ours.read_bytes() == ref.read_bytes(), ours


# -------------------------------------------------------------------------------- ground truth


def test_ground_truth_4_2_4_negation_is_the_same_sub_function():
    truth = graph_for([4, 2, 4]).ground_truth()
    assert (truth.n_inputs, truth.n_outputs) == (4, 4)
    assert truth.input_groups == ((0, 1), (2, 3))
    assert truth.output_groups == ((0, 1), (2, 3))
    assert truth.modules_per_level == (2,)
    assert [(s.name, s.outputs) for s in truth.levels[0]] == [("a", (0, 1)), ("b", (2, 3))]


def test_ground_truth_6_3_3_3_separable_and_reused():
    truth = graph_for([6, 3, 3, 3]).ground_truth()
    assert truth.input_groups == ((0, 1), (2, 3), (4, 5))
    assert truth.output_groups == ((0,), (1,), (2,))
    assert truth.modules_per_level == (3, 3)
    p, q, r = truth.levels[0]
    assert (p.outputs, q.outputs, r.outputs) == ((0, 1), (0, 2), (1, 2))
    assert [s.input_groups for s in truth.levels[1]] == [(0, 1), (0, 2), (1, 2)]
    assert [s.inputs for s in truth.levels[1]] == [(0, 1, 2, 3), (0, 1, 4, 5), (2, 3, 4, 5)]


def test_ground_truth_hierarchical_8_2_1_2_4():
    truth = graph_for([8, 2, 1, 2, 4]).ground_truth()
    assert truth.input_groups == ((0, 1, 2, 3), (4, 5, 6, 7))
    assert truth.output_groups == ((0, 2), (1, 3))
    assert truth.modules_per_level == (2, 1, 2)
    (h,) = truth.levels[1]
    assert h.input_groups == (0, 1) and h.outputs == (0, 1, 2, 3)


def test_ground_truth_reuse_and_overlap():
    reuse = graph_for([4, 1, 2, 4], "increasing_reuse_non_separable").ground_truth()
    assert reuse.input_groups == ((0, 1, 2, 3),)
    assert reuse.output_groups == ((0, 2), (1, 3))
    assert reuse.modules_per_level == (1, 2)
    assert graph_for([4, 1, 4]).ground_truth().output_groups == ((0, 1, 2, 3),)
    overlap = graph_for([7, 3, 2, 4]).ground_truth()
    assert overlap.input_groups == ((0, 1, 2, 3), (3, 4, 5, 6))  # x3 feeds both
    full = graph_for([4, 1, 2, 2, 2]).ground_truth()
    assert full.input_groups == ((0, 1, 2, 3), (0, 1, 2, 3))
    assert full.output_groups == ((0,), (1,))


@pytest.mark.parametrize("path", shipped_graphs(), ids=lambda p: f"{p.parent.name}/{p.stem}")
def test_sub_functions_per_depth_match_the_published_modularity(path):
    graph = FunctionGraph.from_file(path)
    truth = graph.ground_truth()
    json.dumps(truth.to_dict())  # JSON-ready
    if graph.family != "input_overlap_exp":  # there the middle numbers count input blocks, not sub-functions
        assert truth.modules_per_level == tuple(graph.modularity[1:-1])


# ------------------------------------------------------------------------ hand-written graphs


def test_table_gate_and_named_table():
    graph = FunctionGraph.from_dict(small_graph())
    inputs, outputs = graph.truth_table()
    assert inputs.shape == (8, 3) and outputs.shape == (8, 2)
    x0, x1, x2 = inputs.T.astype(int)
    majority = (x0 + x1 + x2 >= 2).astype(int)
    assert outputs[:, 0].tolist() == majority.tolist()
    assert outputs[:, 1].tolist() == (majority | (x0 ^ x2)).tolist()
    assert graph.modularity == (3, 2, 1, 2)  # derived: sub-functions per depth
    assert FunctionGraph.from_dict(graph.to_dict()).truth_table()[1].tolist() == outputs.tolist()


def test_all_gates():
    gates = ("and", "or", "xor", "nand", "nor", "xnor")
    data = {
        "n_inputs": 2,
        "levels": [
            [{"name": g, "gate": g, "children": [0, 1]} for g in gates]
            + [{"name": "t", "gate": "table", "children": [1, 0], "ones": ["10"]}],
            [
                {"name": "n", "gate": "not", "children": ["and"]},
                {"name": "i", "gate": "identity", "children": ["or"]},
            ],
        ],
        "outputs": [*gates, "t", "n", "i"],
    }
    _, outputs = FunctionGraph.from_dict(data).truth_table()
    # rows 00, 01, 10, 11
    expected = [[0, 0, 0, 1], [0, 1, 1, 1], [0, 1, 1, 0], [1, 1, 1, 0], [1, 0, 0, 0], [1, 0, 0, 1]]
    expected += [[0, 1, 0, 0], [1, 1, 1, 0], [0, 1, 1, 1]]  # t: x1=1, x0=0 only
    assert outputs.T.tolist() == expected


def test_all_input_rows_counting_order():
    assert all_input_rows(3).tolist()[:4] == [[0, 0, 0], [0, 0, 1], [0, 1, 0], [0, 1, 1]]


@pytest.mark.parametrize(
    "changes, needle",
    [
        ({"levels": [[{"name": "a", "gate": "maj", "children": [0, 1]}]], "outputs": ["a"]}, "unknown gate"),
        (
            {"levels": [[{"name": "a", "gate": "not", "children": [0, 1]}]], "outputs": ["a"]},
            "exactly 1 child",
        ),
        ({"levels": [[{"name": "a", "gate": "and", "children": [0]}]], "outputs": ["a"]}, "at least 2"),
        ({"levels": [[{"name": "a", "gate": "and", "children": [0, 7]}]], "outputs": ["a"]}, "out of range"),
        (
            {"levels": [[{"name": "a", "gate": "and", "children": [0, "b"]}]], "outputs": ["a"]},
            "earlier level",
        ),
        ({"levels": [[{"name": "a", "gate": "MAJ", "children": [0, 1]}]], "outputs": ["a"]}, "bits but"),
        ({"outputs": ["m", "zz"]}, "not a node name"),
        ({"outputs": ["m"]}, "feed no output"),
        ({"modularity": [3, 2, 5]}, "modularity"),
        ({"n_inputs": 0}, "n_inputs"),
        ({"tables": {"F": ["01", "012"]}}, "differ in length"),
        ({"tables": {"and": ["01"]}}, "shadows"),
        ({"colour": "red"}, "unknown key"),
        (
            {
                "levels": [
                    [{"name": "m", "gate": "MAJ", "children": [0, 1, 2]}],
                    [{"name": "m", "gate": "not", "children": ["m"]}],
                ]
            },
            "used twice",
        ),
    ],
)
def test_invalid_graphs_raise_one_line_config_error(changes, needle):
    with pytest.raises(SculptError) as info:
        FunctionGraph.from_dict(small_graph(**changes), source="my.json")
    message = str(info.value)
    assert needle in message and "fix:" in message and "\n" not in message and message.startswith("my.json")


def test_graph_file_errors(tmp_path):
    with pytest.raises(SculptError, match="not found"):
        FunctionGraph.from_file(tmp_path / "missing.json")
    broken = tmp_path / "broken.json"
    broken.write_text("{not json")
    with pytest.raises(SculptError, match="not valid JSON"):
        FunctionGraph.from_file(broken)


# ------------------------------------------------------------------------------ finding, loading


def test_find_graph_prefers_the_family_and_accepts_the_alias():
    assert find_graph([4, 1, 2, 16], "exemplar").parent.name == "exemplar"
    reuse = "increasing_reuse_non_separable"
    assert find_graph([4, 1, 2, 16], "non_separable_increasing_use").parent.name == reuse
    assert find_graph([4, 1, 2, 16], reuse + "/").parent.name == reuse
    assert find_graph([4, 1, 2, 16]).parent.name == "exemplar"
    assert find_graph([4, 1, 2, 8], "exemplar").parent.name == "increasing_reuse_non_separable"  # falls back
    assert find_graph([5, 5, 5]) is None


def test_load_truth_table_from_shipped_file_attaches_the_graph():
    table = load_truth_table(DATASETS_DIR / "exemplar", [4, 2, 4])
    assert table.family == "exemplar" and table.modularity == (4, 2, 4)
    assert table.inputs.shape == (16, 4) and table.outputs.shape == (16, 4) and table.inputs.dtype == np.uint8
    assert table.graph is not None and table.graph.ground_truth().input_groups == ((0, 1), (2, 3))
    reuse = load_truth_table(DATASETS_DIR / "increasing_reuse_non_separable", [4, 1, 2, 16])
    assert reuse.family == "increasing_reuse_non_separable" and reuse.graph.family == reuse.family


def test_load_truth_table_without_file_builds_from_the_graph(tmp_path):
    table = load_truth_table(tmp_path / "non_separable_increasing_use", [4, 1, 2, 4])
    assert table.graph is not None and table.path is None
    assert table.family == "increasing_reuse_non_separable" and table.outputs.shape == (16, 4)
    assert list(tmp_path.iterdir()) == []  # loading never writes


def test_load_truth_table_user_graph_and_foreign_table(tmp_path):
    graph_file = tmp_path / "my.json"
    graph_file.write_text(json.dumps(small_graph(family="mine")))
    table = load_truth_table(tmp_path, [4, 2, 4], graph_file)
    assert table.family == "mine" and table.modularity == (3, 2, 1, 2) and table.graph is not None
    # A table no shipped graph computes loads without ground truth.
    inputs = all_input_rows(4)
    write_truth_table(tmp_path / "4-2-4.json", "odd", [4, 2, 4], inputs, inputs[:, ::-1])
    foreign = load_truth_table(tmp_path, [4, 2, 4])
    assert foreign.graph is None and foreign.outputs.tolist() == inputs[:, ::-1].tolist()


@pytest.mark.parametrize(
    "content, needle",
    [
        ("{oops", "not valid JSON"),
        ('{"inputs": [[0], [1]]}', "expected an object"),
        ('{"modularity": [1, 1], "inputs": [[0], [0]], "outputs": [[0], [1]]}', "exactly once"),
        ('{"modularity": [1, 1], "inputs": [[0], [1]], "outputs": [[0], [2]]}', "only 0 and 1"),
        ('{"modularity": [1, 1], "inputs": [[0], [1]], "outputs": [[0]]}', "output rows"),
        ('{"modularity": [2, 1], "inputs": [[0], [1]], "outputs": [[0], [1]]}', "does not match"),
    ],
)
def test_corrupt_dataset_files_raise_config_error(tmp_path, content, needle):
    stem = "1-1" if '"modularity": [1, 1]' in content else "2-1" if "[2, 1]" in content else "4-2-4"
    (tmp_path / f"{stem}.json").write_text(content)
    modularity = [int(v) for v in stem.split("-")]
    with pytest.raises(SculptError) as info:
        load_truth_table(tmp_path, modularity)
    assert needle in str(info.value) and "fix:" in str(info.value) and "\n" not in str(info.value)


def test_unknown_modularity_without_graph(tmp_path):
    with pytest.raises(SculptError, match="no shipped function graph.*--graph"):
        load_truth_table(tmp_path, [5, 5, 5])


def test_read_truth_table_accepts_any_row_order(tmp_path):
    inputs = all_input_rows(2)[::-1]
    path = write_truth_table(tmp_path / "2-1.json", "x", [2, 1], inputs, inputs[:, :1])
    table = read_truth_table(path)
    assert table.inputs.tolist() == inputs.tolist()


def test_shipped_table_json_is_the_reference_schema():
    data = json.loads(Path(DATASETS_DIR / "exemplar" / "6-3-3-3.json").read_text())
    assert list(data) == ["family", "modularity", "inputs", "outputs"]
