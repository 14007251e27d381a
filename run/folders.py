"""Where an experiment will write, known before any work starts: for --dry_run (which prints them) and for
the check that every output folder is writable (so a read-only picture folder fails at once, not after all
the training). Imports no torch."""

from __future__ import annotations

import os
from pathlib import Path

from run.parser import ConfigError
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


NAME_MAX = 255  # bytes in one file or folder name on the usual file systems


def check_name_lengths(config) -> None:
    """ConfigError naming the option whose value makes a run folder's name longer than the file system
    allows (a folder name is built from option values), before anything is made."""
    for path in run_folders(config).values():
        for part in Path(path).parts:
            if len(part.encode()) <= NAME_MAX:
                continue
            texts = {
                name: str(value if not isinstance(value, list) else "-".join(map(str, value)))
                for name, value in vars(config).items()
                if name in config.explicit_options and value is not None
            }
            culprits = sorted((n for n, t in texts.items() if t and (t in part or Path(t).stem in part)),
                              key=lambda n: -len(texts[n]))  # fmt: skip
            which = f"--{culprits[0]} {texts[culprits[0]][:40]}" if culprits else "the options"
            raise ConfigError(
                f"{which} makes a run folder name {len(part.encode())} characters long ({part[:60]}...); "
                f"the file system allows {NAME_MAX}: give a shorter value"
            )


def check_output_folders(config) -> None:
    """OutputError (one line, the option named) when a folder the experiment writes into is a file or is
    not writable, or an output file option (--out, --output) cannot be written. Creates nothing."""
    check_name_lengths(config)
    check_output_files(config)
    for option in _WRITES.get(config.experiment, ()):
        folder = getattr(config, option, None)
        if option in ("summary_path", "log_dir") and folder is None:
            folder = config.result_path
            option = "result_path"
        if folder:
            check_writable(folder, f"--{option}")


def check_output_files(config) -> None:
    """--out (a folder) and --output (a file) checked like --result_path before any work: a file where a
    folder goes, a folder where a file goes, or a read-only place is one line naming the option."""
    from utils.errors import OutputError

    out = getattr(config, "out", None)
    if out and config.experiment in ("compare_partitions", "associations"):
        if Path(out).is_file():
            raise OutputError(f"--out {out} is a file, and --out names a folder; choose another --out")
        check_writable(out, "--out")
    output = getattr(config, "output", None)
    if config.experiment == "export_graph":
        if output:
            if Path(output).is_dir():
                raise OutputError(f"--output {output} is a folder, not a file name; choose another --output")
            if Path(output).exists() and not Path(output).is_file():
                raise OutputError(
                    f"--output {output} is a device or special file; an export replaces its file, so choose "
                    "a regular file name for --output"
                )
            check_writable(Path(output).parent, "--output")
        elif config.checkpoint and Path(config.checkpoint).is_file():
            beside = graph_beside(Path(config.checkpoint), config.graph_format).parent
            read_only = not beside.stat().st_mode & 0o222  # read-only even to root, who could write it
            if read_only or not os.access(beside, os.W_OK | os.X_OK):
                raise OutputError(
                    f"export_graph writes beside the network by default, but the folder {beside} is not "
                    "writable; choose a file with --output"
                )


GRAPH_SUFFIX = {"graphml": ".graphml", "edgelist": ".edgelist", "npz": ".npz"}


def graph_beside(checkpoint: Path, fmt: str) -> Path:
    """export_graph's default for --checkpoint FILE: <stem>.<format> in the file's folder (<stem>_graph.npz
    when that would be the file itself)."""
    path = checkpoint.with_suffix(GRAPH_SUFFIX[fmt])
    if path.resolve() == checkpoint.resolve():
        path = checkpoint.with_name(f"{checkpoint.stem}_graph{GRAPH_SUFFIX[fmt]}")
    return path
