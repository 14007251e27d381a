"""Write what a module-finding method found: modules.json and GraphML beside the network, the PNG under
--visualization_path. Works for every method's Partition."""

from __future__ import annotations

from pathlib import Path

from detection_pipeline.partition import Partition
from run.network_source import Target
from utils.atomic_io import write_json_atomic

MODULES_FILE = "modules.json"
GRAPHML_FILE = "network.graphml"


def _spaced(values) -> str:
    return " ".join(map(str, values))


def picture_title(config, target: Target, partition: Partition, options_line: str) -> str:
    network = target.network
    task = (
        f"{config.task} {_spaced(config.modularity)}" if not config.checkpoint else Path(network.source).name
    )
    accuracy = network.metrics.get("test_accuracy")
    first = [task, f"arch {_spaced(network.arch)}", f"seed {config.seed}", f"density {network.density:.2f}%"]
    if accuracy is not None:
        first.append(f"test acc {accuracy:.1f}%")
    n = partition.n_modules
    first.append(f"{n} module{'s' if n != 1 else ''}")
    return " · ".join(first) + "\n" + options_line


def write_detection(config, target: Target, partition: Partition, options: dict, options_line: str) -> dict:
    """Write modules.json, network.graphml and the PNG; returns their paths by kind."""
    from detection_pipeline.draw import draw_modules
    from detection_pipeline.export import write_graphml

    network = target.network
    weights = network.weights if getattr(config, "feature_weighted", False) else None
    summary = {
        **partition.to_json(),
        "source": network.source,
        "density": network.density,
        "test_accuracy": network.metrics.get("test_accuracy"),
        "task": {"task": config.task, "modularity": list(config.modularity)}
        if not config.checkpoint
        else None,
        "options": options,
    }
    paths = {
        "modules": target.out_dir / MODULES_FILE,
        "graphml": target.out_dir / GRAPHML_FILE,
        "picture": target.picture,
    }
    write_graphml(network.arch, network.masks, partition.labels, paths["graphml"], weights=weights)
    draw_modules(
        network.arch,
        network.masks,
        partition.labels,
        paths["picture"],
        title=picture_title(config, target, partition, options_line),
        weights=weights,
    )
    write_json_atomic(paths["modules"], summary)
    return paths
