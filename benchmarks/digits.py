"""Training throughput on the 128-input two-digit task, and peak memory of the digits sculpt pipeline.

    python3 benchmarks/digits.py [--epochs 5] [--cores 0,1] [--skip_memory] [--skip_throughput]

Throughput: the 128-256-256-20 MLP trains on `--task digits --modularity 128 2 20` (7200 training pairs of
the default 100 images per digit pair; lr 0.002, BCE, Adam) with `utils.training.train`, exactly as the
pipeline trains, at batch sizes 64 and 256 with 1 and 2 torch threads. Each setting is one `train` call of
1 + `--epochs` epochs; the time of every epoch is taken from the progress callback (so it includes the
per-epoch validation pass and the best-state copy, as a real run does), the first epoch is a warm-up and is
reported on its own, and samples/s = training pairs / median epoch time of the rest. Target: >= 50k
samples/s for 128-256-256-20 on 2 CPU cores. Each setting runs in a child process of its own (a fresh
thread pool) with a time limit (`--setting_timeout`, default 120 s): on a machine whose cores are busy with
other work, 2 intra-op threads can stall on every parallel region (see benchmarks/README.md), and such a
setting is reported as timed out instead of holding up the table.

Peak memory: a child process runs the recommended digits sculpt (RECOMMENDED_SCULPT, into a temporary
result folder that is deleted afterwards) through `main.main` and reports `resource.getrusage(RUSAGE_SELF)
.ru_maxrss` itself (tracemalloc misses torch's allocations). Its wall time is reported too.

The process pins itself to `--cores` (default 0,1) like the other benchmarks. **On a loaded machine (other
jobs on the same cores) every number here understates throughput and overstates the sculpt time**; the
table header prints the load average at the start so a reader can tell.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.train import pin  # noqa: E402

TASK = ["--task", "digits", "--modularity", "128", "2", "20", "--seed", "0"]
ARCH = ["--arch", "128", "256", "256", "20"]
TRAINING = ["--lr", "0.002", "--epochs", "10"]
# The digits sculpt recommended in docs/digits.md (2 hidden layers): units then edges at a 95% threshold.
RECOMMENDED_SCULPT = [
    "--experiment", "sculpt", *TASK, *ARCH, *TRAINING, "--batch_size", "64",
    "--prune_acc_threshold", "95", "--unit_pruning_gradient", "25", "--pruning_gradient", "5",
    "--feature_step_size", "3", "--clusterability_step_size", "3", "--quiet",
]  # fmt: skip

CHILD = """
import json, resource, sys, time
sys.path.insert(0, {root!r})
import main
start = time.perf_counter()
rc = main.main({argv!r})
seconds = time.perf_counter() - start
usage = resource.getrusage(resource.RUSAGE_SELF)
print("BENCH " + json.dumps({{"rc": rc, "seconds": seconds, "maxrss_kib": usage.ru_maxrss}}))
"""


def throughput(batch: int, threads: int, epochs: int) -> dict:
    """Train 128-256-256-20 for 1 + epochs epochs at this batch size and thread count; per-epoch timings."""
    import torch

    from run.common import build_model, generator_for
    from run.options import task_options
    from run.parser import parse_config
    from utils.tasks import load_task
    from utils.training import TaskTensors, train

    torch.set_num_threads(threads)
    config = parse_config([*TASK, *ARCH, *TRAINING, "--batch_size", str(batch), "--quiet"])
    task = load_task(task_options(config))
    data = TaskTensors.from_task(task, torch.device("cpu"))
    torch.manual_seed(config.seed)
    model = build_model(config, torch.device("cpu"))
    stamps = [time.perf_counter()]
    train(
        model,
        data,
        config,
        generator_for(config.seed),
        epochs=1 + epochs,
        progress=lambda *_: stamps.append(time.perf_counter()),
    )
    times = [b - a for a, b in zip(stamps, stamps[1:])]
    n = int(data.x_train.shape[0])
    median = statistics.median(times[1:])
    return {
        "batch": batch,
        "threads": torch.get_num_threads(),
        "samples": n,
        "warmup_s": times[0],
        "median_s": median,
        "min_s": min(times[1:]),
        "max_s": max(times[1:]),
        "samples_per_s": n / median,
    }


def throughput_in_child(batch: int, threads: int, epochs: int, cores: str, timeout: float) -> dict | None:
    """throughput() in a fresh child process; None when it runs past `timeout` seconds."""
    command = [sys.executable, __file__, "--one", str(batch), str(threads), "--epochs", str(epochs)]
    try:
        proc = subprocess.run(
            [*command, "--cores", cores],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
    except subprocess.TimeoutExpired:
        return None
    lines = [line for line in proc.stdout.splitlines() if line.startswith("BENCH ")]
    if proc.returncode != 0 or not lines:
        raise RuntimeError(f"throughput child failed (rc {proc.returncode}): {proc.stderr[-2000:]}")
    return json.loads(lines[-1][len("BENCH ") :])


def peak_memory(argv: list[str]) -> dict:
    """Run main.main(argv + a temporary --result_path/--visualization_path) in a child; its ru_maxrss."""
    tmp = Path(tempfile.mkdtemp(prefix="digits-bench-"))
    try:
        full = [*argv, "--result_path", str(tmp / "results"), "--visualization_path", str(tmp / "pictures")]
        code = CHILD.format(root=str(ROOT), argv=full)
        env = dict(os.environ, OMP_NUM_THREADS=os.environ.get("OMP_NUM_THREADS", "1"))
        proc = subprocess.run(
            [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, env=env, check=False
        )
        lines = [line for line in proc.stdout.splitlines() if line.startswith("BENCH ")]
        if proc.returncode != 0 or not lines:
            raise RuntimeError(f"sculpt child failed (rc {proc.returncode}): {proc.stderr[-2000:]}")
        result = json.loads(lines[-1][len("BENCH ") :])
        result["summary"] = [line for line in proc.stdout.splitlines() if not line.startswith("BENCH ")]
        return result
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--epochs", type=int, default=5, help="measured epochs per setting (after 1 warm-up)")
    parser.add_argument("--batches", type=int, nargs="+", default=[64, 256])
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--cores", default="0,1", help="pin to these cores ('' for no pinning)")
    parser.add_argument("--skip_throughput", action="store_true")
    parser.add_argument("--skip_memory", action="store_true")
    parser.add_argument("--setting_timeout", type=float, default=120.0, help="seconds per throughput setting")
    parser.add_argument("--one", type=int, nargs=2, metavar=("BATCH", "THREADS"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    pinned = pin(args.cores)
    if args.one:  # child: one throughput setting, one JSON line
        print("BENCH " + json.dumps(throughput(args.one[0], args.one[1], args.epochs)))
        return 0

    import torch

    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(
        f"torch {torch.__version__}, {os.cpu_count()} CPUs, {pinned}, load average {load:.2f} at start "
        "(a loaded machine understates throughput)"
    )
    if not args.skip_throughput:
        print(f"\ntraining throughput, 128-256-256-20 on digits 128 2 20, median of {args.epochs} epochs")
        print("| batch | threads | pairs | warm-up epoch s | median epoch s | min / max s | samples/s |")
        print("|---|---|---|---|---|---|---|")
        for batch in args.batches:
            for threads in args.threads:
                r = throughput_in_child(batch, threads, args.epochs, args.cores, args.setting_timeout)
                if r is None:
                    limit = f"> {args.setting_timeout:.0f} s for {1 + args.epochs} epochs (timed out)"
                    print(f"| {batch} | {threads} | | {limit} | | | |")
                    continue
                print(
                    f"| {r['batch']} | {r['threads']} | {r['samples']} | {r['warmup_s']:.3f} | "
                    f"{r['median_s']:.3f} | {r['min_s']:.3f} / {r['max_s']:.3f} | {r['samples_per_s']:,.0f} |"
                )
    if not args.skip_memory:
        print("\npeak memory of the recommended digits sculpt (child process, ru_maxrss)")
        print("  " + " ".join(RECOMMENDED_SCULPT))
        r = peak_memory(RECOMMENDED_SCULPT)
        kib = r["maxrss_kib"] if sys.platform != "darwin" else r["maxrss_kib"] / 1024
        print("| peak RSS | wall time | rc |\n|---|---|---|")
        print(f"| {kib / 1024:.0f} MiB | {r['seconds']:.0f} s | {r['rc']} |")
        for line in r["summary"]:
            print("  " + line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
