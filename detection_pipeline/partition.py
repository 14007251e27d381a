"""`Partition`: what every module-finding method returns, and what every analysis of modules takes.

labels: int (N,) one id per unit of the network in layer order (inputs first, outputs last), -1 for units
the method dropped; ids are arbitrary labels (compare up to relabelling). arch: the layer widths.
method: the registry name that made it; diagnostics: method-specific, JSON-able (per-layer scores, n-cut,
Q, ...). `to_json` gives the fields of modules.json; `from_json` reads any JSON with a `partition` list.
network: {"fingerprint", "source"} of the network it was found on (utils/fingerprint.py; empty when not
known); `check_fits` refuses it for another network. file: where it was read from (for messages).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from utils.errors import InputError
from utils.fingerprint import check_same_network, recorded_network


def relabel_first_appearance(labels: np.ndarray) -> tuple[np.ndarray, int]:
    """Ids 0..M-1 in order of first appearance, -1 kept. Returns (labels, M)."""
    labels = np.asarray(labels, dtype=np.int64)
    out = np.full_like(labels, -1)
    kept = labels >= 0
    if not kept.any():
        return out, 0
    uniq, first, inverse = np.unique(labels[kept], return_index=True, return_inverse=True)
    rank = np.empty(len(uniq), dtype=np.int64)
    rank[np.argsort(first, kind="stable")] = np.arange(len(uniq))
    out[kept] = rank[inverse]
    return out, len(uniq)


@dataclass
class Partition:
    labels: np.ndarray
    arch: list[int]
    method: str = "sculpt"
    diagnostics: dict = field(default_factory=dict)
    source: str = "the partition"  # the file it was read from, for messages
    network: dict = field(default_factory=dict)
    file: str = ""

    def __post_init__(self):
        self.arch = [int(a) for a in self.arch]
        self.labels = np.asarray(self.labels, dtype=np.int64).reshape(-1)
        if self.labels.shape[0] != sum(self.arch):
            raise InputError(
                f"a partition of {self.labels.shape[0]} units does not fit arch "
                f"{' '.join(map(str, self.arch))} ({sum(self.arch)} units)"
            )

    @property
    def n_modules(self) -> int:
        return int(len(np.unique(self.labels[self.labels >= 0])))

    @property
    def alive(self) -> list[np.ndarray]:
        """bool (arch[l],) per layer: the units the method kept (label >= 0)."""
        return [ids >= 0 for ids in self.by_layer()]

    def by_layer(self) -> list[np.ndarray]:
        """The labels split per layer: (arch[l],) arrays."""
        return np.split(self.labels, np.cumsum(self.arch)[:-1])

    def module_units(self) -> dict[int, dict[int, list[int]]]:
        """{module id: {layer: [unit indices within that layer]}} (layers where the module has units)."""
        out: dict[int, dict[int, list[int]]] = {}
        for layer, ids in enumerate(self.by_layer()):
            for unit in np.flatnonzero(ids >= 0):
                out.setdefault(int(ids[unit]), {}).setdefault(layer, []).append(int(unit))
        return dict(sorted(out.items()))

    def to_json(self) -> dict:
        return {
            **({"network": dict(self.network)} if self.network else {}),
            "method": self.method,
            "arch": self.arch,
            "n_modules": self.n_modules,
            "partition": [int(x) for x in self.labels],
            "dropped": [np.flatnonzero(ids < 0).tolist() for ids in self.by_layer()],
            "modules": [
                {"id": m, "units": {str(layer): units for layer, units in per_layer.items()}}
                for m, per_layer in self.module_units().items()
            ],
            **self.diagnostics,
        }

    @classmethod
    def from_json(cls, data: dict, source: str = "partition") -> Partition:
        if not isinstance(data, dict) or not isinstance(data.get("partition"), list):
            raise InputError(f"{source} has no 'partition' list (one module id per unit, -1 for dropped)")
        labels = data["partition"]
        bad = next((v for v in labels if not isinstance(v, int) or isinstance(v, bool)), None)
        if bad is not None:
            raise InputError(f"{source}: 'partition' must hold integers only, got {bad!r}")
        # module ids are small: at most one module per unit (-1 marks a dropped unit)
        bad = next((v for v in labels if not -1 <= v < max(len(labels), 1)), None)
        if bad is not None:
            raise InputError(
                f"{source}: module id {bad} in 'partition' is out of range; ids are -1 (dropped) or "
                f"0..{len(labels) - 1} (one per unit at most)"
            )
        arch = data.get("arch")
        if arch is None:
            arch = [len(labels)]
        if not isinstance(arch, list) or not all(
            isinstance(a, int) and not isinstance(a, bool) for a in arch
        ):
            raise InputError(f"{source}: 'arch' must be a list of integers, got {arch!r}")
        if len(arch) > 1 and sum(arch) != len(labels):
            raise InputError(
                f"{source}: 'arch' {' '.join(map(str, arch))} has {sum(arch)} units but 'partition' holds "
                f"{len(labels)} ids"
            )
        skip = ("partition", "arch", "method", "network")
        diagnostics = {k: v for k, v in data.items() if k not in skip}
        return cls(
            np.asarray(labels, dtype=np.int64),
            arch,
            str(data.get("method", "unknown")),
            diagnostics,
            source=source,
            network=recorded_network(data),
            file=source,
        )

    @classmethod
    def from_file(cls, path) -> Partition:
        from utils.files import read_json

        data = read_json(path, "partition file")
        partition = cls.from_json(data, str(path))
        partition.source = f"partition file {path}"
        return partition

    def check_fits(self, network) -> None:
        """Raise InputError unless this partition has one label per unit of `network` and, when it records
        the network it was found on, that network is `network` (same fingerprint)."""
        if self.labels.shape[0] != network.n_units or (
            len(self.arch) > 1 and list(self.arch) != list(network.arch)
        ):
            raise InputError(
                f"{self.source} ({self.labels.shape[0]} units, arch {' '.join(map(str, self.arch))}) does "
                f"not fit the network (arch {' '.join(map(str, network.arch))}); give the modules.json "
                "found on this network"
            )
        check_same_network(self.network, network, f"partition {self.file or 'given'}")
