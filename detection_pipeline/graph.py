"""The layered unit graph of a masked MLP, and condensing it (dropping dead units).

Layer i of the network maps layer i to layer i+1; its mask has torch Linear layout (arch[i+1], arch[i]).
Everything here stays per layer and sparse: no matrix over all units is ever built.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import scipy.sparse as sp

from utils.errors import InputError, NoPathError


def _as_csr(matrix) -> sp.csr_matrix:
    """A 0/1 (or weighted) array or sparse matrix as float64 CSR with explicit zeros removed."""
    out = sp.csr_matrix(matrix, dtype=np.float64)
    out.eliminate_zeros()
    return out


@dataclass
class LayeredGraph:
    """A layered directed graph: `edges[i]` is (arch[i+1], arch[i]) sparse, nonzero = edge i -> i+1 (the
    detection's view of a LayeredNetwork's consecutive Blocks: their masks as sparse 0/1).

    `weights[i]`, when given, has the same sparsity and holds |weight| of each edge (for weighted features).
    `skips[(s, t)]` (t > s + 1) holds edges that skip layers, (arch[t], arch[s]) sparse 0/1, and
    `skip_weights[(s, t)]` their |weight| when weights are given (a DAG built from a graph).
    """

    arch: list[int]
    edges: list[sp.csr_matrix]
    weights: list[sp.csr_matrix] | None = None
    skips: dict[tuple[int, int], sp.csr_matrix] = field(default_factory=dict)
    skip_weights: dict[tuple[int, int], sp.csr_matrix] | None = None

    @classmethod
    def from_masks(cls, masks, weights=None, skips=None) -> LayeredGraph:
        """Build from per-layer 0/1 masks of shape (arch[i+1], arch[i]); weights (same shapes) optional;
        skips: Blocks (source, target, weight, mask) of edges that skip layers, or None."""
        if len(masks) == 0:
            raise InputError("a network needs at least one weight layer (got no masks)")
        arch = [int(np.shape(masks[0])[1])] + [int(np.shape(m)[0]) for m in masks]
        for i, m in enumerate(masks):
            if tuple(np.shape(m)) != (arch[i + 1], arch[i]):
                raise InputError(
                    f"mask {i} has shape {tuple(np.shape(m))}, expected {(arch[i + 1], arch[i])} "
                    "(torch Linear layout: out x in, consecutive layers must agree)"
                )
        blocks = [_as_csr(np.asarray(m) != 0 if not sp.issparse(m) else m != 0) for m in masks]
        w_blocks = None
        if weights is not None:
            if len(weights) != len(masks):
                raise InputError(
                    f"got {len(weights)} weight matrices for {len(masks)} masks; give one per layer"
                )
            w_blocks = []
            for i, (b, w) in enumerate(zip(blocks, weights, strict=True)):
                w = w.toarray() if sp.issparse(w) else np.asarray(w, dtype=np.float64)
                if w.shape != b.shape:
                    raise InputError(f"weight {i} has shape {w.shape}, but its mask has shape {b.shape}")
                # Weighted features use |w| on kept edges only; masked weights never count.
                w_blocks.append(_as_csr(b.multiply(np.abs(w))))
        skip_blocks, skip_weights = {}, ({} if weights is not None else None)
        for block in skips or ():
            mask = _as_csr(np.asarray(block.mask) != 0)
            if mask.nnz == 0:
                continue
            skip_blocks[(block.source, block.target)] = mask
            if skip_weights is not None:
                skip_weights[(block.source, block.target)] = _as_csr(mask.multiply(np.abs(block.weight)))
        return cls(arch, blocks, w_blocks, skip_blocks, skip_weights)

    @property
    def depth(self) -> int:
        """Number of weight layers (len(arch) - 1)."""
        return len(self.edges)

    def condense(self, max_passes: int | None = None) -> tuple[LayeredGraph, list[np.ndarray]]:
        """Drop dead units until nothing changes; returns (graph over the alive units, alive masks per layer).

        Output units are never dropped. An input unit is dropped when it has no edge; a hidden unit when it
        has no edge to the layer below or none to the layer above. Raises NoPathError when no input unit
        survives (then no path joins inputs to outputs). `max_passes` caps the sweeps (the published code
        made 10; None runs to the fixed point, which is the same on every published network).
        """
        alive = [np.ones(n, dtype=bool) for n in self.arch]
        passes = 0
        while max_passes is None or passes < max_passes:
            passes += 1
            # Jacobi sweep: degrees from the current alive set, all layers at once; a unit needs an edge
            # to some later layer (inputs and hidden units) and from some earlier one (hidden units).
            has_up = [np.zeros(n, dtype=bool) for n in self.arch]
            has_down = [np.zeros(n, dtype=bool) for n in self.arch]
            for (source, target), block in self.all_blocks():
                has_down[target] |= (block @ alive[source].astype(np.float64)) > 0
                has_up[source] |= (block.T @ alive[target].astype(np.float64)) > 0
            new = [alive[l] & has_up[l] for l in range(self.depth)] + [alive[self.depth].copy()]
            for l in range(1, self.depth):  # outputs are never dropped
                new[l] &= has_down[l]
            changed = any((a != b).any() for a, b in zip(alive, new, strict=True))
            alive = new
            if not changed:
                break
        if not alive[0].any():
            raise NoPathError(
                "no path from inputs to outputs survives in this network (every input unit is dead after "
                "dropping units without edges); prune less or check the masks"
            )
        return self.subgraph(alive), alive

    def subgraph(self, alive: list[np.ndarray]) -> LayeredGraph:
        """The graph restricted to the alive units of each layer (unit order kept)."""
        blocks = [b[alive[i + 1]][:, alive[i]].tocsr() for i, b in enumerate(self.edges)]
        weights = None
        if self.weights is not None:
            weights = [w[alive[i + 1]][:, alive[i]].tocsr() for i, w in enumerate(self.weights)]
        skips = {(s, t): b[alive[t]][:, alive[s]].tocsr() for (s, t), b in self.skips.items()}
        skip_weights = None
        if self.skip_weights is not None:
            skip_weights = {
                (s, t): w[alive[t]][:, alive[s]].tocsr() for (s, t), w in self.skip_weights.items()
            }
        return LayeredGraph([int(a.sum()) for a in alive], blocks, weights, skips, skip_weights)

    def all_blocks(self, weighted: bool = False) -> list[tuple[tuple[int, int], sp.csr_matrix]]:
        """((source, target), (arch[target], arch[source]) sparse) for every block, consecutive first."""
        own = self.weights if weighted and self.weights is not None else self.edges
        skips = self.skip_weights if weighted and self.skip_weights is not None else self.skips
        return [((i, i + 1), b) for i, b in enumerate(own)] + sorted(skips.items())

    def adjacency(self, weighted: bool = False) -> sp.csr_matrix:
        """(N, N) sparse over all units (layer order): entry [u, v] for the edge u -> v."""
        offsets = np.concatenate([[0], np.cumsum(self.arch)[:-1]])
        n = int(sum(self.arch))
        parts = []
        for (source, target), block in self.all_blocks(weighted):
            coo = block.tocoo()
            parts.append((coo.data, offsets[source] + coo.col, offsets[target] + coo.row))
        data, rows, cols = (np.concatenate(p) for p in zip(*parts))
        return sp.csr_matrix((data, (rows, cols)), shape=(n, n))

    def outgoing(self, layer: int, weighted: bool = False) -> sp.csr_matrix:
        """Adjacency from `layer` to `layer`+1 as (arch[layer], arch[layer+1]) sparse."""
        source = self.weights if weighted and self.weights is not None else self.edges
        return source[layer].T.tocsr()

    def incoming(self, layer: int, weighted: bool = False) -> sp.csr_matrix:
        """Adjacency from `layer`-1 into `layer` as (arch[layer], arch[layer-1]) sparse."""
        source = self.weights if weighted and self.weights is not None else self.edges
        return source[layer - 1]
