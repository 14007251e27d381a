"""Lesion tests of modules (after Filan et al.).

- the batched lesioned forward against our MLP with the lesioned units' weight rows and bias masks zeroed;
- statistics worked out by hand on a network whose every lesion is known in closed form;
- per-class counts by hand; per-draw seeding; same result whatever the workers and chunking;
- the published example 4 2 4 and input_overlap 8 2 k reference networks: a hidden sub-module's lesion
  changes only its own module's outputs;
- the CLI: lesion.json and pictures beside the run, one-line errors with nothing written.
"""

from __future__ import annotations

import json
import math
import shutil
import types
from pathlib import Path

import numpy as np
import pytest
import torch

from detection_pipeline.lesion import LesionOptions, control_sets, lesion_tests
from detection_pipeline.lesion.forward import (
    DenseForward,
    intact_pass,
    lesioned_logits,
    make_scorer,
    net_tensors,
)
from detection_pipeline.lesion.submodules import draw_sets, find_submodules
from detection_pipeline.partition import Partition
from tests.conftest import all_files, call_main, edge_run_path, one_error_line
from utils.errors import InputError
from utils.network import LayeredNetwork

DATA = Path(__file__).parent / "data" / "reference_networks"
OVERLAP = DATA / "input_overlap_exp__8-2-4__8-24-24-24-4__seed0_fecaec3b.npz"
REFERENCE = Path(__file__).resolve().parents[2] / "shared" / "reference" / "models"


# -- a network whose lesions are known by hand ---------------------------------------------------------
def copy_network() -> tuple[LayeredNetwork, types.SimpleNamespace]:
    """4 inputs -> 5 hidden -> 4 outputs computing y = x on the 16-row truth table.

    Hidden unit i < 4 copies input i (h_i = x_i); output i = 2 h_i - 1 (right on every row). Hidden unit 4
    reads x0 and feeds output 0 with weight 0 (alive, harmless). Lesioning hidden unit i < 4 makes output
    i constant -1 (predicts 0): right on half the rows, a 50 pp drop on output i only.
    """
    w0 = np.zeros((5, 4), np.float32)
    w0[np.arange(4), np.arange(4)] = 1.0
    w0[4, 0] = 1.0
    w1 = np.zeros((4, 5), np.float32)
    w1[np.arange(4), np.arange(4)] = 2.0
    m0 = (w0 != 0).astype(np.uint8)
    m1 = (w1 != 0).astype(np.uint8)
    m1[0, 4] = 1  # kept edge of weight 0
    net = LayeredNetwork([4, 5, 4], [w0, w1], [np.zeros(5), -np.ones(4)], [m0, m1])
    x = np.array([[(r >> (3 - b)) & 1 for b in range(4)] for r in range(16)], np.float32)
    task = types.SimpleNamespace(x_test=x, y_test=x.copy(), accuracy_kind="bits", output_groups=[])
    return net, task


# inputs, hidden (A = 0, 1; B = 2, 3, 4), outputs
COPY_LABELS = [0, 0, 1, 1] + [0, 0, 1, 1, 1] + [0, 0, 1, 1]


def fisher_by_hand(p_values) -> float:
    """Fisher's method for 2 p-values: X = -2 Σ ln p ~ chi2(4), survival exp(-X/2)(1 + X/2)."""
    x = -2.0 * sum(math.log(p) for p in p_values)
    return math.exp(-x / 2) * (1 + x / 2)


