"""Lesion tests of modules (docs/lesion.md, after Filan et al., "Clusterability in Neural Networks").

Do the modules of a partition matter to what the network computes, more than random groups of units of
the same size? For every sub-module (one module ∩ one hidden layer) the true lesion (its units' incoming
weights and bias zeroed) is compared with `num_shuffles` random same-size sets of alive units of the same
layer, on the task's test set, per output (bits: per output bit; classes: per class):
- mean drop: the mean over outputs of the accuracy drop (percentage points); p_mean small = the true lesion
  hurts more than random ones;
- spread: range / mean of the per-output drops; p_spread small = it hits some outputs far more than others;
- range: max − min of the per-output drops (pp), p_range: the same question without dividing by the mean
  (range / mean is capped near 2 for a module that knocks out half the outputs evenly, while partial random
  lesions hit outputs unevenly and score higher; see the issue note for the power of each);
- p = (#{random ≥ true} + 1) / (N + 1); Fisher's method over the testable sub-modules; effect = mean random
  damage / true damage.
Double lesions (options.double) test pairs of sub-modules: `joint` (both at once against two random sets of
the same sizes) and `conditional` (one lesioned, the other's true set against random ones: b_given_a,
a_given_b). A conditional test also gives p_below (the extra damage is smaller than random: already done by
the first lesion) and dependence = 1 − extra damage / damage of the second sub-module alone.

`lesion_tests(network, partition, task, options)` returns a JSON-able dict (what lesion.json holds).
Random sets are seeded per test from (options.seed, test key), draw i being the same whatever the number of
draws, batching or workers; evaluation is batched (see forward.py) and chunks are fixed by sizes alone.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from detection_pipeline.lesion.stats import (
    conditional_summary,
    drops_from_counts,
    finite_or_none,
    fisher,
    mean_drop,
    summary,
)
from detection_pipeline.lesion.submodules import SubModule, draw_sets, find_submodules
from utils.errors import InputError
from utils.eval_batch import input_size
from utils.unit_names import unit_names

PAIR_SCOPES = ("adjacent", "all")

_STAT_KEYS = (
    "mean_drop",
    "spread",
    "range",
    "random_mean",
    "random_std",
    "p_mean",
    "p_spread",
    "p_range",
    "effect",
)
# Stream tags of the random sets: one independent stream per kind of test.
_SINGLE, _JOINT_A, _JOINT_B, _B_GIVEN_A, _A_GIVEN_B = range(5)


@dataclass
class LesionOptions:
    num_shuffles: int = 100
    double: bool = False
    num_shuffles_double: int = 50
    double_pairs: str = "adjacent"
    seed: int = 0
    workers: int = 1

    def __post_init__(self):
        if self.num_shuffles < 1 or self.num_shuffles_double < 1:
            raise InputError("the numbers of random sets (num_shuffles, num_shuffles_double) must be ≥ 1")
        if self.double_pairs not in PAIR_SCOPES:
            raise InputError(f"double_pairs must be one of {', '.join(PAIR_SCOPES)}, got {self.double_pairs}")
        if self.workers < 1:
            raise InputError(f"workers must be ≥ 1, got {self.workers}")


def lesion_forward(network, x: np.ndarray):
    """The batched lesioned forward that fits `network`: a cell graph gates cells of its real module; a
    traced module (or one of our skip networks, traced) zeroes units in its own forward; a channel network
    runs its CNN; a dense one its weights (forward.DenseForward)."""
    if "cell_model" in network.layout:
        from detection_pipeline.lesion.cell_forward import CellForward

        return CellForward(network, x)
    if network.skips and network.layout.get("module") is None:
        from models.functional import with_module

        network = with_module(network)  # skip connections: our DAG model, traced
    if network.layout.get("module") is not None:
        from detection_pipeline.lesion.module_forward import ModuleForward

        return ModuleForward(network, x)
    if network.has_conv:
        from detection_pipeline.lesion.channel_forward import ChannelForward

        return ChannelForward(network, x)
    from detection_pipeline.lesion.forward import DenseForward

    return DenseForward(network, x)


class Evaluator:
    """Per-output correct counts of lesioned copies of one network on one test set.

    `counts(layer, idx, later)`: idx int (rows, k) units lesioned at `layer` per copy, later {m: bool (rows,
    arch[m])} -> int64 (rows, outputs). Rows are cut into chunks of a size fixed by the shapes, each chunk is
    one batched forward on one thread, `workers` threads run chunks side by side; so a row's numbers never
    depend on the number of workers.
    """

    def __init__(self, network, x: np.ndarray, y: np.ndarray, kind: str, groups, workers: int = 1):
        import torch

        from detection_pipeline.lesion.forward import make_scorer

        self.torch = torch
        self.forward = lesion_forward(network, x)
        self.net = self.forward.net
        self.scorer = make_scorer(y, kind, groups)
        self.workers = workers
        self.base = self.scorer.correct(self.forward.logits.unsqueeze(0))[0]
        self.totals = self.scorer.totals

    def chunk_rows(self, layer: int) -> int:
        return max(1, self.forward.chunk_floats // self.forward.row_floats(layer))

    def _chunk(self, layer: int, idx: np.ndarray, later: dict) -> np.ndarray:
        torch = self.torch
        logits = self.forward.lesioned(
            layer, torch.from_numpy(idx), {m: torch.from_numpy(mask) for m, mask in later.items()}
        )
        return self.scorer.correct(logits)

    def counts(self, layer: int, idx: np.ndarray, later: dict | None = None) -> np.ndarray:
        later = later or {}
        idx = np.ascontiguousarray(idx, dtype=np.int64)
        step = self.chunk_rows(layer)
        jobs = [
            (idx[s : s + step], {m: np.ascontiguousarray(v[s : s + step]) for m, v in later.items()})
            for s in range(0, len(idx), step)
        ]
        torch = self.torch
        self.forward.prepare(layer)  # once, before the threads share it
        threads = torch.get_num_threads()
        torch.set_num_threads(1)  # one thread per chunk: the same arithmetic whatever `workers`
        try:
            if self.workers == 1 or len(jobs) == 1:
                parts = [self._chunk(layer, i, lt) for i, lt in jobs]
            else:
                from concurrent.futures import ThreadPoolExecutor

                with ThreadPoolExecutor(min(self.workers, len(jobs))) as pool:
                    parts = list(pool.map(lambda job: self._chunk(layer, *job), jobs))
        finally:
            torch.set_num_threads(threads)
        return np.concatenate(parts, axis=0)

    def drops(self, layer: int, idx: np.ndarray, later: dict | None = None, base=None) -> np.ndarray:
        """Accuracy drops (rows, outputs) in pp against `base` counts (default: the intact network)."""
        base = self.base if base is None else base
        return drops_from_counts(base, self.counts(layer, idx, later), self.totals)


def control_sets(sub: SubModule, options: LesionOptions) -> np.ndarray:
    """The random same-size sets of a testable sub-module's single-lesion test: int64 (num_shuffles, size)."""
    return draw_sets(options.seed, (_SINGLE, sub.index), sub.alive, sub.size, options.num_shuffles)


