"""Time the Done-when training run (4 2 4, arch 4 24 4, lr 0.05, batch 8, 15 epochs, seed 0) in one process.

    taskset -c 0,1 python3 benchmarks/train.py [--repeats 20] [--threads 2] [--cores 0,1]

After the imports, each repetition builds the config with run.parser.parse_config, calls
run.common.prepare (task -> tensors), seeds and builds a fresh MLP and runs utils.training.train for
15 epochs. Nothing is written: the run-directory step (run.dense.train_dense) is left out on purpose,
so this measures the science, not the disk. The first repetition is a warm-up reported on its own: it pays
one-time costs (first calls into torch kernels, lazy imports).
Reports the median, min and max of `--repeats` further repetitions. Target: median < 0.5 s on 2 cores.
The process pins itself to `--cores` (default 0,1) when the machine has them, like `taskset -c 0,1`.
run.common.prepare picks one intra-op thread for small networks unless OMP_NUM_THREADS is set;
`--keep_threads` sets it so that `--threads` really applies. The table shows the count used.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

DONE_WHEN = (
    "--task boolean --modularity 4 2 4 --arch 4 24 4 --lr 0.05 --batch_size 8 --epochs 15 --seed 0 --quiet"
).split()


def pin(cores: str) -> str:
    """Pin this process to the listed cores when possible; returns a description."""
    wanted = {int(c) for c in cores.split(",") if c.strip()}
    if not hasattr(os, "sched_setaffinity"):
        return "not pinned (no sched_setaffinity)"
    available = os.sched_getaffinity(0)
    if not wanted or not wanted <= available:
        return f"not pinned (cores {sorted(wanted)} not all in {sorted(available)})"
    os.sched_setaffinity(0, wanted)
    return f"pinned to cores {sorted(wanted)}"


def timing_parser(description: str, repeats: int) -> argparse.ArgumentParser:
    """The options every timing benchmark shares: repetitions, threads, core pinning."""
    parser = argparse.ArgumentParser(
        description=description, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--repeats", type=int, default=repeats, help="measured repetitions after the warm-up")
    parser.add_argument("--threads", type=int, default=2, help="torch.set_num_threads at the start")
    parser.add_argument(
        "--keep_threads",
        action="store_true",
        help="also set OMP_NUM_THREADS, so run.common.prepare keeps --threads instead of choosing "
        "one thread for small networks",
    )
    parser.add_argument("--cores", default="0,1", help="CPU cores to pin to ('' for no pinning)")
    return parser


def one_run(parse_config, prepare, build_model, train, generator_for, torch) -> tuple[float, float, dict]:
    """One Done-when training run; returns (seconds, test accuracy, per-part seconds)."""
    start = time.perf_counter()
    config = parse_config(DONE_WHEN)
    ctx = prepare(config)
    after_prepare = time.perf_counter()
    torch.manual_seed(config.seed)
    model = build_model(config, ctx.device)
    after_model = time.perf_counter()
    result = train(model, ctx.data, config, generator_for(config.seed))
    end = time.perf_counter()
    parts = {
        "prepare": after_prepare - start,
        "model": after_model - after_prepare,
        "train": end - after_model,
    }
    return end - start, result.metrics["test_accuracy"], parts


def main(argv=None) -> int:
    parser = timing_parser(__doc__, repeats=20)
    args = parser.parse_args(argv)
    pinned = pin(args.cores) if args.cores else "not pinned"
    if args.keep_threads:
        os.environ["OMP_NUM_THREADS"] = str(args.threads)

    import_start = time.perf_counter()
    import torch

    from run.common import build_model, generator_for, prepare
    from run.parser import parse_config
    from utils.training import train

    imports = time.perf_counter() - import_start
    torch.set_num_threads(args.threads)
    parts_of = (parse_config, prepare, build_model, train, generator_for, torch)

    first, first_acc, first_parts = one_run(*parts_of)
    times, accuracies, parts = [], [], []
    for _ in range(args.repeats):
        seconds, accuracy, part = one_run(*parts_of)
        times.append(seconds)
        accuracies.append(accuracy)
        parts.append(part)

    median = statistics.median(times)
    print(
        f"Done-when training run (4 2 4, arch 4 24 4, 15 epochs), torch {torch.__version__}, "
        f"threads: set {args.threads}, used {torch.get_num_threads()} "
        f"({'kept' if args.keep_threads else 'library choice'}), {pinned}; no files written"
    )
    print(f"imports (torch + sculpt)      {imports:8.3f} s")
    print(
        f"first run (warm-up)           {first:8.3f} s   test accuracy {first_acc:.1f}%  "
        f"(prepare {first_parts['prepare']:.3f}, train {first_parts['train']:.3f})"
    )
    print(
        f"median of {args.repeats:<3d} runs            {median:8.3f} s   target < 0.5 s: "
        f"{'met' if median < 0.5 else 'MISSED'}"
    )
    print(f"min / max                     {min(times):8.3f} / {max(times):.3f} s")
    for name in ("prepare", "model", "train"):
        print(f"  median {name:<22s}{statistics.median(p[name] for p in parts):8.4f} s")
    print(f"test accuracy of the runs     {sorted(set(accuracies))}")
    return 0 if all(a == 100.0 for a in accuracies + [first_acc]) else 1


if __name__ == "__main__":
    sys.exit(main())
