"""Three identical `prune` commands started at once into one result folder, repeated N times.

Checks that none of them prints a traceback or fails, that every file they leave is readable, and that the
final unit-pruned network and its metrics equal those of a single run into a fresh folder.

    python3 benchmarks/concurrent_prune.py --repeats 20

Prints one line per round and a final verdict; exits 1 on any failure. A small config (arch 4 8 4, 4 epochs)
keeps a round to a few seconds; the point is the races, not the science.
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

REPO = Path(__file__).resolve().parent.parent
COMMAND = [
    "--experiment", "prune", "--task", "boolean", "--dataset_path", "./datasets/exemplar/",
    "--modularity", "4", "2", "4", "--arch", "4", "8", "4", "--epochs", "4", "--batch_size", "8",
    "--prune_units", "1", "--unit_pruning_gradient", "50", "--prune_acc_threshold", "50", "--quiet",
]  # fmt: skip


def launch(result_path: Path, copies: int) -> list[subprocess.Popen]:
    env = dict(os.environ, OMP_NUM_THREADS="1")
    argv = [sys.executable, "main.py", *COMMAND, "--result_path", str(result_path)]
    return [
        subprocess.Popen(argv, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for _ in range(copies)
    ]


def finish(processes) -> list[tuple[int, str, str]]:
    return [(p.wait(), *p.communicate()) for p in processes]


def result_files(result_path: Path) -> dict[str, object]:
    """Every finished run's metrics (without timings) and model tensors, keyed by path; raises on a corrupt
    file."""
    import torch

    found = {}
    for metrics in sorted(result_path.rglob("metrics.json")):
        data = json.loads(metrics.read_text())
        data.pop("seconds", None)
        key = str(metrics.parent.relative_to(result_path))
        state = torch.load(metrics.parent / "model.pt", map_location="cpu", weights_only=True)
        found[key] = (data, {k: v.tolist() for k, v in state.items()})
    return found


def leftovers(result_path: Path) -> list[str]:
    """Temp, lock or search-state files left behind by the finished commands."""
    return [
        str(p.relative_to(result_path))
        for p in result_path.rglob("*")
        if p.is_file() and (".tmp" in p.name or p.name in ("search_state.pt", ".lock"))
    ]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--copies", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        single = Path(tmp) / "single"
        ((code, out, err),) = finish(launch(single, 1))
        if code != 0:
            print(f"single run failed ({code}): {err.strip()}")
            return 1
        expected = result_files(single)
        failures = 0
        for round_ in range(1, args.repeats + 1):
            folder = Path(tmp) / f"round-{round_}"
            start = time.perf_counter()
            outcomes = finish(launch(folder, args.copies))
            problems = []
            for code, out, err in outcomes:
                if code != 0:
                    problems.append(f"exit {code}: {err.strip().splitlines()[-1:] or ''}")
                if "Traceback" in err:
                    problems.append("traceback: " + err.strip().splitlines()[-1])
                if len(out.strip().splitlines()) != 1:
                    problems.append(f"expected one result line, got {out!r}")
            try:
                if result_files(folder) != expected:
                    problems.append("results differ from a single run")
            except Exception as error:  # a corrupt file is the failure we look for
                problems.append(f"unreadable result: {type(error).__name__}: {error}")
            left = leftovers(folder)
            if left:
                problems.append(f"left behind: {left}")
            seconds = time.perf_counter() - start
            verdict = "ok" if not problems else "FAILED " + "; ".join(problems)
            print(f"round {round_:2d}: {verdict}  ({seconds:.1f} s)")
            failures += bool(problems)
        print(f"{args.repeats - failures}/{args.repeats} rounds clean ({args.copies} copies each)")
        return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
