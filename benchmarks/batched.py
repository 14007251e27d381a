"""Batched searches against the sequential path, side by side in one run.

    python3 benchmarks/batched.py [--quick]

1. The full-grid sculpt of 4 2 4 (arch 4 24 4, seed 0; unit steps 5..70, edge steps 2.5..0.5: 14 unit and
   70 edge searches): batched (the default) vs `--batch_members 1`, each a fresh `python3 main.py` process
   into a fresh result folder.
2. Four seeds (0 1 2 5): `--seeds 0 1 2 5` in one process vs four separate processes (`--seed S`, one
   after another, each batching its own grid), and vs four sequential processes (`--batch_members 1`).

Every pair is checked for identical run folders (model.pt tensors and metrics.json without timings).
`--quick` uses unit steps 50 60 70 and edge step 2.5 2.0 instead of the full grids. Prints wall times and
ratios; run it on a quiet machine (load from other processes inflates both sides unevenly).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
FULL_UNITS = [str(s) for s in range(5, 75, 5)]
FULL_EDGES = ["2.5", "2.0", "1.5", "1.0", "0.5"]


def sculpt(root: Path, units, edges, *extra) -> float:
    """Wall seconds of one sculpt process (CPU seconds are added to CPU_SECONDS[0])."""
    argv = [sys.executable, "main.py", "--experiment", "sculpt", "--modularity", "4", "2", "4"]
    argv += ["--arch", "4", "24", "4", "--lr", "0.05", "--batch_size", "8", "--epochs", "15"]
    argv += ["--unit_pruning_gradient", *units, "--pruning_gradient", *edges]
    argv += ["--result_path", str(root), "--visualization_path", str(root) + "-v", "--quiet", *extra]
    env = dict(os.environ, OMP_NUM_THREADS="1")
    start = time.perf_counter()
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    done = subprocess.run(argv, cwd=ROOT, env=env, capture_output=True, text=True)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode != 0:
        raise SystemExit(f"sculpt failed: {done.stderr.strip().splitlines()[-1]}")
    CPU_SECONDS[0] += (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return time.perf_counter() - start


CPU_SECONDS = [0.0]


def timed(function, *args) -> tuple[float, float]:
    """(wall, CPU) seconds of function(*args), which runs sculpt processes."""
    CPU_SECONDS[0] = 0.0
    wall = function(*args)
    return wall, CPU_SECONDS[0]


def run_files(root: Path) -> dict:
    out = {}
    for path in sorted(root.rglob("*")):
        if path.suffix == ".pt":
            out[str(path.relative_to(root))] = torch.load(path, weights_only=True)
        elif path.name == "metrics.json":
            metrics = json.loads(path.read_text())
            metrics.pop("seconds", None)
            out[str(path.relative_to(root))] = metrics
    return out


def identical(a: Path, b: Path) -> bool:
    fa, fb = run_files(a), run_files(b)
    if sorted(fa) != sorted(fb):
        return False
    for key, value in fa.items():
        if isinstance(value, dict) and all(torch.is_tensor(v) for v in value.values()):
            if not all(torch.equal(value[k], fb[key][k]) for k in value):
                return False
        elif value != fb[key]:
            return False
    return True


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    units = ["50", "60", "70"] if args.quick else FULL_UNITS
    edges = ["2.5", "2.0"] if args.quick else FULL_EDGES
    seeds = ["0", "1", "2", "5"]
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        grid_seq = timed(sculpt, tmp / "grid-seq", units, edges, "--batch_members", "1")
        grid_bat = timed(sculpt, tmp / "grid-bat", units, edges)
        same_grid = identical(tmp / "grid-seq", tmp / "grid-bat")
        seeds_bat = timed(sculpt, tmp / "seeds-bat", units, edges, "--seeds", *seeds)
        procs_bat = timed(lambda: sum(sculpt(tmp / "procs-bat", units, edges, "--seed", s) for s in seeds))
        procs_seq = timed(
            lambda: sum(
                sculpt(tmp / "procs-seq", units, edges, "--seed", s, "--batch_members", "1") for s in seeds
            )
        )
        same_seeds = identical(tmp / "seeds-bat", tmp / "procs-seq") and identical(
            tmp / "procs-bat", tmp / "procs-seq"
        )
    n_search = len(units) * (1 + len(edges))
    print(f"grid: {len(units)} unit steps x {len(edges)} edge steps = {n_search} searches per seed")
    print(f"{'case':<44} {'wall s':>7} {'ratio':>6} {'CPU s':>7} {'ratio':>6}")

    def row(name, value, base=None):
        ratios = f"{base[0] / value[0]:5.1f}x {value[1]:7.1f} {base[1] / value[1]:5.1f}x" if base else ""
        print(f"{name:<44} {value[0]:7.1f} " + (ratios or f"{'':6} {value[1]:7.1f}"))

    row("full grid, --batch_members 1 (sequential)", grid_seq)
    row("full grid, batched", grid_bat, grid_seq)
    row("4 seeds, 4 processes, --batch_members 1", procs_seq)
    row("4 seeds, 4 processes, each batched", procs_bat, procs_seq)
    row("4 seeds, --seeds in one batch", seeds_bat, procs_seq)
    print(f"identical run folders: grid {same_grid}, seeds {same_seeds}")
    print(f"load average while measuring: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    return 0 if same_grid and same_seeds else 1


if __name__ == "__main__":
    sys.exit(main())
