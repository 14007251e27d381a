"""Where an experiment will write, known before any work starts: for --dry_run (which prints them) and for
the check that every output folder is writable (so a read-only picture folder fails at once, not after all
the training). Imports no torch."""

from __future__ import annotations

from pathlib import Path

from utils.atomic_io import check_writable


def run_folders(config) -> dict[str, str]:
    """{what: folder} for the experiment in `config` (the same functions the experiments use)."""
    from run import runs

    experiment = config.experiment
    folders: dict[str, Path] = {}
    if experiment == "train":
        folders["dense"] = runs.dense_dir(config)
    elif experiment == "prune" and config.prune_units:
        steps = config.unit_pruning_gradient or [None]
        for step in steps:
            folders[f"units step {step}"] = runs.unit_dir(config, step)
    elif experiment == "prune":
        for step in config.pruning_gradient:
            folders[f"edges step {step}"] = runs.edges_after_units_dir(config, step)
    elif experiment == "prune_cells":
        from run.prune_cells import prune_cells_dir

        folders["dense"] = runs.dense_dir(config)
        folders["cells"] = prune_cells_dir(config)
    elif experiment == "prune_edges":
        for step in config.pruning_gradient:
            folders[f"edges step {step}"] = runs.edges_from_dense_dir(config, step)
    elif experiment in ("module_detection", "lesion"):
        from run.network_source import checkpoint_out_dir, picture_dir

        if config.checkpoint:
            out = checkpoint_out_dir(config, Path(config.checkpoint))
        else:
            out = runs.edges_after_units_dir(config, config.pruning_gradient[0])
        folders["modules"] = out
        folders["picture"] = picture_dir(config, out)
    elif experiment == "sculpt":
        from run.network_source import picture_dir
        from run.study.sculpt import sculpt_dir

        folders["sculpt"] = sculpt_dir(config)
        folders["picture"] = picture_dir(config, sculpt_dir(config))
    elif experiment == "summarize":
        folders["summary"] = Path(config.summary_path or config.result_path)
        folders["pictures"] = Path(config.visualization_path)
    elif experiment == "generate_task":
        folders["dataset"] = Path(config.dataset_path)
    elif experiment == "sweep":
        folders["logs"] = Path(config.log_dir or Path(config.result_path) / "logs")
    return {what: str(path) for what, path in folders.items()}


# The options whose folders each experiment writes into.
_WRITES = {
    "train": ("result_path",),
    "prune": ("result_path",),
    "prune_edges": ("result_path",),
    "prune_cells": ("result_path",),
    "module_detection": ("result_path", "visualization_path"),
    "lesion": ("result_path", "visualization_path"),
    "sculpt": ("result_path", "visualization_path"),
    "summarize": ("summary_path", "visualization_path"),
    "generate_task": ("dataset_path",),
    "sweep": ("log_dir",),
}


def check_output_folders(config) -> None:
    """OutputError (one line, the option named) when a folder the experiment writes into is a file or is
    not writable. Creates nothing."""
    for option in _WRITES.get(config.experiment, ()):
        folder = getattr(config, option, None)
        if option in ("summary_path", "log_dir") and folder is None:
            folder = config.result_path
            option = "result_path"
        if folder:
            check_writable(folder, f"--{option}")
