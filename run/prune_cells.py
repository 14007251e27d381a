"""--experiment prune_cells: train a cell network (--structure with cells), prune its --prune_cells
weakest cells (smallest mean L1 norm of their output on the training images), retrain, save the run.

The run folder is <seed folder>/cells/l1-<N>; `module_detection --level cells --checkpoint <it>/model.pt`
then analyses the pruned cell graph.
"""

from __future__ import annotations

import time

from run.common import ConfigError, generator_for, model_metrics, prepare, say_waiting
from run.dense import train_dense
from run.runs import RunDir, seed_dir


def prune_cells_dir(config):
    return seed_dir(config) / "cells" / f"l1-{config.prune_cells}"


def run(config) -> dict:
    from models.cells import prune_cells
    from utils.cell_graph import CellGraph
    from utils.training import train

    ctx = prepare(config)
    if not isinstance(config._structure, CellGraph):  # before any training: nothing is written
        raise ConfigError(
            f"--experiment prune_cells needs a cell network: --structure {config.structure} has no cell specs"
        )
    if config.prune_cells >= config._structure.n_cells:
        raise ConfigError(
            f"--prune_cells {config.prune_cells}: {config.structure} has {config._structure.n_cells} cells, "
            "and at least one must stay; give a smaller --prune_cells"
        )
    model, dense_metrics = train_dense(ctx)
    run_dir = RunDir(prune_cells_dir(config))
    with run_dir.lock(on_wait=say_waiting):
        if run_dir.finished and not config.force:
            metrics = run_dir.load_json("metrics.json")
        else:
            try:
                pruned = prune_cells(model, ctx.data.x_score, config.prune_cells)
            except ValueError as error:
                raise ConfigError(f"--prune_cells {config.prune_cells}: {error}") from None
            start = time.perf_counter()
            result = train(model, ctx.data, ctx.training, generator_for(config.seed))
            metrics = dict(result.metrics, pruned_cells=pruned, seconds=time.perf_counter() - start)
            metrics.update(model_metrics(model))
            metrics["dense_test_accuracy"] = dense_metrics["test_accuracy"]
            run_dir.save_result(config, result.state, metrics)
    print(
        f"pruned cells {' '.join(metrics['pruned_cells'])}: test accuracy {metrics['test_accuracy']:.2f}% "
        f"(dense {metrics['dense_test_accuracy']:.2f}%), cells kept {' '.join(metrics['cells_kept'])} "
        f"-> {run_dir.path}"
    )
    return metrics
