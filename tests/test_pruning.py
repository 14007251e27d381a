"""Pruning science: unit scores against a slow per-sample reference, schedules, masks, and the search loop."""

from __future__ import annotations

import copy
import math

import numpy as np
import pytest
import torch
from torch.nn import functional as F

from models.mlp import MLP
from tests.conftest import assert_states_equal
from utils.errors import SculptError
from utils.pruning import (
    SearchPlan,
    SearchState,
    edge_masks,
    hidden_units_pruned_percent,
    masks_equal,
    masks_from_alive,
    normalise_scores,
    percentile_cut,
    schedule_target,
    search,
    unit_alive,
    unit_masks,
    unit_scores,
    weights_pruned_percent,
)

# ------------------------------------------------------------------------------------------------ scores


def trained_net(arch=(4, 9, 7, 3), seed=0, prune_unit=None):
    """A small net with non-trivial weights and biases, optionally one hidden unit (layer, index) pruned."""
    torch.manual_seed(seed)
    model = MLP(list(arch))
    with torch.no_grad():
        for layer in model.layers:
            layer.bias.uniform_(-0.3, 0.5)
    if prune_unit is not None:
        alive = [torch.ones(w, dtype=torch.bool) for w in arch[1:-1]]
        alive[prune_unit[0]][prune_unit[1]] = False
        model.set_masks(*masks_from_alive(model, alive))
    return model


def samples(n_in=4, n_out=3, n=23, seed=1):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, n_in, generator=g)
    y = (torch.rand(n, n_out, generator=g) > 0.5).float()
    return x, y


def reference_scores(model, x, y, objective):
    """Slow reference: one sample at a time, an independent forward from the raw weights and masks,
    torch.autograd.grad of that sample's objective w.r.t. its hidden activations."""
    layers = model.layers
    totals = [torch.zeros(l.out_features, dtype=torch.float64) for l in layers[:-1]]
    for i in range(x.shape[0]):
        h = x[i].double()
        hidden = []
        for k, layer in enumerate(layers):
            w = (layer.weight * layer.weight_mask).detach().double()
            b = (layer.bias * layer.bias_mask).detach().double()
            h = w @ h + b
            if k < len(layers) - 1:
                h = torch.relu(h)
                h.requires_grad_(True)
                hidden.append(h)
        if objective == "BCE":
            value = F.binary_cross_entropy_with_logits(h, y[i].double())  # mean over outputs
        elif objective == "MSE":
            value = ((torch.sigmoid(h) - y[i].double()) ** 2).mean()
        else:  # sum of the sigmoid outputs
            value = torch.sigmoid(h).sum()
        grads = torch.autograd.grad(value, hidden)
        for k, (a, g) in enumerate(zip(hidden, grads)):
            totals[k] += a.detach().abs() * g.abs()
    return [t / x.shape[0] for t in totals]


@pytest.mark.parametrize("loss", ["BCE", "MSE"])
def test_activation_gradient_product_equals_the_per_sample_reference(loss):
    model = trained_net()
    x, y = samples()
    got = unit_scores(model, x, y, "activation_gradient_product", loss, [[0, 1, 2]])
    want = reference_scores(model, x, y, loss)
    assert [tuple(s.shape) for s in got] == [(9,), (7,)]
    for g, w in zip(got, want):
        assert torch.allclose(g.double(), w, rtol=1e-4, atol=1e-7), (g, w)
    assert all(float(s.sum()) > 0 for s in got)
    # the product of means is not the mean of products: a batch-mean gradient would give other numbers
    assert not torch.allclose(got[0].double(), _mean_loss_scores(model, x, y)[0], rtol=1e-2)


def _mean_loss_scores(model, x, y):
    acts = model(x)
    hidden = acts[1:-1]
    loss = F.binary_cross_entropy_with_logits(acts[-1], y)
    grads = torch.autograd.grad(loss, hidden)
    return [(a.abs().mean(0) * g.abs().mean(0) * x.shape[0]).double().detach() for a, g in zip(hidden, grads)]


