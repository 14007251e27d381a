"""CNN training throughput (images per second) on the 8x8 digits and on synthetic 28x28 images.

    python3 benchmarks/cnn.py [--epochs 3] [--threads 1] [--batch_size 32] [--cnn "conv:16:3 pool:2 ..."]

For each input size: seeded CNN (models/cnn.py) and one `utils.training.train` call (Adam, CE, the given
epochs; evaluation on the validation split after every epoch included, as in a real run), timed after one
warm-up epoch. Images/s = training images x epochs / seconds. The 28x28 data are random images with random
labels (only the speed matters); the digits are `--task digits_10way` (1295 training images). A second row
per size adds cubic pruning while training (--prune_every 20) to show what the mask updates cost.
Nothing is written. The thread count is set once (torch.set_num_threads) and shown.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def _config(args, extra=()):
    from run.parser import parse_config

    argv = ["--task", "digits_10way", "--loss", "CE", "--model", "CNN", "--cnn", args.cnn, "--lr", "0.003"]
    argv += ["--batch_size", str(args.batch_size), "--epochs", str(args.epochs), "--quiet", *extra]
    return parse_config(argv)


def _synthetic(n_train: int, n_val: int, side: int):
    import torch

    from utils.training import TaskTensors

    g = torch.Generator().manual_seed(0)
    x = torch.randn(n_train + n_val, side * side, generator=g)
    y = torch.nn.functional.one_hot(torch.randint(0, 10, (n_train + n_val,), generator=g), 10).float()
    xt, yt, xv, yv = x[:n_train], y[:n_train], x[n_train:], y[n_train:]
    return TaskTensors(xt, yt, xv, yv, xv, yv, 0.0, "argmax", [list(range(10))], xt, yt)


def _time(config, data, shape, pruner=None) -> float:
    import torch

    from models.cnn import CNN
    from run.options import training_options
    from utils.training import train

    torch.manual_seed(0)
    model = CNN(config.cnn, shape, 10)
    options = training_options(config)
    train(model, data, dataclasses.replace(options, epochs=1), torch.Generator().manual_seed(0))
    model = CNN(config.cnn, shape, 10)
    start = time.perf_counter()
    train(model, data, options, torch.Generator().manual_seed(0), pruner=pruner)
    return time.perf_counter() - start


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--batch_size", type=int, default=32)
    parser.add_argument("--n_synthetic", type=int, default=2048, help="synthetic 28x28 training images")
    parser.add_argument("--cnn", default="conv:16:3 pool:2 conv:32:3 pool:2 fc:64")
    args = parser.parse_args(argv)

    import torch

    from run.options import gradual_pruning_options, task_options
    from utils.gradual_pruning import gradual_pruner
    from utils.tasks import load_task
    from utils.training import TaskTensors

    torch.set_num_threads(args.threads)
    config = _config(args)
    pruned = _config(args, ["--gradual_pruning", "cubic", "--target_sparsity", "90", "--prune_every", "20"])
    digits = load_task(task_options(config))
    cases = [
        ("digits 1x8x8", TaskTensors.from_task(digits, torch.device("cpu")), digits.image_shape),
        ("synthetic 1x28x28", _synthetic(args.n_synthetic, 256, 28), (1, 28, 28)),
    ]
    print(
        f"CNN {args.cnn!r}, batch {args.batch_size}, {args.epochs} epochs, "
        f"{torch.get_num_threads()} thread(s)"
    )
    print("| input | pruning | train images | seconds | images/s |")
    print("|---|---|---|---|---|")
    for name, data, shape in cases:
        n = data.x_train.shape[0]
        for label, cfg in (("none", config), ("cubic 90%", pruned)):
            factory = None
            if cfg is pruned:
                options = gradual_pruning_options(cfg)
                factory = lambda m, s, e, o=options: gradual_pruner(m, o, s, e)  # noqa: E731
            seconds = _time(cfg, data, shape, factory)
            print(f"| {name} | {label} | {n} | {seconds:.2f} | {n * args.epochs / seconds:,.0f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
