"""--recipe published on the CPU: dense training and prune searches that replay the published code's runs.

The published process seeds torch's global generator once and then draws, in order: two network builds
around the dense training (the unit phase), or two builds and the retraining of the unit-pruned network
(the edge phase), and one int64 per loader pass (utils/published_replay.py). A phase here starts its own
`PublishedStream` at the published position, whether the network before it was trained in this process, in
an earlier one, or read from --checkpoint FILE, so a seed gives the published trajectory retraining by
retraining (docs/fidelity.md). A replayed search is not resumed half-way (it is seconds long): a killed run
starts again.

One deliberate difference: the published edge phase saves its retrained start even when that retraining
fell below --prune_acc_threshold and no edge step was accepted. Here the unit-pruned network as it came in
(which met the threshold) is kept instead, and metrics.json says so.
"""

from __future__ import annotations

import copy
import sys
import time

import numpy as np

from run.common import Context, dense_run, model_metrics, progress_bar, reused, say_waiting
from run.parser import ConfigError
from run.runs import RunDir
from utils.pruning import hidden_units_pruned_percent, weights_pruned_percent
from utils.published_replay import (
    PublishedStream,
    ReplayOptions,
    ReplayPlan,
    apply_masks,
    check_replayable,
    published_edge_masks,
    published_search,
    published_train,
    published_unit_masks,
    published_unit_scores,
)

_NOTED: set[str] = set()


def replay_reason(ctx: Context) -> str | None:
    """Why --recipe published cannot replay the published random numbers here (None when it can)."""
    config, data = ctx.config, ctx.data
    checks = [
        (ctx.device.type != "cpu", "it runs on the CPU only"),
        (config.task != "boolean" or data.accuracy_kind != "bits", "it covers the boolean truth-table tasks"),
        (getattr(config, "model", "MLP") != "MLP" or getattr(config, "structure", None), "it trains MLPs"),
        (config.bn or config.dropout, "the published boolean runs have no batch norm or dropout"),
        (getattr(config, "gradual_pruning", "none") != "none", "it has no gradual pruning"),
        (
            config.l1 > 0 or config.clusterability_reg > 0 or config.normalize_weights_every > 0,
            "it has no penalties",
        ),
        (
            config.scheduler != "exp" or config.loss not in ("BCE", "MSE"),
            "the published loop has --scheduler exp and --loss BCE or MSE",
        ),
        (
            config.unit_pruning_metric != "activation_gradient_product"
            or config.unit_pruning_norm != "None"
            or config.unit_pruning_scale != "global",
            "it replays the default unit scores (activation_gradient_product, global, no norm)",
        ),
        (
            config.unit_pruning_schedule != "linear" or config.pruning_schedule != "linear",
            "it replays the linear schedules",
        ),
        (
            data.x_train.shape != data.x_val.shape or not bool((data.x_train == data.x_val).all()),
            "the published loaders hold the table once",
        ),
    ]
    for failed, why in checks:
        if failed:
            return why
    return None


def replays(ctx: Context) -> bool:
    """True when --recipe published replays the published random numbers for this run; otherwise, under
    the recipe, a one-line note (once) says why sculpt's own random streams are used with its rules."""
    if getattr(ctx.config, "recipe", "default") != "published":
        return False
    reason = replay_reason(ctx)
    if reason is None and ctx.config.experiment not in ("prune", "train"):
        _note(
            "note: --recipe published: the dense network is the published training's replay, but the "
            f"searches of --experiment {ctx.config.experiment} use sculpt's own random streams with the "
            "published rules (the replay of the searches covers --experiment prune)"
        )
    if reason is None:
        return True
    _note(
        f"note: --recipe published applies the published rules with sculpt's own random streams here: the "
        f"replay of the published runs' random numbers does not apply ({reason})"
    )
    return False


def _note(text: str) -> None:
    if text not in _NOTED:  # once per process
        _NOTED.add(text)
        print(text, file=sys.stderr)