def test_scores_do_not_depend_on_chunking():
    model = trained_net()
    x, y = samples(n=40)
    whole = unit_scores(model, x, y, "activation_gradient_product", "BCE", [[0, 1, 2]])
    chunked = unit_scores(model, x, y, "activation_gradient_product", "BCE", [[0, 1, 2]], chunk=7)
    for a, b in zip(whole, chunked):
        assert torch.allclose(a, b, rtol=1e-5, atol=1e-8)


def test_activation_sum_gradient_product_equals_the_reference():
    model = trained_net(seed=3)
    x, y = samples(seed=4)
    got = unit_scores(model, x, y, "activation_sum_gradient_product", "BCE", [[0, 1, 2]])
    want = reference_scores(model, x, y, "sum")
    for g, w in zip(got, want):
        assert torch.allclose(g.double(), w, rtol=1e-4, atol=1e-7)


def test_average_activation_weight_magnitude_by_hand():
    model = trained_net(seed=5, prune_unit=(1, 2))
    x, y = samples(seed=6)
    got = unit_scores(model, x, y, "average_activation_weight_magnitude", "BCE", [[0, 1, 2]])
    acts = model(x)
    for k in range(2):
        nxt = model.layers[k + 1]
        outgoing = (nxt.weight * nxt.weight_mask).abs().sum(dim=0)
        want = acts[k + 1].abs().mean(dim=0) * outgoing
        want = want * model.layers[k].bias_mask
        assert torch.allclose(got[k], want.detach(), rtol=1e-5, atol=1e-8)
    assert got[1][2] == 0


@pytest.mark.parametrize(
    "metric",
    ["activation_gradient_product", "activation_sum_gradient_product", "average_activation_weight_magnitude"],
)
def test_masked_units_score_zero(metric):
    model = trained_net(prune_unit=(0, 4))
    # only the bias mask marks the unit: scores must still be zero (masked units score 0 by definition)
    with torch.no_grad():
        model.layers[1].bias_mask[3] = 0
    x, y = samples()
    scores = unit_scores(model, x, y, metric, "BCE", [[0, 1, 2]])
    assert scores[0][4] == 0 and scores[1][3] == 0
    assert (scores[0] > 0).sum() >= 4
    assert model.training  # the mode is restored
    assert all(p.grad is None for p in model.parameters())  # no gradients left behind


def test_normalise_scores():
    scores = [torch.tensor([2.0, 4.0, 0.0]), torch.tensor([1.0, 3.0])]
    alive = [torch.tensor([True, True, False]), torch.tensor([True, True])]
    out = normalise_scores(scores, alive, "None", "global", 1, [2, 3, 2, 1])
    assert out[0].tolist() == [0.5, 1.0, 0.0] and out[1].tolist() == [0.25, 0.75]
    out = normalise_scores(scores, alive, "None", "global", 0, [2, 3, 2, 1])
    assert out[0].tolist() == [2.0, 4.0, 0.0] and out[1].tolist() == [1.0, 3.0]
    out = normalise_scores(scores, alive, "mean", "global", 0, [2, 3, 2, 1])
    assert out[0].tolist() == [pytest.approx(2 / 3), pytest.approx(4 / 3), 0.0] and out[1].tolist() == [
        0.5,
        1.5,
    ]
    out = normalise_scores(scores, alive, "sum_scores", "global", 0, [2, 3, 2, 1])
    assert out[0].tolist() == [pytest.approx(1 / 3), pytest.approx(2 / 3), 0.0] and out[1].tolist() == [
        0.25,
        0.75,
    ]
    out = normalise_scores(scores, alive, "num_units", "global", 0, [2, 3, 2, 1])
    assert out[0].tolist() == [1.0, 2.0, 0.0] and out[1].tolist() == [0.5, 1.5]
    out = normalise_scores(scores, alive, "prev_num_units", "global", 0, [2, 3, 2, 1])
    assert out[0].tolist() == [1.0, 2.0, 0.0] and out[1].tolist() == [0.5, 1.5]  # 2 inputs, then 2 alive
    out = normalise_scores(scores, alive, "None", "local_global", 0, [2, 3, 2, 1])
    assert out[0].tolist() == [0.5, 1.0, 0.0] and out[1].tolist() == [pytest.approx(1 / 3), 1.0]
    out = normalise_scores(scores, alive, "mean_std", "global", 0, [2, 3, 2, 1])
    assert out[0][2] == 0 and out[0][0] == 0 and out[0][1] > 0  # weakest alive unit shifted to 0


