"""Collect sculpt runs into a summary table and success rates per family x task x depth.

    result = summarize(result_path, summary_path=None, visualization_path=None)

scans `result_path` recursively for `sculpt.json` (written by `--experiment sculpt`, one per run) and writes

- `summary.csv`: one row per run (SUMMARY_COLUMNS). A failed run keeps its row (status "failed", its error);
  a file that cannot be read or has the wrong shape becomes a row with status "unreadable";
- `success_rates.csv`: one row per family x task x depth (RATE_COLUMNS);

both in `summary_path` (default: `result_path`), and one success-rate picture per family under
`visualization_path` (detection_pipeline.success_plots). Every file is written atomically.

Rates: a run is *scored* when its status is "ok" and its score has a success verdict (True / False; a
score where no criterion applies, e.g. a task without ground truth, is not scored). `rate_<criterion>` =
runs where the criterion held / scored runs where it applies (blank when it applies to none);
`success_rate` = successes / scored runs; `success_rate_all` = successes / all runs, counting failed,
unfinished and unreadable runs as no success.
`n_failed` counts every run whose status is not "ok" (failed, unreadable, or never finished).
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
from dataclasses import dataclass, field
from pathlib import Path

from detection_pipeline.scoring import CRITERIA
from run.parser import ConfigError
from utils.atomic_io import write_text_atomic

SCULPT_FILE = "sculpt.json"
SUMMARY_FILE = "summary.csv"
RATES_FILE = "success_rates.csv"

SUMMARY_COLUMNS = (
    "family",
    "task",
    "arch",
    "depth",
    "seed",
    "status",
    "accuracy",
    "density",
    "modules",
    "unit_step",
    "edge_step",
    *CRITERIA,
    "success",
    "error",
    "path",
)
RATE_COLUMNS = (
    "family",
    "task",
    "depth",
    "n_runs",
    "n_failed",
    "n_scored",
    *(f"rate_{name}" for name in CRITERIA),
    "n_success",
    "success_rate",
    "success_rate_all",
)


@dataclass
class SummaryResult:
    """What summarize() read and wrote: rows (one dict per run), rates (one per group), files written."""

    rows: list[dict]
    rates: list[dict]
    files: list[Path] = field(default_factory=list)


# ----------------------------------------------------------------------------------------------- reading


def find_runs(result_path: str | os.PathLike) -> list[Path]:
    """Every sculpt.json under `result_path` (symlinked folders not followed), sorted by path."""
    found = []
    for folder, dirs, files in os.walk(result_path):
        dirs.sort()
        if SCULPT_FILE in files:
            found.append(Path(folder) / SCULPT_FILE)
    return sorted(found)


def read_run(path: str | os.PathLike, root: str | os.PathLike | None = None) -> dict:
    """One summary row (python values; see SUMMARY_COLUMNS) from a sculpt.json file. Never raises for a
    bad file: it becomes status "unreadable" with the problem in "error" and whatever fields could be read.
    """
    path = Path(path)
    shown = os.path.relpath(path.parent, root) if root is not None else str(path.parent)
    row: dict = {name: None for name in SUMMARY_COLUMNS}
    row["path"] = shown
    try:
        data = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError) as error:
        return _unreadable(row, f"cannot read {SCULPT_FILE}: {error}")
    except json.JSONDecodeError as error:
        return _unreadable(row, f"{SCULPT_FILE} is not valid JSON: {error}")
    if not isinstance(data, dict):
        return _unreadable(row, f"{SCULPT_FILE} holds a {type(data).__name__}, not an object")
    problems: list[str] = []

    def take(key, check, convert=lambda v: v):
        value = data.get(key)
        if value is None:
            return None
        if not check(value):
            problems.append(f"{key}={value!r}")
            return None
        return convert(value)

    row["family"] = take("family", lambda v: isinstance(v, str))
    row["task"] = take("modularity", _int_list, _join)
    arch = take("arch", _int_list)
    row["arch"] = _join(arch) if arch else None
    row["depth"] = take("depth", _is_int)
    if row["depth"] is None and arch:
        row["depth"] = len(arch) - 2
    row["seed"] = take("seed", _is_int)
    row["accuracy"] = take("test_accuracy", _is_number, float)
    row["density"] = take("density", _is_number, float)
    row["modules"] = take("n_modules", _is_int)
    chosen = take("chosen", lambda v: isinstance(v, dict)) or {}
    row["unit_step"] = chosen.get("unit_step") if _is_number(chosen.get("unit_step")) else None
    row["edge_step"] = chosen.get("edge_step") if _is_number(chosen.get("edge_step")) else None
    status = data.get("status")
    error = data.get("error")
    score = take("score", lambda v: isinstance(v, dict))
    if score:
        for name in (*CRITERIA, "success"):
            value = score.get(name)
            row[name] = value if isinstance(value, bool) else None
    if not isinstance(status, str) or not status:
        problems.insert(0, f"status={status!r}")
    if problems:
        return _unreadable(row, f"{SCULPT_FILE} has unexpected values: {', '.join(problems)}")
    row["status"] = status
    row["error"] = None if error is None else _one_line(str(error))
    row["_scored"] = status == "ok" and row["success"] is not None  # None: no ground truth, nothing scored
    return row


def _unreadable(row: dict, error: str) -> dict:
    row["status"] = "unreadable"
    row["error"] = _one_line(error)
    for name in (*CRITERIA, "success"):
        row[name] = None
    row["_scored"] = False
    return row


def _one_line(text: str) -> str:
    return " ".join(text.split())


def _is_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value) -> bool:
    return (_is_int(value) or isinstance(value, float)) and math.isfinite(value)


def _int_list(value) -> bool:
    return isinstance(value, list) and bool(value) and all(_is_int(v) for v in value)


def _join(values) -> str:
    return " ".join(str(v) for v in values)


def _task_key(task: str | None) -> tuple:
    """Sort key: numeric modularity order ("4 1 2 2" < "4 1 2 12"); unknown last."""
    if not task:
        return (1, ())
    try:
        return (0, tuple(int(v) for v in task.split()))
    except ValueError:
        return (0, (task,))


def _row_key(row: dict) -> tuple:
    return (
        row["family"] is None,
        row["family"] or "",
        _task_key(row["task"]),
        -1 if row["depth"] is None else row["depth"],
        row["arch"] or "",
        -1 if row["seed"] is None else row["seed"],
        row["path"],
    )


def scan(result_path: str | os.PathLike) -> list[dict]:
    """Rows for every sculpt.json under `result_path`, sorted by family, task, depth, arch, seed, path."""
    rows = [read_run(p, result_path) for p in find_runs(result_path)]
    return sorted(rows, key=_row_key)


# ------------------------------------------------------------------------------------------------- rates


def success_rates(rows: list[dict]) -> list[dict]:
    """One dict per family x task x depth (RATE_COLUMNS, python values; rates None when undefined).

    Rows whose family, task or depth could not be read are grouped under "unknown" / "" / None.
    """
    groups: dict[tuple, list[dict]] = {}
    for row in rows:
        known = row["family"] and row["task"] and row["depth"] is not None
        key = (row["family"], row["task"], row["depth"]) if known else ("unknown", "", None)
        groups.setdefault(key, []).append(row)
    rates = []
    for (family, task, depth), members in groups.items():
        scored = [r for r in members if r.get("_scored")]
        entry: dict = {
            "family": family,
            "task": task,
            "depth": depth,
            "n_runs": len(members),
            "n_failed": sum(r["status"] != "ok" for r in members),
            "n_scored": len(scored),
        }
        for name in CRITERIA:
            applies = [r[name] for r in scored if r[name] is not None]
            entry[f"rate_{name}"] = sum(applies) / len(applies) if applies else None
        n_success = sum(r["success"] is True for r in scored)
        entry["n_success"] = n_success
        entry["success_rate"] = n_success / len(scored) if scored else None
        entry["success_rate_all"] = n_success / len(members)
        rates.append(entry)
    return sorted(
        rates,
        key=lambda e: (e["family"] == "unknown", e["family"], _task_key(e["task"]), e["depth"] or -1),
    )


# ------------------------------------------------------------------------------------------------ writing


def _cell(value) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "True" if value else "False"
    if isinstance(value, float):
        return f"{value:.6g}"
    return str(value)


def csv_text(records: list[dict], columns) -> str:
    """CSV (header + one line per record, "\\n" line ends) of the given columns; None -> empty cell."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(columns)
    for record in records:
        writer.writerow([_cell(record.get(c)) for c in columns])
    return buffer.getvalue()