def _with_true(true_units: np.ndarray, random_sets: np.ndarray) -> np.ndarray:
    return np.vstack([np.asarray(true_units, dtype=np.int64)[None, :], random_sets])


def _masks(sets: np.ndarray, width: int) -> np.ndarray:
    """bool (rows, width) with True at each row's units."""
    mask = np.zeros((len(sets), width), dtype=bool)
    np.put_along_axis(mask, sets, True, axis=1)
    return mask


def _jsonable(values) -> list:
    return [finite_or_none(v) for v in np.asarray(values, dtype=np.float64)]


def single_entry(sub: SubModule, drops: np.ndarray | None, output_labels: np.ndarray, n_out: int) -> dict:
    """The lesion.json entry of one sub-module; drops (1 + N, outputs) or (1, outputs) when untestable."""
    own = np.flatnonzero(output_labels == sub.module)
    true = np.zeros(n_out) if drops is None else drops[0]
    others = np.setdiff1d(np.arange(n_out), own)
    outside = np.abs(true[others]) if len(others) else np.array([])
    outside = outside[np.isfinite(outside)]
    entry = {
        "layer": sub.layer,
        "module": sub.module,
        "units": [int(u) for u in sub.units],
        "dead_units": sub.dead,
        "alive_in_layer": int(len(sub.alive)),
        "output_drop": _jsonable(true),
        "own_outputs": [int(o) for o in own],
        "outside_drop": float(outside.max()) if len(outside) else None,
        "testable": sub.testable,
    }
    stats = dict.fromkeys(
        ("mean_drop", "spread", "random_mean", "random_std", "p_mean", "p_spread", "effect")
    )
    if drops is not None:
        from detection_pipeline.lesion.stats import drop_range, spread

        stats["mean_drop"] = finite_or_none(mean_drop(drops[:1])[0])
        stats["spread"] = finite_or_none(spread(drops[:1])[0])
        stats["range"] = finite_or_none(drop_range(drops[:1])[0])
        if sub.testable:
            stats = summary(drops)
    entry.update(stats)
    if not sub.testable:
        entry["reason"] = sub.reason
    return entry