def test_statistics_by_hand():
    net, task = copy_network()
    partition = Partition(np.array(COPY_LABELS), net.arch, "hand")
    options = LesionOptions(num_shuffles=40, seed=3)
    result = lesion_tests(net, partition, task, options)
    a, b = result["submodules"]
    n = options.num_shuffles
    assert a["output_drop"] == [50.0, 50.0, 0.0, 0.0] and b["output_drop"] == [0.0, 0.0, 50.0, 50.0]
    assert a["mean_drop"] == 25.0 and a["spread"] == 2.0 and b["spread"] == 2.0
    subs = find_submodules(net, partition)
    sets_a, sets_b = (control_sets(s, options) for s in subs)
    assert sets_a.shape == (n, 2) and sets_b.shape == (n, 3)
    # A: a random pair holding the harmless unit 4 drops one output only: mean 12.5, spread 50/12.5 = 4.
    with_4 = (sets_a == 4).any(axis=1)
    random_means = np.where(with_4, 12.5, 25.0)
    assert a["p_mean"] == pytest.approx((np.count_nonzero(~with_4) + 1) / (n + 1))
    assert a["p_spread"] == 1.0  # every random spread (2 or 4) is >= 2
    assert a["range"] == 50.0 and a["p_range"] == 1.0  # every random range is 50 too
    assert a["random_mean"] == pytest.approx(random_means.mean())
    assert a["random_std"] == pytest.approx(random_means.std())
    assert a["effect"] == pytest.approx(random_means.mean() / 25.0)
    # B: a triple without unit 4 drops three outputs: mean 37.5, spread 50/37.5; with it: 25 and 2.
    with_4 = (sets_b == 4).any(axis=1)
    assert b["p_mean"] == 1.0
    assert b["p_spread"] == pytest.approx((np.count_nonzero(with_4) + 1) / (n + 1))
    assert result["combined_p"]["mean"] == pytest.approx(fisher_by_hand([a["p_mean"], b["p_mean"]]))
    assert result["combined_p"]["spread"] == pytest.approx(fisher_by_hand([a["p_spread"], b["p_spread"]]))
    assert a["own_outputs"] == [0, 1] and a["outside_drop"] == 0.0


def test_untestable_submodules_have_no_p_value():
    net, task = copy_network()
    # Module 2 holds one hidden unit out of five (4 other sets: testable); module 0 all the others but one.
    labels = [0, 0, 1, 1] + [0, 0, 0, 0, 2] + [0, 0, 1, 1]
    result = lesion_tests(net, Partition(np.array(labels), net.arch), task, LesionOptions(num_shuffles=5))
    big, small = result["submodules"]
    assert big["testable"] and small["testable"]
    # Two alive units, one module each: one other set of size 1 -> untestable.
    w = [net.weights[0][:2], net.weights[1][:, :2]]
    masks = [net.masks[0][:2], net.masks[1][:, :2]]
    tiny = LayeredNetwork([4, 2, 4], w, [np.zeros(2), -np.ones(4)], masks)
    tiny_labels = [0, 0, 1, 1] + [0, 1] + [0, 0, 1, 1]
    with pytest.raises(InputError, match="no sub-module"):
        lesion_tests(tiny, Partition(np.array(tiny_labels), tiny.arch), task, LesionOptions())
    # A whole-layer module is untestable: a result, unless nothing else is testable (an error).
    whole = [0, 0, 1, 1] + [0] * 5 + [0, 0, 1, 1]
    with pytest.raises(InputError, match="whole layer"):
        lesion_tests(net, Partition(np.array(whole), net.arch), task, LesionOptions())
    deep = LayeredNetwork(
        [4, 5, 5, 4],
        [net.weights[0], np.eye(5, dtype=np.float32), net.weights[1]],
        [np.zeros(5), np.zeros(5), -np.ones(4)],
        [net.masks[0], np.eye(5, dtype=np.uint8), net.masks[1]],
    )
    mixed = [0, 0, 1, 1] + [0, 0, 1, 1, 1] + [0] * 5 + [0, 0, 1, 1]
    result = lesion_tests(deep, Partition(np.array(mixed), deep.arch), task, LesionOptions(num_shuffles=5))
    layer2 = [e for e in result["submodules"] if e["layer"] == 2]
    assert len(layer2) == 1 and not layer2[0]["testable"] and layer2[0]["p_mean"] is None
    assert "every alive unit" in layer2[0]["reason"]
    assert result["combined_p"]["testable"] == 2


def test_partition_and_task_must_fit():
    net, task = copy_network()
    with pytest.raises(InputError, match="does not fit"):
        lesion_tests(net, Partition(np.zeros(12, dtype=int), [4, 4, 4]), task, LesionOptions())
    wrong = types.SimpleNamespace(x_test=task.x_test[:, :3], y_test=task.y_test, accuracy_kind="bits")
    with pytest.raises(InputError, match="test set"):
        lesion_tests(net, Partition(np.array(COPY_LABELS), net.arch), wrong, LesionOptions())