def replay_options(ctx: Context) -> ReplayOptions:
    config = ctx.config
    options = ReplayOptions(
        lr=config.lr,
        weight_decay=config.weight_decay,
        epochs=config.epochs,
        batch_size=config.batch_size,
        loss=config.loss,
        optimizer=config.optimizer,
        gamma=config.gamma,
        noise_std=ctx.data.noise_std,
    )
    check_replayable(options)
    return options


def _table(ctx: Context):
    """(x, y): the clean table that the published training, validation and test loaders all hold."""
    return ctx.data.x_val, ctx.data.y_val


def replay_dense(ctx: Context):
    """The dense network as the published unit phase trains it (published initialisation and loop), in
    the dense run folder (reused when finished). Returns (model, metrics)."""
    return dense_run(ctx, lambda model, run: _replay_into(ctx, model, run))


def _replay_into(ctx: Context, model, run) -> dict:
    """Train `model` as the published process does (its initialisation, loop and draws); save the run."""
    config = ctx.config
    start = time.perf_counter()
    stream = PublishedStream(config.seed)
    weights, biases = stream.build_network(model.arch)
    for layer, weight, bias in zip(model.layers, weights, biases, strict=True):
        layer.weight.data.copy_(weight)
        layer.bias.data.copy_(bias)
    x, y = _table(ctx)
    metrics = published_train(model, x, y, replay_options(ctx), stream)
    metrics.update(epochs=config.epochs, seconds=time.perf_counter() - start, replay=_replay_note(stream))
    metrics.update(model_metrics(model))
    run.save_result(config, model.state_dict(), metrics)
    return metrics


def _replay_note(stream: PublishedStream, **extra) -> dict:
    return {"recipe": "published", "stream_int64_draws": stream.int64_draws, **extra}


def unit_phase_stream(config, arch: list[int]) -> PublishedStream:
    """The published unit phase's generator at its first cut: seeded, a network built, the dense training's
    draws, a second network built."""
    stream = PublishedStream(config.seed)
    stream.build_network(arch)
    stream.skip_training(config.epochs)
    stream.build_network(arch)
    return stream


def _search(ctx: Context, model, plan: ReplayPlan, stream: PublishedStream, label: str) -> dict:
    x, y = _table(ctx)
    options = replay_options(ctx)
    with progress_bar(ctx.config, None, label) as bar:

        def on_try(record, tried):
            if record["trained"]:
                record.update(
                    density=tried.density(), units_kept=tried.units_kept(), mask_hex=mask_hex(tried)
                )
            bar.update(1)
            bar.set_postfix(target=f"{record['target_percent']:.2f}%", ok=record["accepted"])

        return published_search(model, plan, lambda m: published_train(m, x, y, options, stream), on_try)


def mask_hex(model) -> str:
    """The tried mask as the published reference writes it: numpy packbits of every weight mask flattened
    row by row and concatenated, in hex."""
    bits = np.concatenate([layer.weight_mask.detach().cpu().numpy().ravel() != 0 for layer in model.layers])
    return np.packbits(bits).tobytes().hex()


def _metrics(
    config, model, out: dict, start_metrics: dict, kind: str, step: float, seconds: float, replay: dict
) -> dict:
    final = out["metrics"] or {
        k: start_metrics[k] for k in ("test_accuracy", "test_loss") if k in start_metrics
    }
    return {
        "test_accuracy": final.get("test_accuracy"),
        "test_loss": final.get("test_loss"),
        "val_accuracy": final.get("val_accuracy", []),
        "train_loss": final.get("train_loss", []),
        "epochs": config.epochs,
        "kind": kind,
        "step": step,
        "effective_step": step,
        "pruned_percent": (hidden_units_pruned_percent if kind == "units" else weights_pruned_percent)(model),
        "start": {k: start_metrics.get(k) for k in ("test_accuracy", "density", "units_kept")},
        "history": out["history"],
        "seconds": seconds,
        "replay": replay,
        **model_metrics(model),
    }