def lesion_tests(network, partition, task, options: LesionOptions, progress: Callable | None = None) -> dict:
    """Single (and, with options.double, double) lesion tests of every sub-module; a JSON-able dict.

    task: anything with x_test (n, inputs), y_test (n, outputs), accuracy_kind and output_groups.
    progress(n): called after each test with the number of tests done in it (for a progress bar).
    Raises InputError when the partition does not fit, the task does not fit, or nothing is testable.
    """
    partition.check_fits(network)
    x, y = np.asarray(task.x_test), np.asarray(task.y_test)
    cells = "cell_model" in network.layout  # a cell graph: units are cells of the real module
    traced = network.layout.get("module") is not None
    flat = network.has_conv or traced or cells
    x = x.reshape(len(x), -1) if flat else x  # images as flat rows; the model checks their size
    if cells:
        inputs = int(np.prod(network.layout["cell_model"].input_shape))
    else:
        inputs = input_size(network) if network.has_conv or traced else network.arch[0]
    if x.ndim != 2 or x.shape[1] != inputs or y.shape != (x.shape[0], network.arch[-1]):
        raise InputError(
            f"the test set ({x.shape[1] if x.ndim == 2 else '?'} inputs, {y.shape[-1]} outputs) does not fit "
            f"the network (arch {' '.join(map(str, network.arch))})"
        )
    if len(network.arch) < 3:
        raise InputError("the network has no hidden layer, so there is nothing to lesion")
    subs = find_submodules(network, partition)
    # A cell graph has few cells per layer, so random controls are rare; its true drops still count.
    if not any(s.testable for s in subs) and not cells:
        raise InputError(
            f"no sub-module of the partition can be tested against random sets ({len(subs)} sub-modules: "
            "each covers its whole layer, has no alive unit or too few alternatives); give a partition with "
            "several modules per hidden layer"
        )
    evaluator = Evaluator(network, x, y, task.accuracy_kind, task.output_groups, options.workers)
    done = progress or (lambda n: None)
    output_labels = partition.by_layer()[-1]
    n_out = network.arch[-1]
    entries, true_counts = [], {}
    names = unit_names(network)
    for sub in subs:
        drops = None
        if sub.size:
            sets = sub.units[None, :]
            if sub.testable:
                draws = draw_sets(
                    options.seed, (_SINGLE, sub.index), sub.alive, sub.size, options.num_shuffles
                )
                sets = _with_true(sub.units, draws)
            counts = evaluator.counts(sub.layer, sets)
            true_counts[sub.index] = counts[0]
            drops = drops_from_counts(evaluator.base, counts, evaluator.totals)
        entries.append(single_entry(sub, drops, output_labels, n_out))
        entries[-1]["unit_names"] = [names[sub.layer][u] for u in sub.units]
        done(1)
    tested = [e for e in entries if e["testable"]]
    result = {
        "arch": list(network.arch),
        "source": network.source,
        "partition_method": partition.method,
        "accuracy_kind": task.accuracy_kind,
        "test_samples": int(x.shape[0]),
        "output_samples": [int(t) for t in evaluator.totals],
        "output_modules": [int(v) for v in output_labels],
        "base_accuracy": _jsonable(100.0 * evaluator.base / np.maximum(evaluator.totals, 1)),
        "intact_accuracy": float(100.0 * evaluator.base.sum() / max(int(evaluator.totals.sum()), 1)),
        "lesion_value": evaluator.net.lesion_value,
        "num_shuffles": options.num_shuffles,
        "seed": options.seed,
        "submodules": entries,
        "combined_p": {
            "mean": fisher([e["p_mean"] for e in tested]),
            "spread": fisher([e["p_spread"] for e in tested]),
            "range": fisher([e["p_range"] for e in tested]),
            "testable": len(tested),
        },
        "double": None,
    }
    if options.double:
        result["double"] = {
            "num_shuffles": options.num_shuffles_double,
            "pairs": options.double_pairs,
            "table": double_tests(evaluator, subs, true_counts, options, done),
        }
    return result


