"""Write what a module-finding method found: modules.json and GraphML beside the network, the PNG under
--visualization_path. Works for every method's Partition. The default method (sculpt) writes modules.json,
network.graphml and modules.png; any other method its own modules_<method>.json, network_<method>.graphml
and modules_<method>.png, so running a second method keeps the first one's results. modules.json records
the network it was found on (fingerprint and source)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from detection_pipeline.partition import Partition
from run.network_source import Target
from utils.atomic_io import write_json_atomic
from utils.unit_names import flat_unit_names

MODULES_FILE = "modules.json"
GRAPHML_FILE = "network.graphml"
PICTURE_FILE = "modules.png"
DEFAULT_METHOD = "sculpt"


def method_file(name: str, method: str) -> str:
    """The file `name` (modules.json, network.graphml, modules.png) of `method`: the name itself for the
    default method, `<stem>_<method><suffix>` for any other."""
    if method == DEFAULT_METHOD:
        return name
    stem, _, suffix = name.rpartition(".")
    return f"{stem}_{method}.{suffix}"


def _spaced(values) -> str:
    return " ".join(map(str, values))


def picture_title(
    config, target: Target, partition: Partition, options_line: str, steps=None, verdict: str | None = None
) -> str:
    """Title lines: what network (task, arch, seed, training options, the unit and edge steps kept), what
    it reached (density, accuracy), what was found (module count) and, when scored, the verdict.

    steps: (unit step, edge step) of the network drawn; default the ones the options name (the run
    module_detection reads). verdict: e.g. "success" or "no success: criteria failed ...".
    """
    from run.runs import unit_step
    from utils.tasks import task_modularity

    network = target.network
    if config.checkpoint:
        first = [Path(network.source).name, f"arch {_spaced(network.arch)}"]
        training = None
    else:
        first = [
            f"{config.task} {_spaced(task_modularity(config.task, config.modularity))}",
            f"arch {_spaced(network.arch)}",
        ]
        first.append(f"seed {config.seed}")
        training = f"lr {config.lr:g} · batch {config.batch_size} · epochs {config.epochs}"
        unit, edge = steps if steps is not None else (unit_step(config), config.pruning_gradient[0])
        kept = [f"unit step {unit:g}" if unit is not None else "no unit pruning"]
        if edge is not None:
            kept.append(f"edge step {edge:g}")
        training += " · kept: " + ", ".join(kept)
    first.append(f"density {network.density:.2f}%")
    accuracy = network.metrics.get("test_accuracy")
    if accuracy is not None:
        first.append(f"test acc {accuracy:.1f}%")
    n = partition.n_modules
    first.append(f"{n} module{'s' if n != 1 else ''}")
    lines = [" · ".join(first)]
    if training:
        lines.append(training)
    if verdict:
        lines.append(verdict)
    lines.append(options_line)
    return "\n".join(lines)


def write_detection(
    config,
    target: Target,
    partition: Partition,
    options: dict,
    options_line: str,
    steps=None,
    verdict: str | None = None,
) -> dict:
    """Write modules.json, network.graphml and the PNG; returns their paths by kind. steps, verdict: for
    the picture title (picture_title)."""
    from detection_pipeline.draw import draw_modules
    from detection_pipeline.export import write_graphml
    from utils.fingerprint import network_record
    from utils.tasks import task_modularity

    network = target.network
    weights = network.weights if getattr(config, "feature_weighted", False) else None
    summary = {
        **partition.to_json(),
        "network": network_record(network),
        "source": network.source,
        "density": network.density,
        "test_accuracy": network.metrics.get("test_accuracy"),
        "task": {"task": config.task, "modularity": task_modularity(config.task, config.modularity)}
        if not config.checkpoint
        else None,
        "options": options,
        "unit_names": flat_unit_names(network),
    }
    paths = {
        "modules": target.out_dir / method_file(MODULES_FILE, partition.method),
        "graphml": target.out_dir / method_file(GRAPHML_FILE, partition.method),
        "picture": target.picture_dir / method_file(PICTURE_FILE, partition.method),
    }
    # Every block: a DAG network's skip edges are part of what was found (exported and drawn as arcs).
    write_graphml(
        network.arch, network.masks, partition.labels, paths["graphml"], weights=weights, skips=network.skips
    )
    draw_modules(
        network.arch,
        network.masks,
        partition.labels,
        paths["picture"],
        title=picture_title(config, target, partition, options_line, steps, verdict),
        weights=weights,
        skips=network.skips,
    )
    if "cell_nodes" in network.layout:
        paths["cells_picture"] = target.picture_dir / method_file("cells.png", partition.method)
        summary.update(cell_summary(network, partition.labels, paths["cells_picture"]))
    write_json_atomic(paths["modules"], summary)
    return paths


def cell_summary(network, labels, picture) -> dict:
    """A cell-level partition's cells by name ({"cells": {node id: module}}, and per module "cells") and
    the picture of the cell DAG coloured by module."""
    from detection_pipeline.cell_plot import draw_cell_dag

    graph = network.layout["cell_model"].graph
    offsets, arch = network.offsets, network.arch
    label_of = {}
    for layer in range(1, len(arch) - 1):
        for unit, cell in enumerate(network.layout["cell_index"][layer]):
            label_of[cell] = int(labels[offsets[layer] + unit])
    per_cell = [label_of[i] for i in range(graph.n_cells)]
    weight = {}
    for block in network.blocks():
        for t, s in zip(*np.nonzero(block.mask)):
            if 0 < block.source and block.target < len(arch) - 1:
                a = network.layout["cell_index"][block.source][s]
                b = network.layout["cell_index"][block.target][t]
                weight[(a, b)] = float(block.weight[t, s])
    edges = [(s, t, weight.get((s, t), 0.0)) for s, t in graph.edges]
    draw_cell_dag(list(graph.nodes), graph.depths(), edges, np.asarray(per_cell), picture)
    modules: dict[int, list[str]] = {}
    for i, m in enumerate(per_cell):
        modules.setdefault(m, []).append(graph.nodes[i])
    return {
        "level": "cells",
        "cells": {graph.nodes[i]: per_cell[i] for i in range(graph.n_cells)},
        "cell_modules": {str(m): names for m, names in sorted(modules.items())},
    }