def summarize(result_path, summary_path=None, visualization_path=None) -> SummaryResult:
    """Scan, write summary.csv and success_rates.csv (in summary_path, default result_path) and the
    per-family PNGs (under visualization_path, skipped when None). Raises ConfigError when result_path does
    not exist or holds no sculpt.json."""
    root = Path(result_path)
    fix = "fix: run --experiment sculpt with this --result_path first, or point --result_path at its results"
    if not root.is_dir():
        raise ConfigError(f"--result_path {root} is not a folder; {fix}")
    rows = scan(root)
    if not rows:
        raise ConfigError(f"no {SCULPT_FILE} under {root}; {fix}")
    rates = success_rates(rows)
    out = Path(summary_path) if summary_path else root
    files = [out / SUMMARY_FILE, out / RATES_FILE]
    try:
        write_text_atomic(files[0], csv_text(rows, SUMMARY_COLUMNS))
        write_text_atomic(files[1], csv_text(rates, RATE_COLUMNS))
    except OSError as error:
        raise ConfigError(
            f"cannot write into {out} ({error}); fix: choose a writable --summary_path"
        ) from None
    if visualization_path is not None:
        from detection_pipeline.success_plots import plot_success_rates

        files.extend(plot_success_rates(rates, visualization_path))
    return SummaryResult(rows, rates, files)
