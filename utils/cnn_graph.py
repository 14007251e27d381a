"""CNN state_dicts -> channel graphs (`LayeredNetwork` with kind "conv" layers; docs/architecture.md, "The
one network type").

Two key layouts are read, both without the network's class (tensors only):

- ours (models/cnn.py): `layers.<i>.weight` (4-d for conv layers), `.weight_mask`, `.bias`, `.bias_mask`,
  `norms.<i>.*` batch norm after hidden layer i;
- the anchor's (nn-clustering-pytorch) conventions: one ModuleDict per layer with modules `conv`, `fc`,
  `bn` (`layer2.conv.weight`, `layer2.bn.running_var`), or a Sequential of `<layer>_<module>` names
  (`features.0_conv.weight`, `features.0_bn.weight`, `classifier.3_fc.weight`; `1_relu`, `2_maxPool`,
  `3_dropout` hold no tensors). At most one linear op (conv or fc) per layer; a batch norm belongs to the
  linear op of its own layer, or, alone in its layer, to the linear op before it. Optional `weight_mask` /
  `bias_mask` tensors beside a weight are applied.

The channel graph: one node per channel of every conv layer (input image channels included) and per unit
of every fc layer. A conv -> conv edge o <- c weighs the entrywise L1 norm of the kernel slice
sum_kl |K[o, c, k, l]|. At the conv -> fc boundary the fc weight (out, C*H*W) is read as (out, C, H*W) (torch
flattens channel-major) and the edge o <- c weighs sum_p |W[o, c, p]| over the H*W positions channel c feeds:
the same rule with the flattened spatial map as the "kernel". Batch norm stays in `norms[i]` (fold it
with `LayeredNetwork.folded_weights()`: W·γ/√(var+ε) per output row, which for conv rows equals the L1
norm of the folded kernel). Masked entries count as zero; a channel edge is kept when any entry of its
slice is kept. The raw masked kernels (conv (out, in, K, K); the boundary fc (out, C*H*W)) stay in
`kernels[i]` for a forward pass (models/from_network.py).

The anchor's own spectral clustering of CNNs keeps only the first contiguous block of conv layers and drops
the first of them (graph_utils.np_layer_array_to_graph_weights_array: `list(g)[1:]`): no image-channel
nodes, no fc units, so no conv -> fc boundary at all. `anchor_scope(network)` cuts our graph down to that.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import numpy as np

from utils.errors import InputError, NetworkShapeError
from utils.network import LayeredNetwork

_MODULES = ("conv", "fc", "bn")
_SEQUENTIAL = re.compile(r"(.+)_(conv|fc|bn)")
_PARAMS = ("weight", "bias", "weight_mask", "bias_mask", "running_mean", "running_var", "num_batches_tracked")
_BN_EPS = 1e-5


@dataclass
class LinearOp:
    """One conv or fc op read from a state_dict: weight (out, in, K, K) or (out, in), masks of the same
    shapes, bias (out,), batch norm dict or None, and the key of its weight (for messages)."""

    kind: str
    weight: np.ndarray
    bias: np.ndarray
    weight_mask: np.ndarray
    bias_mask: np.ndarray
    key: str
    norm: dict | None = None
    tensors: dict = field(default_factory=dict)


def as_numpy(value) -> np.ndarray:
    """A tensor (any device) or array-like as a numpy array."""
    if hasattr(value, "detach"):
        return value.detach().cpu().numpy()
    return np.asarray(value)


def is_conv_state(state: dict) -> bool:
    """True when a state_dict holds a 4-d weight (a conv layer) in any layout we read."""
    return any(k.endswith("weight") and getattr(v, "ndim", 0) == 4 for k, v in state.items())


def is_anchor_state(state: dict) -> bool:
    """True when the keys look like the anchor's conventions (a conv / fc module name somewhere)."""
    for key in state:
        path = key.rpartition(".")[0]
        module = path.rpartition(".")[2]
        if module in ("conv", "fc") or _SEQUENTIAL.fullmatch(module):
            return True
    return False


