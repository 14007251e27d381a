"""`LayeredNetwork`: the one network type between models and analyses (DESIGN §10.1).

A layered network has `arch[l]` units in layer l (layer 0 = inputs, the last = outputs). Layer i of the
weights maps layer i to layer i+1: `weights[i]`, `masks[i]` are (arch[i+1], arch[i]) in torch Linear layout,
`biases[i]` is (arch[i+1],). Edges that skip layers (a DAG built from a graph) live in `skips`, one
`Block(source, target, weight, mask)` per pair of layers with target > source + 1. Conv layers appear as
channel graphs (kind "conv"): their weight is (out_channels, in_channels) with the entrywise L1 norm of
each kernel slice, their raw kernel kept in `kernels[i]` for a forward pass.

Units are numbered globally layer by layer (inputs first): unit u of layer l is node `offsets[l] + u`.
Everything here is numpy / scipy; torch is imported only by `from_model` callers' tensors.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from utils.errors import InputError, NetworkShapeError

if TYPE_CHECKING:
    import scipy.sparse as sp

ACTIVATIONS = ("relu", "sigmoid", "ste", "linear")


@dataclass
class Block:
    """Edges from layer `source` to layer `target` (> source): weight, mask (arch[target], arch[source])."""

    source: int
    target: int
    weight: np.ndarray
    mask: np.ndarray

    @property
    def kept(self) -> np.ndarray:
        """Effective weights (masked entries zero), float64 (arch[target], arch[source])."""
        return np.asarray(self.weight, dtype=np.float64) * (np.asarray(self.mask) != 0)


@dataclass
class LayeredNetwork:
    """A masked layered network (see the module docstring for shapes).

    norms[i]: batch norm after layer i+1's linear op (hidden layers only), a dict with gamma, beta, mean,
    var, eps arrays/floats, or None. metrics: the run's metrics.json when there is one. source: where it
    came from (a path or "model"). layout: what a forward pass of a CNN needs beyond the graph
    (utils/cnn_graph.py): "cnn" (the layer list), "input_shape" (C, H, W), "keys" (the state_dict key of
    each layer's weight), "spatial" (positions per channel at the conv -> fc boundary), "unit_alive".
    """

    arch: list[int]
    weights: list[np.ndarray]
    biases: list[np.ndarray]
    masks: list[np.ndarray]
    kinds: list[str] = field(default_factory=list)
    skips: list[Block] = field(default_factory=list)
    activation: str = "relu"
    norms: list[dict | None] = field(default_factory=list)
    kernels: list[np.ndarray | None] = field(default_factory=list)
    source: str = ""
    metrics: dict = field(default_factory=dict)
    layout: dict = field(default_factory=dict)

    def __post_init__(self):
        self.arch = [int(a) for a in self.arch]
        if len(self.arch) < 2 or any(a <= 0 for a in self.arch):
            raise NetworkShapeError(f"a network needs at least two positive layer widths, got {self.arch}")
        depth = len(self.arch) - 1
        for name in ("weights", "biases", "masks"):
            if len(getattr(self, name)) != depth:
                raise NetworkShapeError(
                    f"arch {self.arch} has {depth} weight layers but {len(getattr(self, name))} {name}"
                )
        self.weights = [np.asarray(w, dtype=np.float32) for w in self.weights]
        self.biases = [np.asarray(b, dtype=np.float32).reshape(-1) for b in self.biases]
        self.masks = [(np.asarray(m) != 0).astype(np.uint8) for m in self.masks]
        for i in range(depth):
            shape = (self.arch[i + 1], self.arch[i])
            if self.weights[i].shape != shape or self.masks[i].shape != shape:
                raise NetworkShapeError(
                    f"layer {i}: weight {self.weights[i].shape} and mask {self.masks[i].shape} must both be "
                    f"{shape} for arch {self.arch}"
                )
            if self.biases[i].shape != (shape[0],):
                raise NetworkShapeError(f"layer {i}: bias {self.biases[i].shape} must be ({shape[0]},)")
        self.kinds = list(self.kinds) or ["fc"] * depth
        self.norms = list(self.norms) or [None] * depth
        self.kernels = list(self.kernels) or [None] * depth
        if self.activation not in ACTIVATIONS:
            raise InputError(f"unknown activation {self.activation!r} (choose from {', '.join(ACTIVATIONS)})")
        for block in self.skips:
            if not 0 <= block.source < block.target - 1 < depth:
                raise NetworkShapeError(
                    f"a skip block must join layer s to a layer t > s + 1 within the network, got "
                    f"{block.source} -> {block.target}"
                )
            shape = (self.arch[block.target], self.arch[block.source])
            block.weight = np.asarray(block.weight, dtype=np.float32)
            block.mask = (np.asarray(block.mask) != 0).astype(np.uint8)
            if block.weight.shape != shape or block.mask.shape != shape:
                raise NetworkShapeError(
                    f"skip block {block.source} -> {block.target} must be {shape}, got {block.weight.shape}"
                )
        for name, arrays in (("weight", self.weights), ("bias", self.biases)):
            for i, a in enumerate(arrays):
                if not np.isfinite(a).all():
                    raise InputError(
                        f"{self.source or 'the network'}: {name} of layer {i} holds NaN or inf; "
                        "the network cannot be analysed (retrain it)"
                    )

    # -- views -------------------------------------------------------------------------------------------
    @property
    def depth(self) -> int:
        """Number of consecutive weight layers (len(arch) - 1)."""
        return len(self.arch) - 1

    @property
    def has_conv(self) -> bool:
        """Whether this is a channel network (conv layers, or a conv -> fc boundary with its raw kernel)."""
        return any(kind != "fc" for kind in self.kinds) or any(k is not None for k in self.kernels)

    @property
    def n_units(self) -> int:
        return int(sum(self.arch))

    @property
    def offsets(self) -> np.ndarray:
        """(len(arch),) index of each layer's first unit in the global numbering."""
        return np.concatenate([[0], np.cumsum(self.arch)[:-1]]).astype(np.int64)

    def layer_of_units(self) -> np.ndarray:
        """(N,) layer of every unit."""
        return np.repeat(np.arange(len(self.arch)), self.arch)

    def blocks(self) -> list[Block]:
        """Every block of edges: the consecutive layers first (layer order), then the skips."""
        own = [Block(i, i + 1, self.weights[i], self.masks[i]) for i in range(self.depth)]
        return own + list(self.skips)

    @property
    def density(self) -> float:
        """Percent of possible edges kept, over all blocks (skips included)."""
        blocks = self.blocks()
        return 100.0 * sum(float(b.mask.sum()) for b in blocks) / sum(b.mask.size for b in blocks)

    @property
    def fingerprint(self) -> str:
        """A hash of the widths, masks, kept weights, biases (and batch norms, conv kernels): equal for the
        same network read from any of its files; every result file records it (utils/fingerprint.py)."""
        from utils.fingerprint import network_fingerprint

        return network_fingerprint(self)

    def n_edges(self) -> int:
        return int(sum(int(b.mask.sum()) for b in self.blocks()))

    def adjacency(
        self, weighted: bool = True, absolute: bool = True, symmetric: bool = False
    ) -> sp.csr_matrix:
        """The whole-network (N, N) sparse matrix: entry [u, v] for the kept edge u -> v (u in a lower layer).

        weighted: the weight (|w| when absolute) instead of 1. symmetric: A + Aᵀ (undirected view).
        """
        import scipy.sparse as sp  # here: training and pruning load this module without needing scipy

        offsets = self.offsets
        rows, cols, vals = [], [], []
        for block in self.blocks():
            target, source = np.nonzero(block.mask)
            rows.append(offsets[block.source] + source)
            cols.append(offsets[block.target] + target)
            if weighted:
                w = block.weight[target, source].astype(np.float64)
                vals.append(np.abs(w) if absolute else w)
            else:
                vals.append(np.ones(len(target)))
        n = self.n_units
        matrix = sp.csr_matrix(
            (np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))), shape=(n, n)
        )
        return (matrix + matrix.T).tocsr() if symmetric else matrix

    def alive_hidden(self) -> list[np.ndarray]:
        """Per layer bool (arch[l],): a unit is alive when some kept edge enters it (inputs: always) and,
        below the outputs, some kept edge leaves it (outputs: always)."""
        into = [np.ones(a, dtype=bool) for a in self.arch]
        out = [np.ones(a, dtype=bool) for a in self.arch]
        has_in = [np.zeros(a, dtype=bool) for a in self.arch]
        has_out = [np.zeros(a, dtype=bool) for a in self.arch]
        for block in self.blocks():
            has_in[block.target] |= block.mask.any(axis=1)
            has_out[block.source] |= block.mask.any(axis=0)
        for l in range(1, len(self.arch)):
            into[l] = has_in[l]
        for l in range(len(self.arch) - 1):
            out[l] = has_out[l]
        return [into[l] & out[l] for l in range(len(self.arch))]

    def split(self, values) -> list[np.ndarray]:
        """A per-unit (N,) array split per layer: [(arch[0],), (arch[1],), ...]."""
        values = np.asarray(values)
        if values.shape[0] != self.n_units:
            raise InputError(
                f"got {values.shape[0]} values for a network of {self.n_units} units (arch {self.arch})"
            )
        return np.split(values, np.cumsum(self.arch)[:-1])

    # -- constructors ------------------------------------------------------------------------------------
    @classmethod
    def from_state_dict(cls, state, source: str = "state_dict", activation: str = "relu") -> LayeredNetwork:
        """From the state_dict of our MLP (layers.<i>.weight / weight_mask / bias / bias_mask, norms.<i>.*)
        or of our DAG network (the same, plus skips.<s>_<t>.weight / weight_mask)."""
        if not isinstance(state, dict):
            raise InputError(f"{source} is not a state_dict; pass a checkpoint written by sculpt or a .npz")
        from utils.cnn_graph import is_anchor_state, is_conv_state

        if is_conv_state(state) or ("layers.0.weight" not in state and is_anchor_state(state)):
            return cls.from_cnn(state, source=source)
        weights, masks, biases, norms = [], [], [], []
        i = 0
        while f"layers.{i}.weight" in state:
            weight = _numpy(state[f"layers.{i}.weight"])
            mask = state.get(f"layers.{i}.weight_mask")
            weights.append(weight)
            masks.append(np.ones_like(weight) if mask is None else _numpy(mask))
            bias = state.get(f"layers.{i}.bias")
            bias = np.zeros(weight.shape[0]) if bias is None else _numpy(bias)
            bias_mask = state.get(f"layers.{i}.bias_mask")
            biases.append(bias if bias_mask is None else bias * _numpy(bias_mask))
            norms.append(_norm_from_state(state, f"norms.{i}."))
            i += 1
        if not weights:
            raise InputError(
                f"{source} holds no layers (expected keys layers.0.weight, ...); "
                "pass a checkpoint written by sculpt, a published .npz or a graph file"
            )
        for a, b in zip(weights[:-1], weights[1:]):
            if a.shape[0] != b.shape[1]:
                raise NetworkShapeError(f"{source}: layer shapes {a.shape} and {b.shape} do not chain")
        arch = [int(weights[0].shape[1])] + [int(w.shape[0]) for w in weights]
        skips = []
        for key in sorted(k for k in state if k.startswith("skips.") and k.endswith(".weight")):
            pair = key[len("skips.") : -len(".weight")]
            s, t = (int(v) for v in pair.split("_"))
            mask = state.get(f"skips.{pair}.weight_mask")
            weight = _numpy(state[key])
            skips.append(Block(s, t, weight, np.ones_like(weight) if mask is None else _numpy(mask)))
        return cls(
            arch, weights, biases, masks, skips=skips, norms=norms, activation=activation, source=source
        )

    @classmethod
    def from_cnn(
        cls, model_or_state, cnn: str | None = None, input_shape=None, source: str = ""
    ) -> LayeredNetwork:
        """The channel graph of a CNN: our models/cnn.py CNN, its state_dict, or a state_dict following the
        anchor's key conventions (see utils/cnn_graph.py). `cnn` (layer list) and `input_shape` (C, H, W)
        are kept in `layout` for a forward pass; when given they are checked against the weights."""
        from utils.cnn_graph import check_layout_fits, network_from_state

        state = model_or_state
        if hasattr(model_or_state, "state_dict"):
            cnn = cnn or getattr(model_or_state, "spec", None)
            input_shape = input_shape or getattr(model_or_state, "input_shape", None)
            state = model_or_state.state_dict()
            source = source or "model"
        layout = {}
        if input_shape is not None:
            layout["input_shape"] = [int(s) for s in input_shape]
        if cnn:
            from utils.cnn_spec import parse_cnn, spec_text

            layout["cnn"] = spec_text(parse_cnn(cnn)) if isinstance(cnn, str) else spec_text(cnn)
        network = network_from_state(dict(state), source or "state_dict", layout)
        if cnn and input_shape is not None:
            from utils.cnn_spec import parse_cnn

            check_layout_fits(network, parse_cnn(layout["cnn"]), layout["input_shape"])
        return network

    @classmethod
    def from_model(cls, model, source: str = "model") -> LayeredNetwork:
        """From a live MLP / DAG network of models/ (weights copied to numpy, on CPU)."""
        activation = getattr(model, "activation_name", "relu")
        if hasattr(model, "specs"):
            return cls.from_cnn(model, source=source)
        return cls.from_state_dict(model.state_dict(), source, activation=activation)

    @classmethod
    def from_npz(cls, path) -> LayeredNetwork:
        """From a published-format .npz (weight<i>, bias<i>, mask<i>, arch) or a graph written as npz."""
        from utils.network_files import read_npz_network

        return read_npz_network(path)

    @classmethod
    def from_networkx(cls, graph, source: str = "graph") -> LayeredNetwork:
        """From a layered DiGraph (see utils/graph_io.py: nodes with `layer` and `index`, or layers found
        as 1 + the longest path from an input, edges with optional `weight`)."""
        from utils.graph_io import network_from_networkx

        return network_from_networkx(graph, source)

    def to_networkx(self, partition=None):
        """A networkx DiGraph: nodes "L<layer>_<index>" with layer, index, bias (and module), kept edges
        with weight."""
        from utils.graph_io import network_to_networkx

        return network_to_networkx(self, partition)

    def with_masks(self, masks: list[np.ndarray]) -> LayeredNetwork:
        """A copy with new consecutive-layer masks (skips unchanged)."""
        return LayeredNetwork(
            self.arch,
            self.weights,
            self.biases,
            masks,
            self.kinds,
            self.skips,
            self.activation,
            self.norms,
            self.kernels,
            self.source,
            self.metrics,
            self.layout,
        )

    def folded_weights(self) -> list[np.ndarray]:
        """Weights with each layer's batch norm folded in, W·γ/√(var+ε) per output row (DESIGN §10.2);
        (arch[i+1], arch[i]) float64. Conv layers hold kernel L1 norms, so their folded row is the L1 norm
        of the folded kernel up to the sign of γ (absolute views are equal)."""
        out = []
        for weight, norm in zip(self.weights, self.norms):
            w = np.asarray(weight, dtype=np.float64)
            if norm is not None:
                scale = np.asarray(norm["gamma"], np.float64) / np.sqrt(
                    np.asarray(norm["var"], np.float64) + norm["eps"]
                )
                w = w * scale[:, None]
            out.append(w)
        return out


def _numpy(tensor) -> np.ndarray:
    if hasattr(tensor, "detach"):
        return tensor.detach().cpu().numpy()
    return np.asarray(tensor)


def _norm_from_state(state: dict, prefix: str) -> dict | None:
    if f"{prefix}weight" not in state:
        return None
    return {
        "gamma": _numpy(state[f"{prefix}weight"]),
        "beta": _numpy(state[f"{prefix}bias"]),
        "mean": _numpy(state[f"{prefix}running_mean"]),
        "var": _numpy(state[f"{prefix}running_var"]),
        "eps": 1e-5,
    }
