"""Pruning runs: the search wired to run directories, resume state, and the start networks.

Each search runs with its own generator seeded by --seed, so a run's result does not depend on which other
runs happened before it in the same process, and a resumed run replays exactly what an uninterrupted one
would have done: the generator and torch RNG states are saved with the accepted network after every
accepted step.
"""

from __future__ import annotations

import copy
import dataclasses
import time

import torch

from run.common import (
    Context,
    fresh_model,
    generator_for,
    model_metrics,
    progress_bar,
    reused,
    say_waiting,
)
from run.dense import train_dense
from run.parser import ConfigError
from run.replay import replay_edges, replay_units, replays
from run.runs import (
    SEARCH_STATE_FILE,
    RunDir,
    dense_dir,
    edges_after_units_dir,
    edges_from_dense_dir,
    finished_unit_steps,
    start_file,
    unit_dir,
    unit_step,
)
from utils.pruning import (
    SearchPlan,
    SearchState,
    edge_masks,
    hidden_units_pruned_percent,
    normalise_scores,
    schedule_target,
    search,
    unit_alive,
    unit_masks,
    unit_scores,
    weights_pruned_percent,
)
from utils.training import train

# The resume state of a search is saved at its first accept and then at most this often: each save is a
# torch.save of the network, and a grid of small searches accepts many times per second.
SEARCH_SAVE_EVERY_S = 1.0
# ...and all searches of a process together spend at most this share of its time saving: hundreds of
# batched searches run side by side for the whole grid, and a save per search per second would cost more
# than their training. A resume replays the accepts since a search's last save (the same result either way).
SEARCH_SAVE_SHARE = 0.02


class _SaveBudget:
    """Seconds spent saving search states in this process, against the time since the first save."""

    def __init__(self):
        self.started: float | None = None
        self.spent = 0.0

    def allows(self, now: float) -> bool:
        if self.started is None:
            self.started = now
        return self.spent <= SEARCH_SAVE_SHARE * (now - self.started)


_SAVE_BUDGET = _SaveBudget()


def unit_plan(ctx: Context, step: float, arch: list[int] | None = None) -> SearchPlan:
    """arch: units per layer (default --arch; a CNN passes its channels per layer: units are channels)."""
    config = ctx.config
    arch = list(arch or config.arch)
    hidden_units = sum(arch[1:-1])
    if hidden_units == 0:
        raise ConfigError("unit pruning needs at least one hidden layer in --arch")
    min_step = 100.0 / hidden_units
    step = max(step, min_step)  # a step below one unit would prune nothing

    def make_masks(model, percent):
        scores = unit_scores(
            model,
            ctx.data.x_score,
            ctx.data.y_score,
            config.unit_pruning_metric,
            config.loss,
            ctx.data.output_groups,
        )
        scores = normalise_scores(
            scores,
            unit_alive(model),
            config.unit_pruning_norm,
            config.unit_pruning_scale,
            config.unit_pruning_metric_normalized,
            arch,
        )
        return unit_masks(model, scores, percent, config.unit_pruning_scale)

    return SearchPlan(
        target=lambda i: schedule_target(
            config.unit_pruning_schedule, i, step, config.unit_pruning_iterations, config.prune_perc
        ),
        make_masks=make_masks,
        pruned_percent=hidden_units_pruned_percent,
        min_step=min_step,
        threshold=config.prune_acc_threshold,
        kind="units",
        final_step=config.final_step,
        count_from=config.step_from,
    )


def edge_plan(ctx: Context, step: float, start) -> SearchPlan:
    """The edge search's plan from the `start` model: targets count from the percent it has pruned, and
    one edge is one of all its blocks' possible edges (skip connections and conv kernels included)."""
    config = ctx.config
    start_percent = weights_pruned_percent(start)
    total_weights = sum(mask.numel() for mask in start.masks())
    min_step = 100.0 / total_weights
    step = max(step, min_step)  # e.g. the published 0.5 % on a 192-weight network: one edge, not nothing
    return SearchPlan(
        target=lambda i: (
            start_percent
            + schedule_target(config.pruning_schedule, i, step, config.pruning_iterations, config.prune_perc)
        ),
        make_masks=lambda model, percent: edge_masks(model, percent, config.edge_bias_mask),
        pruned_percent=weights_pruned_percent,
        min_step=min_step,
        threshold=config.prune_acc_threshold,
        kind="edges",
        final_step=config.final_step,
        count_from=config.step_from,
    )


