"""Time all eight association matrices plus Newman-Q for one network.

    python3 benchmarks/associations.py [--repeats 3] [--threads 2] [--cores 0,1] [--arch 784 64 64 10]
                                       [--samples 1000] [--mc_steps 5000]

The network: Kaiming-normal weights (seed 0) of --arch, ReLU; inputs N(0, 1) (seed 1), random class
labels. Times, after one warm-up: the eight matrices of every hidden layer (`association_matrices`, one
call), then Newman-Q on all of them (`maximise_q_batch`: 8 x hidden-layer chains run together, 5000 Monte
Carlo steps each). Prints the median of --repeats. Target: under 20 s in all on 2 cores.
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


def network_of(arch: list[int]):
    import numpy as np

    from utils.network import LayeredNetwork

    rng = np.random.default_rng(0)
    weights = [
        (rng.standard_normal((arch[i + 1], arch[i])) * np.sqrt(2.0 / arch[i])).astype(np.float32)
        for i in range(len(arch) - 1)
    ]
    biases = [np.zeros(arch[i + 1], dtype=np.float32) for i in range(len(arch) - 1)]
    masks = [np.ones_like(w, dtype=np.uint8) for w in weights]
    return LayeredNetwork(list(arch), weights, biases, masks, source="benchmark")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--cores", default="0,1", help="CPU cores to pin to ('' = no pinning)")
    parser.add_argument("--arch", type=int, nargs="+", default=[784, 64, 64, 10])
    parser.add_argument("--samples", type=int, default=1000)
    parser.add_argument("--mc_steps", type=int, default=5000)
    args = parser.parse_args()
    if args.cores:
        os.sched_setaffinity(0, {int(c) for c in args.cores.split(",")})
    import numpy as np
    import torch

    torch.set_num_threads(args.threads)
    from detection_pipeline.associations.matrices import ASSOCIATIONS, association_matrices
    from detection_pipeline.associations.newman import maximise_q_batch

    network = network_of(args.arch)
    rng = np.random.default_rng(1)
    inputs = rng.standard_normal((args.samples, args.arch[0])).astype(np.float32)
    targets = np.eye(args.arch[-1], dtype=np.float32)[rng.integers(0, args.arch[-1], args.samples)]

    def once():
        start = time.perf_counter()
        matrices = association_matrices(network, inputs, targets)
        middle = time.perf_counter()
        flat = [m - np.diag(np.diag(m)) for name in ASSOCIATIONS for m in matrices[name]]
        results = maximise_q_batch(flat, steps=args.mc_steps, seeds=[0] * len(flat))
        end = time.perf_counter()
        return middle - start, end - middle, [r.q for r in results]

    warm = once()
    runs = [once() for _ in range(args.repeats)]
    load = os.getloadavg()[0]
    print(
        f"arch {' '.join(map(str, args.arch))}, {args.samples} inputs, {len(warm[2])} Newman chains of "
        f"{args.mc_steps} steps, torch threads {args.threads}, load average {load:.1f}"
    )
    print(f"warm-up: matrices {warm[0]:.2f} s, Newman-Q {warm[1]:.2f} s")
    matrices_s = statistics.median(r[0] for r in runs)
    newman_s = statistics.median(r[1] for r in runs)
    total = statistics.median(r[0] + r[1] for r in runs)
    print(
        f"median of {args.repeats}: matrices {matrices_s:.2f} s, Newman-Q {newman_s:.2f} s, "
        f"total {total:.2f} s "
        f"(target < 20 s: {'met' if total < 20 else 'missed'})"
    )
    print("Q per chain: " + " ".join(f"{q:.3f}" for q in warm[2]))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
