"""Time and memory of module detection.

    python3 benchmarks/detection.py [--repeats 5] [--cores 2] [--reference ../shared/reference]

Cases: a synthetic pruned network of arch 1568 784 784 784 3 with random masks at 1% density (fixed seed,
default CLI detection options: feature_step_size = clusterability_step_size = 2), and the largest published
boolean networks (published settings) when the reference folder exists. Each case runs in a fresh
subprocess pinned to `--cores` CPU cores (BLAS threads limited likewise) and reports the median wall time
of the repeats, the tracemalloc peak of one run and the process's peak resident memory (ru_maxrss).
Target: <= 5 s and <= 1 GB for the 1568-wide network on 2 cores.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_REFERENCE = ROOT.parent / "shared" / "reference"

# Runs inside the subprocess: build the case, time it, measure memory, print one JSON line.
_CHILD = r"""
import json, resource, statistics, sys, time, tracemalloc
import numpy as np
sys.path.insert(0, {root!r})
from detection_pipeline.detect import DetectionOptions, detect_modules
from utils.network_files import load_published_npz

case = json.loads({case!r})
if case["kind"] == "synthetic":
    rng = np.random.default_rng(case["seed"])
    arch = case["arch"]
    shapes = [(arch[i + 1], arch[i]) for i in range(len(arch) - 1)]
    masks = [(rng.random(shape) < case["density"]).astype(np.uint8) for shape in shapes]
    options = DetectionOptions()
else:
    net = load_published_npz(case["path"])
    arch, masks = net.arch, net.masks
    options = DetectionOptions(feature_step_size=len(arch) - 1, clusterability_step_size=len(arch) - 1)
times = []
for _ in range(case["repeats"]):
    start = time.perf_counter()
    modules = detect_modules(masks, options)
    times.append(time.perf_counter() - start)
tracemalloc.start()
detect_modules(masks, options)
_, peak = tracemalloc.get_traced_memory()
tracemalloc.stop()
print(json.dumps({{
    "median_s": statistics.median(times), "min_s": min(times), "tracemalloc_peak_mb": peak / 2**20,
    "maxrss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    "condensed_arch": modules.diagnostics["condensed_arch"], "n_modules": modules.n_modules,
    "k_per_layer": [layer["k"] for layer in modules.diagnostics["layers"]],
}}))
"""


def run_case(case: dict, cores: int) -> dict:
    """Run one case in a subprocess limited to `cores` cores; returns its measurements."""
    env = dict(os.environ)
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        env[var] = str(cores)
    available = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else []
    prefix = ["taskset", "-c", ",".join(map(str, available[:cores]))] if available and _has_taskset() else []
    code = _CHILD.format(root=str(ROOT), case=json.dumps(case))
    out = subprocess.run(
        prefix + [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def _has_taskset() -> bool:
    from shutil import which

    return which("taskset") is not None


def largest_published(reference: Path, count: int) -> list[dict]:
    """The `count` published networks with the most kept edges (density x weights)."""
    index = reference / "models" / "index.json"
    if not index.is_file():
        return []
    entries = json.loads(index.read_text())

    def kept_edges(e: dict) -> float:
        arch = e["arch"]
        return e["density_percent"] * sum(a * b for a, b in zip(arch[:-1], arch[1:], strict=True))

    entries.sort(key=kept_edges, reverse=True)
    return entries[:count]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--cores", type=int, default=2)
    parser.add_argument("--reference", type=Path, default=DEFAULT_REFERENCE)
    parser.add_argument("--published", type=int, default=3, help="how many of the largest published networks")
    args = parser.parse_args(argv)

    cases = [
        {
            "name": "synthetic 1568-784-784-784-3 @1%",
            "kind": "synthetic",
            "arch": [1568, 784, 784, 784, 3],
            "density": 0.01,
            "seed": 0,
            "repeats": args.repeats,
        },
        {
            "name": "synthetic 1568-784-784-784-3 @5%",
            "kind": "synthetic",
            "arch": [1568, 784, 784, 784, 3],
            "density": 0.05,
            "seed": 0,
            "repeats": args.repeats,
        },
    ]
    for entry in largest_published(args.reference, args.published):
        cases.append(
            {
                "name": f"published {'-'.join(map(str, entry['arch']))} ({entry['family']})",
                "kind": "published",
                "path": str(args.reference / entry["file"]),
                "repeats": args.repeats,
            }
        )
    print(
        f"{'case':52s} {'median s':>9s} {'min s':>7s} {'tracemalloc MB':>15s} {'maxrss MB':>10s}  "
        "condensed arch"
    )
    for case in cases:
        r = run_case(case, args.cores)
        print(
            f"{case['name']:52s} {r['median_s']:9.3f} {r['min_s']:7.3f} {r['tracemalloc_peak_mb']:15.2f} "
            f"{r['maxrss_mb']:10.1f}  {r['condensed_arch']} k={r['k_per_layer']} modules={r['n_modules']}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
