"""Final densities of our pruning next to the published networks' (issue: pruning fidelity).

For the four exemplars with two hidden layers of width 24 (published training options), seeds 0 1 2 5,
unit steps 50 60 70 and edge step 2.5, keep the sparsest accepted network per seed, and print it beside the
range of `density_percent` of the published networks of the same task and arch
(../shared/reference/models/index.json; skipped when absent).

    python3 benchmarks/published_densities.py [--result_path /tmp/densities] [--seeds 0 1 2 5]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

EXEMPLARS = [  # modularity, arch, lr, batch_size, epochs (published options, 2 hidden layers of 24)
    ("4 2 4", "4 24 24 4", 0.05, 8, 10),
    ("6 3 3 3", "6 24 24 3", 0.05, 32, 10),
    ("4 1 4", "4 24 24 4", 0.05, 8, 30),
    ("4 1 2 16", "4 24 24 16", 0.1, 8, 40),
]
INDEX = ROOT.parent / "shared" / "reference" / "models" / "index.json"


def published_range(modularity: str, arch: str):
    if not INDEX.is_file():
        return None
    rows = [
        e["density_percent"]
        for e in json.loads(INDEX.read_text())
        if e["modularity"] == [int(m) for m in modularity.split()]
        and e["arch"] == [int(a) for a in arch.split()]
    ]
    return (min(rows), max(rows), len(rows)) if rows else None


def main() -> None:
    from run.common import prepare
    from run.parser import parse_config
    from run.study.sculpt import choose_sparsest, prune_all

    parser = argparse.ArgumentParser()
    parser.add_argument("--result_path", default="/tmp/sculpt-densities")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 5])
    parser.add_argument("--unit_steps", default="50 60 70")
    parser.add_argument("--edge_steps", default="2.5")
    args = parser.parse_args()
    print("| modularity | arch | seed | our density % | accuracy % | unit step | published range % (n) |")
    print("|---|---|---|---|---|---|---|")
    for modularity, arch, lr, batch, epochs in EXEMPLARS:
        rng = published_range(modularity, arch)
        rng_text = f"{rng[0]:.2f}–{rng[1]:.2f} ({rng[2]})" if rng else "n/a"
        for seed in args.seeds:
            argv = (
                f"--task boolean --dataset_path {ROOT}/datasets/exemplar/ --modularity {modularity} "
                f"--arch {arch} "
                f"--lr {lr} --batch_size {batch} --epochs {epochs} --seed {seed} --prune_acc_threshold 100 "
                f"--unit_pruning_gradient {args.unit_steps} --pruning_gradient {args.edge_steps} "
                f"--result_path {args.result_path} --quiet"
            ).split()
            best = choose_sparsest(prune_all(prepare(parse_config(argv))))
            print(
                f"| {modularity} | {arch} | {seed} | {best['density']:.2f} | {best['test_accuracy']:.1f} | "
                f"{best['unit_step']:g} | {rng_text} |",
                flush=True,
            )


if __name__ == "__main__":
    main()