# -- the batched forward --------------------------------------------------------------------------------
@pytest.mark.parametrize("activation", ["relu", "sigmoid"])
@pytest.mark.parametrize("batch_norm", [False, True])
def test_batched_lesions_match_the_model(activation, batch_norm):
    from models.from_network import torch_model

    rng = np.random.default_rng(1)
    arch = [6, 10, 8, 4]
    weights = [rng.normal(size=(arch[i + 1], arch[i])).astype(np.float32) for i in range(3)]
    masks = [(rng.random(w.shape) < 0.7).astype(np.uint8) for w in weights]
    biases = [rng.normal(size=arch[i + 1]).astype(np.float32) for i in range(3)]
    norms = []
    if batch_norm:
        norms = [
            {
                "gamma": rng.random(arch[i + 1]) + 0.5,
                "beta": rng.normal(size=arch[i + 1]),
                "mean": rng.normal(size=arch[i + 1]),
                "var": rng.random(arch[i + 1]) + 0.2,
                "eps": 1e-5,
            }
            for i in range(2)
        ] + [None]
    net = LayeredNetwork(arch, weights, biases, masks, activation=activation, norms=norms)
    x = torch.from_numpy(rng.normal(size=(40, 6)).astype(np.float32))
    tensors = net_tensors(net)
    acts, pre = intact_pass(tensors, x)
    idx = torch.tensor([[0, 3], [2, 5], [9, 1]])
    later = torch.zeros(3, 8, dtype=torch.bool)
    later[0, 0] = later[2, [4, 7]] = True
    out = lesioned_logits(tensors, acts, pre, 1, idx, {2: later})
    for copy in range(3):
        model = torch_model(net)
        with torch.no_grad():
            for layer, units in ((0, idx[copy]), (1, torch.nonzero(later[copy]).flatten())):
                model.layers[layer].weight_mask[units] = 0
                model.layers[layer].bias_mask[units] = 0
            expected = model.logits(x)
        torch.testing.assert_close(out[copy], expected, atol=1e-5, rtol=1e-5)


def test_per_class_counts_by_hand():
    # Two groups of 3 classes; 4 samples. Targets: group 0 classes 0,1,1,2; group 1 classes 0,0,0,1.
    y = np.zeros((4, 6), np.float32)
    y[[0, 1, 2, 3], [0, 1, 1, 2]] = 1
    y[[0, 1, 2, 3], [3, 3, 3, 4]] = 1
    logits = torch.zeros(1, 4, 6)
    logits[0, [0, 1, 2, 3], [0, 2, 1, 2]] = 5  # group 0 predicts 0, 2, 1, 2: right on samples 0, 2, 3
    logits[0, [0, 1, 2, 3], [3, 4, 3, 4]] = 5  # group 1 predicts 0, 1, 0, 1: right on samples 0, 2, 3
    scorer = make_scorer(y, "groups", [[0, 1, 2], [3, 4, 5]])
    assert scorer.totals.tolist() == [1, 2, 1, 3, 1, 0]
    assert scorer.correct(logits).tolist() == [[1, 1, 1, 2, 1, 0]]
    bits = make_scorer(y, "bits", [])
    assert bits.correct((torch.from_numpy(y) * 2 - 1)[None]).tolist() == [[4] * 6]


# -- seeding and workers --------------------------------------------------------------------------------
def test_draw_i_does_not_depend_on_the_number_of_draws():
    alive = np.array([1, 4, 5, 8, 9, 12])
    many = draw_sets(7, (0, 2), alive, 3, 100)
    assert np.array_equal(draw_sets(7, (0, 2), alive, 3, 10), many[:10])
    assert np.isin(many, alive).all() and (np.diff(many, axis=1) > 0).all()
    assert not np.array_equal(draw_sets(8, (0, 2), alive, 3, 10), many[:10])


