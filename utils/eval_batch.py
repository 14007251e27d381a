"""The user's own data for functional analyses (lesion, associations, accuracy): `--input_batch FILE.npz`
with arrays `inputs` (n, features) or (n, C, H, W), and `targets`: class indices (n,) or 0/1 per output
(n, outputs) (`labels` (n,) is read as class indices too).

An `EvalBatch` has what a task's test split offers the lesion tests: x_test (n, prod(input shape)) float32,
y_test (n, outputs) 0/1, accuracy_kind ("argmax" for class indices, "bits" for 0/1 per output) and
output_groups.
"""

from __future__ import annotations

import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from utils.errors import InputError


@dataclass
class EvalBatch:
    x_test: np.ndarray
    y_test: np.ndarray
    accuracy_kind: str
    output_groups: list[list[int]]
    source: str = "input batch"


def input_size(network) -> int:
    """Values per input sample: prod(input_shape) for a network that records one, else arch[0]."""
    shape = network.layout.get("input_shape")
    return int(np.prod(shape)) if shape else int(network.arch[0])


def eval_batch(inputs, targets, n_inputs: int, n_outputs: int, source: str = "input batch") -> EvalBatch:
    """Check and convert inputs / targets (see the module docstring). Raises InputError naming the fix."""
    x = np.asarray(inputs, dtype=np.float32)
    if x.ndim < 2 or x.shape[0] < 1 or int(np.prod(x.shape[1:])) != n_inputs:
        raise InputError(
            f"{source}: inputs of shape {x.shape} do not fit a network of {n_inputs} input values per sample"
        )
    if not np.isfinite(x).all():
        raise InputError(f"{source}: inputs hold NaN or inf")
    x = x.reshape(len(x), -1)
    t = np.asarray(targets)
    if t.ndim == 1:
        if not np.issubdtype(t.dtype, np.integer) or t.shape[0] != len(x):
            raise InputError(
                f"{source}: targets must be {len(x)} integer class indices or (n, {n_outputs}) 0/1"
            )
        if t.min() < 0 or t.max() >= n_outputs:
            raise InputError(f"{source}: class indices must lie in 0..{n_outputs - 1}")
        y = np.eye(n_outputs, dtype=np.float32)[t]
        return EvalBatch(x, y, "argmax", [list(range(n_outputs))], source)
    if t.shape != (len(x), n_outputs) or not np.isin(t, (0, 1)).all():
        raise InputError(
            f"{source}: targets of shape {t.shape} must be class indices (n,) or 0/1 of shape "
            f"({len(x)}, {n_outputs})"
        )
    return EvalBatch(x, t.astype(np.float32), "bits", [], source)


def input_batch_arrays(path) -> dict[str, np.ndarray]:
    """The arrays of an input batch FILE.npz (it must hold finite numeric `inputs`); InputError naming the
    problem (a folder, special or oversized file, a damaged archive, NaN with its row and column)."""
    from utils.files import check_npz

    path = check_npz(Path(path), "input batch")
    try:
        with np.load(path, allow_pickle=False) as data:
            arrays = {key: data[key] for key in data.files}
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as error:
        raise InputError(f"input batch {path} is unreadable ({type(error).__name__}); re-write it") from None
    if "inputs" not in arrays:
        raise InputError(f"input batch {path} has no 'inputs' array")
    if arrays["inputs"].dtype.kind not in "fiub":
        raise InputError(f"input batch {path}: 'inputs' must be numbers, got {arrays['inputs'].dtype}")
    inputs = np.asarray(arrays["inputs"], dtype=np.float32)
    if not np.isfinite(inputs).all():
        first = [int(v) for v in np.argwhere(~np.isfinite(inputs))[0]]
        where = f"row {first[0]}" + (f", column {', '.join(map(str, first[1:]))}" if len(first) > 1 else "")
        raise InputError(
            f"input batch {path}: 'inputs' holds NaN or infinite values (first at {where}); "
            "give finite inputs"
        )
    return arrays


def read_eval_batch(path, n_inputs: int, n_outputs: int) -> EvalBatch:
    """An EvalBatch from FILE.npz (arrays `inputs` and `targets` or `labels`)."""
    arrays = input_batch_arrays(path)
    targets = arrays.get("targets", arrays.get("labels"))
    if targets is None:
        raise InputError(f"input batch {path} has no 'targets' (class indices or 0/1 per output)")
    return eval_batch(arrays["inputs"], targets, n_inputs, n_outputs, str(path))
