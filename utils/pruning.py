"""Pruning science: unit scores, schedules, unit and edge masks, and the one accept/revert/halve search.

Percent conventions: a *target* is the percent of prunable things pruned (hidden units for unit pruning,
all weights for edge pruning), counted from the dense network; masked things count as pruned.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

import torch

from utils.errors import InputError
from utils.masked_model import MaskedModel
from utils.saliency import percentile_cut, saliency_masks
from utils.training import clone_state, per_sample_loss

# ----------------------------------------------------------------------------------------------- scores


def _per_unit(t: torch.Tensor) -> torch.Tensor:
    """Sum over samples and, for conv maps, positions: (n, W) or (n, C, H, W) -> (units,)."""
    return t.sum(dim=0) if t.dim() == 2 else t.sum(dim=(0, 2, 3))


def _outgoing_magnitude(layer, n_units: int) -> torch.Tensor:
    """Summed |kept outgoing weight| per unit of the layer below `layer`: (n_units,). Conv kernels sum over
    output channels and kernel positions; an fc layer after a conv sums the H*W inputs of each channel."""
    w = (layer.weight * layer.weight_mask).abs().detach()
    if w.dim() == 4:
        return w.sum(dim=(0, 2, 3))
    return w.reshape(w.shape[0], n_units, -1).sum(dim=(0, 2))


def unit_alive(model: MaskedModel) -> list[torch.Tensor]:
    """Per hidden layer, a bool tensor (width,) that is True for units not pruned (bias mask 1)."""
    return [layer.bias_mask > 0 for layer in model.layers[:-1]]


def unit_scores(
    model, x: torch.Tensor, y: torch.Tensor, metric: str, loss: str, output_groups, chunk: int = 8192
) -> list[torch.Tensor]:
    """Score every hidden unit on clean samples x (n, d) with targets y (n, m).

    Returns one tensor (width,) per hidden layer; pruned units score 0.
    - activation_gradient_product: mean_i |a_i| * |dL_i/da_i| with L_i the loss of sample i. Samples do not
      interact in eval mode, so the gradient of sum_i L_i w.r.t. the batch of activations holds every
      per-sample gradient exactly: one batched backward pass, no loop over samples.
    - activation_sum_gradient_product: the same with the sum of the sigmoid outputs as the objective.
    - average_activation_weight_magnitude: mean_i |a_i| times the summed |outgoing weight| (masked).
    """
    was_training = model.training
    model.eval()
    n_hidden = len(model.layers) - 1
    totals = [torch.zeros(layer.bias.shape[0], device=x.device) for layer in model.layers[:-1]]
    for start in range(0, x.shape[0], chunk):
        xb, yb = x[start : start + chunk], y[start : start + chunk]
        if metric == "average_activation_weight_magnitude":
            with torch.no_grad():
                hidden = model(xb)[1:-1]
            for l in range(n_hidden):
                totals[l] += _per_unit(hidden[l].abs())
            continue
        with torch.enable_grad():
            activations = model(xb)
            hidden = activations[1:-1]
            for h in hidden:
                h.retain_grad()
            logits = activations[-1]
            if metric == "activation_gradient_product":
                objective = per_sample_loss(logits, yb, loss, output_groups).sum()
            elif metric == "activation_sum_gradient_product":
                objective = torch.sigmoid(logits).sum()
            else:
                raise InputError(f"unknown --unit_pruning_metric {metric!r}")
            model.zero_grad(set_to_none=True)
            objective.backward()
        for l in range(n_hidden):
            totals[l] += _per_unit(hidden[l].detach().abs() * hidden[l].grad.abs())
    model.zero_grad(set_to_none=True)
    model.train(was_training)
    scores = [t / x.shape[0] for t in totals]
    if metric == "average_activation_weight_magnitude":
        outgoing = [torch.zeros_like(s) for s in scores]
        for source, _, block in model.masked_layers():
            if 1 <= source <= n_hidden:  # edges leaving hidden layer `source` (skips included)
                outgoing[source - 1] += _outgoing_magnitude(block, scores[source - 1].numel())
        scores = [s * o for s, o in zip(scores, outgoing)]
    alive = unit_alive(model)
    return [torch.where(a, s, torch.zeros_like(s)) for s, a in zip(scores, alive)]


def normalise_scores(
    scores: list[torch.Tensor],
    alive: list[torch.Tensor],
    norm: str,
    scale: str,
    normalized: int,
    arch: list[int],
) -> list[torch.Tensor]:
    """Per-layer normalisation (--unit_pruning_norm), then scale handling, of scores (width,) per layer.

    norm: mean / std / mean_std ((s - mean) / std, shifted to stay >= 0) / sum_scores divide by that
    statistic of the layer's alive units; num_units and prev_num_units divide by the alive units of the
    layer or of the layer below. local_global divides each layer by its max so layers compete on a common
    scale. --unit_pruning_metric_normalized 1 divides all scores by the global max (ranking unchanged).
    Pruned units keep score 0.
    """
    out = []
    previous_alive = arch[0]
    for s, a in zip(scores, alive):
        live = s[a]
        s = s.clone()
        if live.numel() > 0 and norm not in ("None", None):
            if norm == "mean":
                s = s / _safe(live.mean())
            elif norm == "std":
                s = s / _safe(live.std(unbiased=False))
            elif norm == "mean_std":
                s = (s - live.mean()) / _safe(live.std(unbiased=False))
                s = s - s[a].min()  # shift so the weakest alive unit scores 0, like a pruned one
            elif norm == "sum_scores":
                s = s / _safe(live.sum())
            elif norm == "num_units":
                s = s / max(int(a.sum()), 1)
            elif norm == "prev_num_units":
                s = s / max(previous_alive, 1)
            else:
                raise InputError(f"unknown --unit_pruning_norm {norm!r}")
        if scale == "local_global" and live.numel() > 0:
            s = s / _safe(s[a].max())
        previous_alive = int(a.sum())
        out.append(torch.where(a, s, torch.zeros_like(s)))
    if normalized:
        top = max((float(s.max()) for s in out if s.numel()), default=0.0)
        if top > 0:
            out = [s / top for s in out]
    return out


def _safe(value: torch.Tensor) -> torch.Tensor:
    return value if float(value) > 0 else torch.ones_like(value)


# -------------------------------------------------------------------------------------------- schedules


def schedule_target(
    schedule: str, iteration: int, step: float, iterations: int | None, one_shot: float | None = None
) -> float:
    """Cumulative percent to prune at iteration i = 1, 2, ... of a schedule with `step` percent.

    linear: step * i. exponential/exp: sum_{j<i} step / 2^j. lth: compounding, each iteration removes step
    percent of what is left. cosine / cubic: ramp to step * T over T = `iterations`
    ((1 - cos(pi t)) / 2 and 1 - (1 - t)^3 with t = i / T), then linear beyond T.
    None: one shot at `one_shot` percent (--prune_perc).
    """
    if schedule == "linear":
        return step * iteration
    if schedule in ("exponential", "exp"):
        return step * (2.0 - 2.0 ** (1 - iteration))
    if schedule == "lth":
        return 100.0 * (1.0 - (1.0 - step / 100.0) ** iteration)
    if schedule in ("cosine", "cubic"):
        if not iterations:
            raise InputError(
                f"the {schedule} schedule needs the number of iterations "
                "(--unit_pruning_iterations / --pruning_iterations)"
            )
        final = step * iterations
        if iteration > iterations:
            return final + step * (iteration - iterations)
        t = iteration / iterations
        ramp = (1.0 - math.cos(math.pi * t)) / 2.0 if schedule == "cosine" else 1.0 - (1.0 - t) ** 3
        return final * ramp
    if schedule in ("None", None):
        if one_shot is None:
            raise InputError("schedule None prunes once to --prune_perc; give --prune_perc")
        return float(one_shot)
    raise InputError(f"unknown pruning schedule {schedule!r}")


# ------------------------------------------------------------------------------------------------ masks


def unit_masks(model: MaskedModel, scores: list[torch.Tensor], percent: float, scale: str):
    """Masks that prune every hidden unit scoring at or below the `percent` percentile.

    scores: (width,) per hidden layer. Global scale (and local_global) cuts all hidden units together;
    local cuts each layer at the same percentile. A pruned unit loses its incoming row, its bias and its
    outgoing column. Returns (weight_masks [(out, in)], bias_masks [(out,)]) combined with the current ones.
    """
    if scale == "local":
        prune = [percentile_cut(s, percent) for s in scores]
    else:
        sizes = [s.numel() for s in scores]
        prune = list(torch.split(percentile_cut(torch.cat(scores), percent), sizes))
    alive = [a & ~p for a, p in zip(unit_alive(model), prune)]
    return masks_from_alive(model, alive)


def masks_from_alive(model: MaskedModel, alive: list[torch.Tensor]):
    """Weight and bias masks from per-hidden-layer alive vectors, multiplied into the current masks."""
    device = model.layers[0].weight.device
    full = [
        torch.ones(model.arch[0], dtype=torch.bool, device=device),
        *alive,
        torch.ones(model.arch[-1], dtype=torch.bool, device=device),
    ]
    weight_masks = []
    for source, target, block in model.masked_layers():
        below = full[source]
        if block.weight_mask.dim() == 2 and block.weight_mask.shape[1] != below.numel():
            below = below.repeat_interleave(block.weight_mask.shape[1] // below.numel())  # fc after conv
        keep = full[target][:, None] & below[None, :]
        if block.weight_mask.dim() == 4:  # a conv layer: whole kernel slices
            keep = keep[:, :, None, None]
        weight_masks.append(block.weight_mask * keep.to(block.weight_mask.dtype))
    bias_masks = [
        layer.bias_mask * full[i + 1].to(layer.bias_mask.dtype) for i, layer in enumerate(model.layers)
    ]
    return weight_masks, bias_masks


def edge_masks(model: MaskedModel, percent: float, bias: str = "keep"):
    """Masks from one global magnitude cut: every weight whose |w * mask| is at or below the `percent`
    percentile over all weight matrices is masked (masked weights count as zero).

    bias "keep": bias masks unchanged. "inputless": the bias of every unit (hidden or output) left without
    an incoming edge (from any block) is masked too, so the unit is dead instead of a constant (the
    published code derives every bias mask from the weight masks this way)."""
    blocks = model.masked_layers()
    weight_masks = saliency_masks(
        [b.weight for _, _, b in blocks],
        [b.weight_mask for _, _, b in blocks],
        prune_percent=percent,
        scope="global",
    )
    if bias == "keep":
        return weight_masks, [layer.bias_mask.clone() for layer in model.layers]
    if bias != "inputless":
        raise InputError(f"unknown --edge_bias_mask {bias!r} (choose inputless, keep)")
    incoming = [torch.zeros_like(layer.bias_mask) for layer in model.layers]
    for (_, target, _), mask in zip(blocks, weight_masks):
        incoming[target - 1] = incoming[target - 1] + mask.sum(dim=1)
    bias_masks = [
        layer.bias_mask * (n > 0).to(layer.bias_mask.dtype) for layer, n in zip(model.layers, incoming)
    ]
    return weight_masks, bias_masks


def hidden_units_pruned_percent(model: MaskedModel) -> float:
    alive = unit_alive(model)
    total = sum(a.numel() for a in alive)
    return 100.0 * (total - sum(int(a.sum()) for a in alive)) / max(total, 1)


def weights_pruned_percent(model: MaskedModel) -> float:
    return 100.0 - model.density()


def masks_equal(model: MaskedModel, weight_masks, bias_masks) -> bool:
    return all(
        torch.equal(block.weight_mask, w) for (_, _, block), w in zip(model.masked_layers(), weight_masks)
    ) and all(torch.equal(layer.bias_mask, b) for layer, b in zip(model.layers, bias_masks))


# ----------------------------------------------------------------------------------------------- search


@dataclass
class SearchPlan:
    """What the search prunes and how.

    target(i, step) -> cumulative percent at iteration i before the first rejection;
    make_masks(model, percent) -> (weight_masks, bias_masks); pruned_percent(model) -> current percent;
    min_step: smallest meaningful step in percent (one unit, or one edge).
    final_step: what a rejection does to a step that halves below min_step: "stop" ends the search;
    "one" raises it to min_step, and the search ends when a step of min_step is rejected (the published
    search).
    count_from: where the next target counts from after an accepted step: "pruned", the percent the cut
    actually pruned; "target", the accepted target (the published search: a cut that overshoots its target,
    e.g. many tied zero scores, does not end a schedule whose next targets lie below what was pruned).
    """

    target: Callable[[int], float]
    make_masks: Callable
    pruned_percent: Callable
    min_step: float
    threshold: float
    kind: str  # "units" or "edges", for messages and history
    final_step: str = "stop"
    count_from: str = "pruned"


@dataclass
class SearchState:
    """Position of the search; saved with the accepted model after every accepted step (for resume).

    accepted_percent is where the next linear target starts: the pruned percent of the last accepted
    network, or a target that masked nothing new (the search moves past it, as the published code does).
    """

    iteration: int = 0
    step: float = 0.0
    accepted_percent: float = 0.0
    linear: bool = False  # True after the first rejection: targets are accepted_percent + step
    history: list = field(default_factory=list)
    metrics: dict = field(default_factory=dict)
    done: bool = False


def schedule_stalled(plan: SearchPlan, iteration: int) -> bool:
    """True when the schedule's target at `iteration` has stopped moving: it moved less than one unit/edge
    and less than the iteration before (exponential and lth converge; cubic flattens at the end of its
    ramp), or not at all (the one-shot schedule None). A growing ramp (cosine's start) is not stalled."""
    if iteration < 2:
        return False
    move = plan.target(iteration) - plan.target(iteration - 1)
    before = plan.target(iteration - 1) - plan.target(iteration - 2)
    return move <= 1e-12 or (move < plan.min_step - 1e-12 and move < before)


def halved_step(rejected: float, min_step: float, final_step: str) -> tuple[float, bool]:
    """(next step, search done) after a step of `rejected` percent was rejected (see SearchPlan)."""
    if final_step == "one":
        if rejected <= min_step + 1e-12:
            return rejected, True
        return max(rejected / 2.0, min_step), False
    step = rejected / 2.0
    return step, step < min_step - 1e-12


def search(
    model: MaskedModel,
    plan: SearchPlan,
    step: float,
    retrain: Callable,
    state: SearchState | None = None,
    on_accept: Callable | None = None,
    bar=None,
) -> SearchState:
    """The one accept/revert/halve loop, shared by unit and edge pruning.

    Each iteration: target from the schedule (or accepted + step after a rejection); masks for the
    target; retrain(model) -> metrics with test_accuracy (percent); accept when it reaches
    plan.threshold, else revert to the last accepted network, halve the step and go on linearly.
    `model` ends as the last accepted network; on_accept(model, state) is called after every accepted
    step (the caller saves for resume).

    Steps that cannot change anything are not retrained, and cannot repeat:
    - a target of 100% or more is recorded as skipped (nothing left to keep) and counts as a rejection;
    - a target whose cut masks nothing new (the previous cut pruned past it, e.g. tied scores removed
      together) is recorded as skipped and the search moves on to the next target, as the published
      search does (it retrains such a step and accepts it; the masks are the same either way);
    - the search stops when the step after a rejection falls below plan.min_step (one unit or edge), or
      when the schedule's target stops moving (schedule_stalled).
    """
    if state is None:
        state = SearchState(step=max(step, plan.min_step), accepted_percent=plan.pruned_percent(model))
    accepted = clone_state(model)
    while not state.done:
        state.iteration += 1
        if state.linear:
            target = state.accepted_percent + state.step
        else:
            if schedule_stalled(plan, state.iteration):
                state.done = True
                break
            target = plan.target(state.iteration)
        increment = target - state.accepted_percent
        if state.linear and state.step < plan.min_step - 1e-12:
            state.done = True  # the halved step is below one unit/edge
            break
        record = {"iteration": state.iteration, "target_percent": target, "step": increment}
        if target >= 100.0:
            record.update(skipped="target at or above 100%: nothing would be left", accepted=False)
            state.history.append(record)
            _reject(state, increment, plan)
            _show(bar, increment, target, model, None, False)
            continue
        weight_masks, bias_masks = plan.make_masks(model, target)
        if masks_equal(model, weight_masks, bias_masks):
            record.update(skipped="the cut masks nothing new", accepted=True)
            state.history.append(record)
            # move past it (the published search accepts such a step and goes on from its target), or the
            # same target would come back after a rejection
            state.accepted_percent = max(state.accepted_percent, target)
            _show(bar, increment, target, model, None, True)
            continue
        model.set_masks(weight_masks, bias_masks)
        metrics = retrain(model)
        ok = metrics["test_accuracy"] >= plan.threshold
        record.update(
            accepted=ok,
            test_accuracy=metrics["test_accuracy"],
            pruned_percent=plan.pruned_percent(model),
            density=model.density(),
            units_kept=model.units_kept(),
        )
        state.history.append(record)
        if ok:
            accepted = clone_state(model)
            state.accepted_percent = target if plan.count_from == "target" else plan.pruned_percent(model)
            state.metrics = metrics
            if on_accept is not None:
                on_accept(model, state)
        else:
            model.load_state_dict(accepted)
            _reject(state, increment, plan)
        _show(bar, increment, target, model, metrics["test_accuracy"], ok)
    model.load_state_dict(accepted)
    return state


def _reject(state: SearchState, increment: float, plan: SearchPlan) -> None:
    """After a rejected target: continue linearly from the accepted network with half the step."""
    state.linear = True
    state.step, state.done = halved_step(increment, plan.min_step, plan.final_step)


def _show(bar, increment, target, model, accuracy, ok) -> None:
    if bar is None:
        return
    if getattr(bar, "disable", False):  # a silent bar (--quiet, batched searches): skip the postfix
        bar.update(1)
        return
    bar.update(1)
    bar.set_postfix(
        step=f"{increment:.2f}",
        target=f"{target:.1f}%",
        density=f"{model.density():.1f}%",
        acc="skipped" if accuracy is None else f"{accuracy:.1f}",
        ok=ok,
    )
