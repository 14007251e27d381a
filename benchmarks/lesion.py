"""Time single-lesion tests: 100 random draws (plus the true lesion) for every sub-module of a digits
network 128-256-256-20 on the 2000-sample test set of `--task digits --modularity 128 2 20`.

    python3 benchmarks/lesion.py [--repeats 3] [--cores 0,1] [--workers 2] [--modules 4] [--epochs 0]

The network is Kaiming-initialised (seed 0) and, with --epochs N > 0, trained N epochs first (Adam, CE);
the timing does not depend on the weights (every lesion is a dense batched pass). The partition cuts each
hidden layer into --modules contiguous blocks of units (an arbitrary partition; outputs by digit group).
Reported: the median wall time of `lesion_tests` (evaluator set-up, draws, batched passes, statistics) over
--repeats after one warm-up, the number of lesioned copies evaluated, and copies per second.
Target: under 5 s on 2 cores.
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


def digits_network(epochs: int):
    import torch

    from models.from_network import network_of
    from models.mlp import MLP
    from run.options import task_options
    from run.parser import parse_config
    from utils.tasks import load_task

    arch = [128, 256, 256, 20]
    argv = ["--task", "digits", "--modularity", "128", "2", "20", "--arch", *map(str, arch), "--loss", "CE"]
    config = parse_config([*argv, "--epochs", str(max(1, epochs)), "--lr", "0.001", "--batch_size", "64"])
    task = load_task(task_options(config))
    torch.manual_seed(0)
    model = MLP(arch)
    if epochs > 0:
        from utils.training import TaskTensors, train

        train(
            model, TaskTensors.from_task(task, torch.device("cpu")), config, torch.Generator().manual_seed(0)
        )
    return network_of(model), task


def block_partition(arch: list[int], modules: int):
    import numpy as np

    from detection_pipeline.partition import Partition

    labels = [np.zeros(arch[0], dtype=int)]
    for width in arch[1:-1]:
        labels.append(np.arange(width) * modules // width)
    labels.append(np.repeat([0, 1], arch[-1] // 2))
    return Partition(np.concatenate(labels), arch, "blocks")


def work_gflop(arch: list[int], result: dict, batch: int, shuffles: int) -> float:
    """Multiply-adds of the batched passes, x2: per copy the k-wide correction into the next layer, then
    dense layers to the outputs."""
    flop = 0
    for entry in result["submodules"]:
        if not entry["testable"]:
            continue
        layer, k = entry["layer"], len(entry["units"])
        per_sample = k * arch[layer + 1] + sum(arch[i] * arch[i + 1] for i in range(layer + 1, len(arch) - 1))
        flop += 2 * (shuffles + 1) * batch * per_sample
    return flop / 1e9


def probe_gflops() -> float:
    """Single-thread baddbmm speed of this machine now, on shapes like the lesion passes (GFLOP/s)."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    a, b, c = torch.randn(8, 2000, 64), torch.randn(8, 64, 256), torch.randn(8, 2000, 256)
    best = float("inf")
    for _ in range(5):
        start = time.perf_counter()
        torch.baddbmm(c, a, b)
        best = min(best, time.perf_counter() - start)
    torch.set_num_threads(threads)
    return 2 * 8 * 2000 * 64 * 256 / best / 1e9


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--cores", default="0,1", help="CPU cores to pin to ('' = no pinning)")
    parser.add_argument("--workers", type=int, default=2, help="threads evaluating lesion chunks")
    parser.add_argument("--modules", type=int, default=4, help="modules per hidden layer")
    parser.add_argument("--num_shuffles", type=int, default=100)
    parser.add_argument("--epochs", type=int, default=0, help="train the network this many epochs first")
    args = parser.parse_args(argv)
    if args.cores and hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {int(c) for c in args.cores.split(",")})

    from detection_pipeline.lesion import LesionOptions, lesion_tests

    start = time.perf_counter()
    network, task = digits_network(args.epochs)
    partition = block_partition(network.arch, args.modules)
    setup = time.perf_counter() - start
    options = LesionOptions(num_shuffles=args.num_shuffles, workers=args.workers)
    times = []
    for repeat in range(args.repeats + 1):
        start = time.perf_counter()
        result = lesion_tests(network, partition, task, options)
        if repeat:  # the first run is a warm-up
            times.append(time.perf_counter() - start)
    subs = result["submodules"]
    copies = sum(1 + args.num_shuffles for e in subs if e["testable"])
    median = statistics.median(times)
    print(
        f"lesion benchmark: arch {'-'.join(map(str, network.arch))}, {task.x_test.shape[0]} test samples, "
        f"{len(subs)} sub-modules x ({args.num_shuffles} + 1) lesions = {copies} copies; "
        f"workers {args.workers}, cores {args.cores or 'all'}, network set-up {setup:.1f} s "
        f"(epochs {args.epochs}), base accuracy {sum(result['base_accuracy']) / 20:.1f}%"
    )
    gflop = work_gflop(network.arch, result, task.x_test.shape[0], args.num_shuffles)
    print(
        f"work {gflop:.1f} GFLOP -> {gflop / median:.1f} GFLOP/s achieved; single-thread baddbmm probe "
        f"on this machine now: {probe_gflops():.1f} GFLOP/s"
    )
    print(
        f"median {median:.3f} s (min {min(times):.3f}, max {max(times):.3f}, {len(times)} runs) -> "
        f"{copies / median:.0f} lesioned copies/s; target < 5 s: {'met' if median < 5 else 'MISSED'}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
