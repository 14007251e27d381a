"""Run directories: readable paths derived from the options, and atomic saving/loading inside them.

Layout under --result_path (one folder level per concern, `name-value` labels, no unlabelled glued values):

    <task>/<modularity>/<arch>/<training>/seed-<S>/dense/
    .../seed-<S>/units/<unit pruning>/                         unit-pruned network (--prune_units 1)
    .../seed-<S>/units/<unit pruning>/edges/<edge pruning>/    edges pruned after units (--prune_units 0)
    .../seed-<S>/edges/<edge pruning>/                         edges pruned from dense (prune_edges)

e.g. boolean-exemplar/4-2-4/arch-4-24-4/lr-0.05_batch-8_epochs-15/seed-0/units/
         activation_gradient_product_linear_step-70_acc-100
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from utils.atomic_io import atomic_path, write_json_atomic
from utils.errors import InputError

CONFIG_FILE = "config.json"
METRICS_FILE = "metrics.json"
CHECKPOINT_FILE = "model.pt"
NETWORK_FILE = "network.npz"  # the checkpoint's network as a graph .npz: analyses read it without torch
SEARCH_STATE_FILE = "search_state.pt"

# Training options that are not in the folder name when they have their published default.
_TRAINING_DEFAULTS = {
    "optimizer": ("adam", "opt"),
    "loss": ("BCE", "loss"),
    "hidden_layer_activation": ("relu", "act"),
    "bn": (False, "bn"),
    "dropout": (None, "dropout"),
    "weight_decay": (1e-4, "wd"),
    "scheduler": ("exp", "sched"),
    "gamma": (1.0, "gamma"),
    "dataset_noise": (True, "noise"),
    "table_repeats": (2, "repeats"),
    "images_per_pair": (None, "per-pair"),
    "clusterability_reg": (0.0, "creg"),
    "reg_k": (3, "regk"),
    "reg_every": (20, "regevery"),
    "normalize_weights_every": (0, "wnorm"),
}


def _num(value) -> str:
    """Compact number for folder names: 70.0 -> 70, 2.5 -> 2.5, 1e-05 -> 1e-05."""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _dashes(values) -> str:
    return "-".join(str(v) for v in values)


def training_key(config) -> str:
    parts = [f"lr-{_num(config.lr)}", f"batch-{config.batch_size}", f"epochs-{config.epochs}"]
    for name, (default, label) in _TRAINING_DEFAULTS.items():
        value = getattr(config, name, default)
        if value != default:
            parts.append(f"{label}-{_num(value) if isinstance(value, float) else value}")
    return "_".join(parts)


def task_key(config) -> Path:
    if getattr(config, "graph", None):
        # A user's graph defines its own task: name the folder after the file and its content, so two
        # graphs (or an edited graph) never share a trained network.
        return Path("boolean-graph") / _file_key("graph", config.graph)[len("graph-") :]
    family = ""
    if config.task == "boolean":
        from utils.tasks import family_of

        family = family_of(config.dataset_path)
    task = config.task if not family or family == "boolean" else f"{config.task}-{family}"
    return Path(task) / _dashes(config.modularity)


def _file_key(label: str, path) -> str:
    """<label>-<file stem>-<first 8 hex of its SHA-1>: two files (or an edited one) never share a folder."""
    import hashlib

    file = Path(path)
    digest = hashlib.sha1(file.read_bytes()).hexdigest()[:8] if file.is_file() else "missing"
    return f"{label}-{file.stem}-{digest}"


def arch_key(config) -> str:
    """arch-<widths>, or for a network built from --structure FILE structure-<stem>-<hash>_arch-<widths>."""
    arch = f"arch-{_dashes(config.arch)}"
    structure = getattr(config, "structure", None)
    return f"{_file_key('structure', structure)}_{arch}" if structure else arch


def seed_dir(config) -> Path:
    """<result_path>/<task>/<modularity>/<arch key>/<training>/seed-<S>"""
    return (
        Path(config.result_path)
        / task_key(config)
        / arch_key(config)
        / training_key(config)
        / f"seed-{config.seed}"
    )


def dense_dir(config) -> Path:
    return seed_dir(config) / "dense"


def unit_pruning_key(config, step: float | None) -> str:
    parts = [config.unit_pruning_metric, config.unit_pruning_schedule]
    if step is not None:
        parts.append(f"step-{_num(step)}")
    if config.unit_pruning_iterations is not None:
        parts.append(f"iterations-{config.unit_pruning_iterations}")
    if config.unit_pruning_norm != "None":
        parts.append(f"norm-{config.unit_pruning_norm}")
    if config.unit_pruning_scale != "global":
        parts.append(f"scale-{config.unit_pruning_scale}")
    if not config.unit_pruning_metric_normalized:
        parts.append("unnormalized")
    parts.append(f"acc-{_num(config.prune_acc_threshold)}")
    return "_".join(parts)


def edge_pruning_key(config, step: float) -> str:
    parts = ["magnitude", config.pruning_schedule, f"step-{_num(step)}"]
    if config.pruning_iterations is not None:
        parts.append(f"iterations-{config.pruning_iterations}")
    parts.append(f"acc-{_num(config.prune_acc_threshold)}")
    return "_".join(parts)


def unit_step(config) -> float | None:
    """The unit-pruning step that names the unit-pruned run (--which_unit_pruning_gradient picks one)."""
    steps = config.unit_pruning_gradient
    if not steps:
        return None
    index = min(max(config.which_unit_pruning_gradient, 0), len(steps) - 1)
    return steps[index]


def unit_dir(config, step: float | None = None) -> Path:
    step = unit_step(config) if step is None else step
    return seed_dir(config) / "units" / unit_pruning_key(config, step)


def edges_after_units_dir(config, edge_step: float, unit_step_value: float | None = None) -> Path:
    return unit_dir(config, unit_step_value) / "edges" / edge_pruning_key(config, edge_step)


def edges_from_dense_dir(config, edge_step: float) -> Path:
    return seed_dir(config) / "edges" / edge_pruning_key(config, edge_step)


@dataclass
class RunDir:
    """One run's folder: config.json, model.pt (state_dict with masks), metrics.json, search state."""

    path: Path

    def __post_init__(self):
        self.path = Path(self.path)

    @property
    def finished(self) -> bool:
        return (self.path / METRICS_FILE).is_file() and (self.path / CHECKPOINT_FILE).is_file()

    def save_json(self, name: str, obj) -> None:
        write_json_atomic(self.path / name, obj)

    def load_json(self, name: str) -> dict:
        file = self.path / name
        try:
            return json.loads(file.read_text())
        except FileNotFoundError:
            raise InputError(
                f"{file} is missing; re-run the command that makes it (or pass --force)"
            ) from None
        except (OSError, json.JSONDecodeError) as error:
            raise InputError(f"{file} is unreadable ({error}); delete it and re-run with --force") from None

    def save_torch(self, name: str, obj) -> None:
        import torch

        with atomic_path(self.path / name) as tmp:
            torch.save(obj, tmp)

    def load_torch(self, name: str):
        return load_checkpoint(self.path / name)

    def clean_stale_temps(self) -> None:
        """Remove temp files left by a process killed in the middle of an atomic write."""
        if self.path.is_dir():
            for stale in self.path.glob(".*.tmp*"):
                stale.unlink(missing_ok=True)

    def remove(self, name: str) -> None:
        (self.path / name).unlink(missing_ok=True)

    def save_result(self, config, state: dict, metrics: dict) -> None:
        """Write config, checkpoint, then metrics last: metrics.json marks the run as finished."""
        self.save_json(CONFIG_FILE, config_dict(config))
        self.save_torch(CHECKPOINT_FILE, state)
        self.save_network(state, getattr(config, "hidden_layer_activation", "relu"))
        self.save_json(METRICS_FILE, metrics)

    def save_network(self, state: dict, activation: str) -> None:
        """network.npz beside model.pt (the kept edges, biases, arch; see utils/graph_io.py), so analyses
        start without importing torch. Left out for batch-norm networks (the graph holds no statistics)."""
        from utils.graph_io import write_graph
        from utils.network import LayeredNetwork

        network = LayeredNetwork.from_state_dict(
            state, str(self.path / CHECKPOINT_FILE), activation=activation
        )
        if all(norm is None for norm in network.norms):
            write_graph(network, self.path / NETWORK_FILE, "npz")
        else:
            self.remove(NETWORK_FILE)


def load_checkpoint(path: str | Path) -> dict:
    """Load a torch checkpoint (state_dict) on CPU; InputError when missing or corrupt."""
    import torch

    file = Path(path)
    if not file.is_file():
        raise InputError(
            f"checkpoint {file} does not exist; check the path or run the experiment that makes it"
        )
    try:
        return torch.load(file, map_location="cpu", weights_only=True)
    except Exception as error:  # torch raises many kinds for a damaged file
        raise InputError(
            f"checkpoint {file} is corrupt or not a torch file ({type(error).__name__}); "
            "delete it and re-run with --force"
        ) from None


def config_dict(config) -> dict:
    """The config as a JSON-able dict (for config.json)."""
    return {k: v for k, v in sorted(vars(config).items()) if not k.startswith("_")}
