"""Power and false-positive rate of the lesion tests: the distribution of p_spread and p_mean
over seeds, on networks with clear modules and on dense untrained networks with an arbitrary partition.

    python3 benchmarks/lesion_power.py [--seeds 5] [--num_shuffles 100] [--sculpt_root DIR]

Cases (5 seeds each):
- `block 4 2 4`: 4-24-24-4 trained on the published 4 2 4 task with a block-diagonal mask (inputs 0-1,
  hidden 0-11, outputs 0-1 | inputs 2-3, hidden 12-23, outputs 2-3); partition = the two blocks. Clear
  modules by construction, 12 alive units per sub-module.
- `sculpt 6 3 3 3` (with --sculpt_root): every sculpt.json under DIR (e.g. edge-only sculpts of 6 3 3 3,
  arch 6 24 24 3): the chosen network and the sculpt partition.
- `class blocks`: digits_10way 64-80-80-10 with one 8-unit block per class in each hidden layer (block c
  reads every input and feeds only block c, then output c), trained; partition = the 10 blocks. Small
  modules, as in Filan et al.'s 12-cluster networks. Control: the same arch untrained, random 10-way split.
- `dense untrained`: Kaiming-initialised 4-24-24-4 and 6-24-24-3 (no training, no pruning) with a random
  partition of each hidden layer into 2 (resp. 3) equal modules; evaluated on the same tasks.
Prints one line per network (p of each sub-module with >= 4 units) and a summary per case: the fraction of
sub-modules with p <= 0.05.
"""

from __future__ import annotations

import argparse
import json
import sys
import types
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

LARGE = 4  # sub-modules of at least this many units are reported


def truth_task(modularity: list[int]):
    from utils.tasks.function_graph import load_truth_table

    table = load_truth_table(str(ROOT / "datasets" / "exemplar"), modularity, None)
    x = np.asarray(table.inputs, np.float32)
    y = np.asarray(table.outputs, np.float32)
    return types.SimpleNamespace(x_test=x, y_test=y, accuracy_kind="bits", output_groups=[]), x, y