def overlap_case():
    from utils.network_files import load_published_npz, read_npz_network
    from utils.tasks.function_graph import load_truth_table

    published = load_published_npz(OVERLAP)
    net = read_npz_network(OVERLAP)
    table = load_truth_table("datasets/input_overlap_exp/", published.metrics["modularity"], None)
    task = types.SimpleNamespace(
        x_test=np.asarray(table.inputs, np.float32),
        y_test=np.asarray(table.outputs, np.float32),
        accuracy_kind="bits",
        output_groups=[],
    )
    return net, Partition(published.metrics["anchor_partition"], published.arch, "anchor"), task


def test_same_result_whatever_workers_and_chunks(monkeypatch):

    net, partition, task = overlap_case()
    results = []
    for workers, chunk in ((1, 2**22), (3, 2**22), (3, 64 * 17), (1, 64 * 5)):
        monkeypatch.setattr(DenseForward, "chunk_floats", chunk)  # 64 samples: a few rows per chunk
        options = LesionOptions(num_shuffles=30, double=True, num_shuffles_double=20, seed=5, workers=workers)
        results.append(json.dumps(lesion_tests(net, partition, task, options)))
    assert all(r == results[0] for r in results)


# -- sculpted networks: a sub-module's lesion stays inside its module -------------------------------------
def assert_damage_stays_inside(result: dict) -> None:
    hit = 0
    for entry in result["submodules"]:
        own = set(entry["own_outputs"])
        assert own, f"module {entry['module']} has no outputs"
        for output, drop in enumerate(entry["output_drop"]):
            if output not in own:
                assert drop == 0.0, (entry["layer"], entry["module"], output, drop)
        assert entry["outside_drop"] == 0.0
        hit += any(entry["output_drop"][o] > 0 for o in own)
    assert hit > 0  # some lesion does damage (the test is not vacuous)


def test_input_overlap_network_lesions_stay_inside_modules():
    net, partition, task = overlap_case()
    result = lesion_tests(net, partition, task, LesionOptions(num_shuffles=20))
    assert result["base_accuracy"] == [100.0] * 4
    assert_damage_stays_inside(result)


REFERENCE_CASES = (
    sorted(REFERENCE.glob("input_overlap_exp/8-2-*/8-24-24-*/*.npz")) if REFERENCE.is_dir() else []
)


@pytest.mark.skipif(not REFERENCE_CASES, reason="../shared/reference is absent")
def test_reference_input_overlap_networks_lesions_stay_inside_modules():
    from utils.network_files import load_published_npz, read_npz_network
    from utils.tasks.function_graph import load_truth_table

    for path in REFERENCE_CASES:
        published = load_published_npz(path)
        table = load_truth_table("datasets/input_overlap_exp/", published.metrics["modularity"], None)
        task = types.SimpleNamespace(
            x_test=np.asarray(table.inputs, np.float32),
            y_test=np.asarray(table.outputs, np.float32),
            accuracy_kind="bits",
            output_groups=[],
        )
        partition = Partition(published.metrics["anchor_partition"], published.arch, "anchor")
        result = lesion_tests(read_npz_network(path), partition, task, LesionOptions(num_shuffles=10))
        assert_damage_stays_inside(result)


# -- the CLI ---------------------------------------------------------------------------------------------
def published_lesion_args(root: Path) -> list[str]:
    from tests.conftest import DONE_WHEN

    return [
        *DONE_WHEN,
        "--unit_pruning_gradient", "70.0", "--pruning_gradient", "2.5",
        "--result_path", str(root), "--visualization_path", str(root.parent / "vis"), "--quiet",
    ]  # fmt: skip


