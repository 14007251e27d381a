"""Time the published example in one process: dense training, unit pruning (70), edge pruning (2.5).

    taskset -c 0,1 python3 benchmarks/pipeline.py [--repeats 5] [--threads 2] [--cores 0,1] [--profile]

Each repetition runs, in this process and with a fresh temporary --result_path (deleted afterwards),
    main.main([... --prune_units 1 --unit_pruning_gradient 70.0 --prune_acc_threshold 100.0])
    main.main([... --prune_units 0 --pruning_gradient 2.5])
with the Done-when options (4 2 4, arch 4 24 4, lr 0.05, batch 8, 15 epochs, seed 0) and --quiet, so run
directories, checkpoints and search states are really written. A warm-up repetition (one-time costs) is
reported on its own; then the median of `--repeats`.

Where the time goes: library functions are wrapped with timers that charge *self* time (a nested timed
call is charged to itself, not to its caller), summed over the measured repetitions:
    training steps      utils.training.train minus what is listed below (forward, backward, optimizer)
    evaluation          utils.training.evaluate (each epoch's validation, the final test)
    optimizer setup     utils.training.make_optimizer (a fresh optimizer per training call)
    unit scoring        utils.pruning.unit_scores / normalise_scores / unit_masks
    edge masks          utils.pruning.edge_masks
    deepcopy            copy.deepcopy (best-epoch state copies, accepted networks, start networks)
    file writes         RunDir.save_json / save_torch (atomic writes)
    file reads          RunDir.load_json / load_torch
    task loading        utils.tasks.load_task
    other               everything else (search bookkeeping, parsing, tqdm stand-ins, ...)
--profile also prints the top functions of a cProfile of one repetition.
Target: median <= 2 s on 2 cores. `--threads` and `--keep_threads` as in benchmarks/train.py.
"""

from __future__ import annotations

import cProfile
import functools
import io
import os
import pstats
import shutil
import statistics
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.train import DONE_WHEN, pin, timing_parser  # noqa: E402

UNIT = "--experiment prune --prune_acc_threshold 100.0 --unit_pruning_gradient 70.0 --prune_units 1".split()
EDGE = "--experiment prune --prune_acc_threshold 100.0 --unit_pruning_gradient 70.0 --prune_units 0".split()
EDGE += ["--pruning_gradient", "2.5"]


class SelfTimers:
    """Wrap functions so each call's self time (minus timed calls nested in it) goes to a named bucket."""

    def __init__(self):
        self.seconds = defaultdict(float)
        self.calls = defaultdict(int)
        self.stack: list[list] = []  # [name, time the current self-time stretch started]
        self.enabled = False

    def wrap(self, name: str, fn, reentrant: bool = True):
        @functools.wraps(fn)
        def timed(*args, **kwargs):
            if not self.enabled or (not reentrant and self.stack and self.stack[-1][0] == name):
                return fn(*args, **kwargs)
            now = time.perf_counter()
            if self.stack:
                self.seconds[self.stack[-1][0]] += now - self.stack[-1][1]
            self.stack.append([name, now])
            self.calls[name] += 1
            try:
                return fn(*args, **kwargs)
            finally:
                end = time.perf_counter()
                finished, started = self.stack.pop()
                self.seconds[finished] += end - started
                if self.stack:
                    self.stack[-1][1] = end

        return timed


def install(timers: SelfTimers) -> None:
    """Patch the library where the pipeline looks the functions up (module globals, at call time)."""
    import copy

    import run.common
    import run.pruning_runs
    import run.runs
    import utils.pruning
    import utils.tasks
    import utils.training

    copy.deepcopy = timers.wrap("deepcopy", copy.deepcopy, reentrant=False)  # deepcopy recurses via itself
    train = timers.wrap("training steps", utils.training.train)
    run.common.train = train
    run.pruning_runs.train = train
    utils.training.evaluate = timers.wrap("evaluation", utils.training.evaluate)
    utils.training.make_optimizer = timers.wrap("optimizer setup", utils.training.make_optimizer)
    for name in ("unit_scores", "normalise_scores", "unit_masks"):
        setattr(run.pruning_runs, name, timers.wrap("unit scoring", getattr(utils.pruning, name)))
    run.pruning_runs.edge_masks = timers.wrap("edge masks", utils.pruning.edge_masks)
    for name in ("save_json", "save_torch"):
        setattr(run.runs.RunDir, name, timers.wrap("file writes", getattr(run.runs.RunDir, name)))
    for name in ("load_json", "load_torch"):
        setattr(run.runs.RunDir, name, timers.wrap("file reads", getattr(run.runs.RunDir, name)))
    run.common.load_task = timers.wrap("task loading", utils.tasks.load_task)


