"""Time the clusterability shuffle test.

    python3 benchmarks/clusterability.py [--num_shuffles 100] [--workers 1 2] [--n_clusters 12]

A random MLP 784-256-256-256-256-10 (Kaiming normal, fixed seed, written as a published-format .npz),
`--experiment clusterability --shuffle_method layer` run through main.py in a fresh subprocess per worker
count, into a fresh temporary result folder. Reports the wall time of the whole command, the time of the
shuffles alone (clusterability.json `shuffle_seconds`, after the true clustering), the time per shuffle and
the speed-up over the first worker count. Before that, in this process with one thread: where one shuffle's
time goes (shuffling + building the graph, the scikit-learn clustering (unchanged), the n-cut), and the cost
of one clusterability-regulariser step (penalty + backward) on 64-256×4-10 and 784-256×4-10 MLPs.
Target: 100 shuffles in under 30 s on 2 cores.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
ARCH = [784, 256, 256, 256, 256, 10]


def write_network(path: Path, seed: int = 0) -> None:
    rng = np.random.default_rng(seed)
    arrays = {"arch": np.array(ARCH)}
    for i, (fan_in, fan_out) in enumerate(zip(ARCH[:-1], ARCH[1:])):
        arrays[f"weight{i}"] = (rng.standard_normal((fan_out, fan_in)) * np.sqrt(2 / fan_in)).astype(
            np.float32
        )
        arrays[f"bias{i}"] = np.zeros(fan_out, np.float32)
        arrays[f"mask{i}"] = np.ones((fan_out, fan_in), np.uint8)
    np.savez(path, **arrays)


def run_cli(network: Path, out: Path, num_shuffles: int, workers: int, k: int) -> dict:
    argv = [sys.executable, "main.py", "--experiment", "clusterability", "--checkpoint", str(network)]
    argv += ["--result_path", str(out / "r"), "--visualization_path", str(out / "v"), "--quiet"]
    argv += ["--n_clusters", str(k), "--num_shuffles", str(num_shuffles), "--shuffle_method", "layer"]
    argv += ["--workers", str(workers)]
    start = time.perf_counter()
    subprocess.run(argv, cwd=ROOT, check=True, capture_output=True, text=True)
    wall = time.perf_counter() - start
    result = json.loads(next((out / "r").rglob("clusterability.json")).read_text())
    return {
        "wall": wall,
        "shuffles": result["shuffle_seconds"],
        "ncuts": result["shuffles"]["layer"]["ncuts"],
    }


def breakdown(network: Path, k: int, repeats: int = 5) -> dict:
    sys.path.insert(0, str(ROOT))
    import sklearn.cluster  # noqa: F401 - loaded before the thread limit, so that the limit reaches it
    from threadpoolctl import threadpool_limits

    from detection_pipeline.spectral.cluster import ncut, spectral_labels
    from detection_pipeline.spectral.graph import folded_blocks
    from detection_pipeline.spectral.significance import ShuffleJob, shuffled_graph
    from utils.network_files import load_network_file

    net = load_network_file(network)
    job = ShuffleJob(folded_blocks(net), net.arch, k)
    times = {"shuffle + graph": [], "clustering (sklearn)": [], "n-cut": []}
    with threadpool_limits(1):
        for i in range(repeats):
            t0 = time.perf_counter()
            graph, seed = shuffled_graph(job, "layer", i)
            t1 = time.perf_counter()
            labels = spectral_labels(graph.adjacency, k, seed)
            t2 = time.perf_counter()
            ncut(graph.adjacency, labels)
            t3 = time.perf_counter()
            for name, value in zip(times, (t1 - t0, t2 - t1, t3 - t2)):
                times[name].append(value)
    return {name: float(np.median(v)) for name, v in times.items()}


def regulariser_cost(arch: list[int], repeats: int = 3) -> float:
    """Median seconds of one clusterability penalty (value + backward) on a random MLP of `arch`."""
    import torch

    from models.mlp import MLP
    from utils.clusterability_loss import clusterability_penalty

    torch.manual_seed(0)
    model = MLP(arch)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        clusterability_penalty(model, 3).backward()
        times.append(time.perf_counter() - start)
    return float(np.median(times))


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--num_shuffles", type=int, default=100)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--n_clusters", type=int, default=12)
    args = parser.parse_args()
    print(f"load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs (the machine may be shared)")
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        network = tmp / "mlp_784_256x4_10.npz"
        write_network(network)
        parts = breakdown(network, args.n_clusters)
        print("one shuffle, 1 thread, median of 5: " + ", ".join(f"{n} {v:.3f} s" for n, v in parts.items()))
        from threadpoolctl import threadpool_limits

        with threadpool_limits(1):
            for arch in ([64, 256, 256, 256, 256, 10], ARCH):
                cost = regulariser_cost(arch)
                print(
                    f"regulariser on {'-'.join(map(str, arch))}: {cost:.3f} s per penalty step (1 thread), "
                    f"{cost / 20 * 1000:.1f} ms per training step at --reg_every 20"
                )
        print(f"| workers | {args.num_shuffles} shuffles | per shuffle | whole command | speed-up |")
        print("|---|---|---|---|---|")
        base, first = None, None
        for workers in args.workers:
            timing = run_cli(network, tmp / f"w{workers}", args.num_shuffles, workers, args.n_clusters)
            base = base or timing["shuffles"]
            first = first or timing["ncuts"]
            same = "same n-cuts" if timing["ncuts"] == first else "N-CUTS DIFFER"
            per = timing["shuffles"] / args.num_shuffles
            speed = base / timing["shuffles"]
            print(
                f"| {workers} | {timing['shuffles']:.1f} s | {per:.3f} s | {timing['wall']:.1f} s "
                f"| {speed:.2f}× ({same}) |"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
