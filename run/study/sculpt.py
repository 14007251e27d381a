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
    from utils.tasks import boolean_family, task_modularity

    family = boolean_family(config) if config.task == "boolean" else config.task
    return {
        "status": "running",
        "error": None,
        "task": config.task,
        "family": family,
        "modularity": task_modularity(config),
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


def prune_all(ctx) -> list[dict]:
    """Unit pruning for every unit step, then edge pruning for every edge step from each (from the dense
    network when edges_only). Returns candidates: {"unit_step", "edge_step", "density", "test_accuracy",
    "run"} per accepted final network."""
    from run.pruning_runs import edge_searches, prune_edges_from_dense, prune_units, unit_steps

    config = ctx.config
    candidates = []
    if edges_only(config):
        for edge_step, _, metrics in prune_edges_from_dense(ctx):
            candidates.append(
                {
                    "unit_step": None,
                    "edge_step": edge_step,
                    "density": metrics["density"],
                    "test_accuracy": metrics["test_accuracy"],
                    "run": str(edges_from_dense_dir(config, edge_step)),
                }
            )
        return candidates
    for unit_step_value in unit_steps(config):
        unit_model, unit_metrics = prune_units(ctx, unit_step_value)
        runs = edge_searches(
            ctx,
            unit_model,
            unit_metrics,
            lambda s, u=unit_step_value: edges_after_units_dir(config, s, u),
            "unit-pruned",
            unit_dir(config, unit_step_value),
        )
        for edge_step, _, metrics in runs:
            candidates.append(
                {
                    "unit_step": unit_step_value,
                    "edge_step": edge_step,
                    "density": metrics["density"],
                    "test_accuracy": metrics["test_accuracy"],
                    "run": str(edges_after_units_dir(config, edge_step, unit_step_value)),
                }
            )
    return candidates


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
    from utils.runs import RunDir
    from utils.tasks.ground_truth import ground_truth_for

    ctx = prepare(config)
    candidates = prune_all(ctx)
    chosen = choose_sparsest(candidates)
    target = target_from_run(config, RunDir(chosen["run"]), out_dir)
    network = target.network
    options, options_dict, line = method_options(config, "sculpt")
    modules = sculpt_method(network, None, options)
    truth = ground_truth_for(config)
    masks = network.masks
    score = score_modules(network.arch, modules.labels, truth, n_hidden=len(network.arch) - 2, masks=masks)
    steps = (chosen["unit_step"], chosen["edge_step"])
    verdict = "verdict: " + verdict_text(score)
    paths = write_detection(config, target, modules, options_dict, line, steps=steps, verdict=verdict)
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


def verdict_text(score: dict | None) -> str:
    """'success', 'no success (failed: criterion, ...)' or 'not scored (no ground truth)'."""
    score = score or {}
    verdict = {True: "success", False: "no success"}.get(score.get("success"), "not scored (no ground truth)")
    failed = [k for k, v in score.items() if v is False and k != "success"]
    return verdict + (f" (failed: {', '.join(failed)})" if failed else "")


def summary_line(record: dict) -> str:
    chosen = record.get("chosen") or {}
    n = record["n_modules"]
    return (
        f"{verdict_text(record.get('score'))}: test accuracy {record['test_accuracy']:.2f}%, "
        f"density {record['density']:.2f}% "
        f"(unit step {chosen.get('unit_step')}, edge step {chosen.get('edge_step')}), "
        f"{n} module{'s' if n != 1 else ''}"
    )
