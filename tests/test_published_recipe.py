"""The published training and pruning recipe: best-epoch rule, the one-unit/edge final step of the
search, and the bias masks of units left without inputs. Expected values are worked out by hand from the
published train loop and search loop (Neural Sculpting, utils/train.py and run/prune.py)."""

from __future__ import annotations

import math

import pytest
import torch

from models.mlp import MLP
from run.common import generator_for, prepare
from run.parser import parse_config
from tests.test_pruning import ScriptedRetrain, plan_for_edges, search_model
from tests.test_sculpt import sculpted  # noqa: F401  (the shared sculpt run)
from utils.pruning import edge_masks, halved_step, search
from utils.training import improves, published_val_loss, train


def kept(rule: str, epochs: list[tuple[float, float]]) -> int:
    best, index = None, -1
    for i, (accuracy, loss) in enumerate(epochs):
        if improves(rule, best, accuracy, loss):
            best, index = (accuracy, loss), i
    return index


def test_published_rule_keeps_the_last_best_accuracy_epoch_when_the_loss_is_infinite():
    inf = math.inf
    epochs = [(50.0, inf), (100.0, inf), (75.0, inf), (100.0, inf), (87.5, inf)]
    assert kept("published", epochs) == 3  # the last epoch at 100 %
    assert kept("accuracy_loss", epochs) == 1  # a tie in (accuracy, loss): the earlier epoch


def test_published_rule_with_a_finite_loss():
    # higher accuracy wins whatever its loss; at equal accuracy a loss at most the best wins (later epoch)
    epochs = [(50.0, 0.3), (100.0, 0.2), (100.0, 0.25), (100.0, 0.2), (90.0, 0.01)]
    assert kept("published", epochs) == 3
    assert kept("accuracy_loss", epochs) == 1
    # a loss of 1000 or more counts as infinite in the published loop: accuracy alone decides
    assert kept("published", [(100.0, 5000.0), (100.0, 6000.0)]) == 1


def test_published_validation_loss_divides_by_batches_minus_one():
    per_sample = torch.tensor([1.0, 2.0, 3.0, 4.0, 5.0])
    # batches of 2: means 1.5, 3.5, 5 -> sum 10 over 3 - 1 batches
    assert published_val_loss(per_sample, 2) == pytest.approx(5.0)
    assert published_val_loss(per_sample, 5) == math.inf  # one batch: division by zero
    assert published_val_loss(per_sample, 8) == math.inf


def reuse_config(*extra: str):
    return parse_config(
        [
            "--modularity", "4", "1", "2", "8", "--arch", "4", "12", "8", "--dataset_path",
            "./datasets/increasing_reuse_non_separable/", "--batch_size", "16", "--epochs", "12",
            "--lr", "0.1", *extra,
        ]
    )  # fmt: skip


def test_train_keeps_the_last_best_accuracy_epoch_with_one_validation_batch():
    config = reuse_config("--best_epoch", "published", "--table_repeats", "1")
    data = prepare(config).data
    torch.manual_seed(0)
    model = MLP(config.arch)
    metrics = train(model, data, config, generator_for(0)).metrics
    accuracies = metrics["val_accuracy"]
    best = max(accuracies)
    assert metrics["best_epoch"] == max(i for i, a in enumerate(accuracies) if a == best)
    assert metrics["test_accuracy"] == best


def test_published_search_ends_with_a_one_edge_step():
    # 64 weights, one edge = 1.5625 %. Targets: 5 no -> 2.5 no -> halved 1.25 is below one edge:
    # "stop" ends here; "one" tries one edge (1.5625 ok), goes on by one edge (3.125 no) and ends.
    stop = search(search_model(), plan_for_edges(5.0), 5.0, ScriptedRetrain([0, 0]))
    assert [h["target_percent"] for h in stop.history] == [5.0, 2.5]
    plan = plan_for_edges(5.0)
    plan.final_step = "one"
    model = search_model()
    one = search(model, plan, 5.0, ScriptedRetrain([0, 0, 100, 0]))
    assert [h["target_percent"] for h in one.history] == [5.0, 2.5, 1.5625, 3.125]
    assert [h["accepted"] for h in one.history] == [False, False, True, False]
    assert one.done and model.density() == pytest.approx(100 - 1.5625)


