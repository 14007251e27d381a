"""Run a list of sculpt command lines: a local process pool by default, or Ray (docs/scale.md).

    python3 main.py --experiment sweep --jobs_file FILE [--jobs N] [--backend local|ray] [--ray_address A]
                    [--log_dir DIR]

FILE holds one command line per line (`python3 main.py --experiment sculpt ...` or just the options after
main.py; blank lines and `#` comments skipped). Each job runs `python3 main.py <options>` in its own process
(local: at most --jobs at once; Ray: one task per job, one CPU each, on a local Ray or the cluster at
--ray_address), writing into the run folders its options name, exactly as if started by hand, so finished
runs are reused and results do not depend on the backend. Every job logs to `<log_dir>/<run name>.log`,
which starts with the command line. One overall progress bar counts jobs with an ETA; at the end a table
lists the failed jobs, and the sweep fails (exit 2) when any job failed.
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path

from run.parser import ConfigError

REPO = Path(__file__).resolve().parents[2]
BACKENDS = ("local", "ray")


@dataclass(frozen=True)
class Job:
    """One command line: its options after main.py and a readable name for the log."""

    index: int
    args: tuple[str, ...]
    name: str


@dataclass
class JobResult:
    job: Job
    returncode: int
    last_line: str
    seconds: float


def _option(args: list[str], name: str) -> list[str]:
    """The values after --name (up to the next option), or []."""
    if name not in args:
        return []
    i = args.index(name) + 1
    values = []
    while i < len(args) and not args[i].startswith("--"):
        values.append(args[i])
        i += 1
    return values


def run_name(args: list[str], index: int) -> str:
    """<task>_<modularity>_arch-<arch>_seed-<S> (seeds-<S1>-<S2>.. for a batch of seeds; + the job number
    if nothing names it), file-name safe."""
    parts = []
    task = _option(args, "--task")
    if task:
        parts.append(task[0])
    modularity = _option(args, "--modularity")
    if modularity:
        parts.append("-".join(modularity))
    arch = _option(args, "--arch")
    if arch:
        parts.append("arch-" + "-".join(arch))
    seeds = _option(args, "--seeds")
    seed = _option(args, "--seed")
    parts.append(f"seeds-{'-'.join(seeds)}" if seeds else f"seed-{seed[0] if seed else 0}")
    name = "_".join(parts) if len(parts) > 1 else f"job-{index}"
    return re.sub(r"[^A-Za-z0-9._-]+", "-", name)


IN_SWEEP = "SCULPT_IN_SWEEP"


def _experiment_of(words: list[str]) -> str | None:
    """The --experiment of a command line's words (either spelling, --experiment X or --experiment=X)."""
    for k, word in enumerate(words):
        if word == "--experiment" and k + 1 < len(words):
            return words[k + 1]
        if word.startswith("--experiment="):
            return word.split("=", 1)[1]
    return None


