"""Typed options, built once from the parsed config and handed to the library (docs/architecture.md,
"Options"). Every default lives in the parser (run/parser.py); these builders only copy and convert.

`task_options`, `training_options` and `gradual_pruning_options` give the task, training and gradual
pruning options. Each module-finding method has a builder here: `method_options(config, name)` returns the
method's options dataclass and a one-line description for picture titles. The library never sees the
argparse namespace.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict

from run.parser import ConfigError


def task_options(config):
    """The task (TaskOptions) named by the command line, and the network it must fit."""
    from utils.cell_graph import CellGraph
    from utils.tasks import TaskOptions
    from utils.tasks.digits import IDX_10WAY

    cells = isinstance(getattr(config, "_structure", None), CellGraph)  # set by run.common.apply_structure
    return TaskOptions(
        task=config.task,
        modularity=tuple(config.modularity),
        dataset_path=config.dataset_path,
        graph=config.graph,
        table_repeats=config.table_repeats,
        dataset_noise=bool(config.dataset_noise),
        seed=int(config.seed),
        images_per_pair=config.images_per_pair,
        data_paths={option: getattr(config, option.lstrip("-")) for _, option, _ in IDX_10WAY.values()},
        model="cells" if cells else config.model,
        arch=tuple(config.arch),
        input_shape=tuple(config.input_shape) if config.input_shape else None,
        image_norm=config.image_norm,
        mnist_source=config.mnist_source,
    )


def training_options(config):
    """How networks train (TrainingOptions): the fields of the same names."""
    from dataclasses import fields

    from utils.training import TrainingOptions

    return TrainingOptions(**{f.name: getattr(config, f.name) for f in fields(TrainingOptions)})


def gradual_pruning_options(config):
    """Pruning during training (GradualPruningOptions) from --gradual_pruning and its companions."""
    from utils.gradual_pruning import GradualPruningOptions

    return GradualPruningOptions(
        config.gradual_pruning,
        config.target_sparsity,
        config.prune_epochs,
        config.prune_every,
        config.prune_scope,
    )


def detection_options(config):
    """Neural Sculpting detection options (DetectionOptions) from the CLI."""
    from dataclasses import fields

    from detection_pipeline.detect import DetectionOptions

    values = {f.name: getattr(config, f.name) for f in fields(DetectionOptions)}
    try:
        return DetectionOptions.from_any(DetectionOptions(**values))
    except ValueError as error:
        raise ConfigError(str(error)) from None


def sculpt_line(opts) -> str:
    return (
        f"{opts.feature_direction} features (steps {opts.feature_step_size}), "
        f"{opts.clustering_distance_measure} distance, {opts.clustering_linkage} linkage, "
        f"{opts.stopping_criteria}, tests over {opts.clusterability_step_size} layers, "
        f"mm {opts.mm_threshold:g}, merge {opts.cluster_merging_threshold:g}"
    )


def spectral_options(config):
    """Spectral clustering options (SpectralOptions) from the CLI: the first --n_clusters, --seed."""
    from detection_pipeline.spectral.cluster import SpectralOptions

    return SpectralOptions(
        n_clusters=int(config.n_clusters[0]),
        seed=int(config.seed),
        normalize_weights=bool(config.normalize_weights),
        graph_prune=config.graph_prune,
    )


def spectral_line(opts) -> str:
    norm = "normalised" if opts.normalize_weights else "raw"
    return f"spectral clustering K={opts.n_clusters}, {norm} |w| graph, {opts.graph_prune} pruning"


def newman_options(config):
    """Newman-Q on an association matrix (NewmanOptions) from the CLI."""

    from detection_pipeline.associations.matrices import ASSOCIATIONS
    from detection_pipeline.associations.method import NewmanOptions

    if config.association not in ASSOCIATIONS:
        raise ConfigError(
            f"--association {config.association} is unknown; choose from {', '.join(ASSOCIATIONS)}"
        )
    if config.input_batch is not None:
        from utils.files import regular_file

        regular_file(config.input_batch, "--input_batch")
    return NewmanOptions(
        association=config.association,
        bisection=config.bisection,
        mc_steps=config.mc_steps,
        mc_restarts=config.mc_restarts,
        target_entropy=config.target_entropy,
        seed=config.seed,
        loss=config.loss,
        input_batch=config.input_batch,
    )


def newman_line(opts) -> str:
    return (
        f"Newman Q on {opts.association} ({opts.bisection} bisection, "
        f"{opts.mc_steps} MC steps x {opts.mc_restarts}, entropy {opts.target_entropy:g}, loss {opts.loss})"
    )


# method name -> (options builder(config), title line(options)); methods add theirs here.
METHOD_OPTIONS: dict[str, tuple[Callable, Callable]] = {
    "sculpt": (detection_options, sculpt_line),
    "spectral": (spectral_options, spectral_line),
    "newman": (newman_options, newman_line),
}


def method_options(config, name: str):
    """(options dataclass, options as a dict, title line) for the method `name`."""
    from detection_pipeline.methods import method_names

    if name not in METHOD_OPTIONS:
        raise ConfigError(f"--method {name} is unknown; choose from {', '.join(method_names())}")
    build, line = METHOD_OPTIONS[name]
    options = build(config)
    return options, asdict(options), line(options)