def read_ours(state: dict, source: str) -> list[LinearOp]:
    """Our CNN's state_dict (layers.<i>.*, norms.<i>.*) -> linear ops in order."""
    ops = []
    i = 0
    while f"layers.{i}.weight" in state:
        weight = as_numpy(state[f"layers.{i}.weight"]).astype(np.float32)
        kind = "conv" if weight.ndim == 4 else "fc"
        mask = state.get(f"layers.{i}.weight_mask")
        bias = state.get(f"layers.{i}.bias")
        bias_mask = state.get(f"layers.{i}.bias_mask")
        op = LinearOp(
            kind,
            weight,
            np.zeros(weight.shape[0], np.float32) if bias is None else as_numpy(bias).astype(np.float32),
            np.ones_like(weight) if mask is None else as_numpy(mask).astype(np.float32),
            np.ones(weight.shape[0], np.float32)
            if bias_mask is None
            else as_numpy(bias_mask).astype(np.float32),
            f"layers.{i}.weight",
        )
        prefix = f"norms.{i}."
        if f"{prefix}running_var" in state:
            op.norm = _norm(
                {k[len(prefix) :]: v for k, v in state.items() if k.startswith(prefix)}, op, prefix
            )
        ops.append(op)
        i += 1
    return ops


def read_anchor(state: dict, source: str) -> list[LinearOp]:
    """A state_dict following the anchor's conventions -> linear ops in order. InputError names the first
    key that breaks them."""
    groups: dict[str, dict[str, dict]] = {}
    first_key: dict[tuple[str, str], str] = {}
    for key, value in state.items():
        path, _, param = key.rpartition(".")
        parent, _, module = path.rpartition(".")
        if module in _MODULES:
            layer, kind = parent, module
        else:
            match = _SEQUENTIAL.fullmatch(module)
            if not match:
                raise InputError(
                    f"{source}: key {key!r} breaks the layer conventions: a tensor must belong to a module "
                    f"named conv, fc or bn (ModuleDict per layer) or <layer>_conv / <layer>_fc / <layer>_bn "
                    f"(Sequential), e.g. layer1.conv.weight or 0_conv.weight"
                )
            layer = f"{parent}.{match.group(1)}" if parent else match.group(1)
            kind = match.group(2)
        if param not in _PARAMS:
            raise InputError(f"{source}: key {key!r} holds {param!r}, which a {kind} module does not have")
        groups.setdefault(layer, {}).setdefault(kind, {})[param] = value
        first_key.setdefault((layer, kind), key)
    ops: list[LinearOp] = []
    for layer, modules in groups.items():
        linear = [k for k in ("conv", "fc") if k in modules]
        if len(linear) > 1:
            raise InputError(
                f"{source}: layer {layer!r} has both a conv and an fc op (key {first_key[(layer, 'fc')]!r}); "
                "the conventions allow one linear op per layer"
            )
        if linear:
            kind = linear[0]
            tensors = modules[kind]
            key = first_key[(layer, kind)]
            if "weight" not in tensors:
                raise InputError(f"{source}: {kind} module of layer {layer!r} has no weight (key {key!r})")
            weight = as_numpy(tensors["weight"]).astype(np.float32)
            wanted = 4 if kind == "conv" else 2
            if weight.ndim != wanted:
                raise InputError(
                    f"{source}: key {layer + '.' if layer else ''}{kind}.weight (from {key!r}) has "
                    f"{weight.ndim} dimensions; a {kind} weight has {wanted}"
                )
            out = weight.shape[0]
            op = LinearOp(
                kind,
                weight,
                _vector(tensors, "bias", out, 0.0, source, key),
                as_numpy(tensors["weight_mask"]).astype(np.float32)
                if "weight_mask" in tensors
                else np.ones_like(weight),
                _vector(tensors, "bias_mask", out, 1.0, source, key),
                key.rpartition(".")[0] + ".weight",
            )
            if op.weight_mask.shape != weight.shape:
                raise InputError(
                    f"{source}: the weight_mask beside {key!r} does not match its weight's shape"
                )
            ops.append(op)
        if "bn" in modules:
            key = first_key[(layer, "bn")]
            if not ops:
                raise InputError(f"{source}: batch norm {key!r} comes before any conv or fc layer")
            if ops[-1].norm is not None:
                raise InputError(
                    f"{source}: batch norm {key!r} follows a layer that already has one; the conventions "
                    "allow one batch norm between two linear ops"
                )
            ops[-1].norm = _norm(modules["bn"], ops[-1], key)
    if not ops:
        raise InputError(f"{source} holds no conv or fc weight; nothing to read")
    return ops


def _vector(tensors: dict, name: str, size: int, default: float, source: str, key: str) -> np.ndarray:
    if name not in tensors:
        return np.full(size, default, dtype=np.float32)
    value = as_numpy(tensors[name]).astype(np.float32).reshape(-1)
    if value.shape != (size,):
        raise InputError(
            f"{source}: {name} beside {key!r} has {value.shape[0]} entries, the layer has {size}"
        )
    return value


