"""Sub-modules (one module ∩ one hidden layer) and their random same-size controls (docs/lesion.md).

Units are indexed within their layer. Only alive units (some kept edge in and out) are lesioned and drawn
from: lesioning a dead unit changes nothing, so a control set with dead units would not be the same size
in any sense that matters.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from math import comb

import numpy as np

MIN_ALTERNATIVES = 2  # fewer other same-size sets than this: no meaningful control


@dataclass
class SubModule:
    """layer: hidden layer (1 = first hidden); module: its id in the partition; units: int (k,) alive
    labelled units of the layer, sorted; alive: int (n_alive,) alive units of the layer; dead: labelled units
    that are dead (not lesioned); testable / reason: whether a random control is meaningful, and why not."""

    index: int
    layer: int
    module: int
    units: np.ndarray
    alive: np.ndarray
    dead: list[int] = field(default_factory=list)
    testable: bool = True
    reason: str = ""

    @property
    def size(self) -> int:
        return int(len(self.units))

    @property
    def alternatives(self) -> int:
        """Number of other same-size sets of alive units in the layer."""
        return comb(len(self.alive), self.size) - 1


def find_submodules(network, partition) -> list[SubModule]:
    """Every (hidden layer, module) pair with at least one labelled unit, in layer then module order."""
    alive = network.alive_hidden()
    labels = partition.by_layer()
    out: list[SubModule] = []
    for layer in range(1, len(network.arch) - 1):
        alive_units = np.flatnonzero(alive[layer])
        for module in np.unique(labels[layer][labels[layer] >= 0]):
            members = np.flatnonzero(labels[layer] == module)
            units = members[alive[layer][members]]
            dead = [int(u) for u in members[~alive[layer][members]]]
            sub = SubModule(len(out), layer, int(module), units, alive_units, dead)
            if sub.size == 0:
                sub.testable, sub.reason = False, "no alive units"
            elif sub.size == len(alive_units):
                sub.testable, sub.reason = False, "covers every alive unit of its layer"
            elif sub.alternatives < MIN_ALTERNATIVES:
                sub.testable = False
                sub.reason = (
                    f"only {sub.alternatives} other set(s) of {sub.size} among {len(alive_units)} units"
                )
            out.append(sub)
    return out


def draw_sets(seed: int, key: tuple[int, ...], alive: np.ndarray, size: int, n: int) -> np.ndarray:
    """n random sets of `size` units among `alive`, sorted per row: int64 (n, size).

    The stream is seeded by (seed, *key) and draw i is row i of a fixed sequence, so it is the same whatever
    n, the batching or the number of workers.
    """
    rng = np.random.default_rng(
        np.random.SeedSequence(entropy=int(seed), spawn_key=tuple(int(k) for k in key))
    )
    keys = rng.random((n, len(alive)))
    picks = np.argsort(keys, axis=1, kind="stable")[:, :size]
    return np.sort(np.asarray(alive, dtype=np.int64)[picks], axis=1)
