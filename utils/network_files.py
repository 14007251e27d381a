"""Network files: the published reference format (.npz with weight<i>, bias<i>, mask<i>, arch, ...), our
checkpoints (model.pt), and graph files (GraphML, edge list, graph .npz; see utils/graph_io.py).

`load_network_file(path)` is the one door: it picks the reader by the file's suffix and returns a
`LayeredNetwork`.
"""

from __future__ import annotations

import zipfile
from dataclasses import dataclass

import numpy as np

from utils.errors import InputError


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
    """Load and check a published-format .npz. Raises InputError (one line) on any problem."""
    from utils.files import check_npz

    path = check_npz(path, "network file")
    try:
        with np.load(path, allow_pickle=False) as data:
            arrays = {name: data[name] for name in data.files}
    except (OSError, ValueError, EOFError, zipfile.BadZipFile, KeyError) as exc:
        raise InputError(
            f"cannot read {path} as .npz ({type(exc).__name__}: {exc}); re-copy the file"
        ) from exc

    if "arch" not in arrays:
        raise InputError(f"{path} has no 'arch' array; a published network lists its layer widths in 'arch'")
    if np.asarray(arrays["arch"]).dtype.kind not in "iu":
        raise InputError(f"{path}: 'arch' must hold integers, got {np.asarray(arrays['arch']).dtype}")
    arch = [int(a) for a in np.asarray(arrays["arch"]).ravel()]
    if len(arch) < 2 or any(a <= 0 for a in arch):
        raise InputError(f"{path}: 'arch' must hold at least two positive widths, got {arch}")
    weights, biases, masks = [], [], []
    for i in range(len(arch) - 1):
        expected = (arch[i + 1], arch[i])
        for name, shape, into in (
            (f"weight{i}", expected, weights),
            (f"mask{i}", expected, masks),
            (f"bias{i}", (arch[i + 1],), biases),
        ):
            if name not in arrays:
                raise InputError(
                    f"{path} lacks array '{name}' required by arch {arch}; the file is incomplete"
                )
            value = arrays[name]
            if value.dtype.kind not in "fiub":
                raise InputError(
                    f"{path}: '{name}' holds {value.dtype} values, not numbers; the file is damaged"
                )
            if value.dtype.kind == "f" and not np.isfinite(value).all():
                raise InputError(f"{path}: '{name}' holds NaN or infinite values; the file is damaged")
            if value.shape != shape:
                raise InputError(
                    f"{path}: '{name}' has shape {value.shape} but arch {arch} needs {shape}; "
                    "the file is inconsistent"
                )
            into.append(value)
    if f"weight{len(arch) - 1}" in arrays:
        raise InputError(
            f"{path} has more weight layers than arch {arch} describes; the file is inconsistent"
        )

    anchor = arrays.get("anchor_partition")
    if anchor is not None:
        if np.asarray(anchor).dtype.kind not in "iu":
            raise InputError(f"{path}: 'anchor_partition' must hold integers")
        anchor = np.asarray(anchor).astype(np.int64).ravel()
        if anchor.shape[0] != sum(arch):
            raise InputError(
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
        modularity=None if modularity is None else _ints(modularity, "modularity", path),
        seed=None if seed is None or np.asarray(seed).size == 0 else _ints(seed, "seed", path)[0],
    )


def _ints(value, name: str, path) -> list[int]:
    array = np.asarray(value).ravel()
    if array.dtype.kind not in "iu":
        raise InputError(f"{path}: '{name}' must hold integers, got {array.dtype}")
    return [int(v) for v in array]


GRAPH_SUFFIXES = (".graphml", ".edgelist", ".txt")


def read_npz_network(path):
    """A `LayeredNetwork` from a published-format .npz or from a graph written as .npz by export_graph."""
    from utils.files import check_npz
    from utils.network import LayeredNetwork

    path = check_npz(path, "network file")
    if path.is_file():
        try:
            with np.load(path, allow_pickle=False) as data:
                is_graph = "edge_source" in data.files
        except (OSError, ValueError, EOFError, zipfile.BadZipFile) as exc:
            raise InputError(
                f"cannot read {path} as .npz ({type(exc).__name__}: {exc}); re-copy the file"
            ) from exc
        if is_graph:
            from utils.graph_io import read_graph

            return read_graph(path)
    published = load_published_npz(path)
    return LayeredNetwork(
        published.arch, published.weights, published.biases, published.masks, source=str(path)
    )


def load_network_file(path):
    """The `LayeredNetwork` in `path`: model.pt (our state_dict), .npz (published or graph), or a graph
    file (.graphml, .edgelist/.txt). Raises InputError naming the problem."""
    from utils.files import regular_file
    from utils.network import LayeredNetwork

    path = regular_file(path, "network file")
    suffix = path.suffix.lower()
    if suffix == ".npz":
        return read_npz_network(path)
    if suffix in GRAPH_SUFFIXES:
        from utils.graph_io import read_graph

        return read_graph(path)
    return LayeredNetwork.from_state_dict(load_torch_file(path), str(path))


def load_torch_file(path) -> dict:
    """A torch checkpoint (state_dict) loaded on CPU with weights_only (no code is unpickled)."""
    import torch

    from utils.files import regular_file
    from utils.limits import memory_budget

    file = regular_file(path, "checkpoint", memory_budget() // 2)  # torch.load holds every tensor at once
    try:
        return torch.load(file, map_location="cpu", weights_only=True)
    except Exception as error:  # torch raises many kinds for a damaged or unsafe file
        raise InputError(
            f"checkpoint {file} is corrupt, not a torch file, or holds code ({type(error).__name__}); "
            "delete it and re-run the command that made it"
        ) from None
