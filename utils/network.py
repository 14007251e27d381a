"""`LayeredNetwork`: the one network type between files, models and analyses (docs/architecture.md,
"The one network type").

A layered network has `arch[l]` units in layer l (layer 0 = inputs, the last = outputs). Layer i of the
weights maps layer i to layer i+1: `weights[i]`, `masks[i]` are (arch[i+1], arch[i]) in torch Linear layout,
`biases[i]` is (arch[i+1],). Edges that skip layers (a DAG built from a graph) live in `skips`, one
`Block(source, target, weight, mask)` per pair of layers with target > source + 1. Conv layers appear as
channel graphs (kind "conv"): their weight is (out_channels, in_channels) with the entrywise L1 norm of
each kernel slice, their raw kernel kept in `kernels[i]` for a forward pass.

Units are numbered globally layer by layer (inputs first): unit u of layer l is node `offsets[l] + u`.
Everything here is numpy / scipy. The type knows no file format and no torch module: networks come from
files and state_dicts through utils/network_files.py (conv state_dicts through utils/cnn_graph.py), from
live models through models/from_network.py `network_of`, and from networkx graphs through utils/graph_io.py.
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
        """Weights with each layer's batch norm folded in, W·γ/√(var+ε) per output row; (arch[i+1], arch[i])
        float64 (what the spectral weight graph reads). Conv layers hold kernel L1 norms, so their folded row
        is the L1 norm of the folded kernel up to the sign of γ (absolute views are equal)."""
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