def _norm(tensors: dict, op: LinearOp, key: str) -> dict:
    out = op.weight.shape[0]
    if "running_var" not in tensors or "running_mean" not in tensors:
        raise InputError(
            f"batch norm {key!r} lacks running_mean / running_var (tracked statistics are needed)"
        )
    norm = {
        "gamma": as_numpy(tensors["weight"]).astype(np.float32)
        if "weight" in tensors
        else np.ones(out, np.float32),
        "beta": as_numpy(tensors["bias"]).astype(np.float32)
        if "bias" in tensors
        else np.zeros(out, np.float32),
        "mean": as_numpy(tensors["running_mean"]).astype(np.float32),
        "var": as_numpy(tensors["running_var"]).astype(np.float32),
        "eps": _BN_EPS,
    }
    for name in ("gamma", "beta", "mean", "var"):
        if norm[name].shape != (out,):
            raise InputError(
                f"batch norm {key!r}: {name} has {norm[name].shape[0]} entries but {op.key!r} has "
                f"{out} outputs"
            )
    return norm


def chain(ops: list[LinearOp], source: str, input_channels: int | None = None) -> list[int | None]:
    """Check that the ops chain; returns per op the spatial positions (H*W) each input channel feeds at a
    conv -> fc boundary, else None. Raises InputError naming the key that does not fit."""
    spatial: list[int | None] = []
    if ops[-1].kind != "fc":
        raise InputError(f"{source}: the last layer ({ops[-1].key!r}) must be fc (the output layer)")
    for i, op in enumerate(ops):
        n_in = op.weight.shape[1]
        if i == 0:
            if input_channels is not None and op.kind == "conv" and n_in != input_channels:
                raise InputError(
                    f"{source}: {op.key!r} takes {n_in} input channels but --input_shape gives "
                    f"{input_channels}"
                )
            spatial.append(None)
            continue
        prev = ops[i - 1]
        if op.kind == "conv" and prev.kind == "fc":
            raise InputError(
                f"{source}: conv layer {op.key!r} follows fc layer {prev.key!r}; convs come first"
            )
        channels = prev.weight.shape[0]
        if op.kind == "fc" and prev.kind == "conv":
            if n_in % channels:
                raise InputError(
                    f"{source}: {op.key!r} takes {n_in} inputs, not a multiple of the {channels} channels of "
                    f"{prev.key!r}"
                )
            spatial.append(n_in // channels)
            continue
        if n_in != channels:
            raise InputError(f"{source}: {op.key!r} takes {n_in} inputs but {prev.key!r} gives {channels}")
        spatial.append(None)
    return spatial


def network_from_ops(ops: list[LinearOp], source: str, layout: dict | None = None):
    """The channel-graph LayeredNetwork of chained linear ops (see the module docstring)."""
    input_shape = (layout or {}).get("input_shape")
    spatial = chain(ops, source, int(input_shape[0]) if input_shape else None)
    weights, masks, biases, kernels, kinds, norms = [], [], [], [], [], []
    for op, positions in zip(ops, spatial):
        kept = op.weight * (op.weight_mask != 0)
        if op.kind == "conv":
            weights.append(np.abs(kept).sum(axis=(2, 3)))
            masks.append((op.weight_mask != 0).any(axis=(2, 3)))
            kernels.append(kept)
            kinds.append("conv")
        elif positions is not None:
            out = kept.shape[0]
            weights.append(np.abs(kept).reshape(out, -1, positions).sum(axis=2))
            masks.append((op.weight_mask != 0).reshape(out, -1, positions).any(axis=2))
            kernels.append(kept)
            kinds.append("fc")
        else:
            weights.append(op.weight)
            masks.append(op.weight_mask)
            kernels.append(None)
            kinds.append("fc")
        biases.append(op.bias * op.bias_mask)
        norms.append(op.norm)
    arch = [int(ops[0].weight.shape[1])] + [int(op.weight.shape[0]) for op in ops]
    layout = dict(layout or {})
    layout["keys"] = [op.key for op in ops]
    layout["spatial"] = spatial
    layout["unit_alive"] = [(op.bias_mask != 0).tolist() for op in ops[:-1]]
    return LayeredNetwork(
        arch, weights, biases, masks, kinds=kinds, norms=norms, kernels=kernels, source=source, layout=layout
    )


def network_from_state(state: dict, source: str, layout: dict | None = None):
    """A channel-graph LayeredNetwork from our CNN's or an anchor-convention state_dict."""
    ops = read_ours(state, source) if "layers.0.weight" in state else read_anchor(state, source)
    return network_from_ops(ops, source, layout)


def network_from_cnn_state(
    state: dict, cnn=None, input_shape=None, source: str = "state_dict"
) -> LayeredNetwork:
    """The channel graph of a CNN state_dict (ours, or the anchor's key conventions). `cnn` (the layer
    list, text or parsed) and `input_shape` (C, H, W) are kept in `layout` for a forward pass; when both
    are given they are checked against the weights."""
    from utils.cnn_spec import parse_cnn, spec_text

    layout = {}
    if input_shape is not None:
        layout["input_shape"] = [int(s) for s in input_shape]
    if cnn:
        layout["cnn"] = spec_text(parse_cnn(cnn)) if isinstance(cnn, str) else spec_text(cnn)
    network = network_from_state(dict(state), source or "state_dict", layout)
    if cnn and input_shape is not None:
        check_layout_fits(network, parse_cnn(layout["cnn"]), layout["input_shape"])
    return network


def anchor_scope(network):
    """The part of the channel graph the anchor clusters: the first contiguous run of conv layers without
    the first conv layer's weights (nodes: the first conv layer's output channels up to the last conv
    layer's). Returns a LayeredNetwork of conv kinds only; NetworkShapeError with fewer than two conv
    layers."""
    conv = [i for i, k in enumerate(network.kinds) if k == "conv"]
    run = []
    for i in conv:
        if run and i != run[-1] + 1:
            break
        run.append(i)
    if len(run) < 2:
        raise NetworkShapeError("the anchor's conv-only graph needs at least two consecutive conv layers")
    keep = run[1:]
    arch = [network.arch[keep[0]]] + [network.arch[i + 1] for i in keep]
    return LayeredNetwork(
        arch,
        [network.weights[i] for i in keep],
        [network.biases[i] for i in keep],
        [network.masks[i] for i in keep],
        kinds=["conv"] * len(keep),
        norms=[network.norms[i] for i in keep],
        kernels=[network.kernels[i] for i in keep],
        source=network.source,
    )


def check_layout_fits(network, specs, input_shape) -> None:
    """Check a parsed --cnn layer list (hidden layers) against a channel network read from a state_dict:
    the same kinds, channel/unit counts, kernel sizes, and the conv -> fc boundary's spatial size.
    Raises InputError naming the state_dict key that does not fit."""
    from utils.cnn_spec import layer_shapes

    keys = network.layout.get("keys") or [f"layer {i}" for i in range(network.depth)]
    hidden = network.depth - 1
    if len(specs) != hidden:
        raise InputError(
            f"--cnn lists {len(specs)} hidden layers but the checkpoint has {hidden} before its output layer "
            f"({', '.join(keys)})"
        )
    if int(input_shape[0]) != network.arch[0]:
        raise InputError(
            f"--input_shape has {input_shape[0]} channels but {keys[0]!r} takes {network.arch[0]}"
        )
    shapes = layer_shapes(specs, input_shape)
    previous = tuple(int(s) for s in input_shape)
    for i, spec in enumerate(specs + [None]):
        kind = network.kinds[i]
        want = "fc" if spec is None else spec.kind
        if kind != want:
            raise InputError(f"--cnn layer {i + 1} is {want} but the checkpoint's {keys[i]!r} is {kind}")
        if spec is not None and spec.size != network.arch[i + 1]:
            raise InputError(
                f"--cnn layer {i + 1} ({spec.text()}) has {spec.size} outputs but {keys[i]!r} has "
                f"{network.arch[i + 1]}"
            )
        kernel = network.kernels[i]
        if kind == "conv" and kernel.shape[2:] != (spec.kernel, spec.kernel):
            raise InputError(
                f"--cnn layer {i + 1} ({spec.text()}) has a {spec.kernel}x{spec.kernel} kernel but "
                f"{keys[i]!r} is {kernel.shape[2]}x{kernel.shape[3]}"
            )
        if kind == "fc" and len(previous) == 3:
            n_in = network.kernels[i].shape[1] if network.kernels[i] is not None else network.arch[i]
            expected = previous[0] * previous[1] * previous[2]
            if n_in != expected:
                raise InputError(
                    f"{keys[i]!r} takes {n_in} inputs but --cnn / --input_shape give it "
                    f"{'x'.join(map(str, previous))} = {expected} (check pools and padding)"
                )
        if spec is not None:
            previous = shapes[i]