def retrainer(ctx: Context, generator: torch.Generator):
    """retrain(model) -> metrics: fine-tune with the current masks for --epochs, keep the best epoch."""

    def retrain(model):
        return train(
            model, ctx.data, ctx.training, generator, include_start=ctx.config.retrain_include_start
        ).metrics

    return retrain


def run_search(
    ctx: Context,
    start_model,
    start_metrics: dict,
    plan: SearchPlan,
    step: float,
    run: RunDir,
    label: str,
    retrain_factory=None,
) -> tuple[object, dict]:
    """Run (or resume, or reuse) one search whose result lives in `run`. Returns (model, metrics).

    retrain_factory(generator) -> retrain(model): how the search retrains (default `retrainer`, one network
    at a time; run/batched_searches.py passes one that trains many searches as one batch, with no bar of
    their own)."""
    config = ctx.config
    model = copy.deepcopy(start_model)
    # A batched search must not wait for a lock: the other members of its batch would wait for it in
    # turn (and two batched processes could each hold what the other needs), so it says "busy" instead.
    with run.lock(on_wait=say_waiting, wait=retrain_factory is None):
        if run.finished and not config.force:
            model.load_state_dict(run.load_torch("model.pt"))
            return model, reused(run.load_json("metrics.json"), run.path)
        metrics = _search_into(ctx, model, start_metrics, plan, step, run, label, retrain_factory)
    return model, metrics


def _search_into(
    ctx, model, start_metrics: dict, plan: SearchPlan, step: float, run: RunDir, label: str, retrain_factory
):
    """The search of run_search, with the run folder locked: resume from its state, save the result."""
    config = ctx.config
    run.clean_stale_temps()
    generator = generator_for(config.seed)
    state = None
    saved = run.path / SEARCH_STATE_FILE
    if saved.is_file() and not config.force:
        checkpoint = run.load_torch(SEARCH_STATE_FILE)
        model.load_state_dict(checkpoint["model"])
        generator.set_state(checkpoint["generator"])
        torch.set_rng_state(checkpoint["torch_rng"])
        state = SearchState(**checkpoint["search"])
    else:
        torch.manual_seed(config.seed)

    last_save: list[float] = []

    def save_progress(accepted_model, search_state):
        # --checkpoint_every N: the accepted network after every N pruning iterations, named by the
        # training epochs spent so far (iterations x --epochs), for the clusterability learning curve.
        every = getattr(config, "checkpoint_every", 0)
        if every and search_state.iteration % every == 0:
            from run.clusterability_curve import checkpoint_name

            run.save_torch(
                checkpoint_name(search_state.iteration * config.epochs), accepted_model.state_dict()
            )
        now = time.monotonic()
        if last_save and now - last_save[0] < SEARCH_SAVE_EVERY_S or not _SAVE_BUDGET.allows(now):
            return  # a resume replays the few accepts since the last save and reaches the same result
        last_save[:] = [now]
        run.save_torch(
            SEARCH_STATE_FILE,
            {
                "model": accepted_model.state_dict(),
                "generator": generator.get_state(),
                "torch_rng": torch.get_rng_state(),
                # fields as they are (torch.save copies them); dataclasses.asdict deep-copies every leaf
                "search": {f.name: getattr(search_state, f.name) for f in dataclasses.fields(search_state)},
            },
        )
        _SAVE_BUDGET.spent += time.monotonic() - now

    start = time.perf_counter()
    batched = retrain_factory is not None
    retrain = retrain_factory(generator) if batched else retrainer(ctx, generator)
    with progress_bar(config if not batched else _Quiet, None, label) as bar:
        state = search(model, plan, step, retrain, state=state, on_accept=save_progress, bar=bar)
    final = state.metrics or {
        k: start_metrics[k] for k in ("test_accuracy", "test_loss") if k in start_metrics
    }
    metrics = {
        "test_accuracy": final.get("test_accuracy"),
        "test_loss": final.get("test_loss"),
        "val_accuracy": final.get("val_accuracy", []),
        "train_loss": final.get("train_loss", []),
        "epochs": config.epochs,
        "kind": plan.kind,
        "step": step,
        "effective_step": max(step, plan.min_step),
        "pruned_percent": plan.pruned_percent(model),
        "start": {
            "test_accuracy": start_metrics.get("test_accuracy"),
            "density": start_metrics.get("density"),
            "units_kept": start_metrics.get("units_kept"),
        },
        "history": state.history,
        "seconds": time.perf_counter() - start,
        **model_metrics(model),
    }
    run.save_result(config, model.state_dict(), metrics)
    run.remove(SEARCH_STATE_FILE)
    return metrics