def one_pipeline(main_fn, timers: SelfTimers) -> tuple[float, dict]:
    """Dense + units + edges into a fresh temp result path; returns (seconds, edge metrics)."""
    import json

    folder = Path(tempfile.mkdtemp(prefix="sculpt-bench-"))
    try:
        argv = [*DONE_WHEN, "--result_path", str(folder)]
        timers.enabled = True
        start = time.perf_counter()
        timers.stack.append(["other", start])
        assert main_fn([*argv, *UNIT]) == 0
        assert main_fn([*argv, *EDGE]) == 0
        end = time.perf_counter()
        name, started = timers.stack.pop()
        timers.seconds[name] += end - started
        timers.enabled = False
        (metrics_file,) = folder.rglob("edges/*/metrics.json")
        return end - start, json.loads(metrics_file.read_text())
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def main(argv=None) -> int:
    parser = timing_parser(__doc__, repeats=5)
    parser.add_argument("--profile", action="store_true", help="also cProfile one repetition")
    args = parser.parse_args(argv)
    pinned = pin(args.cores) if args.cores else "not pinned"
    if args.keep_threads:
        os.environ["OMP_NUM_THREADS"] = str(args.threads)

    import torch

    import main as sculpt_main

    torch.set_num_threads(args.threads)
    timers = SelfTimers()
    install(timers)

    first, first_metrics = one_pipeline(sculpt_main.main, timers)
    timers.seconds.clear()
    timers.calls.clear()
    times, results = [], []
    for _ in range(args.repeats):
        seconds, metrics = one_pipeline(sculpt_main.main, timers)
        times.append(seconds)
        results.append((metrics["test_accuracy"], round(metrics["density"], 3)))

    median = statistics.median(times)
    total = sum(times)
    print(
        f"published example: train + unit prune (70) + edge prune (2.5), torch {torch.__version__}, "
        f"threads: set {args.threads}, used {torch.get_num_threads()} "
        f"({'kept' if args.keep_threads else 'library choice'}), {pinned}; "
        "fresh temp result path per repetition"
    )
    print(
        f"first run (warm-up)        {first:7.3f} s   edge run: test accuracy "
        f"{first_metrics['test_accuracy']:.1f}%, density {first_metrics['density']:.2f}%"
    )
    print(
        f"median of {args.repeats:<3d} runs         {median:7.3f} s   target <= 2 s: "
        f"{'met' if median <= 2.0 else 'MISSED'}   (min {min(times):.3f}, max {max(times):.3f})"
    )
    print(f"results (accuracy, density) {sorted(set(results))}")
    print()
    print(f"where the time goes (self time, all {args.repeats} measured runs, per run):")
    print(f"  {'part':<20s}{'seconds/run':>12s}{'share':>8s}{'calls/run':>11s}")
    order = sorted(timers.seconds.items(), key=lambda kv: -kv[1])
    for name, seconds in order:
        calls = timers.calls.get(name, 0) / args.repeats
        print(
            f"  {name:<20s}{seconds / args.repeats:12.4f}{100 * seconds / total:7.1f}%{calls:11.1f}"
            if name != "other"
            else f"  {name:<20s}{seconds / args.repeats:12.4f}{100 * seconds / total:7.1f}%{'':>11s}"
        )

    if args.profile:
        timers.enabled = False
        profiler = cProfile.Profile()
        profiler.enable()
        one_pipeline(sculpt_main.main, timers)
        profiler.disable()
        out = io.StringIO()
        pstats.Stats(profiler, stream=out).sort_stats("tottime").print_stats(15)
        print(out.getvalue())
    return 0 if all(acc == 100.0 for acc, _ in results) else 1


if __name__ == "__main__":
    sys.exit(main())
