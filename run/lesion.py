"""--experiment lesion: lesion tests of a partition's modules on the network the options name (or
--checkpoint), with the task's test set. Writes lesion.json beside the network and two PNGs (per-output
drop heatmap; layered sub-modules with double-lesion edges) under --visualization_path."""

from __future__ import annotations

from pathlib import Path

from run.detection_outputs import MODULES_FILE
from run.network_source import claim_out_dir, load_target
from run.parser import ConfigError
from utils.atomic_io import write_json_atomic
from utils.errors import InputError

LESION_FILE = "lesion.json"
HEATMAP_FILE = "lesion_heatmap.png"
DEPENDENCY_FILE = "lesion_dependencies.png"


def lesion_options(config):
    from detection_pipeline.lesion import LesionOptions

    try:
        return LesionOptions(
            num_shuffles=config.num_shuffles,
            double=config.double,
            num_shuffles_double=config.num_shuffles_double,
            double_pairs=config.double_pairs,
            seed=config.seed,
            workers=config.workers,
        )
    except ValueError as error:
        raise ConfigError(str(error)) from None


def load_partition(config, target):
    """--partition FILE, or the modules.json beside the network (written by module_detection)."""
    from detection_pipeline.partition import Partition

    if config.partition:
        return Partition.from_file(config.partition)
    path = target.out_dir / MODULES_FILE
    if not path.is_file():
        others = sorted(p.name for p in target.out_dir.glob("modules_*.json"))
        hint = f" (found {', '.join(others)} there: pass one with --partition)" if others else ""
        raise ConfigError(
            f"no partition at {path}; run --experiment module_detection with the same options first, "
            f"or pass --partition modules.json{hint}"
        )
    return Partition.from_file(path)


def load_test_task(config, network):
    """The task named by the options, checked against the network's own arch (not --arch)."""
    import dataclasses

    from run.network_source import task_config as own_task
    from run.options import task_options
    from utils.tasks import load_task

    options = dataclasses.replace(task_options(own_task(config)), arch=tuple(network.arch))
    if "cell_input_shape" in network.layout:  # a cell network (either view): the task it was trained on
        shape = tuple(network.layout["cell_input_shape"])
        options = dataclasses.replace(options, model="cells", input_shape=shape)
    elif network.has_conv:  # images for a channel network: check them against its image shape
        shape = network.layout.get("input_shape") or config.input_shape
        options = dataclasses.replace(options, model="CNN", input_shape=tuple(shape) if shape else None)
    try:
        return load_task(options)
    except InputError as error:
        raise ConfigError(
            f"no task to evaluate the network on ({error}); name the task it was trained on with "
            "--task, --modularity and --dataset_path, or give your own data with --input_batch FILE.npz"
        ) from None


def table_lines(result: dict) -> list[str]:
    """One line per sub-module: size, true and random mean drop, spread, p-values (or why untestable)."""

    def num(value, digits=1):
        return "n/a" if value is None else f"{value:.{digits}f}"

    lines = []
    for e in result["submodules"]:
        head = f"  L{e['layer']} M{e['module']}: {len(e['units'])}/{e['alive_in_layer']} units"
        if not e["testable"]:
            lines.append(f"{head}, drop {num(e['mean_drop'])} pp, untestable ({e['reason']})")
            continue
        lines.append(
            f"{head}, drop {num(e['mean_drop'])} pp "
            f"(random {num(e['random_mean'])} ± {num(e['random_std'])}), "
            f"spread {num(e['spread'], 2)}, p_mean {e['p_mean']:.3f} p_spread {e['p_spread']:.3f} "
            f"p_range {e['p_range']:.3f}"
        )
    return lines


def run(config) -> dict:
    from detection_pipeline.lesion import lesion_pairs, lesion_tests
    from detection_pipeline.lesion.plots import draw_dependencies, draw_heatmap
    from detection_pipeline.lesion.submodules import find_submodules
    from run.common import progress_bar
    from utils.fingerprint import network_record

    options = lesion_options(config)
    target = load_target(config)
    network = target.network
    partition = load_partition(config, target)
    partition.check_fits(network)
    if config.input_batch:  # the user's own data instead of a task's test split
        from utils.eval_batch import input_size, read_eval_batch

        task = read_eval_batch(config.input_batch, input_size(network), network.arch[-1])
    else:
        task = load_test_task(config, network)
    subs = find_submodules(network, partition)
    total = len(subs) + (len(lesion_pairs(subs, options.double_pairs)) if options.double else 0)
    with progress_bar(config, total, "lesions") as bar:
        result = lesion_tests(network, partition, task, options, progress=bar.update)
    # the task the lesions were evaluated on (a checkpoint's own, from its config.json, or the named one)
    if config.input_batch:
        result["task"] = {"input_batch": str(config.input_batch)}
    else:
        from run.network_source import task_config

        result["task"] = {"task": task_config(config).task, "modularity": [int(m) for m in task.modularity]}
    result["partition_file"] = str(config.partition or target.out_dir / MODULES_FILE)
    if "cell_nodes" in network.layout:  # name the lesioned cells by their graph node ids
        result["level"] = "cells"
        for entry in result["submodules"]:
            entry["cells"] = [network.layout["cell_nodes"][entry["layer"] - 1][u] for u in entry["units"]]
    result["network"] = network_record(network)
    claim_out_dir(target)

    paths = {
        "lesion": target.out_dir / LESION_FILE,
        "heatmap": target.picture_dir / HEATMAP_FILE,
    }
    if options.double:
        paths["dependencies"] = target.picture_dir / DEPENDENCY_FILE
    arch = " ".join(map(str, network.arch))
    title = f"{Path(network.source).name or 'network'} · arch {arch} · {partition.method} partition"
    draw_heatmap(result, paths["heatmap"], title)
    if options.double:
        draw_dependencies(result, paths["dependencies"], title)
    write_json_atomic(paths["lesion"], result)

    combined = result["combined_p"]
    tested = [e for e in result["submodules"] if e["testable"]]
    count = {key: sum(1 for e in tested if e[key] <= 0.05) for key in ("p_mean", "p_spread", "p_range")}
    fmt = lambda p: "n/a" if p is None else f"{p:.3g}"  # noqa: E731
    print(
        f"lesion: intact accuracy {result['intact_accuracy']:.2f}%; {len(tested)}/"
        f"{len(result['submodules'])} sub-modules testable; p <= 0.05 for "
        f"{count['p_mean']} (mean), {count['p_spread']} (spread), {count['p_range']} (range); Fisher p "
        f"mean {fmt(combined['mean'])}, spread {fmt(combined['spread'])} -> {paths['lesion']}"
    )
    if not config.quiet:
        for line in table_lines(result):
            print(line)
        for kind, path in paths.items():
            if kind != "lesion":
                print(f"picture -> {path}")
    return {"result": result, "paths": paths}