class _Quiet:
    """A stand-in config whose progress bars are off (batched searches share one overall bar)."""

    quiet = True


def require_reachable(metrics: dict, threshold: float, what: str, where) -> None:
    accuracy = metrics.get("test_accuracy", 0.0)
    if accuracy < threshold:
        raise ConfigError(
            f"the {what} network reaches {accuracy:.2f}% test accuracy, below --prune_acc_threshold "
            f"{threshold:g}, so no pruning step can be accepted; lower the threshold or train longer "
            f"(more --epochs); the {what} result is kept in {where}"
        )


def unit_steps(config) -> list[float | None]:
    if config.unit_pruning_schedule in ("None", None):
        if config.prune_perc is None:
            raise ConfigError("--unit_pruning_schedule None prunes once to --prune_perc; give --prune_perc")
        return [config.unit_pruning_gradient[0] if config.unit_pruning_gradient else None]
    if not config.unit_pruning_gradient or config.unit_pruning_gradient[0] is None:
        raise ConfigError("unit pruning needs a step: give --unit_pruning_gradient (e.g. 70.0)")
    return list(config.unit_pruning_gradient)


def prune_units(ctx: Context, step: float | None) -> tuple[object, dict]:
    """Train dense (or reuse it, or read --checkpoint FILE), then the unit search for one
    --unit_pruning_gradient value."""
    from_file = start_file(ctx.config)
    dense, dense_metrics = start_from_file(ctx) if from_file else train_dense(ctx)
    run = RunDir(unit_dir(ctx.config, step))
    if not (run.finished and not ctx.config.force):
        where = from_file or dense_dir(ctx.config)
        require_reachable(dense_metrics, ctx.config.prune_acc_threshold, "dense", where)
    if replays(ctx):
        return replay_units(ctx, step or 0.0, dense, dense_metrics, run, f"units step {step}")
    plan = unit_plan(ctx, step if step is not None else 0.0, dense.arch)
    return run_search(ctx, dense, dense_metrics, plan, step or 0.0, run, f"units step {step}")


def retrained_start(ctx: Context, model):
    """Fine-tune the start network once before edge pruning (kept if it does not get worse)."""
    start = copy.deepcopy(model)
    torch.manual_seed(ctx.config.seed)
    # The start always competes here (unlike --retrain_include_start in the searches): a fine-tune that
    # ends worse would leave every edge search of this unit-pruned network without an acceptable start.
    result = train(start, ctx.data, ctx.training, generator_for(ctx.config.seed), include_start=True)
    start_metrics = dict(result.metrics, **model_metrics(start))
    return start, start_metrics


def missing_unit_run_message(config, path, step) -> str:
    """What to add or run when the unit-pruned run the options name does not exist."""
    found = finished_unit_steps(config)
    if found:
        steps = " ".join(f"{s:g}" for s in found)
        return (
            f"no unit-pruned network at {path}; unit-pruned runs with these options exist for "
            f"--unit_pruning_gradient {steps}: add --unit_pruning_gradient {found[0]:g} (the unit step to "
            "start from), or run --prune_units 1 with the step you want first"
        )
    wanted = f"{step:g}" if step is not None else "<step, e.g. 70.0>"
    return (
        f"no unit-pruned network at {path}; run the same command with --prune_units 1 "
        f"--unit_pruning_gradient {wanted} first, then this one with --unit_pruning_gradient {wanted}"
    )