def read_jobs(path) -> list[Job]:
    """Jobs from a file of command lines; ConfigError on a missing file or a line that is not main.py's."""
    from utils.files import read_text

    file = Path(path)
    if not file.exists():
        raise ConfigError(f"--jobs_file {file} does not exist; give a file with one command line per line")
    jobs, seen = [], {}
    for number, line in enumerate(read_text(file, "--jobs_file").splitlines(), start=1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        try:
            words = shlex.split(line)
        except ValueError as error:  # an unclosed quote
            raise ConfigError(f"--jobs_file {file}:{number}: {error.args[0].lower()} in {line!r}") from None
        if "main.py" in [Path(w).name for w in words]:
            words = words[[Path(w).name for w in words].index("main.py") + 1 :]
        if not words or not words[0].startswith("--"):
            raise ConfigError(f"{file}:{number}: {line!r} is not a main.py command line")
        if _experiment_of(words) == "sweep":
            raise ConfigError(
                f"--jobs_file {file}:{number}: a sweep line starts another sweep ({line!r}); a jobs file "
                "lists single runs, so put that file's lines here instead"
            )
        name = run_name(words, len(jobs))
        seen[name] = seen.get(name, 0) + 1
        if seen[name] > 1:  # two jobs of one task/arch/seed (other options differ): keep both logs
            name = f"{name}_{seen[name]}"
        jobs.append(Job(len(jobs), tuple(words), name))
    if not jobs:
        raise ConfigError(f"--jobs_file {file} lists no command lines")
    return jobs


def run_job(args: tuple[str, ...], log_path: str, repo: str = str(REPO)) -> tuple[int, str, float]:
    """Run `python3 main.py ARGS` in `repo`, logging to `log_path` (the command line first). Returns
    (exit code, last output line, seconds). Used by both backends (a Ray task calls it remotely)."""
    env = dict(os.environ)
    env.setdefault("OMP_NUM_THREADS", "1")  # jobs run side by side: one torch thread each
    env[IN_SWEEP] = "1"  # a job that is itself a sweep refuses to start (no sweep ever nests)
    log = Path(log_path)
    log.parent.mkdir(parents=True, exist_ok=True)
    command = [sys.executable, "main.py", *args]
    start = time.perf_counter()
    with open(log, "w") as handle:
        handle.write("$ " + shlex.join(["python3", "main.py", *args]) + "\n")
        handle.flush()
        code = subprocess.run(command, cwd=repo, stdout=handle, stderr=subprocess.STDOUT, env=env).returncode
    lines = [line for line in log.read_text().splitlines() if line.strip()]
    return code, (lines[-1] if len(lines) > 1 else ""), time.perf_counter() - start


def _run_local(jobs: list[Job], log_dir: Path, n_parallel: int, on_done) -> list[JobResult]:
    # Threads only wait on the job subprocesses, so the pool of processes is the jobs themselves.
    results = []
    with ThreadPoolExecutor(max_workers=n_parallel) as pool:
        futures = {pool.submit(run_job, job.args, str(log_dir / f"{job.name}.log")): job for job in jobs}
        for future in as_completed(futures):
            code, last, seconds = future.result()
            results.append(JobResult(futures[future], code, last, seconds))
            on_done(results[-1])
    return results


def _run_ray(jobs: list[Job], log_dir: Path, address: str | None, on_done) -> list[JobResult]:
    try:
        import ray
    except ImportError:
        raise ConfigError(
            "--backend ray needs Ray: pip install -r requirements-ray.txt (or use --backend local)"
        ) from None
    started_here = not ray.is_initialized()
    if started_here:
        try:
            ray.init(address=address, include_dashboard=False, log_to_driver=False, logging_level="ERROR")
        except Exception as error:  # Ray raises ConnectionError, RuntimeError, ... for a bad address
            where = f"the Ray cluster at {address}" if address else "a local Ray"
            raise ConfigError(f"cannot start or reach {where} ({type(error).__name__}: {error})") from None
    remote = ray.remote(num_cpus=1)(run_job)
    pending = {
        remote.remote(job.args, str(log_dir.resolve() / f"{job.name}.log"), str(REPO)): job for job in jobs
    }
    results = []
    try:
        while pending:
            done, _ = ray.wait(list(pending), num_returns=1)
            for ref in done:
                job = pending.pop(ref)
                try:
                    code, last, seconds = ray.get(ref)
                except Exception as error:  # the task itself died (worker lost, ...)
                    code, last, seconds = 1, f"Ray task failed: {type(error).__name__}: {error}", 0.0
                results.append(JobResult(job, code, last, seconds))
                on_done(results[-1])
    finally:
        if started_here:
            ray.shutdown()
    return results


def sweep(jobs_file, log_dir, n_parallel: int, backend: str = "local", address=None, quiet=False):
    """Run every job of `jobs_file`; returns the JobResults in job order."""
    from tqdm.auto import tqdm

    if backend not in BACKENDS:
        raise ConfigError(f"--backend {backend} is unknown; choose local or ray")
    if n_parallel <= 0:
        raise ConfigError(f"--jobs must be positive, got {n_parallel}")
    jobs = read_jobs(jobs_file)
    log_dir = Path(log_dir)
    try:
        log_dir.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise ConfigError(
            f"cannot create the log folder {log_dir} ({error.strerror}); choose --log_dir"
        ) from None
    bar = tqdm(total=len(jobs), desc=f"sweep ({backend})", unit="run", disable=quiet, dynamic_ncols=True)
    failed = 0

    def on_done(result: JobResult) -> None:
        nonlocal failed
        failed += result.returncode != 0
        bar.update(1)
        bar.set_postfix(failed=failed)

    with bar:
        if backend == "ray":
            results = _run_ray(jobs, log_dir, address, on_done)
        else:
            results = _run_local(jobs, log_dir, n_parallel, on_done)
    return sorted(results, key=lambda r: r.job.index)


def failure_table(results: list[JobResult], log_dir) -> str:
    """A plain-text table of the failed jobs (run name, exit code, last log line, log file)."""
    rows = [r for r in results if r.returncode != 0]
    if not rows:
        return ""
    width = max(len(r.job.name) for r in rows)
    lines = [f"{'run':<{width}}  code  last line (log)"]
    for r in rows:
        log = Path(log_dir) / f"{r.job.name}.log"
        lines.append(f"{r.job.name:<{width}}  {r.returncode:>4}  {r.last_line[:120]} ({log})")
    return "\n".join(lines)