# --------------------------------------------------------------------------------------------- schedules


def test_linear_schedule():
    assert [schedule_target("linear", i, 70.0, None) for i in (1, 2, 3)] == [70.0, 140.0, 210.0]
    assert schedule_target("linear", 4, 2.5, None) == 10.0


@pytest.mark.parametrize("name", ["exponential", "exp"])
def test_exponential_schedule(name):
    # sum_{j<i} step / 2^j: 40, 40 + 20, 40 + 20 + 10, ...
    assert [schedule_target(name, i, 40.0, None) for i in (1, 2, 3, 4)] == [40.0, 60.0, 70.0, 75.0]


def test_lth_schedule():
    # each iteration removes 20 % of what is left: 20, 36, 48.8
    got = [schedule_target("lth", i, 20.0, None) for i in (1, 2, 3)]
    assert got == [pytest.approx(20.0), pytest.approx(36.0), pytest.approx(48.8)]


def test_cosine_schedule():
    # T = 4, final = 10 * 4 = 40: 40 * (1 - cos(pi t)) / 2 at t = 1/4, 1/2, 3/4, 1, then linear
    want = [
        40 * (1 - math.cos(math.pi / 4)) / 2,
        20.0,
        40 * (1 + math.cos(math.pi / 4)) / 2,
        40.0,
        50.0,
        60.0,
    ]
    got = [schedule_target("cosine", i, 10.0, 4) for i in range(1, 7)]
    assert got == [pytest.approx(w) for w in want]
    assert got[0] == pytest.approx(5.857864376)


def test_cubic_schedule():
    # 40 * (1 - (1 - t)^3): 40 * 37/64, 40 * 7/8, 40 * 63/64, 40, then +10 per iteration
    got = [schedule_target("cubic", i, 10.0, 4) for i in range(1, 6)]
    assert got == [
        pytest.approx(23.125),
        pytest.approx(35.0),
        pytest.approx(39.375),
        pytest.approx(40.0),
        50.0,
    ]


def test_one_shot_and_bad_schedules():
    assert schedule_target("None", 1, 5.0, None, one_shot=42.0) == 42.0
    for name in ("cosine", "cubic"):
        with pytest.raises(SculptError, match="iterations"):
            schedule_target(name, 1, 10.0, None)
    with pytest.raises(SculptError, match="prune_perc"):
        schedule_target("None", 1, 10.0, None)
    with pytest.raises(SculptError):
        schedule_target("weird", 1, 10.0, None)


# ------------------------------------------------------------------------------------------------- masks


def test_percentile_cut_uses_linear_interpolation():
    values = torch.arange(1.0, 11.0)  # 1..10
    # 30th percentile: position 0.3 * 9 = 2.7 -> 3.7; entries at or below: 1, 2, 3
    assert percentile_cut(values, 30.0).tolist() == [True] * 3 + [False] * 7
    assert percentile_cut(values, 100.0).all()
    assert percentile_cut(values, 0.0).tolist() == [True] + [False] * 9  # at or below the minimum
    assert percentile_cut(values, 50.0).sum() == 5  # 5.5
    shuffled = torch.tensor([5.0, 1.0, 4.0, 2.0, 3.0])
    assert percentile_cut(shuffled, 40.0).tolist() == [False, True, False, True, False]  # cut 2.6


def unit_model():
    torch.manual_seed(0)
    return MLP([3, 4, 5, 2])


SCORES = [torch.tensor([0.1, 0.15, 0.9, 0.3]), torch.tensor([0.5, 0.6, 0.7, 0.8, 0.95])]