def replay_units(ctx: Context, step: float, start_model, start_metrics: dict, run: RunDir, label: str):
    """The published unit search from `start_model` (the dense network) into `run`. (model, metrics)."""
    config = ctx.config
    model = copy.deepcopy(start_model)
    with run.lock(on_wait=say_waiting):
        if run.finished and not config.force:
            model.load_state_dict(run.load_torch("model.pt"))
            return model, reused(run.load_json("metrics.json"), run.path)
        run.clean_stale_temps()
        begin = time.perf_counter()
        stream = unit_phase_stream(config, model.arch)
        x, y = _table(ctx)
        apply_masks(model, [layer.weight_mask.detach().clone() for layer in model.layers])

        def cut(m, target):
            return published_unit_masks(m, published_unit_scores(m, x, y, config.loss, stream), target)

        plan = ReplayPlan("units", float(step), config.prune_acc_threshold, cut)
        out = _search(ctx, model, plan, stream, label)
        replay = _replay_note(stream)
        metrics = _metrics(
            config, model, out, start_metrics, "units", step, time.perf_counter() - begin, replay
        )
        run.save_result(config, model.state_dict(), metrics)
    return model, metrics


def replay_edges(
    ctx: Context, unit_model, unit_metrics: dict, run_dir_of
) -> list[tuple[float, object, dict]]:
    """The published edge phase: retrain the unit-pruned network once (not checked against the threshold,
    as published), then one edge search per --pruning_gradient value from it, in order, on one stream.
    run_dir_of(step) -> run folder. Returns [(step, model, metrics)]."""
    config = ctx.config
    runs = [(step, RunDir(run_dir_of(step))) for step in config.pruning_gradient]
    results = []
    if all(run.finished for _, run in runs) and not config.force:
        for step, run in runs:
            model = copy.deepcopy(unit_model)
            model.load_state_dict(run.load_torch("model.pt"))
            results.append((step, model, reused(run.load_json("metrics.json"), run.path)))
        return results
    stream = PublishedStream(config.seed)
    stream.build_network(unit_model.arch)
    stream.build_network(unit_model.arch)
    start = copy.deepcopy(unit_model)
    apply_masks(start, [layer.weight_mask.detach().clone() for layer in start.layers])
    x, y = _table(ctx)
    start_retraining = published_train(start, x, y, replay_options(ctx), stream)
    start_metrics = dict(start_retraining, **model_metrics(start))
    below = start_retraining["test_accuracy"] < config.prune_acc_threshold
    for step, run in runs:
        model = copy.deepcopy(start)
        with run.lock(on_wait=say_waiting):
            if run.finished and not config.force:  # an earlier process replayed it: move the stream past it
                metrics = run.load_json("metrics.json")
                position = metrics.get("replay", {}).get("stream_int64_draws")
                if position is None:
                    raise ConfigError(
                        f"run {run.path} was not made by the published replay (made on a GPU?), so the edge "
                        "searches after it cannot be replayed; add --force to redo the edge phase here"
                    )
                stream.advance(position - stream.int64_draws)
                model.load_state_dict(run.load_torch("model.pt"))
                results.append((step, model, reused(metrics, run.path)))
                continue
            run.clean_stale_temps()
            begin = time.perf_counter()
            plan = ReplayPlan("edges", float(step), config.prune_acc_threshold, published_edge_masks)
            out = _search(ctx, model, plan, stream, f"edges step {step}")
            kept_unit_network = below and out["metrics"] is None
            if kept_unit_network:  # never save a network below the threshold (the published code does)
                model = copy.deepcopy(unit_model)
                print(
                    f"note: the retrained unit-pruned network reached {start_metrics['test_accuracy']:.2f}%"
                    f" (below --prune_acc_threshold {config.prune_acc_threshold:g}) and no edge step was "
                    "accepted; the unit-pruned network is kept as it came in (the published code saves the "
                    "retrained one)",
                    file=sys.stderr,
                )
            replay = _replay_note(
                stream,
                start_retraining={
                    k: start_retraining[k] for k in ("test_accuracy", "test_loss", "best_epoch")
                },
                kept_unit_network=kept_unit_network,
            )
            source = unit_metrics if kept_unit_network else start_metrics
            seconds = time.perf_counter() - begin
            metrics = _metrics(config, model, out, source, "edges", step, seconds, replay)
            run.save_result(config, model.state_dict(), metrics)
        results.append((step, model, metrics))
    return results
