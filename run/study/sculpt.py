"""The whole study for one network: train -> unit pruning (every --unit_pruning_gradient) -> edge pruning
(every --pruning_gradient) -> keep the sparsest accepted network -> module detection -> picture -> score.

Every stage is a run directory of its own and is reused when finished, so re-running a sculpt command after
a kill continues where it stopped. The result folder holds sculpt.json (what was chosen and why, the score),
modules.json, score.json and network.graphml; the picture mirrors it under --visualization_path.
"""

from __future__ import annotations

import time
import traceback
from pathlib import Path

from utils.atomic_io import write_json_atomic
from utils.config import ConfigError
from utils.runs import edges_after_units_dir, edges_from_dense_dir, seed_dir, unit_dir, unit_pruning_key

SCULPT_FILE = "sculpt.json"
SCORE_FILE = "score.json"


def _steps_text(steps) -> str:
    return "-".join(f"{s:g}" if s is not None else "None" for s in steps)


def edges_only(config) -> bool:
    """`--unit_pruning_gradient None` given explicitly: no unit pruning, edges are pruned from the dense
    network (the default, no --unit_pruning_gradient at all, stays an error that asks for a step; a one-shot
    --unit_pruning_schedule None --prune_perc P keeps its meaning)."""
    one_shot = config.unit_pruning_schedule in ("None", None)
    return not one_shot and list(config.unit_pruning_gradient or []) == [None]


def sculpt_dir(config) -> Path:
    """<seed dir>/sculpt/<unit pruning options with the step grid>/edges-<grid>
    (<seed dir>/sculpt/no-units_acc-<threshold>/edges-<grid> with --unit_pruning_gradient None)"""
    if edges_only(config):
        threshold = f"{config.prune_acc_threshold:g}"
        return (
            seed_dir(config)
            / "sculpt"
            / f"no-units_acc-{threshold}"
            / f"edges-{_steps_text(config.pruning_gradient)}"
        )
    unit_key = unit_pruning_key(config, None)
    units = _steps_text(config.unit_pruning_gradient or [None])
    return (
        seed_dir(config)
        / "sculpt"
        / f"{unit_key}_units-{units}"
        / f"edges-{_steps_text(config.pruning_gradient)}"
    )


def base_record(config) -> dict:
    from utils.tasks import family_of

    family = family_of(config.dataset_path) if config.task == "boolean" else config.task
    return {
        "status": "running",
        "error": None,
        "task": config.task,
        "family": family,
        "modularity": list(config.modularity),
        "arch": list(config.arch),
        "depth": len(config.arch) - 2,
        "seed": config.seed,
        "test_accuracy": None,
        "density": None,
        "n_modules": None,
        "chosen": None,
        "candidates": [],
        "score": None,
        "paths": {},
    }


def choose_sparsest(candidates: list[dict]) -> dict:
    """The sparsest accepted network; ties to higher accuracy, then to the earlier candidate."""
    return min(enumerate(candidates), key=lambda ic: (ic[1]["density"], -ic[1]["test_accuracy"], ic[0]))[1]


def _candidate(config, unit_step_value, edge_step, metrics, run_path) -> dict:
    return {
        "unit_step": unit_step_value,
        "edge_step": edge_step,
        "density": metrics["density"],
        "test_accuracy": metrics["test_accuracy"],
        "run": str(run_path),
    }


def prune_all(ctx) -> list[dict]:
    """Unit pruning for every unit step, then edge pruning for every edge step from each (from the dense
    network when edges_only). Returns candidates: {"unit_step", "edge_step", "density", "test_accuracy",
    "run"} per accepted final network. The searches of the grid train as batched models unless
    --batch_members 1 (or the network cannot batch: batch norm, dropout, skip connections)."""
    from run.pruning_runs import prune_edges_from_dense

    config = ctx.config
    if edges_only(config):
        return [
            _candidate(config, None, edge_step, metrics, edges_from_dense_dir(config, edge_step))
            for edge_step, _, metrics in prune_edges_from_dense(ctx)
        ]
    return prune_grids([ctx])[0]


def _same_task(ctxs) -> bool:
    import torch

    first = ctxs[0].data
    names = ("x_train", "y_train", "x_val", "y_val", "x_test", "y_test", "x_score", "y_score")
    return all(
        ctx.data.noise_std == first.noise_std
        and all(torch.equal(getattr(ctx.data, n), getattr(first, n)) for n in names)
        for ctx in ctxs[1:]
    )