def expected_unit_masks(dead1, dead2):
    """Masks of MLP([3, 4, 5, 2]) with hidden units dead1 (layer 1) and dead2 (layer 2) pruned."""
    w = [torch.ones(4, 3), torch.ones(5, 4), torch.ones(2, 5)]
    b = [torch.ones(4), torch.ones(5), torch.ones(2)]
    for u in dead1:
        w[0][u, :] = 0
        b[0][u] = 0
        w[1][:, u] = 0
    for u in dead2:
        w[1][u, :] = 0
        b[1][u] = 0
        w[2][:, u] = 0
    return w, b


def test_unit_masks_global_scale():
    # 9 scores; 30th percentile at position 2.4 of the sorted list: 0.3 + 0.4 * (0.5 - 0.3) = 0.38
    w, b = unit_masks(unit_model(), SCORES, 30.0, "global")
    ew, eb = expected_unit_masks([0, 1, 3], [])
    assert all(torch.equal(x, y) for x, y in zip(w, ew)) and all(torch.equal(x, y) for x, y in zip(b, eb))


def test_unit_masks_local_scale():
    # layer 1: position 0.9 -> 0.145 prunes unit 0; layer 2: position 1.2 -> 0.62 prunes units 0 and 1
    w, b = unit_masks(unit_model(), SCORES, 30.0, "local")
    ew, eb = expected_unit_masks([0], [0, 1])
    assert all(torch.equal(x, y) for x, y in zip(w, ew)) and all(torch.equal(x, y) for x, y in zip(b, eb))


def test_unit_masks_keep_pruned_units_pruned_and_do_not_touch_the_model():
    model = unit_model()
    model.set_masks(*expected_unit_masks([2], [4]))
    before = copy.deepcopy(model.state_dict())
    scores = [torch.tensor([0.1, 0.15, 0.0, 0.3]), torch.tensor([0.5, 0.6, 0.7, 0.8, 0.0])]
    w, b = unit_masks(model, scores, 10.0, "global")  # position 0.8 -> 0.0: only the two dead units
    ew, eb = expected_unit_masks([2], [4])
    assert all(torch.equal(x, y) for x, y in zip(w, ew)) and all(torch.equal(x, y) for x, y in zip(b, eb))
    w, b = unit_masks(model, scores, 40.0, "global")  # position 3.2 -> 0.17: units 0, 1 of layer 1 too
    ew, eb = expected_unit_masks([0, 1, 2], [4])
    assert all(torch.equal(x, y) for x, y in zip(w, ew)) and all(torch.equal(x, y) for x, y in zip(b, eb))
    assert_states_equal(model.state_dict(), before)
    model.set_masks(w, b)
    assert hidden_units_pruned_percent(model) == pytest.approx(100 * 4 / 9)
    assert [a.tolist() for a in unit_alive(model)] == [[False, False, False, True], [True] * 4 + [False]]
    assert model.units_kept() == [3, 1, 4, 2]
    assert masks_equal(model, w, b)
    assert not masks_equal(model, *expected_unit_masks([], []))


def edge_model():
    model = MLP([3, 4, 2])
    with torch.no_grad():
        # 12 + 8 = 20 weights with distinct magnitudes 1..20 (signs alternate)
        values = torch.arange(1.0, 21.0) * torch.tensor([1.0, -1.0]).repeat(10)
        perm = torch.tensor([7, 19, 2, 11, 0, 15, 5, 13, 9, 17, 3, 18, 1, 8, 14, 6, 16, 4, 12, 10])
        flat = values[perm]
        model.layers[0].weight.copy_(flat[:12].view(4, 3))
        model.layers[1].weight.copy_(flat[12:].view(2, 4))
    return model


