"""Network files: the published reference format (.npz with weight<i>, bias<i>, mask<i>, arch, ...), our
checkpoints (model.pt), and graph files (GraphML, edge list, graph .npz; see utils/graph_io.py).

`load_network_file(path)` is the one door: it picks the reader by the file's suffix and returns a
`LayeredNetwork`.
"""

from __future__ import annotations

import zipfile

import numpy as np

from utils.cnn_graph import as_numpy, is_anchor_state, is_conv_state, network_from_cnn_state
from utils.errors import InputError, NetworkShapeError
from utils.network import Block, LayeredNetwork


def load_published_npz(path) -> LayeredNetwork:
    """The LayeredNetwork of a published-format .npz, checked array by array; what the published run recorded
    beside the network goes into `metrics`: anchor_partition (int (sum(arch),) published module ids, -1
    dropped, or None), modularity (task structure ints or None), seed (int or None). Raises InputError (one
    line) on any problem."""
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
    recorded = {
        "anchor_partition": anchor,
        "modularity": None if modularity is None else _ints(modularity, "modularity", path),
        "seed": None if seed is None or np.asarray(seed).size == 0 else _ints(seed, "seed", path)[0],
    }
    return LayeredNetwork(arch, weights, biases, masks, source=str(path), metrics=recorded)


def _ints(value, name: str, path) -> list[int]:
    array = np.asarray(value).ravel()
    if array.dtype.kind not in "iu":
        raise InputError(f"{path}: '{name}' must hold integers, got {array.dtype}")
    return [int(v) for v in array]


GRAPH_SUFFIXES = (".graphml", ".edgelist", ".txt")


def read_npz_network(path):
    """A `LayeredNetwork` from a published-format .npz or from a graph written as .npz by export_graph."""
    from utils.files import check_npz

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
    return load_published_npz(path)


def load_network_file(path):
    """The `LayeredNetwork` in `path`: model.pt (our state_dict), .npz (published or graph), or a graph
    file (.graphml, .edgelist/.txt). Raises InputError naming the problem."""
    from utils.files import regular_file

    path = regular_file(path, "network file")
    suffix = path.suffix.lower()
    if suffix == ".npz":
        return read_npz_network(path)
    if suffix in GRAPH_SUFFIXES:
        from utils.graph_io import read_graph

        return read_graph(path)
    return network_from_state_dict(load_torch_file(path), str(path))


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


def _check_arrays(state: dict, source: str) -> None:
    """Every layer entry of a state_dict is an array of numbers, weights and biases floats (a damaged or
    hand-made checkpoint is named, not half-read)."""
    for key in [k for k in state if isinstance(k, str) and k.startswith(("layers.", "skips.", "norms."))]:
        array = as_numpy(state[key])
        kind = array.dtype.kind
        if kind not in "fiub" or (key.endswith((".weight", ".bias")) and kind != "f") or array.ndim > 2:
            raise InputError(
                f"{source}: {key!r} holds {type(state[key]).__name__} of {array.dtype} {array.shape}, not "
                "the float weights of a layer; the checkpoint is damaged: re-run the command that made it"
            )


def network_from_state_dict(state, source: str = "state_dict", activation: str = "relu") -> LayeredNetwork:
    """The LayeredNetwork of a state_dict: our MLP's (layers.<i>.weight / weight_mask / bias / bias_mask,
    norms.<i>.*), our DAG network's (the same, plus skips.<s>_<t>.weight / weight_mask), or a CNN's (ours
    or the anchor's key conventions: utils/cnn_graph.py). `activation`: the hidden units' (a state_dict
    does not say)."""
    if not isinstance(state, dict):
        raise InputError(f"{source} is not a state_dict; pass a checkpoint written by sculpt or a .npz")
    if "layers.0.weight" not in state:
        from utils.sequential_state import sequential_state

        state = sequential_state(state, source) or state  # a plain nn.Sequential MLP
    if is_conv_state(state) or ("layers.0.weight" not in state and is_anchor_state(state)):
        return network_from_cnn_state(state, source=source)
    _check_arrays(state, source)
    weights, masks, biases, norms = [], [], [], []
    i = 0
    while f"layers.{i}.weight" in state:
        weight = as_numpy(state[f"layers.{i}.weight"])
        mask = state.get(f"layers.{i}.weight_mask")
        weights.append(weight)
        masks.append(np.ones_like(weight) if mask is None else as_numpy(mask))
        bias = state.get(f"layers.{i}.bias")
        bias = np.zeros(weight.shape[0]) if bias is None else as_numpy(bias)
        bias_mask = state.get(f"layers.{i}.bias_mask")
        biases.append(bias if bias_mask is None else bias * as_numpy(bias_mask))
        norm = _norm_from_state(state, f"norms.{i}.")
        if norm is not None and bias_mask is not None:
            # a pruned unit outputs zero although batch norm would shift it: its norm becomes 0·x + 0,
            # which the network keeps through files and torch_model (without a unit-alive flag)
            dead = as_numpy(bias_mask) == 0
            norm["gamma"] = np.where(dead, 0.0, norm["gamma"]).astype(np.float32)
            norm["beta"] = np.where(dead, 0.0, norm["beta"]).astype(np.float32)
        norms.append(norm)
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
        weight = as_numpy(state[key])
        skips.append(Block(s, t, weight, np.ones_like(weight) if mask is None else as_numpy(mask)))
    return LayeredNetwork(
        arch, weights, biases, masks, skips=skips, norms=norms, activation=activation, source=source
    )


def _norm_from_state(state: dict, prefix: str) -> dict | None:
    if f"{prefix}weight" not in state:
        return None
    return {
        "gamma": as_numpy(state[f"{prefix}weight"]),
        "beta": as_numpy(state[f"{prefix}bias"]),
        "mean": as_numpy(state[f"{prefix}running_mean"]),
        "var": as_numpy(state[f"{prefix}running_var"]),
        "eps": 1e-5,
    }
