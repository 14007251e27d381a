"""--experiment sweep: run a file of sculpt command lines on a local process pool or on Ray; see
run/study/sweep.py."""

from __future__ import annotations

import os
from pathlib import Path

from run.parser import ConfigError
from run.study.sweep import failure_table, sweep


def run(config) -> list:
    if not config.jobs_file:
        raise ConfigError("--experiment sweep needs --jobs_file FILE (one command line per line)")
    log_dir = Path(config.log_dir) if config.log_dir else Path(config.result_path) / "logs"
    n_parallel = config.jobs or len(os.sched_getaffinity(0))
    results = sweep(config.jobs_file, log_dir, n_parallel, config.backend, config.ray_address, config.quiet)
    failed = [r for r in results if r.returncode != 0]
    ok = len(results) - len(failed)
    print(f"sweep ({config.backend}): {len(results)} runs, {ok} ok, {len(failed)} failed (logs in {log_dir})")
    if failed:
        print(failure_table(results, log_dir))
        raise ConfigError(f"{len(failed)} of {len(results)} runs failed; see the table above and their logs")
    return results
