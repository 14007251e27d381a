"""Train (or reuse) the dense network of a run: the first step of train, prune, prune_edges and sculpt.

Kept apart from run/common.py so that the published replay (run/replay.py), which builds on run.common,
can take over the dense training under --recipe published without an import cycle.
"""

from __future__ import annotations

import time

from models.mlp import MLP
from run.common import (
    Context,
    dense_run,
    epoch_progress,
    generator_for,
    model_metrics,
    progress_bar,
)
from run.replay import replay_dense, replays
from utils.training import train


def train_dense(ctx: Context) -> tuple[MLP, dict]:
    """Train the dense network named by the config, or load it when its run directory is finished.

    The run folder is locked while it is checked and trained, so a second process asking for the same
    network waits and then reuses it. Returns (model on ctx.device with the best epoch's weights, metrics
    dict; metrics["_reused"] is the run folder when it was loaded, not trained).
    """
    if replays(ctx):  # --recipe published on the CPU: the published dense training, replayed
        return replay_dense(ctx)
    return dense_run(ctx, lambda model, run: _train_into(ctx, model, run))


def _train_into(ctx: Context, model, run) -> dict:
    """Train `model` by the options (the training loop, a gradual pruner, checkpoints when asked) and save
    the run; returns its metrics."""
    config = ctx.config
    start = time.perf_counter()
    pruner = _gradual_pruner(config)
    with progress_bar(config, config.epochs, f"train seed {config.seed}") as bar:
        report = epoch_progress(bar)
        if getattr(config, "checkpoint_every", 0):
            from run.clusterability_curve import save_checkpoints

            report = save_checkpoints(report, model, run, config.checkpoint_every)
        result = train(
            model, ctx.data, ctx.training, generator_for(config.seed), progress=report, pruner=pruner
        )
    metrics = dict(result.metrics, epochs=config.epochs, seconds=time.perf_counter() - start)
    metrics.update(model_metrics(model))
    run.save_result(config, result.state, metrics)
    return metrics


def _gradual_pruner(config):
    """A factory for the --gradual_pruning pruner (train() calls it with the steps per epoch), or None."""
    if getattr(config, "gradual_pruning", "none") == "none":
        return None
    from run.options import gradual_pruning_options
    from utils.gradual_pruning import gradual_pruner

    options = gradual_pruning_options(config)
    return lambda model, steps_per_epoch, epochs: gradual_pruner(model, options, steps_per_epoch, epochs)
