"""Start-up cost of the published three-command workflow, per command, and of `--help`.

    python3 benchmarks/startup.py [--repeats 3]

Runs, each as a fresh `python3 -X importtime main.py ...` process into a temporary --result_path:
    1. --experiment prune --prune_units 1 --unit_pruning_gradient 70.0   (trains dense, prunes units)
    2. --experiment prune --prune_units 0 --pruning_gradient 2.5         (prunes edges)
    3. --experiment module_detection                                      (detects, draws, scores)
with the published example's options (4 2 4, arch 4 24 4, lr 0.05, batch 8, 15 epochs, seed 0, --quiet).
For every command: wall seconds (median over --repeats fresh result folders), the seconds spent importing
(the `site` import and the interpreter start excluded) and the cumulative import time of each heavy
package it loaded (torch, sklearn, scipy, matplotlib, networkx, numpy); a package it did not import shows
"-". Then `main.py --help` against a bare `python3 -c pass` (median of 7): what we add to the interpreter.
Nothing is written outside the temporary folder.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = (
    "--task boolean --modularity 4 2 4 --arch 4 24 4 --lr 0.05 --batch_size 8 --epochs 15 --seed 0".split()
)
STEPS = ["--unit_pruning_gradient", "70.0", "--pruning_gradient", "2.5"]
COMMANDS = {
    "prune units (70)": ["--experiment", "prune", "--prune_units", "1", *STEPS],
    "prune edges (2.5)": ["--experiment", "prune", "--prune_units", "0", *STEPS],
    "module_detection": ["--experiment", "module_detection", *STEPS],
}
HEAVY = ("torch", "sklearn", "scipy", "matplotlib", "networkx", "numpy")


def run(argv: list[str], importtime: bool) -> tuple[float, str]:
    env = dict(os.environ, OMP_NUM_THREADS="1")
    flags = ["-X", "importtime"] if importtime else []
    start = time.perf_counter()
    done = subprocess.run([sys.executable, *flags, *argv], cwd=ROOT, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"failed: {' '.join(argv)}: {done.stderr.strip().splitlines()[-1]}")
    return wall, done.stderr


def import_seconds(stderr: str) -> tuple[float, dict[str, float]]:
    """(total seconds of top-level imports without site, {heavy package: seconds}): a package's seconds
    sum the cumulative times of its modules imported from outside it (its own submodules are inside)."""
    lines = []
    for line in stderr.splitlines():
        if not line.startswith("import time:") or line.count("|") != 2:
            continue
        _, cumulative, name = line.split("|")
        if not cumulative.strip().isdigit():  # the header line
            continue
        lines.append((len(name) - len(name.lstrip()), name.strip(), int(cumulative) / 1e6))
    total, heavy = 0.0, {}
    ancestors: list[tuple[int, str]] = []  # (depth, root package) of the lines above, read in reverse
    for depth, name, seconds in reversed(lines):  # importtime prints children before their parent
        while ancestors and ancestors[-1][0] >= depth:
            ancestors.pop()
        root = name.split(".")[0]
        if depth == 1 and name != "site":
            total += seconds
        if root in HEAVY and all(r != root for _, r in ancestors):
            heavy[root] = heavy.get(root, 0.0) + seconds
        ancestors.append((depth, root))
    return total, heavy


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    rows = {name: [] for name in COMMANDS}
    for _ in range(args.repeats):
        with tempfile.TemporaryDirectory() as tmp:
            place = ["--result_path", f"{tmp}/r", "--visualization_path", f"{tmp}/v", "--quiet"]
            for name, command in COMMANDS.items():
                wall, stderr = run(["main.py", *command, *EXAMPLE, *place], importtime=True)
                rows[name].append((wall, *import_seconds(stderr)))
    print(f"| command | wall s (median of {args.repeats}) | imports s | " + " | ".join(HEAVY) + " |")
    print("|---|---|---|" + "---|" * len(HEAVY))
    total = 0.0
    for name, values in rows.items():
        wall = statistics.median(v[0] for v in values)
        imports = statistics.median(v[1] for v in values)
        heavy = values[-1][2]
        total += wall
        cells = " | ".join(f"{heavy[p]:.2f}" if p in heavy else "-" for p in HEAVY)
        print(f"| {name} | {wall:.2f} | {imports:.2f} | {cells} |")
    print(f"three commands: {total:.2f} s wall (with -X importtime)")
    helps = [run(["main.py", "--help"], importtime=False)[0] for _ in range(7)]
    bare = [run(["-c", "pass"], importtime=False)[0] for _ in range(7)]
    print(
        f"--help {statistics.median(helps):.3f} s; python3 -c pass {statistics.median(bare):.3f} s "
        f"(load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