def test_halved_step():
    assert halved_step(10.0, 3.0, "stop") == (5.0, False)
    assert halved_step(5.0, 3.0, "stop") == (2.5, True)
    assert halved_step(5.0, 3.0, "one") == (3.0, False)
    assert halved_step(3.0, 3.0, "one") == (3.0, True)


def test_inputless_units_lose_their_bias_in_edge_pruning():
    torch.manual_seed(0)
    model = MLP([2, 3, 1])
    with torch.no_grad():
        model.layers[0].weight.copy_(torch.tensor([[5.0, 6.0], [0.01, 0.02], [7.0, 8.0]]))
        model.layers[1].weight.copy_(torch.tensor([[9.0, 10.0, 11.0]]))
        for layer in model.layers:
            layer.bias.fill_(0.5)
    # 9 weights at 20 %: percentile position 1.6, the cut falls between 0.02 and 5: hidden unit 1 loses both
    weights, biases = edge_masks(model, 20.0, "inputless")
    assert weights[0][1].sum() == 0 and weights[0].sum() == 4
    assert biases[0].tolist() == [1.0, 0.0, 1.0] and biases[1].tolist() == [1.0]
    _, kept_biases = edge_masks(model, 20.0, "keep")
    assert kept_biases[0].tolist() == [1.0, 1.0, 1.0]
    model.set_masks(weights, biases)
    hidden = model(torch.rand(5, 2))[1]
    assert torch.all(hidden[:, 1] == 0)  # dead, not a constant 0.5


def test_published_search_goes_on_after_a_cut_that_overshoots_its_target():
    # 16 of the 64 weights are exactly zero: the first cut (target 5 %) prunes all 16 tied zeros (25 %).
    def model_with_zeros():
        model = search_model()
        with torch.no_grad():
            model.layers[0].weight[:4] = 0.0
        return model

    def retrain(model):  # accuracy holds down to 70 % density
        return {"test_accuracy": 100.0 if model.density() >= 70.0 else 0.0, "test_loss": 0.0}

    pruned = model_with_zeros()
    state = search(pruned, plan_for_edges(5.0), 5.0, retrain)
    # counting from the 25 % pruned, the targets 10-25 % mask nothing new: they are skipped without
    # retraining (the hardening rule), and the schedule goes on to 30 %
    targets = [h["target_percent"] for h in state.history]
    assert targets[:2] == [5.0, 10.0] and 30.0 in targets
    assert 70.0 <= pruned.density() < 75.0
    plan = plan_for_edges(5.0)
    plan.count_from = "target"
    target = model_with_zeros()
    state = search(target, plan, 5.0, retrain)
    # counting from the targets, the schedule goes on: 10, 15, 20, 25 % prune nothing new, 30 % does
    assert [h["target_percent"] for h in state.history][:6] == [5.0, 10.0, 15.0, 20.0, 25.0, 30.0]
    assert 70.0 <= target.density() < 75.0


def test_tied_sparsest_networks_are_all_kept():
    from run.study.sculpt import choose_sparsest, tie_success_rate, tied_sparsest

    candidates = [
        {"unit_step": 25.0, "edge_step": 2.5, "density": 2.546, "test_accuracy": 100.0, "run": "a"},
        {"unit_step": 30.0, "edge_step": 2.5, "density": 3.009, "test_accuracy": 100.0, "run": "b"},
        {"unit_step": 60.0, "edge_step": 1.5, "density": 2.546, "test_accuracy": 100.0, "run": "c"},
    ]
    chosen = choose_sparsest(candidates)
    assert chosen["run"] == "a"
    assert [t["run"] for t in tied_sparsest(candidates, chosen)] == ["a", "c"]
    assert tie_success_rate([{"success": False}, {"success": True}, {"success": None}]) == 0.5
    assert tie_success_rate([{"success": None}]) is None


def test_sculpt_scores_every_tied_network(sculpted):  # noqa: F811 (the fixture)
    import json

    root, _ = sculpted
    (record_file,) = list((root / "r").rglob("sculpt.json"))
    record = json.loads(record_file.read_text())
    ties = record["ties"]
    assert ties[0]["run"] == record["chosen"]["run"] and ties[0]["success"] == record["score"]["success"]
    tied_runs = {c["run"] for c in record["candidates"] if abs(c["density"] - record["density"]) < 1e-9}
    assert {t["run"] for t in ties} == tied_runs
    assert all(t["success"] in (True, False) for t in ties)
    assert record["tie_success_rate"] == sum(t["success"] for t in ties) / len(ties)