def prune_grids(ctxs) -> list[list[dict]]:
    """The unit x edge grid of every context (one per seed of one configuration), as `prune_all` would run
    each alone; returns the candidates per context. Searches that share the task train as one batch."""
    if len(ctxs) > 1 and not _same_task(ctxs):
        return [candidates for ctx in ctxs for candidates in prune_grids([ctx])]
    from run.common import progress_bar, train_dense
    from run.pruning_runs import unit_steps

    config = ctxs[0].config
    grids = [(ctx, unit_steps(ctx.config)) for ctx in ctxs]
    total = sum(len(steps) * (1 + len(ctx.config.pruning_gradient)) for ctx, steps in grids)
    label = f"sculpt grid ({len(ctxs)} seed{'s' if len(ctxs) > 1 else ''})"
    with progress_bar(config, total, label) as bar:
        dense = [train_dense(ctx) for ctx in ctxs]
        units = _unit_searches(grids, dense, bar)
        return _edge_searches(grids, units, bar)


def _batch_members(ctx) -> int | None:
    value = getattr(ctx.config, "batch_members", 0)
    return None if not value or value <= 0 else int(value)


def _unit_searches(grids, dense, bar) -> list[list[tuple]]:
    """Every unit search of every grid; returns [(model, metrics) per unit step] per grid."""
    from run.pruning_runs import require_reachable, run_search, unit_plan
    from utils.runs import RunDir, dense_dir

    jobs, where = [], []
    for g, ((ctx, steps), (model, metrics)) in enumerate(zip(grids, dense)):
        for step in steps:
            run = RunDir(unit_dir(ctx.config, step))
            if not (run.finished and not ctx.config.force):
                threshold = ctx.config.prune_acc_threshold
                require_reachable(metrics, threshold, "dense", dense_dir(ctx.config))
            plan = unit_plan(ctx, step if step is not None else 0.0)
            label = f"units step {step}"

            def job(
                factory, ctx=ctx, model=model, metrics=metrics, plan=plan, step=step, run=run, label=label
            ):
                return run_search(ctx, model, metrics, plan, step or 0.0, run, label, factory)

            jobs.append(job)
            where.append(g)
    results = _run(grids[0][0], jobs, bar)
    out = [[] for _ in grids]
    for g, result in zip(where, results):
        out[g].append(result)
    return out


def _run(ctx, jobs, bar) -> list:
    """Run search jobs batched (or one by one with --batch_members 1), ticking the overall bar."""
    from run.batched_searches import run_all

    members = _batch_members(ctx)
    if members == 1:
        results = []
        for job in jobs:
            results.append(job(None))
            bar.update(1)
        return results
    return run_all(jobs, ctx.data, ctx.training, members, on_done=lambda _: bar.update(1))


def _edge_searches(grids, units, bar) -> list[list[dict]]:
    """Edge searches from each unit-pruned network (retrained once first, the retraining batched too)."""
    import copy

    from run.common import generator_for, model_metrics
    from run.pruning_runs import edge_plan, require_reachable, run_search
    from utils.batched_training import train_batched
    from utils.pruning import weights_pruned_percent
    from utils.runs import RunDir

    # retrained starts, only where some edge search of that unit step still has work
    need = []
    for g, (ctx, steps) in enumerate(grids):
        for k, step in enumerate(steps):
            runs = [RunDir(edges_after_units_dir(ctx.config, e, step)) for e in ctx.config.pruning_gradient]
            if any(not (run.finished and not ctx.config.force) for run in runs):
                need.append((g, k))
    starts = {}
    if need:
        models = [copy.deepcopy(units[g][k][0]) for g, k in need]
        generators = [generator_for(grids[g][0].config.seed) for g, _ in need]
        ctx0 = grids[0][0]
        if _batch_members(ctx0) == 1:
            from run.pruning_runs import retrained_start

            trained = [retrained_start(grids[g][0], units[g][k][0]) for g, k in need]
        else:
            results = train_batched(models, ctx0.data, ctx0.training, generators, include_start=True)
            trained = [(m, dict(r.metrics, **model_metrics(m))) for m, r in zip(models, results)]
        for (g, k), (model, metrics) in zip(need, trained):
            ctx, steps = grids[g]
            where = unit_dir(ctx.config, steps[k])
            require_reachable(metrics, ctx.config.prune_acc_threshold, "retrained unit-pruned", where)
            starts[(g, k)] = (model, metrics)
    jobs, where = [], []
    for g, (ctx, steps) in enumerate(grids):
        for k, step in enumerate(steps):
            unit_model, unit_metrics = units[g][k]
            start, start_metrics = starts.get((g, k), (unit_model, unit_metrics))
            for edge_step in ctx.config.pruning_gradient:
                run = RunDir(edges_after_units_dir(ctx.config, edge_step, step))
                plan = edge_plan(ctx, edge_step, weights_pruned_percent(start), total_weights(start))

                def job(factory, ctx=ctx, start=start, sm=start_metrics, plan=plan, e=edge_step, run=run):
                    return run_search(ctx, start, sm, plan, e, run, f"edges step {e}", factory)

                jobs.append(job)
                where.append((g, step, edge_step))
    results = _run(grids[0][0], jobs, bar)
    out = [[] for _ in grids]
    for (g, step, edge_step), (_, metrics) in zip(where, results):
        config = grids[g][0].config
        out[g].append(
            _candidate(config, step, edge_step, metrics, edges_after_units_dir(config, edge_step, step))
        )
    return out


