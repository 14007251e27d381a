"""Cell network on digits_10way: test accuracy and time of the shipped 6-cell example, seed by seed.

    python3 benchmarks/cells.py [--seeds 0 1 2 3 4] [--epochs 30]

Trains datasets/structures/cells-6conv.edgelist (six conv:8:3 cells, one skip) through the `train`
experiment's options (lr 0.01, batch 32, CE loss) and prints test accuracy, CPU seconds and wall seconds per
seed (CPU seconds, since the machine may be shared).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    parser.add_argument("--epochs", type=int, default=30)
    args = parser.parse_args()

    import torch

    from models.cells import CellNetwork
    from run.common import prepare
    from run.parser import parse_config
    from utils.cell_graph import read_cell_graph
    from utils.training import train

    torch.set_num_threads(1)  # small convs: a second thread only waits (and spins on a shared machine)
    structure = ROOT / "datasets" / "structures" / "cells-6conv.edgelist"
    config = parse_config(
        ["--experiment", "train", "--task", "digits_10way", "--structure", str(structure), "--lr", "0.01",
         "--batch_size", "32", "--loss", "CE", "--epochs", str(args.epochs)]
    )  # fmt: skip
    ctx = prepare(config)
    print("seed  test accuracy %  CPU s  wall s")
    for seed in args.seeds:
        torch.manual_seed(seed)
        model = CellNetwork(read_cell_graph(structure), ctx.task.image_shape, ctx.task.n_outputs)
        cpu, wall = time.process_time(), time.perf_counter()
        result = train(model, ctx.data, ctx.training, torch.Generator().manual_seed(seed))
        cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
        print(f"{seed:4d}  {result.metrics['test_accuracy']:15.2f}  {cpu:5.1f}  {wall:6.1f}", flush=True)


if __name__ == "__main__":
    main()
