"""Dense training: ours against an independent re-implementation of the published train loop.

    python3 benchmarks/published_loop.py [--seeds 0 40] [--repeats 1] [--modularity 4 1 2 8]
                                         [--arch 4 24 24 8] [--lr 0.1] [--batch_size 16] [--epochs 30]

For every seed in [start, stop): our `train` (`--table_repeats R --best_epoch published`) and the published
loop of tests/test_published_loop.py (torch.optim.Adam, BCE on sigmoid probabilities, the last-best-accuracy
rule), from the same initial network and the same generator. Prints per seed both test accuracies and the
largest weight difference, then how many seeds reach 100 % on each side and on how many they agree. With
`--repeats 1` (the published one pass per epoch) the two sides agree seed for seed (docs/results.md).
"""

from __future__ import annotations

import argparse
import copy
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from run.common import fresh_model, generator_for, prepare  # noqa: E402
from run.parser import parse_config  # noqa: E402
from tests.test_published_loop import _accuracy, published_train  # noqa: E402
from utils.training import train  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs=2, default=[0, 40], metavar=("START", "STOP"))
    parser.add_argument("--repeats", type=int, default=1, help="our --table_repeats")
    parser.add_argument("--modularity", default="4 1 2 8")
    parser.add_argument("--arch", default="4 24 24 8")
    parser.add_argument("--lr", type=float, default=0.1)
    parser.add_argument("--batch_size", type=int, default=16)
    parser.add_argument("--epochs", type=int, default=30)
    args = parser.parse_args()
    dataset = ROOT / "datasets" / "increasing_reuse_non_separable"
    ours_ok = reference_ok = agree = 0
    seeds = range(*args.seeds)
    print(f"{'seed':>4} {'ours %':>8} {'published loop %':>17} {'max |dw|':>9}")
    for seed in seeds:
        argv = ["--modularity", *args.modularity.split(), "--arch", *args.arch.split(), "--lr", str(args.lr)]
        argv += ["--batch_size", str(args.batch_size), "--epochs", str(args.epochs), "--seed", str(seed)]
        argv += ["--table_repeats", str(args.repeats), "--best_epoch", "published", "--quiet"]
        config = parse_config([*argv, "--dataset_path", str(dataset)])
        ctx = prepare(config)
        ours = fresh_model(config, ctx.device, ctx.task)
        layers = [
            (layer.weight.detach().clone().requires_grad_(), layer.bias.detach().clone().requires_grad_())
            for layer in copy.deepcopy(ours).layers
        ]
        result = train(ours, ctx.data, ctx.training, generator_for(seed))
        reference = published_train(
            layers, ctx.data.x_val, ctx.data.y_val, args.epochs, args.lr, args.batch_size, generator_for(seed)
        )
        mine = result.metrics["test_accuracy"]
        theirs = _accuracy(reference, ctx.data.x_test, ctx.data.y_test)
        pairs = zip(ours.layers, reference)
        gap = max(float((layer.weight.detach() - weight).abs().max()) for layer, (weight, _) in pairs)
        print(f"{seed:>4} {mine:8.2f} {theirs:17.2f} {gap:9.2e}", flush=True)
        ours_ok += mine >= 100.0
        reference_ok += theirs >= 100.0
        agree += (mine >= 100.0) == (theirs >= 100.0)
    n = len(seeds)
    print(f"dense 100 %: ours {ours_ok}/{n}, published loop {reference_ok}/{n}; same verdict on {agree}/{n}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
