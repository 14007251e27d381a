"""Write what module detection found: modules.json and GraphML beside the network, the PNG under
--visualization_path."""

from __future__ import annotations

from pathlib import Path

from detection_pipeline.detect import DetectionOptions, Modules
from detection_pipeline.network_source import Network
from utils.atomic_io import write_json_atomic

MODULES_FILE = "modules.json"
GRAPHML_FILE = "network.graphml"


def detection_options_dict(config) -> dict:
    return dict(vars(DetectionOptions.from_any(config)))


def picture_title(config, network: Network, modules: Modules) -> str:
    opts = DetectionOptions.from_any(config)

    def spaced(values):
        return " ".join(map(str, values))

    task = (
        f"{config.task} {spaced(config.modularity)}" if not config.checkpoint else Path(network.source).name
    )
    accuracy = network.metrics.get("test_accuracy")
    first = [task, f"arch {spaced(network.arch)}", f"seed {config.seed}", f"density {network.density:.2f}%"]
    if accuracy is not None:
        first.append(f"test acc {accuracy:.1f}%")
    first.append(f"{modules.n_modules} modules")
    second = (
        f"{opts.feature_direction} features (steps {opts.feature_step_size}), "
        f"{opts.clustering_distance_measure} distance, {opts.clustering_linkage} linkage, "
        f"{opts.stopping_criteria}, tests over {opts.clusterability_step_size} layers, "
        f"mm {opts.mm_threshold:g}, merge {opts.cluster_merging_threshold:g}"
    )
    return " · ".join(first) + "\n" + second


def write_detection(config, network: Network, modules: Modules) -> dict:
    """Write modules.json, network.graphml and the PNG; returns their paths by kind."""
    from detection_pipeline.draw import draw_modules
    from detection_pipeline.export import write_graphml

    weights = network.weights if config.feature_weighted else None
    summary = {
        **modules.to_json(),
        "source": network.source,
        "density": network.density,
        "test_accuracy": network.metrics.get("test_accuracy"),
        "task": {"task": config.task, "modularity": list(config.modularity)}
        if not config.checkpoint
        else None,
        "options": detection_options_dict(config),
    }
    paths = {
        "modules": network.out_dir / MODULES_FILE,
        "graphml": network.out_dir / GRAPHML_FILE,
        "picture": network.picture,
    }
    write_graphml(network.arch, network.masks, modules.partition, paths["graphml"], weights=weights)
    draw_modules(
        network.arch,
        network.masks,
        modules.partition,
        paths["picture"],
        title=picture_title(config, network, modules),
        weights=weights,
    )
    write_json_atomic(paths["modules"], summary)
    return paths
