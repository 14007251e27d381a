"""The whole study for one network: train -> unit pruning (every --unit_pruning_gradient) -> edge pruning
(every --pruning_gradient) -> keep the sparsest accepted network -> module detection -> picture -> score.

Every stage is a run directory of its own and is reused when finished, so re-running a sculpt command after
a kill continues where it stopped. The result folder holds sculpt.json (what was chosen and why, the score),
modules.json, score.json and network.graphml; the picture mirrors it under --visualization_path.
"""

from __future__ import annotations

import sys
import time
import traceback
from pathlib import Path

from run.parser import ConfigError
from run.runs import edges_after_units_dir, edges_from_dense_dir, seed_dir, unit_dir, unit_pruning_key
from utils.atomic_io import write_json_atomic

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
    from utils.tasks import boolean_family, task_modularity

    family = (
        boolean_family(config.dataset_path, config.modularity) if config.task == "boolean" else config.task
    )
    return {
        "status": "running",
        "error": None,
        "task": config.task,
        "family": family,
        "modularity": task_modularity(config.task, config.modularity),
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


def tied_sparsest(candidates: list[dict], chosen: dict) -> list[dict]:
    """Every candidate exactly as sparse as `chosen` (same number of kept weights), chosen first.

    The published study kept all of them: its seeds with several networks always share one density. Which
    one is "the" network is then a coin flip that decides a run's verdict on reuse tasks (e.g. 4 1 2 8,
    arch 4 24 24 8: 7 networks tied at 2.55 %, 2 of them modular), so sculpt scores them all."""
    ties = [c for c in candidates if c is not chosen and abs(c["density"] - chosen["density"]) < 1e-9]
    return [chosen, *ties]


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
    each alone; returns the candidates per context, in grid order (unit step, then edge step).

    Unless --batch_members 1 (or the network cannot batch), the searches run as one pipeline of batched
    training: every unit search starts at once, each continues with its retrained start and spawns its edge
    searches as soon as it ends, and all searches in flight retrain together (run/batched_searches.py).
    Searches of contexts whose tasks differ (digit splits depend on the seed) batch per context."""
    if len(ctxs) > 1 and not _same_task(ctxs):
        return [candidates for ctx in ctxs for candidates in prune_grids([ctx])]
    from run.common import progress_bar
    from run.dense import train_dense
    from run.pruning_runs import unit_steps
    from utils.batched_training import batch_declined

    config = ctxs[0].config
    grids = [(ctx, unit_steps(ctx.config)) for ctx in ctxs]
    total = sum(len(steps) * (1 + len(ctx.config.pruning_gradient)) for ctx, steps in grids)
    label = f"sculpt grid ({len(ctxs)} seed{'s' if len(ctxs) > 1 else ''})"
    with progress_bar(config, total, label) as bar:
        dense = [train_dense(ctx) for ctx in ctxs]
        members = _batch_members(ctxs[0])
        declined = None if members == 1 else batch_declined(dense[0][0], ctxs[0].training, ctxs[0].data)
        if declined is not None and not config.quiet:
            # the batch would not train exactly as alone: one search at a time, and the log says why
            bar.write(f"note: {declined} is not batched; the searches train one at a time", file=sys.stderr)
        if members == 1 or declined is not None:
            return [_grid_sequential(ctx, steps, start, bar) for (ctx, steps), start in zip(grids, dense)]
        return _grids_pipelined(grids, dense, members, bar)


def _batch_members(ctx) -> int | None:
    value = getattr(ctx.config, "batch_members", 0)
    return None if not value or value <= 0 else int(value)


def _unit_search(ctx, step, dense, factory):
    """(model, metrics) of the unit search for `step` from the dense (model, metrics)."""
    from run.pruning_runs import require_reachable, run_search, unit_plan
    from run.runs import RunDir, dense_dir

    model, metrics = dense
    run = RunDir(unit_dir(ctx.config, step))
    if not (run.finished and not ctx.config.force):
        require_reachable(metrics, ctx.config.prune_acc_threshold, "dense", dense_dir(ctx.config))
    plan = unit_plan(ctx, step if step is not None else 0.0)
    return run_search(ctx, model, metrics, plan, step or 0.0, run, f"units step {step}", factory)


def _edge_start(ctx, step, unit, retrain_start):
    """The start of the edge searches after unit step `step`: the unit-pruned network retrained once
    (retrain_start(model) -> (model, metrics)), or the unit-pruned one when every edge run is finished."""
    from run.pruning_runs import require_reachable
    from run.runs import RunDir

    runs = [RunDir(edges_after_units_dir(ctx.config, e, step)) for e in ctx.config.pruning_gradient]
    if all(run.finished and not ctx.config.force for run in runs):
        return unit
    start = retrain_start(unit[0])
    threshold = ctx.config.prune_acc_threshold
    require_reachable(start[1], threshold, "retrained unit-pruned", unit_dir(ctx.config, step))
    return start


def _edge_search(ctx, step, edge_step, start, factory) -> dict:
    from run.pruning_runs import edge_plan, run_search
    from run.runs import RunDir

    model, metrics = start
    run = RunDir(edges_after_units_dir(ctx.config, edge_step, step))
    plan = edge_plan(ctx, edge_step, model)
    _, pruned = run_search(ctx, model, metrics, plan, edge_step, run, f"edges step {edge_step}", factory)
    return _candidate(ctx.config, step, edge_step, pruned, run.path)


def _grid_sequential(ctx, steps, dense, bar) -> list[dict]:
    """One search at a time, unit step by unit step (the --batch_members 1 path)."""
    from run.pruning_runs import retrained_start

    candidates = []
    for step in steps:
        unit = _unit_search(ctx, step, dense, None)
        bar.update(1)
        start = _edge_start(ctx, step, unit, lambda model: retrained_start(ctx, model))
        for edge_step in ctx.config.pruning_gradient:
            candidates.append(_edge_search(ctx, step, edge_step, start, None))
            bar.update(1)
    return candidates


def _grids_pipelined(grids, dense, members, bar) -> list[list[dict]]:
    import copy

    from run.batched_searches import SearchPool
    from run.common import generator_for, model_metrics

    ctx0 = grids[0][0]
    include_start = getattr(ctx0.config, "retrain_include_start", True)
    pool = SearchPool(ctx0.data, ctx0.training, members, include_start=include_start)
    found: dict[tuple, dict] = {}

    def chain(factory, g, ctx, step):
        unit = _unit_search(ctx, step, dense[g], factory)
        bar.update(1)

        def retrain_start(model):  # retrained_start through the batch: same generator, same training
            start = copy.deepcopy(model)
            metrics = factory(generator_for(ctx.config.seed))(start)
            return start, dict(metrics, **model_metrics(start))

        start = _edge_start(ctx, step, unit, retrain_start)
        for edge_step in ctx.config.pruning_gradient:

            def edge_job(edge_factory, edge_step=edge_step):
                return _edge_search(ctx, step, edge_step, start, edge_factory)

            def done(candidate, key=(g, step, edge_step)):
                found[key] = candidate
                bar.update(1)

            pool.spawn(edge_job, done)

    for g, (ctx, steps) in enumerate(grids):
        for step in steps:
            pool.spawn(lambda factory, g=g, ctx=ctx, step=step: chain(factory, g, ctx, step))
    pool.wait()
    return [
        [found[(g, s, e)] for s in steps for e in ctx.config.pruning_gradient]
        for g, (ctx, steps) in enumerate(grids)
    ]


def sculpt(config) -> dict:
    """Run (or reuse) the whole study for one config; returns the sculpt.json record.

    On bad input the record is written with status "failed" and the ConfigError is re-raised, so a batch
    summary reports the failure instead of dropping it.
    """
    out_dir = sculpt_dir(config)
    record_file = out_dir / SCULPT_FILE
    if record_file.is_file() and not config.force:
        from utils.files import read_json

        try:
            record = read_json(record_file, "sculpt record")
        except ValueError:  # InputError included: damaged, redone below
            record = {}
        record = record if isinstance(record, dict) else {}
        if record.get("status") == "ok":
            return dict(record, _reused=str(out_dir))
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
    from run.runs import RunDir
    from utils.fingerprint import network_record
    from utils.tasks.ground_truth import ground_truth_for

    ctx = prepare(config)
    candidates = prune_all(ctx)
    chosen = choose_sparsest(candidates)
    target = target_from_run(config, RunDir(chosen["run"]), out_dir)
    network = target.network
    options, options_dict, line = method_options(config, "sculpt")
    modules = sculpt_method(network, None, options)
    truth = ground_truth_for(config)
    score = score_modules(
        network.arch,
        modules.labels,
        truth,
        n_hidden=len(network.arch) - 2,
        masks=network.masks,
        skips=network.skips,
    )
    steps = (chosen["unit_step"], chosen["edge_step"])
    verdict = "verdict: " + verdict_text(score)
    paths = write_detection(config, target, modules, options_dict, line, steps=steps, verdict=verdict)
    write_json_atomic(out_dir / SCORE_FILE, {**score, "network": network_record(network)})
    paths["score"] = out_dir / SCORE_FILE
    ties = score_ties(config, tied_sparsest(candidates, chosen), options, truth, out_dir)
    ties[0].update(n_modules=modules.n_modules, success=score.get("success"))
    return {
        "test_accuracy": chosen["test_accuracy"],
        "density": chosen["density"],
        "n_modules": modules.n_modules,
        "chosen": {k: chosen[k] for k in ("unit_step", "edge_step", "run")},
        "candidates": candidates,
        "score": score,
        "ties": ties,
        "tie_success_rate": tie_success_rate(ties),
        "paths": {k: str(v) for k, v in paths.items()},
    }


def score_ties(config, ties: list[dict], options, truth, out_dir: Path) -> list[dict]:
    """[{unit_step, edge_step, run, n_modules, success}] for the tied sparsest networks; the first (the
    chosen network) is filled in by the caller from its full detection."""
    from detection_pipeline.detect import sculpt_method
    from detection_pipeline.scoring import score_modules
    from run.network_source import target_from_run
    from run.runs import RunDir

    rows = [{k: tie[k] for k in ("unit_step", "edge_step", "run")} for tie in ties]
    for row in rows[1:]:
        network = target_from_run(config, RunDir(row["run"]), out_dir).network
        try:
            partition = sculpt_method(network, None, options)
        except ValueError:  # no input reaches an output: nothing to score
            row.update(n_modules=0, success=False if truth is not None else None)
            continue
        tie_score = score_modules(
            network.arch,
            partition.labels,
            truth,
            n_hidden=len(network.arch) - 2,
            masks=network.masks,
            skips=network.skips,
        )
        row.update(n_modules=int(tie_score["n_modules"]), success=tie_score.get("success"))
    return rows


def tie_success_rate(ties: list[dict]) -> float | None:
    """Fraction of the tied sparsest networks that succeed (None when none is scored): a seed's share of
    a success count made, as the published study's, over every kept network."""
    scored = [t["success"] for t in ties if t.get("success") is not None]
    return sum(bool(v) for v in scored) / len(scored) if scored else None


def verdict_text(score: dict | None) -> str:
    """'success', 'no success (failed: criterion, ...)' or 'not scored (no ground truth)'."""
    score = score or {}
    verdict = {True: "success", False: "no success"}.get(score.get("success"), "not scored (no ground truth)")
    failed = [k for k, v in score.items() if v is False and k != "success"]
    return verdict + (f" (failed: {', '.join(failed)})" if failed else "")


def summary_line(record: dict) -> str:
    chosen = record.get("chosen") or {}
    n = record["n_modules"]
    ties = record.get("ties") or []
    tie_text = ""
    if len(ties) > 1:
        succeed = sum(bool(t.get("success")) for t in ties)
        tie_text = f"; {len(ties)} networks tied at this density, {succeed} succeed"
    return (
        f"{verdict_text(record.get('score'))}: test accuracy {record['test_accuracy']:.2f}%, "
        f"density {record['density']:.2f}% "
        f"(unit step {chosen.get('unit_step')}, edge step {chosen.get('edge_step')}), "
        f"{n} module{'s' if n != 1 else ''}{tie_text}"
    )
