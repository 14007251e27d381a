"""`--method newman`: each hidden layer clustered by Newman's Q on one association matrix
(docs/associations.md).

The partition labels hidden units only (inputs and outputs -1); module ids are unique across layers.
diagnostics["layers"][l-1] for hidden layer l: Q, effective cluster count, the layer's labels and the
association matrix (with its diagonal) that later comparisons use.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from detection_pipeline.partition import Partition
from utils.errors import InputError


@dataclass
class NewmanOptions:
    association: str = "forward_cov"
    bisection: str = "newman"  # or "svd", the anchor's variant
    mc_steps: int = 5000
    mc_restarts: int = 1
    target_entropy: float = 0.15
    seed: int = 0
    loss: str = "BCE"  # the parser's --loss default; CE for one-hot (multiclass) tasks
    input_batch: str | None = None  # .npz with inputs (n, d) and labels (n,) or targets (n, m)

    @property
    def needs_data(self) -> bool:
        """The task's test inputs are needed unless an input batch replaces them."""
        return self.input_batch is None


@dataclass
class InputBatch:
    inputs: np.ndarray  # float32 (n, arch[0])
    targets: np.ndarray | None  # float32 (n, arch[-1]) or None
    output_groups: list[list[int]]
    source: str


def load_input_batch(path, arch: list[int]) -> InputBatch:
    """Read FILE.npz: `inputs` (n, arch[0]), optionally `labels` (n,) class ids or `targets` (n, arch[-1])."""
    from utils.eval_batch import input_batch_arrays

    path = Path(path)
    arrays = input_batch_arrays(path)
    inputs = np.asarray(arrays["inputs"], dtype=np.float32)
    if inputs.ndim > 2:  # images (n, C, H, W) as flat rows
        inputs = inputs.reshape(len(inputs), -1)
    if "targets" in arrays and np.asarray(arrays["targets"]).ndim == 1:  # class indices
        arrays["labels"] = arrays.pop("targets")
    if inputs.ndim != 2 or inputs.shape[1] != arch[0]:
        raise InputError(
            f"input batch {path} has inputs of shape {inputs.shape}, but the network takes {arch[0]} inputs"
        )
    targets = None
    n_out = arch[-1]
    if "targets" in arrays:
        targets = np.asarray(arrays["targets"], dtype=np.float32)
        if not np.isfinite(targets).all():
            raise InputError(f"input batch {path}: 'targets' holds NaN or infinite values")
        if targets.shape != (len(inputs), n_out):
            raise InputError(
                f"input batch {path}: targets {targets.shape}, expected ({len(inputs)}, {n_out})"
            )
    elif "labels" in arrays:
        labels = np.asarray(arrays["labels"]).reshape(-1)
        if labels.shape[0] != len(inputs) or not np.issubdtype(labels.dtype, np.integer):
            raise InputError(f"input batch {path}: labels must be {len(inputs)} integer class ids")
        if labels.min() < 0 or labels.max() >= n_out:
            raise InputError(f"input batch {path}: labels must lie in 0..{n_out - 1}")
        targets = np.eye(n_out, dtype=np.float32)[labels]
    return InputBatch(inputs, targets, [list(range(n_out))], str(path))


def batch_from(network, data, options) -> InputBatch:
    """The input batch the options name, or the task's test split."""
    if options.input_batch is not None:
        from utils.eval_batch import input_size

        return load_input_batch(options.input_batch, [input_size(network), network.arch[-1]])
    if data is None:
        raise InputError("the newman method needs inputs: a task or --input_batch FILE.npz")
    groups = data.output_groups or [list(range(data.n_outputs))]
    return InputBatch(data.x_test, data.y_test, groups, "task test split")


def layer_matrices(network, batch: InputBatch, names, loss: str) -> dict[str, list[np.ndarray]]:
    """Association matrices per name per hidden layer, units dead in the network zeroed; checks every
    layer keeps at least 2 alive units."""
    from detection_pipeline.associations.matrices import association_matrices, check_association

    for name in names:
        check_association(name)
    if "backward_hess" in {n.removesuffix("_norm") for n in names} and batch.targets is None:
        raise InputError(
            f"backward_hess needs targets; {batch.source} has none (give 'labels' or 'targets' in the batch)"
        )
    alive = network.alive_hidden()[1:-1]
    matrices = association_matrices(network, batch.inputs, batch.targets, names, loss, batch.output_groups)
    for name in names:
        for layer, (matrix, structural) in enumerate(zip(matrices[name], alive), start=1):
            matrix[~structural, :] = 0.0
            matrix[:, ~structural] = 0.0
            off = matrix - np.diag(np.diag(matrix))
            if np.count_nonzero(off.sum(1) > 1e-15 * max(off.sum(), 1e-300)) < 2:
                raise InputError(
                    f"hidden layer {layer} has fewer than 2 alive units under {name} on these inputs; "
                    "Newman's Q needs at least 2"
                )
    return matrices


def cluster_layers(matrices: list[np.ndarray], options) -> list:
    """NewmanResult per hidden layer (diagonal removed; all chains run together)."""
    from detection_pipeline.associations.newman import maximise_q_batch

    adjacencies = [m - np.diag(np.diag(m)) for m in matrices]
    return maximise_q_batch(
        adjacencies,
        options.mc_steps,
        options.target_entropy,
        [options.seed] * len(matrices),
        options.bisection,
        options.mc_restarts,
    )


def partition_from(network, name: str, matrices: list[np.ndarray], results: list, options) -> Partition:
    """A Partition of the whole network from per-hidden-layer results (ids offset layer by layer)."""
    per_layer = [np.full(width, -1, dtype=np.int64) for width in network.arch]
    layers = []
    offset = 0
    for layer, (matrix, result) in enumerate(zip(matrices, results), start=1):
        labels = result.labels
        per_layer[layer] = np.where(labels >= 0, labels + offset, -1)
        n_clusters = int(labels.max()) + 1 if (labels >= 0).any() else 0
        offset += n_clusters
        layers.append(
            {
                "layer": layer,
                "Q": result.q,
                "effective_clusters": result.effective_clusters,
                "n_clusters": n_clusters,
                "initial_Q": result.initial_q,
                "labels": labels.tolist(),
                "association_matrix": np.round(matrix.astype(np.float32), 8).tolist(),
            }
        )
    diagnostics = {
        "association": name,
        "bisection": options.bisection,
        "mc_steps": options.mc_steps,
        "mc_restarts": options.mc_restarts,
        "target_entropy": options.target_entropy,
        "seed": options.seed,
        "loss": options.loss,
        "layers": layers,
    }
    return Partition(np.concatenate(per_layer), network.arch, "newman", diagnostics)


def newman_method(network, data, options: NewmanOptions) -> Partition:
    """Registry entry: Newman-Q modules of every hidden layer under `options.association`."""
    if network.depth < 2:
        raise InputError("the network has no hidden layer to cluster")
    batch = batch_from(network, data, options)
    matrices = layer_matrices(network, batch, [options.association], options.loss)[options.association]
    results = cluster_layers(matrices, options)
    partition = partition_from(network, options.association, matrices, results, options)
    partition.diagnostics["inputs"] = {"source": batch.source, "n": int(len(batch.inputs))}
    return partition
