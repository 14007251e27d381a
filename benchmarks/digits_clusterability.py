"""Study (not a timing): are pruned, dropout-trained MLPs on the bundled digits more clusterable than their
shuffles? The digits counterpart of Filan et al.'s MNIST table.

    python3 benchmarks/digits_clusterability.py [--seeds 0 1 2 3 4] [--num_shuffles 50] [--workers 2]
        [--out results/digits_clusterability] [--dropout 0.5]

Per seed: an MLP 64-256-256-256-256-10 on `--task digits_10way` (CE, Adam lr 1e-3, batch 128, dropout 0.5)
trained 20 epochs with utils.training.train, then 20 pruning epochs as the anchor did with TensorFlow's
polynomial decay: sparsity s(t) = 0.9 + (0.5 - 0.9)(1 - t/T)^3 over the T pruning steps, each weight matrix
pruned to s(t) by magnitude every 10 steps (TF's default frequency of 100 steps would prune only twice on
this small training set). Then `--experiment clusterability` at K = 12 with `layer` and `layer_nonzero`
shuffles with 001's graph settings (no normalisation, zero-degree units removed before shuffling) and,
with --both_settings, also with 000's defaults. Prints one table row per seed and writes study.json.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

ARCH = ["64", "256", "256", "256", "256", "10"]


def train_and_prune(seed: int, dropout: float, pruning_epochs: int = 20, frequency: int = 10):
    """(LayeredNetwork of the pruned MLP, test accuracy %, density %)."""
    import torch

    from models.from_network import network_of
    from models.mlp import MLP
    from run.options import task_options
    from run.parser import parse_config
    from utils.tasks import load_task
    from utils.training import TaskTensors, evaluate, loss_value, train

    argv = ["--task", "digits_10way", "--arch", *ARCH, "--loss", "CE", "--optimizer", "adam", "--lr", "0.001"]
    argv += ["--batch_size", "128", "--epochs", "20", "--weight_decay", "0", "--dropout", str(dropout)]
    config = parse_config([*argv, "--seed", str(seed)])
    data = TaskTensors.from_task(load_task(task_options(config)), torch.device("cpu"))
    torch.manual_seed(seed)
    model = MLP(config.arch, dropout=config.dropout)
    generator = torch.Generator().manual_seed(seed)
    train(model, data, config, generator)
    optimizer = torch.optim.Adam(model.parameters(), lr=config.lr)
    n = data.x_train.shape[0]
    steps_per_epoch = -(-n // config.batch_size)
    total = pruning_epochs * steps_per_epoch
    step = 0
    for _ in range(pruning_epochs):
        model.train()
        order = torch.randperm(n, generator=generator)
        for start in range(0, n, config.batch_size):
            if step % frequency == 0 or step == total - 1:
                sparsity = 0.9 + (0.5 - 0.9) * (1 - min(step / (total - 1), 1.0)) ** 3
                with torch.no_grad():
                    masks = []
                    for layer in model.layers:
                        magnitude = (layer.weight * layer.weight_mask).abs().flatten()
                        keep = int(round((1 - sparsity) * magnitude.numel()))
                        mask = torch.zeros_like(magnitude)
                        mask[torch.argsort(magnitude, descending=True, stable=True)[:keep]] = 1
                        masks.append(mask.view_as(layer.weight))
                    model.set_masks(masks)
            batch = order[start : start + config.batch_size]
            loss = loss_value(
                model.logits(data.x_train[batch]), data.y_train[batch], "CE", data.output_groups
            )
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            step += 1
    accuracy, _ = evaluate(model, data.x_test, data.y_test, data, "CE")
    network = network_of(model)
    return network, accuracy, network.density


def save_npz(network, path: Path) -> None:
    arrays = {"arch": np.array(network.arch)}
    for i in range(network.depth):
        arrays[f"weight{i}"] = network.weights[i] * network.masks[i]
        arrays[f"bias{i}"] = network.biases[i]
        arrays[f"mask{i}"] = network.masks[i]
    np.savez(path, **arrays)


def clusterability(npz: Path, out: Path, seed: int, shuffles: int, workers: int, settings: list[str]) -> dict:
    import main

    argv = ["--experiment", "clusterability", "--checkpoint", str(npz), "--n_clusters", "12", "--quiet"]
    argv += ["--num_shuffles", str(shuffles), "--shuffle_method", "layer", "layer_nonzero"]
    argv += ["--workers", str(workers), "--seed", str(seed), "--result_path", str(out / "r")]
    argv += ["--visualization_path", str(out / "v"), *settings]
    if main.main(argv) != 0:
        raise SystemExit("clusterability failed")
    return json.loads(next((out / "r").glob(f"*{npz.stem}/clusterability.json")).read_text())


SETTINGS = {
    "001 (raw |w|, zero-degree units removed)": [
        "--normalize_weights",
        "False",
        "--graph_prune",
        "zero_degree",
    ],
    "000 (normalised, components)": [],
}


def main_study() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    parser.add_argument("--num_shuffles", type=int, default=50)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--dropout", type=float, default=0.5)
    parser.add_argument("--both_settings", action="store_true")
    parser.add_argument("--out", type=Path, default=ROOT / "results" / "digits_clusterability")
    args = parser.parse_args()
    import torch

    torch.set_num_threads(1)  # small matrices: a second thread only waits (badly so on a shared machine)
    args.out.mkdir(parents=True, exist_ok=True)
    settings = dict(list(SETTINGS.items())[: 2 if args.both_settings else 1])
    rows = []
    print("| setting | seed | test acc | density | n-cut | layer mean (z, p) | layer_nonzero mean (z, p) |")
    print("|---|---|---|---|---|---|---|")
    for seed in args.seeds:
        npz = args.out / f"digits_mlp_seed{seed}.npz"
        start = time.perf_counter()
        if not npz.is_file():
            network, accuracy, density = train_and_prune(seed, args.dropout)
            save_npz(network, npz)
            (args.out / f"digits_mlp_seed{seed}.json").write_text(json.dumps({"test_accuracy": accuracy}))
        accuracy = json.loads((args.out / f"digits_mlp_seed{seed}.json").read_text())["test_accuracy"]
        for name, extra in settings.items():
            result = clusterability(
                npz, args.out / name.split()[0], seed, args.num_shuffles, args.workers, extra
            )
            layer, nonzero = result["shuffles"]["layer"], result["shuffles"]["layer_nonzero"]
            density = 100.0 * np.mean(
                np.concatenate([np.load(npz)[f"mask{i}"].ravel() for i in range(len(ARCH) - 1)])
            )
            row = {
                "setting": name,
                "seed": seed,
                "test_accuracy": accuracy,
                "density": density,
                "ncut": result["ncut"],
                "layer": {k: layer[k] for k in ("mean", "std", "z", "p")},
                "layer_nonzero": {k: nonzero[k] for k in ("mean", "std", "z", "p")},
                "seconds": time.perf_counter() - start,
            }
            rows.append(row)
            print(
                f"| {name.split()[0]} | {seed} | {accuracy:.1f} % | {density:.1f} % | {row['ncut']:.3f} | "
                f"{layer['mean']:.3f} ({layer['z']:.1f}, {layer['p']:.3f}) | "
                f"{nonzero['mean']:.3f} ({nonzero['z']:.1f}, {nonzero['p']:.3f}) |",
                flush=True,
            )
    (args.out / "study.json").write_text(json.dumps(rows, indent=1))
    for name in settings:
        mine = [r for r in rows if r["setting"] == name]
        for method in ("layer", "layer_nonzero"):
            significant = sum(r[method]["p"] <= 0.05 for r in mine)
            print(
                f"{name.split()[0]}: mean n-cut {np.mean([r['ncut'] for r in mine]):.3f} vs {method} "
                f"{np.mean([r[method]['mean'] for r in mine]):.3f}; p <= 0.05 in {significant}/{len(mine)}"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main_study())