def test_published_example_lesions(published_example, tmp_path, capsys):
    root = tmp_path / "results"
    shutil.copytree(published_example, root)
    args = published_lesion_args(root)
    before = all_files(root)
    rc, _, err = call_main([*args, "--experiment", "lesion"], capsys)
    assert rc == 2 and "module_detection" in one_error_line(err)
    assert all_files(root) == before and not (tmp_path / "vis").exists()

    assert call_main([*args, "--experiment", "module_detection"], capsys)[0] == 0
    rc, out, _ = call_main([*args, "--experiment", "lesion", "--double"], capsys)
    assert rc == 0 and "lesion:" in out
    run = edge_run_path(root)
    result = json.loads((run / "lesion.json").read_text())
    assert result["output_modules"] and len(result["submodules"]) >= 2
    assert_damage_stays_inside(result)
    pictures = {p.name for p in (tmp_path / "vis").rglob("*.png")}
    assert {"lesion_heatmap.png", "lesion_dependencies.png"} <= pictures


def overlap_cli_args(tmp_path: Path, partition: Path) -> list[str]:
    return [
        "--experiment", "lesion", "--checkpoint", str(OVERLAP), "--partition", str(partition),
        "--task", "boolean", "--dataset_path", "datasets/input_overlap_exp/", "--modularity", "8", "2", "4",
        "--result_path", str(tmp_path / "results"), "--visualization_path", str(tmp_path / "vis"),
        "--num_shuffles", "25", "--double", "--num_shuffles_double", "10", "--seed", "2", "--quiet",
    ]  # fmt: skip


def write_partition(path: Path, labels, arch) -> Path:
    path.write_text(json.dumps(Partition(np.asarray(labels), arch, "anchor").to_json()))
    return path


def test_cli_same_lesion_json_whatever_workers(tmp_path, capsys):
    from utils.network_files import load_published_npz

    published = load_published_npz(OVERLAP)
    partition = write_partition(
        tmp_path / "modules.json", published.metrics["anchor_partition"], published.arch
    )
    texts = []
    for workers in ("1", "4"):
        rc, _, err = call_main([*overlap_cli_args(tmp_path, partition), "--workers", workers], capsys)
        assert rc == 0, err
        (out,) = (tmp_path / "results").rglob("lesion.json")
        texts.append(out.read_text())
        out.unlink()
    assert texts[0] == texts[1]
    result = json.loads(texts[0])
    assert result["double"]["table"] and result["combined_p"]["testable"] >= 2
    assert {p.name for p in (tmp_path / "vis").rglob("*.png")} == {
        "lesion_heatmap.png",
        "lesion_dependencies.png",
    }


def test_cli_bad_input_one_line_nothing_written(tmp_path, capsys):
    from utils.network_files import load_published_npz

    published = load_published_npz(OVERLAP)
    args = overlap_cli_args(tmp_path, tmp_path / "p.json")
    cases = {
        "does not fit": write_partition(tmp_path / "small.json", np.zeros(12, int), [4, 4, 4]),
        "whole layer": write_partition(
            tmp_path / "whole.json",
            np.where(published.metrics["anchor_partition"] >= 0, 0, -1),
            published.arch,
        ),
        "does not exist": tmp_path / "missing.json",
    }
    for message, partition in cases.items():
        rc, _, err = call_main([*overlap_cli_args(tmp_path, partition)], capsys)
        assert rc == 2 and message in one_error_line(err)
    good = write_partition(tmp_path / "good.json", published.metrics["anchor_partition"], published.arch)
    no_task = [a if a != "datasets/input_overlap_exp/" else "datasets/exemplar/" for a in args]
    no_task[no_task.index(str(tmp_path / "p.json"))] = str(good)
    no_task[no_task.index("8") : no_task.index("8") + 3] = ["4", "2", "4"]
    rc, _, err = call_main(no_task, capsys)
    assert rc == 2 and "no task to evaluate" in one_error_line(err)
    rc, _, err = call_main([*overlap_cli_args(tmp_path, good), "--num_shuffles", "0"], capsys)
    assert rc == 2 and "--num_shuffles" in one_error_line(err)
    assert not (tmp_path / "results").exists() and not (tmp_path / "vis").exists()