def block_network(seed: int):
    """4-24-24-4 trained on 4 2 4 with a two-block mask; returns (network, partition, task)."""
    import torch

    from detection_pipeline.partition import Partition
    from models.from_network import network_of
    from models.mlp import MLP
    from run.options import task_options
    from run.parser import parse_config
    from utils.tasks import load_task
    from utils.training import TaskTensors, train

    arch = [4, 24, 24, 4]
    blocks = [np.repeat([0, 1], w // 2) for w in arch]
    config = parse_config(
        ["--modularity", "4", "2", "4", "--arch", *map(str, arch), "--lr", "0.01", "--epochs", "40"]
        + ["--batch_size", "8", "--seed", str(seed)]
    )
    task = load_task(task_options(config))
    torch.manual_seed(seed)
    model = MLP(arch)
    masks = [
        torch.from_numpy((blocks[i + 1][:, None] == blocks[i][None, :]).astype(np.float32)) for i in range(3)
    ]
    model.set_masks(masks)
    train(
        model, TaskTensors.from_task(task, torch.device("cpu")), config, torch.Generator().manual_seed(seed)
    )
    network = network_of(model)
    partition = Partition(np.concatenate(blocks), arch, "blocks")
    return network, partition, truth_task([4, 2, 4])[0]


def digits_config(arch: list[int], seed: int):
    from run.parser import parse_config

    return parse_config(
        ["--task", "digits", "--modularity", "128", "2", "20", "--arch", *map(str, arch), "--loss", "CE"]
        + ["--lr", "0.003", "--epochs", "8", "--batch_size", "64", "--seed", str(seed)]
    )


def digits_blocks(arch: list[int], task) -> list[np.ndarray]:
    """Per layer, block 0/1 of each unit: left digit pixels / hidden halves / outputs 0-9 vs right."""
    inputs = np.ones(arch[0], int)
    inputs[np.asarray(task.input_groups[0])] = 0
    return [inputs] + [np.repeat([0, 1], w // 2) for w in arch[1:]]


def block_digits(seed: int, arch=(128, 64, 64, 20)):
    """128-64-64-20 trained on digits 128 2 20 with a two-block mask (left digit -> hidden halves ->
    outputs 0-9 | right digit -> other halves -> outputs 10-19); partition = the blocks."""
    import torch

    from detection_pipeline.partition import Partition
    from models.from_network import network_of
    from models.mlp import MLP
    from run.options import task_options
    from utils.tasks import load_task
    from utils.training import TaskTensors, train

    arch = list(arch)
    config = digits_config(arch, seed)
    task = load_task(task_options(config))
    blocks = digits_blocks(arch, task)
    torch.manual_seed(seed)
    model = MLP(arch)
    masks = [
        torch.from_numpy((blocks[i + 1][:, None] == blocks[i][None, :]).astype(np.float32)) for i in range(3)
    ]
    model.set_masks(masks)
    train(
        model, TaskTensors.from_task(task, torch.device("cpu")), config, torch.Generator().manual_seed(seed)
    )
    return network_of(model), Partition(np.concatenate(blocks), arch, "blocks"), task


def class_blocks(seed: int, trained: bool = True, arch=(64, 80, 80, 10)):
    """digits_10way 64-80-80-10 with one block of 8 units per class in each hidden layer (block c reads all
    inputs, feeds block c of the next layer, and only output c); partition = the 10 blocks (inputs module
    -1). With trained=False: the same arch dense and untrained, with a random 10-way partition of each
    hidden layer."""
    import torch

    from detection_pipeline.partition import Partition
    from models.from_network import network_of
    from models.mlp import MLP
    from run.options import task_options
    from run.parser import parse_config
    from utils.tasks import load_task
    from utils.training import TaskTensors, train

    arch = list(arch)
    config = parse_config(
        ["--task", "digits_10way", "--arch", *map(str, arch), "--loss", "CE", "--lr", "0.003"]
        + ["--epochs", "60", "--batch_size", "32", "--seed", str(seed)]
    )
    task = load_task(task_options(config))
    hidden = [np.repeat(np.arange(10), w // 10) for w in arch[1:-1]]
    torch.manual_seed(seed)
    model = MLP(arch)
    if trained:
        ids = [None, *hidden, np.arange(10)]
        masks = [np.ones((arch[1], arch[0]), np.float32)]
        masks += [(ids[i + 1][:, None] == ids[i][None, :]).astype(np.float32) for i in range(1, 3)]
        model.set_masks([torch.from_numpy(m) for m in masks])
        train(
            model,
            TaskTensors.from_task(task, torch.device("cpu")),
            config,
            torch.Generator().manual_seed(seed),
        )
    else:
        rng = np.random.default_rng(seed)
        hidden = [rng.permutation(h) for h in hidden]
    labels = np.concatenate([np.full(arch[0], -1), *hidden, np.arange(10)])
    return network_of(model), Partition(labels, arch, "blocks" if trained else "random"), task


def dense_digits(seed: int, arch=(128, 64, 64, 20)):
    """Untrained Kaiming 128-64-64-20 with a random two-module partition of each hidden layer."""
    import torch

    from detection_pipeline.partition import Partition
    from models.from_network import network_of
    from models.mlp import MLP
    from run.options import task_options
    from utils.tasks import load_task

    arch = list(arch)
    task = load_task(task_options(digits_config(arch, seed)))
    torch.manual_seed(seed)
    network = network_of(MLP(arch))
    rng = np.random.default_rng(seed)
    blocks = digits_blocks(arch, task)
    for layer in (1, 2):
        blocks[layer] = rng.permutation(blocks[layer])
    return network, Partition(np.concatenate(blocks), arch, "random"), task


def dense_untrained(arch: list[int], modularity: list[int], modules: int, seed: int):
    import torch

    from detection_pipeline.partition import Partition
    from models.from_network import network_of
    from models.mlp import MLP

    torch.manual_seed(seed)
    network = network_of(MLP(arch))
    rng = np.random.default_rng(seed)
    labels = [np.zeros(arch[0], int)]
    for width in arch[1:-1]:
        labels.append(rng.permutation(np.arange(width) * modules // width))
    labels.append(np.zeros(arch[-1], int))
    return network, Partition(np.concatenate(labels), arch, "random"), truth_task(modularity)[0]


def sculpted(root: Path):
    from detection_pipeline.partition import Partition
    from utils.network_files import load_torch_file, network_from_state_dict

    for path in sorted(root.rglob("sculpt.json")):
        record = json.loads(path.read_text())
        if record.get("status") != "ok":
            continue
        run = Path(record["chosen"]["run"])
        network = network_from_state_dict(load_torch_file(run / "model.pt"), str(run))
        partition = Partition.from_file(path.parent / "modules.json")
        yield f"seed {record['seed']}", network, partition, truth_task(record["modularity"])[0]


def report(name: str, results: list[tuple[str, dict]]) -> None:
    spread, mean, ranges = [], [], []
    for label, result in results:
        large = [e for e in result["submodules"] if e["testable"] and len(e["units"]) >= LARGE]
        spread += [e["p_spread"] for e in large]
        mean += [e["p_mean"] for e in large]
        ranges += [e["p_range"] for e in large]
        text = " ".join(
            f"L{e['layer']}M{e['module']}({len(e['units'])}):"
            f"{e['p_spread']:.2f}/{e['p_range']:.2f}/{e['p_mean']:.2f}"
            for e in large
        )
        combined = result["combined_p"]
        print(
            f"  {name} {label}: p_spread/p_range/p_mean {text or '(no large sub-module)'}; Fisher "
            f"spread {combined['spread']:.3g} range {combined['range']:.3g} mean {combined['mean']:.3g}"
        )
    if spread:
        print(f"{name}: {len(spread)} large sub-modules; share with p <= 0.05 (median p, min-max):")
        for stat, values in (("p_spread", spread), ("p_range", ranges), ("p_mean", mean)):
            values = np.array(values)
            print(
                f"    {stat:8s} {np.mean(values <= 0.05):4.0%}  ({np.median(values):.3f}, "
                f"{values.min():.3f}-{values.max():.3f})"
            )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--num_shuffles", type=int, default=100)
    parser.add_argument("--sculpt_root", type=Path, default=None)
    args = parser.parse_args(argv)

    import torch

    from detection_pipeline.lesion import LesionOptions, lesion_tests

    torch.set_num_threads(1)
    options = LesionOptions(num_shuffles=args.num_shuffles, seed=0)
    block = []
    for seed in range(args.seeds):
        network, partition, task = block_network(seed)
        result = lesion_tests(network, partition, task, options)
        block.append((f"seed {seed} (acc {np.mean(result['base_accuracy']):.0f}%)", result))
    report("block 4 2 4", block)
    digits = []
    for seed in range(args.seeds):
        network, partition, task = block_digits(seed)
        result = lesion_tests(network, partition, task, options)
        digits.append((f"seed {seed} (acc {np.mean(result['base_accuracy']):.0f}%)", result))
    report("block digits 128-64-64-20", digits)
    classes = []
    for seed in range(args.seeds):
        network, partition, task = class_blocks(seed)
        result = lesion_tests(network, partition, task, options)
        classes.append((f"seed {seed} (acc {np.mean(result['base_accuracy']):.0f}%)", result))
    report("class blocks digits_10way 64-80-80-10", classes)
    report(
        "dense untrained digits_10way 64-80-80-10, random 10-way partition",
        [
            (f"seed {seed}", lesion_tests(*class_blocks(seed, trained=False), options))
            for seed in range(args.seeds)
        ],
    )
    report(
        "dense untrained digits 128-64-64-20",
        [(f"seed {seed}", lesion_tests(*dense_digits(seed), options)) for seed in range(args.seeds)],
    )
    if args.sculpt_root:
        report(
            "sculpt",
            [(label, lesion_tests(n, p, t, options)) for label, n, p, t in sculpted(args.sculpt_root)],
        )
    for arch, modularity, modules in (([4, 24, 24, 4], [4, 2, 4], 2), ([6, 24, 24, 3], [6, 3, 3, 3], 3)):
        dense = []
        for seed in range(args.seeds):
            network, partition, task = dense_untrained(arch, modularity, modules, seed)
            dense.append((f"seed {seed}", lesion_tests(network, partition, task, options)))
        report(f"dense untrained {'-'.join(map(str, arch))}", dense)
    return 0


if __name__ == "__main__":
    sys.exit(main())