def test_edge_masks_prune_the_smallest_magnitudes_globally():
    model = edge_model()
    before = copy.deepcopy(model.state_dict())
    w, b = edge_masks(model, 25.0)  # position 0.25 * 19 = 4.75 -> cut 5.75: |w| in 1..5 go
    mags = [(l.weight * l.weight_mask).detach().abs() for l in model.layers]
    for m, mask in zip(mags, w):
        assert torch.equal(mask, (m > 5.5).float())
    assert sum(int((1 - m).sum()) for m in w) == 5
    assert all(torch.equal(x, torch.ones_like(x)) for x in b)  # biases untouched
    assert_states_equal(model.state_dict(), before)  # masks are returned, not applied


def test_edge_masks_keep_masked_weights_masked():
    model = edge_model()
    big = model.layers[0].weight.detach().abs().argmax()  # |w| = 20 (or 19) lives in layer 0
    first = [torch.ones(4, 3), torch.ones(2, 4)]
    first[0].view(-1)[big] = 0
    first[1][1, 2] = 0
    model.set_masks(first)
    w, _ = edge_masks(model, 25.0)
    # masked weights count as zero: 2 zeros + |w| in the remaining 18 values; cut at position 4.75
    assert w[0].view(-1)[big] == 0 and w[1][1, 2] == 0
    assert sum(int((1 - m).sum()) for m in w) == 5
    model.set_masks(w)
    assert weights_pruned_percent(model) == pytest.approx(25.0)
    assert model.density() == pytest.approx(75.0)


# ------------------------------------------------------------------------------------------------ search


class ScriptedRetrain:
    """A fake retrain: returns scripted accuracies, nudges the weights (to check reverts), records calls."""

    def __init__(self, accuracies):
        self.accuracies = list(accuracies)
        self.calls = []

    def __call__(self, model):
        self.calls.append(model.density())
        with torch.no_grad():
            for layer in model.layers:
                layer.weight.mul_(1.01)
        return {"test_accuracy": self.accuracies.pop(0), "test_loss": 0.1}


def plan_for_edges(step, schedule="linear", threshold=100.0, total=64):
    return SearchPlan(
        target=lambda i: schedule_target(schedule, i, step, None),
        make_masks=edge_masks,
        pruned_percent=weights_pruned_percent,
        min_step=100.0 / total,
        threshold=threshold,
        kind="edges",
    )


def search_model():
    torch.manual_seed(7)
    return MLP([4, 8, 4])  # 32 + 32 = 64 weights, one edge = 1.5625 %


def test_search_accepts_reverts_halves_and_stops():
    model = search_model()
    retrain = ScriptedRetrain([100, 90, 100, 80, 100, 99, 100, 50, 100, 0])
    accepted_states = []
    state = search(
        model,
        plan_for_edges(25.0),
        25.0,
        retrain,
        on_accept=lambda m, s: accepted_states.append((copy.deepcopy(m.state_dict()), s.iteration)),
    )
    # targets: 25 ok | 50 no -> step 12.5 | 37.5 ok | 50 no -> 6.25 | 43.75 ok | 50 no -> 3.125 | 46.875 ok
    # | 50 no -> 1.5625 (one edge, still allowed) | 48.4375 ok | 50 no -> 0.78125 < one edge: stop
    targets = [25.0, 50.0, 37.5, 50.0, 43.75, 50.0, 46.875, 50.0, 48.4375, 50.0]
    steps = [25.0, 25.0, 12.5, 12.5, 6.25, 6.25, 3.125, 3.125, 1.5625, 1.5625]
    oks = [True, False, True, False, True, False, True, False, True, False]
    accs = [100, 90, 100, 80, 100, 99, 100, 50, 100, 0]
    assert [h["iteration"] for h in state.history] == list(range(1, 11))
    assert [h["target_percent"] for h in state.history] == targets
    assert [h["step"] for h in state.history] == steps
    assert [h["accepted"] for h in state.history] == oks
    assert [h["test_accuracy"] for h in state.history] == accs
    # the cut prunes exactly the target number of the 64 edges (distinct magnitudes)
    assert [h["pruned_percent"] for h in state.history] == targets
    assert [h["density"] for h in state.history] == [100 - t for t in targets]
    assert all(h["units_kept"] == [4, 8, 4] for h in state.history)
    assert set(state.history[0]) == {
        "iteration",
        "target_percent",
        "step",
        "accepted",
        "test_accuracy",
        "pruned_percent",
        "density",
        "units_kept",
    }
    assert retrain.calls == [100 - t for t in targets]  # retrain sees the new masks
    assert state.done and state.linear and state.step == 0.78125
    assert state.accepted_percent == 48.4375 and state.metrics["test_accuracy"] == 100
    assert state.iteration == 10
    # the model is the last accepted network (with its retrained weights), not a rejected one
    assert [it for _, it in accepted_states] == [1, 3, 5, 7, 9]
    assert_states_equal(model.state_dict(), accepted_states[-1][0])
    assert model.density() == pytest.approx(100 - 48.4375)