def test_double_lesions_by_hand():
    """Two hidden layers that copy each other: hidden 1 unit i -> hidden 2 unit i -> output i (i < 4)."""
    net, task = copy_network()
    eye = np.eye(5, dtype=np.float32)
    deep = LayeredNetwork(
        [4, 5, 5, 4],
        [net.weights[0], eye, net.weights[1]],
        [np.zeros(5), np.zeros(5), -np.ones(4)],
        [net.masks[0], np.eye(5, dtype=np.uint8), net.masks[1]],
    )
    labels = [0, 0, 1, 1] + [0, 0, 1, 1, 1] * 2 + [0, 0, 1, 1]
    options = LesionOptions(num_shuffles=10, double=True, num_shuffles_double=12, double_pairs="all")
    result = lesion_tests(deep, Partition(np.array(labels), deep.arch), task, options)
    table = {(r["a"]["module"], r["b"]["module"]): r for r in result["double"]["table"]}
    assert sorted(table) == [(0, 0), (0, 1), (1, 0), (1, 1)]
    # A in both layers: the same two outputs die, once.
    same = table[(0, 0)]
    assert same["joint"]["output_drop"] == [50.0, 50.0, 0.0, 0.0] and same["joint"]["mean_drop"] == 25.0
    # With A lesioned in layer 1, A in layer 2 adds nothing; every random set adds >= 0: p = 1.
    assert same["b_given_a"]["mean_drop"] == 0.0 and same["b_given_a"]["p_mean"] == 1.0
    assert same["a_given_b"]["mean_drop"] == 0.0 and same["a_given_b"]["p_mean"] == 1.0
    # ... so layer-2 A depends fully on layer-1 A (and back): 1 − 0 / 25.
    assert same["b_given_a"]["dependence"] == 1.0 and same["a_given_b"]["dependence"] == 1.0
    # A then B: all four outputs die; B adds 25 pp on average over outputs given A.
    cross = table[(0, 1)]
    assert cross["joint"]["output_drop"] == [50.0] * 4
    assert cross["b_given_a"]["mean_drop"] == 25.0 and cross["a_given_b"]["mean_drop"] == 25.0
    assert cross["b_given_a"]["dependence"] == 0.0  # B does its 25 pp whether A is lesioned or not
    assert result["double"]["num_shuffles"] == 12


def test_pairs_adjacent_or_all():
    from detection_pipeline.lesion import lesion_pairs

    net, _ = copy_network()
    eye, ones = np.eye(5, dtype=np.float32), np.eye(5, dtype=np.uint8)
    deep = LayeredNetwork(
        [4, 5, 5, 5, 4],
        [net.weights[0], eye, eye, net.weights[1]],
        [np.zeros(5)] * 3 + [-np.ones(4)],
        [net.masks[0], ones, ones, net.masks[1]],
    )
    labels = [0, 0, 1, 1] + [0, 0, 1, 1, 1] * 3 + [0, 0, 1, 1]
    subs = find_submodules(deep, Partition(np.array(labels), deep.arch))
    layers = lambda pairs: sorted({(a.layer, b.layer) for a, b in pairs})  # noqa: E731
    assert layers(lesion_pairs(subs, "adjacent")) == [(1, 2), (2, 3)]
    assert layers(lesion_pairs(subs, "all")) == [(1, 2), (1, 3), (2, 3)]
    assert len(lesion_pairs(subs, "all")) == 12  # 2 x 2 module pairs per layer pair


def test_dead_units_are_not_lesioned_nor_drawn():
    net, task = copy_network()
    masks = [m.copy() for m in net.masks]
    masks[1][0, 4] = 0  # hidden unit 4 loses its only outgoing edge: dead
    dead = LayeredNetwork(net.arch, net.weights, net.biases, masks)
    options = LesionOptions(num_shuffles=15)
    result = lesion_tests(dead, Partition(np.array(COPY_LABELS), dead.arch), task, options)
    b = result["submodules"][1]
    assert b["units"] == [2, 3] and b["dead_units"] == [4] and b["alive_in_layer"] == 4
    subs = find_submodules(dead, Partition(np.array(COPY_LABELS), dead.arch))
    assert not np.isin(control_sets(subs[1], options), [4]).any()
    # Every pair of the 4 real units drops two outputs by 50: same damage as the true set, p = 1.
    assert b["mean_drop"] == 25.0 and b["random_mean"] == 25.0 and b["p_mean"] == 1.0
