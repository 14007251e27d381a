"""sculpt from Python (notebooks): every method on your own torch module, typed results.

    from run.api import network_of, find_modules, lesion_test, clusterability, association_matrices

Each function takes a model: a `torch.nn.Module` (give `example`, one input batch, batch first), a path
(.pt2 written by torch.export.save, our model.pt or an nn.Sequential state_dict, a published .npz, a graph
file) or a `LayeredNetwork` from `network_of`. Data are tensors or arrays: `inputs` (n, features) or
(n, C, H, W); `targets` class indices (n,) or 0/1 per output (n, outputs). Modules are found on the traced
unit graph; lesions and association matrices run the module's own forward. Results: `Partition`
(detection_pipeline/partition.py), `LesionResult`, `ClusterabilityResult` (dataclasses below), and
association matrices as {name: [(width, width) per hidden layer]}. Units are numbered layer by layer as in
every output file; `unit_names(network)` gives their "<module>:<index>" names.

Errors are `utils.errors.InputError` (a ValueError) with one line naming the problem.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from detection_pipeline.partition import Partition
from utils.errors import InputError
from utils.network import LayeredNetwork
from utils.unit_names import unit_names

__all__ = [
    "ClusterabilityResult",
    "LesionResult",
    "Partition",
    "association_matrices",
    "clusterability",
    "find_modules",
    "lesion_test",
    "network_of",
    "unit_names",
]


def network_of(model, example=None) -> LayeredNetwork:
    """The unit graph of `model` (see the module docstring); a module is traced on `example`."""
    if isinstance(model, LayeredNetwork):
        return model
    if isinstance(model, (str, Path)):
        path = Path(model)
        if path.suffix.lower() == ".pt2":
            from models.trace import load_exported, trace_program

            return trace_program(load_exported(path), str(path)).network
        from utils.network_files import load_network_file

        return load_network_file(path)
    import torch

    if isinstance(model, torch.nn.Module):
        if example is None:
            raise InputError("a torch module is traced on an example input: pass example=a batch of inputs")
        from models.trace import trace_module

        return trace_module(
            model, torch.as_tensor(example, dtype=torch.float32), type(model).__name__
        ).network
    raise InputError(f"expected a torch module, a path or a LayeredNetwork, got {type(model).__name__}")


def _batch(network: LayeredNetwork, inputs, targets):
    from utils.eval_batch import eval_batch, input_size

    if targets is None:
        targets = np.zeros(len(inputs), dtype=np.int64)  # unused by the method that asked
    return eval_batch(_numpy(inputs), _numpy(targets), input_size(network), network.arch[-1], "inputs")


def _numpy(values) -> np.ndarray:
    if hasattr(values, "detach"):
        return values.detach().cpu().numpy()
    return np.asarray(values)


def find_modules(model, method: str = "spectral", example=None, inputs=None, targets=None, options=None):
    """A `Partition` of the model's units by `method` ("sculpt", "spectral", "newman"); options: the
    method's options dataclass (DetectionOptions, SpectralOptions, NewmanOptions) or None for defaults.
    newman needs `inputs` (and `targets` for backward_hess)."""
    from detection_pipeline.methods import find_modules as registry_find

    network = network_of(model, example)
    data = None
    if method == "newman":
        from detection_pipeline.associations.method import NewmanOptions

        if inputs is None:
            raise InputError("the newman method needs inputs (a batch the associations are measured on)")
        options = options or NewmanOptions()
        data = _Data(_batch(network, inputs, targets))
    return registry_find(method, network, data, options)


@dataclass
class _Data:
    """The task view the association methods read, built from an EvalBatch."""

    batch: object

    @property
    def x_test(self):
        return self.batch.x_test

    @property
    def y_test(self):
        return self.batch.y_test

    @property
    def output_groups(self):
        return self.batch.output_groups or [list(range(self.batch.y_test.shape[1]))]

    @property
    def n_outputs(self) -> int:
        return int(self.batch.y_test.shape[1])


@dataclass
class LesionResult:
    """intact_accuracy (%), per-output intact accuracy, one dict per sub-module (layer, module, units,
    unit_names, output_drop (pp per output), mean_drop, p_mean, p_spread, p_range, ...), Fisher-combined
    p-values, and `raw` (what lesion.json holds)."""

    intact_accuracy: float
    base_accuracy: list
    submodules: list[dict]
    combined_p: dict
    raw: dict = field(repr=False, default_factory=dict)


def lesion_test(
    model,
    partition: Partition,
    inputs,
    targets,
    example=None,
    num_shuffles: int = 100,
    double: bool = False,
    seed: int = 0,
) -> LesionResult:
    """Lesion every sub-module (module ∩ hidden layer) of `partition` in the real module, against
    `num_shuffles` random same-size sets of the same layer (see detection_pipeline/lesion)."""
    from detection_pipeline.lesion import LesionOptions, lesion_tests

    network = network_of(model, example)
    batch = _batch(network, inputs, targets)
    options = LesionOptions(num_shuffles=num_shuffles, double=double, seed=seed)
    raw = lesion_tests(network, partition, batch, options)
    return LesionResult(
        raw["intact_accuracy"], raw["base_accuracy"], raw["submodules"], raw["combined_p"], raw
    )


@dataclass
class ClusterabilityResult:
    """The spectral clustering of the weight graph (partition, n-cut) against `num_shuffles` shuffled
    networks (shuffled_ncuts); z = (ncut - mean) / (std + 1e-9), p = (#{shuffled <= ncut} + 1) / (n + 1)."""

    partition: Partition
    ncut: float
    shuffled_ncuts: list[float]
    mean: float
    std: float
    z: float
    p: float


def clusterability(
    model,
    example=None,
    n_clusters: int = 4,
    num_shuffles: int = 20,
    shuffle_method: str = "layer",
    seed: int = 0,
    normalize_weights: bool = True,
    graph_prune: str = "components",
    workers: int = 1,
) -> ClusterabilityResult:
    """Spectral clusterability of the model's weight graph with a shuffle test (the same seeded shuffles
    as --experiment clusterability)."""
    from detection_pipeline.spectral.cluster import check_clusters, ncut, spectral_labels
    from detection_pipeline.spectral.graph import folded_blocks, graph_from_blocks
    from detection_pipeline.spectral.shuffles import check_method
    from detection_pipeline.spectral.significance import ShuffleJob, run_shuffles, smaller_job, statistics

    check_method(shuffle_method)
    if num_shuffles < 1:
        raise InputError("num_shuffles must be ≥ 1")
    network = network_of(model, example)
    blocks = folded_blocks(network)
    graph = graph_from_blocks(blocks, network.arch, normalize_weights, graph_prune)
    check_clusters(n_clusters, graph.n_nodes)
    labels = spectral_labels(graph.adjacency, n_clusters, seed)
    true = ncut(graph.adjacency, labels)
    job = smaller_job(ShuffleJob(blocks, network.arch, n_clusters, seed, normalize_weights, graph_prune))
    done = {
        i: v
        for _, i, v, _, _ in run_shuffles(job, [(shuffle_method, i) for i in range(num_shuffles)], workers)
    }
    stats = statistics(true, [done[i] for i in range(num_shuffles)])
    partition = Partition(graph.expand(labels), network.arch, "spectral", {"ncut": true})
    return ClusterabilityResult(
        partition, true, stats["ncuts"], stats["mean"], stats["std"], stats["z"], stats["p"]
    )


def association_matrices(
    model, inputs, targets=None, example=None, names=("forward_cov",), loss: str = "CE"
) -> dict[str, list[np.ndarray]]:
    """{name: [(arch[l], arch[l]) float64 per hidden layer l]} measured through the model's own forward
    (names from detection_pipeline/associations/matrices.py ASSOCIATIONS)."""
    from detection_pipeline.associations.matrices import association_matrices as measure

    network = network_of(model, example)
    batch = _batch(network, inputs, targets)
    y = batch.y_test if targets is not None else None
    return measure(network, batch.x_test, y, list(names), loss, batch.output_groups or None)