def test_search_reverts_the_weights_of_a_rejected_step():
    model = search_model()
    start = copy.deepcopy(model.state_dict())
    state = search(model, plan_for_edges(30.0), 30.0, ScriptedRetrain([10, 10, 10, 10, 10]))
    # 30 no -> 15 no -> 7.5 no -> 3.75 no -> 1.875 no -> 0.9375 < 1.5625: stop; nothing accepted
    assert [h["target_percent"] for h in state.history] == [30.0, 15.0, 7.5, 3.75, 1.875]
    assert not any(h["accepted"] for h in state.history)
    assert state.accepted_percent == 0.0 and state.metrics == {}
    assert_states_equal(model.state_dict(), start)  # untouched weights and masks


def test_search_does_not_retrain_at_100_percent():
    model = search_model()
    retrain = ScriptedRetrain([100, 100, 100] + [0] * 10)
    state = search(model, plan_for_edges(60.0), 60.0, retrain)
    # 60 % of 64 edges: percentile position 0.6 * 63 = 37.8, so 38 edges (59.375 %) go; accepted.
    # Next schedule target 120 >= 100: rejected without retraining, step = (120 - 59.375) / 2.
    h = state.history
    assert [e["target_percent"] for e in h[:3]] == [60.0, 120.0, 59.375 + 60.625 / 2]
    assert h[0]["pruned_percent"] == 59.375 and h[0]["accepted"]
    # Targets at or above 100 % are recorded as skipped, not as evaluated with accuracy 0.
    assert h[1]["accepted"] is False and "test_accuracy" not in h[1] and "100%" in h[1]["skipped"]
    over = [e for e in h if e["target_percent"] >= 100]
    assert len(over) >= 2 and all("skipped" in e and not e["accepted"] for e in over)
    assert len(retrain.calls) == len(h) - len(over)
    assert state.done and model.density() > 0


def test_search_threshold_is_inclusive():
    model = search_model()
    state = search(
        model,
        plan_for_edges(25.0, threshold=87.5),
        25.0,
        ScriptedRetrain([87.5, 87.49, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0]),
    )
    assert state.history[0]["accepted"] is True and state.history[1]["accepted"] is False


def test_shrinking_schedule_stops_when_the_increment_is_below_one_edge():
    model = search_model()
    retrain = ScriptedRetrain([100] * 20)
    state = search(model, plan_for_edges(10.0, schedule="exp"), 10.0, retrain)
    # exp targets 10, 15, 17.5, 18.75: the cut prunes 7, 10, 12 of the 64 edges (positions 6.3, 9.45, 11.025
    # round up), so at 18.75 % nothing is left to gain and the search stops without another entry
    h = state.history
    assert [e["target_percent"] for e in h] == [10.0, 15.0, 17.5]
    assert [e["pruned_percent"] for e in h] == [10.9375, 15.625, 18.75]
    assert [e["step"] for e in h] == [10.0, 15.0 - 10.9375, 17.5 - 15.625]
    assert all(e["accepted"] for e in h)
    assert state.done and state.iteration == 4 and len(retrain.calls) == 3


def test_shrinking_schedule_below_one_edge_at_once():
    model = search_model()
    retrain = ScriptedRetrain([100] * 20)
    state = search(model, plan_for_edges(3.0, schedule="exp"), 3.0, retrain)
    # 3 % -> 2 edges (3.125 %); next target 4.5 adds 1.375 % < one edge (1.5625 %): stop
    assert [e["target_percent"] for e in state.history] == [3.0]
    assert state.accepted_percent == 3.125 and state.done and len(retrain.calls) == 1


