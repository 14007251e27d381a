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


def tied_sparsest(candidates: list[dict], chosen: dict) -> list[dict]:
    """Every candidate exactly as sparse as `chosen` (same number of kept weights), chosen first.

    The published study kept all of them: its seeds with several networks always share one density. Which
    one is "the" network is then a coin flip that decides a run's verdict on reuse tasks (e.g. 4 1 2 8,
    arch 4 24 24 8: 7 networks tied at 2.55 %, 2 of them modular), so sculpt scores them all."""
    ties = [c for c in candidates if c is not chosen and abs(c["density"] - chosen["density"]) < 1e-9]
    return [chosen, *ties]


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
    from utils.runs import RunDir

    rows = [{k: tie[k] for k in ("unit_step", "edge_step", "run")} for tie in ties]
    for row in rows[1:]:
        network = target_from_run(config, RunDir(row["run"]), out_dir).network
        try:
            partition = sculpt_method(network, None, options)
        except ValueError:  # no input reaches an output: nothing to score
            row.update(n_modules=0, success=False if truth is not None else None)
            continue
        tie_score = score_modules(
            network.arch, partition.labels, truth, n_hidden=len(network.arch) - 2, masks=network.masks
        )
        row.update(n_modules=int(tie_score["n_modules"]), success=tie_score.get("success"))
    return rows


def tie_success_rate(ties: list[dict]) -> float | None:
    """Fraction of the tied sparsest networks that succeed (None when none is scored): a seed's share of
    a success count made, as the published study's, over every kept network."""
    scored = [t["success"] for t in ties if t.get("success") is not None]
    return sum(bool(v) for v in scored) / len(scored) if scored else None


def summary_line(record: dict) -> str:
    score = record.get("score") or {}
    verdict = {True: "success", False: "no success"}.get(score.get("success"), "not scored (no ground truth)")
    failed = [k for k, v in score.items() if v is False and k != "success"]
    reason = f" (failed: {', '.join(failed)})" if failed else ""
    chosen = record.get("chosen") or {}
    ties = record.get("ties") or []
    tie_text = ""
    if len(ties) > 1:
        succeed = sum(bool(t.get("success")) for t in ties)
        tie_text = f"; {len(ties)} networks tied at this density, {succeed} succeed"
    return (
        f"{verdict}{reason}: test accuracy {record['test_accuracy']:.2f}%, density {record['density']:.2f}% "
        f"(unit step {chosen.get('unit_step')}, edge step {chosen.get('edge_step')}), "
        f"{record['n_modules']} modules{tie_text}"
    )
