"""Read a network in the published reference format (.npz with weight<i>, bias<i>, mask<i>, arch, ...)."""

from __future__ import annotations

import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from utils.config import ConfigError


@dataclass
class PublishedNetwork:
    """A pruned network from the published study.

    arch: widths; weights[i] float (arch[i+1], arch[i]); biases[i] (arch[i+1],); masks[i] 0/1 uint8 of the
    weight's shape; anchor_partition: int (sum(arch),) published module ids (-1 dropped) or None;
    modularity: task structure ints or None; seed: int or None.
    """

    arch: list[int]
    weights: list[np.ndarray]
    biases: list[np.ndarray]
    masks: list[np.ndarray]
    anchor_partition: np.ndarray | None
    modularity: list[int] | None
    seed: int | None


def load_published_npz(path) -> PublishedNetwork:
    """Load and check a published-format .npz. Raises ConfigError (one line) on any problem."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"network file {path} does not exist; give the path of a published .npz")
    try:
        with np.load(path, allow_pickle=False) as data:
            arrays = {name: data[name] for name in data.files}
    except (OSError, ValueError, EOFError, zipfile.BadZipFile, KeyError) as exc:
        raise ConfigError(
            f"cannot read {path} as .npz ({type(exc).__name__}: {exc}); re-copy the file"
        ) from exc

    if "arch" not in arrays:
        raise ConfigError(f"{path} has no 'arch' array; a published network lists its layer widths in 'arch'")
    arch = [int(a) for a in np.asarray(arrays["arch"]).ravel()]
    if len(arch) < 2 or any(a <= 0 for a in arch):
        raise ConfigError(f"{path}: 'arch' must hold at least two positive widths, got {arch}")
    weights, biases, masks = [], [], []
    for i in range(len(arch) - 1):
        expected = (arch[i + 1], arch[i])
        for name, shape, into in (
            (f"weight{i}", expected, weights),
            (f"mask{i}", expected, masks),
            (f"bias{i}", (arch[i + 1],), biases),
        ):
            if name not in arrays:
                raise ConfigError(
                    f"{path} lacks array '{name}' required by arch {arch}; the file is incomplete"
                )
            value = arrays[name]
            if value.shape != shape:
                raise ConfigError(
                    f"{path}: '{name}' has shape {value.shape} but arch {arch} needs {shape}; "
                    "the file is inconsistent"
                )
            into.append(value)
    if f"weight{len(arch) - 1}" in arrays:
        raise ConfigError(
            f"{path} has more weight layers than arch {arch} describes; the file is inconsistent"
        )

    anchor = arrays.get("anchor_partition")
    if anchor is not None:
        anchor = np.asarray(anchor).astype(np.int64).ravel()
        if anchor.shape[0] != sum(arch):
            raise ConfigError(
                f"{path}: 'anchor_partition' has {anchor.shape[0]} entries "
                f"but arch {arch} has {sum(arch)} units"
            )
    modularity = arrays.get("modularity")
    seed = arrays.get("seed")
    return PublishedNetwork(
        arch=arch,
        weights=[w.astype(np.float32, copy=False) for w in weights],
        biases=biases,
        masks=[(m != 0).astype(np.uint8) for m in masks],
        anchor_partition=anchor,
        modularity=None if modularity is None else [int(m) for m in np.asarray(modularity).ravel()],
        seed=None if seed is None else int(np.asarray(seed).ravel()[0]),
    )