def total_weights(model) -> int:
    """Possible edges of a model: every block's mask size (skip connections included)."""
    return int(sum(mask.numel() for mask in model.masks()))


def sculpt(config) -> dict:
    """Run (or reuse) the whole study for one config; returns the sculpt.json record.

    On bad input the record is written with status "failed" and the ConfigError is re-raised, so a batch
    summary reports the failure instead of dropping it.
    """
    out_dir = sculpt_dir(config)
    record_file = out_dir / SCULPT_FILE
    if record_file.is_file() and not config.force:
        import json

        try:
            record = json.loads(record_file.read_text())
        except (OSError, ValueError):
            record = {}
        if record.get("status") == "ok":
            return record
    record = base_record(config)
    start = time.perf_counter()
    try:
        record.update(_sculpt_stages(config, out_dir))
        record["status"] = "ok"
    except ConfigError as error:
        record.update(status="failed", error=str(error))
        write_json_atomic(record_file, record)
        raise
    except Exception as error:
        record.update(
            status="failed", error=f"{type(error).__name__}: {error}", traceback=traceback.format_exc(limit=5)
        )
        write_json_atomic(record_file, record)
        raise
    record["seconds"] = time.perf_counter() - start
    write_json_atomic(record_file, record)
    return record


def _sculpt_stages(config, out_dir: Path) -> dict:
    from detection_pipeline.detect import sculpt_method
    from detection_pipeline.scoring import score_modules
    from run.common import prepare
    from run.detection_outputs import write_detection
    from run.network_source import target_from_run
    from run.options import method_options
    from utils.runs import RunDir
    from utils.tasks.ground_truth import ground_truth_for

    ctx = prepare(config)
    candidates = prune_all(ctx)
    chosen = choose_sparsest(candidates)
    target = target_from_run(config, RunDir(chosen["run"]), out_dir)
    network = target.network
    options, options_dict, line = method_options(config, "sculpt")
    modules = sculpt_method(network, None, options)
    paths = write_detection(config, target, modules, options_dict, line)
    truth = ground_truth_for(config)
    masks = network.masks
    score = score_modules(network.arch, modules.labels, truth, n_hidden=len(network.arch) - 2, masks=masks)
    write_json_atomic(out_dir / SCORE_FILE, score)
    paths["score"] = out_dir / SCORE_FILE
    return {
        "test_accuracy": chosen["test_accuracy"],
        "density": chosen["density"],
        "n_modules": modules.n_modules,
        "chosen": {k: chosen[k] for k in ("unit_step", "edge_step", "run")},
        "candidates": candidates,
        "score": score,
        "paths": {k: str(v) for k, v in paths.items()},
    }


def summary_line(record: dict) -> str:
    score = record.get("score") or {}
    verdict = {True: "success", False: "no success"}.get(score.get("success"), "not scored (no ground truth)")
    failed = [k for k, v in score.items() if v is False and k != "success"]
    reason = f" (failed: {', '.join(failed)})" if failed else ""
    chosen = record.get("chosen") or {}
    return (
        f"{verdict}{reason}: test accuracy {record['test_accuracy']:.2f}%, density {record['density']:.2f}% "
        f"(unit step {chosen.get('unit_step')}, edge step {chosen.get('edge_step')}), "
        f"{record['n_modules']} modules"
    )