def lesion_pairs(subs: list[SubModule], scope: str) -> list[tuple[SubModule, SubModule]]:
    """Pairs (a, b) of testable sub-modules with a below b: adjacent layers, or any two layers ("all")."""
    ok = [s for s in subs if s.testable]
    return [
        (a, b)
        for a in ok
        for b in ok
        if (b.layer == a.layer + 1 if scope == "adjacent" else b.layer > a.layer)
    ]


def double_tests(evaluator: Evaluator, subs, true_counts: dict, options: LesionOptions, done) -> list[dict]:
    """joint, b_given_a and a_given_b tests of every pair (see lesion_tests); one dict per pair."""
    n = options.num_shuffles_double
    arch = evaluator.net.arch
    table = []
    alone = {
        index: float(mean_drop(drops_from_counts(evaluator.base, counts[None, :], evaluator.totals))[0])
        for index, counts in true_counts.items()
    }
    for a, b in lesion_pairs(subs, options.double_pairs):
        key = (a.index, b.index)
        rows = n + 1
        a_true = np.repeat(a.units[None, :], rows, axis=0)
        b_true = _masks(np.repeat(b.units[None, :], rows, axis=0), arch[b.layer])
        a_sets = {
            tag: _with_true(a.units, draw_sets(options.seed, (tag, *key), a.alive, a.size, n))
            for tag in (_JOINT_A, _A_GIVEN_B)
        }
        b_sets = {
            tag: _masks(
                _with_true(b.units, draw_sets(options.seed, (tag, *key), b.alive, b.size, n)), arch[b.layer]
            )
            for tag in (_JOINT_B, _B_GIVEN_A)
        }
        joint = evaluator.drops(a.layer, a_sets[_JOINT_A], {b.layer: b_sets[_JOINT_B]})
        b_given_a = evaluator.drops(a.layer, a_true, {b.layer: b_sets[_B_GIVEN_A]}, base=true_counts[a.index])
        a_given_b = evaluator.drops(a.layer, a_sets[_A_GIVEN_B], {b.layer: b_true}, base=true_counts[b.index])
        table.append(
            {
                "a": {"layer": a.layer, "module": a.module, "size": a.size},
                "b": {"layer": b.layer, "module": b.module, "size": b.size},
                "joint": {**summary(joint), "output_drop": _jsonable(joint[0])},
                "b_given_a": conditional_summary(b_given_a, alone[b.index]),
                "a_given_b": conditional_summary(a_given_b, alone[a.index]),
            }
        )
        done(1)
    return table
