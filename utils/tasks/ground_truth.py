"""Every kind of ground truth the scorer uses, in one place.

Boolean tasks take theirs from the function graph (`FunctionGraph.ground_truth()` -> GroundTruth); the
two-digit tasks have a fixed structure (`digit_truth`). `ground_truth_for(source)` accepts a config, a
Task, a graph or a ground truth and returns the one that applies (None when the task has no structure).
"""

from __future__ import annotations

from dataclasses import dataclass

from utils.errors import InputError
from utils.tasks.function_graph import GroundTruth, SubFunction  # noqa: F401  (re-exported)

# ------------------------------------------------------------------------------------------ truth objects


@dataclass(frozen=True)
class SubFunctionTruth:
    """A sub-function for scoring: its level (1 = first), the input groups it is built on (indices into
    the truth's input_groups) and the outputs that depend on it. Same fields as function_graph.SubFunction
    uses for scoring."""

    name: str
    depth: int
    input_groups: tuple[int, ...]
    outputs: tuple[int, ...]


@dataclass(frozen=True)
class TaskTruth:
    """Ground truth of a task without a function graph (the two-digit tasks).

    input_groups: input indices per first-level sub-function (left image, right image);
    output_groups: outputs computing the same sub-function;
    levels: sub-functions per level (levels[0] = first level), or None when unknown;
    inputs_required: whether every grouped input must survive pruning (False for pixels: blank border
    pixels carry nothing and are rightly dropped).
    """

    name: str
    n_inputs: int
    n_outputs: int
    input_groups: tuple[tuple[int, ...], ...]
    output_groups: tuple[tuple[int, ...], ...]
    levels: tuple[tuple[SubFunctionTruth, ...], ...] | None = None
    inputs_required: bool = False

    @property
    def modules_per_level(self) -> tuple[int, ...] | None:
        return None if self.levels is None else tuple(len(level) for level in self.levels)


def digit_truth(task: str, modularity) -> TaskTruth:
    """Ground truth of the two-digit tasks, from the task name and modularity alone (no images loaded).

    `W 2 20` (one-hot left digit, one-hot right digit): level 1 = the two digit recognisers, outputs
    [[0..9], [10..19]], modules_per_level (2,). `W 2 3 3` (bits of left XOR right): level 1 = the two digit
    recognisers, level 2 = one XOR per bit (bit i reads bit i of each digit), so every output is its own
    sub-function, output groups [[0], [1], [2]], modules_per_level (2, 3) — the published modularity names.
    """
    from utils.tasks.digits import IMAGE_SIDE, TWO_DIGIT_OUTPUTS, half_indices

    if task not in IMAGE_SIDE:
        raise InputError(f"--task {task} has no known two-digit structure to score against")
    side = IMAGE_SIDE[task]
    modularity = tuple(int(m) for m in modularity)
    n_inputs = side * 2 * side
    kind = TWO_DIGIT_OUTPUTS.get(modularity[1:]) if modularity[:1] == (n_inputs,) else None
    if kind is None:
        valid = " or ".join(f"'{n_inputs} {' '.join(map(str, tail))}'" for tail in TWO_DIGIT_OUTPUTS)
        raise InputError(f"--task {task} has no ground truth for --modularity {modularity}; use {valid}")
    groups = tuple(tuple(g) for g in half_indices(side, side))
    n_out = modularity[-1]
    everything = tuple(range(n_out))
    if kind == "onehot":
        halves = (tuple(range(10)), tuple(range(10, 20)))
        levels = (
            (SubFunctionTruth("left", 1, (0,), halves[0]), SubFunctionTruth("right", 1, (1,), halves[1])),
        )
        output_groups = halves
    else:
        first = (
            SubFunctionTruth("left", 1, (0,), everything),
            SubFunctionTruth("right", 1, (1,), everything),
        )
        second = tuple(SubFunctionTruth(f"xor_bit{j}", 2, (0, 1), (j,)) for j in everything)
        levels = (first, second)
        output_groups = tuple((j,) for j in everything)
    return TaskTruth(
        name=f"{task} {' '.join(map(str, modularity))}",
        n_inputs=n_inputs,
        n_outputs=n_out,
        input_groups=groups,
        output_groups=output_groups,
        levels=levels,
        inputs_required=False,
    )


def ground_truth_for(source):
    """The ground-truth object for a config, Task, DigitTask, FunctionGraph or ground truth.

    - config (has `.task`): boolean -> the function graph of the task (the --graph file, else the shipped
      graph matching the table in --dataset_path, else the shipped graph for --modularity) -> GroundTruth;
      digits / mnist -> `digit_truth(task, modularity)` (no images loaded); mnist_10way -> None.
    - utils.tasks.Task: its graph's ground truth; a digit task's from its family and modularity.
    - FunctionGraph -> .ground_truth(); GroundTruth / TaskTruth -> returned as is; None -> None.
    Returns None when the task has no known structure (a table with no matching graph, mnist_10way).
    Raises InputError for files that are missing or broken (same messages as training).
    """
    if source is None:
        return None
    if hasattr(source, "input_groups") and hasattr(source, "output_groups") and hasattr(source, "levels"):
        return source  # GroundTruth, TaskTruth or a look-alike
    if callable(getattr(source, "ground_truth", None)):
        return source.ground_truth()
    task = getattr(source, "task", None)
    if isinstance(task, str):  # a config namespace
        if task == "boolean":
            from utils.tasks.function_graph import load_truth_table

            table = load_truth_table(source.dataset_path, source.modularity, getattr(source, "graph", None))
            return table.graph.ground_truth() if table.graph is not None else None
        if task in ("mnist_10way", "digits_10way"):
            return None
        return digit_truth(task, source.modularity)
    if hasattr(source, "graph") and source.graph is not None:
        return source.graph.ground_truth()
    family = getattr(source, "family", None)
    if family in ("digits", "mnist"):
        return digit_truth(family, source.modularity)
    return None