def test_search_resumes_from_a_saved_state():
    """Stop after the second accepted step (as a killed run would), resume from the saved state and model."""
    accs = [100, 90, 100, 80, 100, 99, 100, 50, 100, 0]
    full_model = search_model()
    full = search(full_model, plan_for_edges(25.0), 25.0, ScriptedRetrain(accs))

    saved = {}

    class Killed(Exception):
        pass

    def save_then_die(model, state):
        saved["model"] = copy.deepcopy(model.state_dict())
        saved["state"] = copy.deepcopy(state)
        if state.iteration == 3:
            raise Killed

    model = search_model()
    retrain = ScriptedRetrain(accs)
    with pytest.raises(Killed):
        search(model, plan_for_edges(25.0), 25.0, retrain, on_accept=save_then_die)
    resumed_model = search_model()
    resumed_model.load_state_dict(saved["model"])
    state = search(resumed_model, plan_for_edges(25.0), 25.0, ScriptedRetrain(accs[3:]), state=saved["state"])
    assert state.history == full.history
    assert_states_equal(resumed_model.state_dict(), full_model.state_dict())


def test_unit_search_with_real_masks():
    """Units: one unit is 100 / 12 %; the scores decide which units go and the history counts units."""
    torch.manual_seed(0)
    model = MLP([4, 6, 6, 2])
    x, y = samples(n_in=4, n_out=2)

    def make_masks(m, percent):
        scores = unit_scores(m, x, y, "activation_gradient_product", "BCE", [[0, 1]])
        return unit_masks(m, scores, percent, "global")

    plan = SearchPlan(
        target=lambda i: schedule_target("linear", i, 50.0, None),
        make_masks=make_masks,
        pruned_percent=hidden_units_pruned_percent,
        min_step=100 / 12,
        threshold=100.0,
        kind="units",
    )
    state = search(model, plan, 50.0, ScriptedRetrain([100, 100, 0]))
    # 50 ok (6 of 12 units) | 100: rejected, no retrain -> 25 | 75 ok | 100 no -> 12.5 | 87.5 no -> 6.25 stop
    assert [h["target_percent"] for h in state.history] == [50.0, 100.0, 75.0, 100.0, 87.5]
    assert [h["accepted"] for h in state.history] == [True, False, True, False, False]
    assert sum(model.units_kept()[1:-1]) == 3
    assert hidden_units_pruned_percent(model) == 75.0
    for layer, nxt in zip(model.layers[:-1], model.layers[1:]):
        dead = layer.bias_mask == 0
        assert (layer.weight_mask[dead] == 0).all() and (nxt.weight_mask[:, dead] == 0).all()


def test_search_state_defaults():
    state = SearchState()
    assert (state.iteration, state.step, state.accepted_percent, state.linear, state.done) == (
        0,
        0.0,
        0.0,
        False,
        False,
    )
    assert state.history == [] and state.metrics == {}
    assert np.isclose(100 / 64, 1.5625)


def test_linear_percentile_is_numpys_percentile_exactly():
    import numpy as np

    from utils.saliency import linear_percentile

    rng = np.random.default_rng(0)
    for trial in range(3000):
        n = int(rng.integers(1, 200))
        values = rng.standard_normal(n).astype(np.float32)
        if trial % 3 == 1:
            values = np.round(values, 1)  # many ties
        if trial % 3 == 2:
            values[: n // 2] = 0  # masked weights count as zero
        step_like = 100.0 * rng.integers(1, 50) / rng.integers(50, 400)  # targets the searches ask for
        percent = float(rng.choice([rng.uniform(0, 100), step_like]))
        for p in (percent, 0.0, 100.0):
            expected = np.percentile(values.astype(np.float64), p)
            assert linear_percentile(torch.as_tensor(values), p) == expected, (n, p)