def load_unit_pruned(ctx: Context) -> tuple[object, dict]:
    """The unit-pruned network the options name; ConfigError saying what to run when it is missing."""
    config = ctx.config
    step = unit_step(config)
    run = RunDir(unit_dir(config, step))
    if not run.finished:
        raise ConfigError(missing_unit_run_message(config, run.path, step))
    model = fresh_model(config, ctx.device, ctx.task)
    model.load_state_dict(run.load_torch("model.pt"))
    return model, run.load_json("metrics.json")


def prune_edges_after_units(ctx: Context) -> list[tuple[float, object, dict]]:
    """Edge searches, one per --pruning_gradient value, each from the same retrained unit-pruned network
    (the unit run the options name, or --checkpoint FILE)."""
    config = ctx.config
    from_file = start_file(config)
    unit_model, unit_metrics = start_from_file(ctx) if from_file else load_unit_pruned(ctx)
    if replays(ctx):
        return replay_edges(ctx, unit_model, unit_metrics, lambda s: edges_after_units_dir(config, s))
    return edge_searches(
        ctx,
        unit_model,
        unit_metrics,
        lambda s: edges_after_units_dir(config, s),
        "unit-pruned",
        from_file or unit_dir(config),
    )


def start_from_file(ctx: Context) -> tuple[object, dict]:
    """The network of --checkpoint FILE (our model.pt, a published .npz, ...) as the phase's start: an MLP
    on the device, weights and biases multiplied by their masks and every unit without an incoming weight
    dead (bias masked), as the published code loads a network. Returns (model, metrics)."""
    from models.from_network import torch_model
    from utils.network_files import load_network_file
    from utils.published_replay import apply_masks
    from utils.training import evaluate

    config = ctx.config
    path = start_file(config)
    network = load_network_file(path)
    if network.has_conv or network.skips:
        raise ConfigError(
            f"--checkpoint {path}: pruning from a file takes an MLP network (no conv layers or skips)"
        )
    arch = list(network.arch)
    if "arch" in config.explicit_options and list(config.arch) != arch:
        raise ConfigError(
            f"--checkpoint {path} has arch {' '.join(map(str, arch))} but --arch is "
            f"{' '.join(map(str, config.arch))}; fix --arch or leave it out to use the file's"
        )
    if arch[0] != ctx.data.x_val.shape[1] or arch[-1] != ctx.data.y_val.shape[1]:
        raise ConfigError(
            f"--checkpoint {path} maps {arch[0]} inputs to {arch[-1]} outputs but the task has "
            f"{ctx.data.x_val.shape[1]} and {ctx.data.y_val.shape[1]}; give the network's own task"
        )
    config.arch = arch
    model = torch_model(network).to(ctx.device)
    model.train()
    apply_masks(model, [layer.weight_mask.detach().clone() for layer in model.layers])
    accuracy, loss = evaluate(model, ctx.data.x_test, ctx.data.y_test, ctx.data, config.loss)
    return model, {"test_accuracy": accuracy, "test_loss": loss, "source": str(path), **model_metrics(model)}


def prune_edges_from_dense(ctx: Context) -> list[tuple[float, object, dict]]:
    dense, dense_metrics = train_dense(ctx)
    return edge_searches(
        ctx,
        dense,
        dense_metrics,
        lambda s: edges_from_dense_dir(ctx.config, s),
        "dense",
        dense_dir(ctx.config),
    )


def edge_searches(ctx, model, metrics, run_dir_of, what, start_dir) -> list[tuple[float, object, dict]]:
    """One edge search per --pruning_gradient value from `model` (retrained once first, shared by all).

    run_dir_of(step) -> the run directory of that search; start_dir: where `model` is saved (for messages).
    Returns [(step, pruned model, metrics)].
    """
    config = ctx.config
    runs = [(step, RunDir(run_dir_of(step))) for step in config.pruning_gradient]
    results = []
    start = start_metrics = None
    for step, run in runs:
        if start is None and not (run.finished and not config.force):
            start, start_metrics = retrained_start(ctx, model)
            require_reachable(start_metrics, config.prune_acc_threshold, f"retrained {what}", start_dir)
        source = start if start is not None else model
        plan = edge_plan(ctx, step, source)
        pruned, pruned_metrics = run_search(
            ctx,
            start if start is not None else model,
            start_metrics or metrics,
            plan,
            step,
            run,
            f"edges step {step}",
        )
        results.append((step, pruned, pruned_metrics))
    return results
