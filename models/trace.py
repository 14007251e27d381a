"""Any torch module as a unit graph: trace its exported graph (torch.export) into a `LayeredNetwork`.

Units are the output features of linear layers and the output channels of convolutions (plus the input
features / channels and the outputs). Edges follow the data flow between them through the ops in between:

- linear from a feature-for-feature input: the signed weight; from a flattened channel map (several
  features per unit): the L1 norm of the weights of that unit's features, as a conv -> fc boundary is
  read elsewhere (utils/cnn_graph.py); conv: the L1 norm of each kernel slice, (out, in);
- batch norm right after a linear/conv is folded into it (rows scaled by gamma / sqrt(var + eps));
- activations, dropout (eval), identities, pooling, spatial means, flatten and reshape to (batch, -1) pass
  units through (a flattened feature belongs to its channel);
- a residual addition or a concatenation keeps each operand's units: the next layer gets an edge from each
  (skip edges in the layered view). Linear outputs added together with nothing else reading them (a DAG
  whose incoming blocks are summed, each with its own activation or not) are one set of units;
- anything else that depends on the input (attention, products of activations, recurrence, a module called
  twice) raises `TraceError` naming the op and its module.

Layers are longest paths from the input, so a layer may hold the units of several modules (a ResNet's
downsample conv beside a block's first conv); every unit has a name "<module>:<index>" (the qualified name
of the linear / conv whose weights produce it, as in `named_modules()`; "input:<i>" for inputs).

`TracedModel` (models/traced_model.py) keeps the exported graph module: lesions zero a unit's output (after
its folded batch norm) inside the module's own forward; the values of named units are read from that forward.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from models.traced_model import Group, TracedModel
from utils.errors import InputError
from utils.network import Block, LayeredNetwork


class TraceError(InputError):
    """A module whose graph cannot be mapped onto units (one line naming the op and its module)."""


_PASS = {
    "relu", "relu_", "gelu", "sigmoid", "tanh", "silu", "silu_", "hardtanh", "hardtanh_", "leaky_relu",
    "leaky_relu_", "elu", "elu_", "softplus", "hardswish", "hardsigmoid", "mish", "clone", "contiguous",
    "alias", "detach", "_assert_tensor_metadata", "max_pool2d", "avg_pool2d", "max_pool1d", "avg_pool1d",
    "adaptive_avg_pool2d", "adaptive_max_pool2d", "adaptive_avg_pool1d", "lift_fresh_copy", "relu6",
    "celu", "selu", "prelu", "_to_copy", "to",
}  # fmt: skip
_SCALE = {"mul", "div", "mul_", "div_"}  # by a constant (a number or a per-unit tensor) only
_LINEAR = {"linear", "addmm"}
_CONV = {"conv1d", "conv2d", "convolution"}
_BN = {"batch_norm", "_native_batch_norm_legit_no_training", "native_batch_norm"}


def _op(node) -> str:
    """'relu' for aten.relu.default, 'add' for aten.add.Tensor, the function name otherwise."""
    name = getattr(node.target, "__name__", str(node.target))
    return name.split(".")[0]


def _module_of(node) -> str:
    stack = node.meta.get("nn_module_stack") or {}
    if not stack:
        return "<top>"
    path = list(stack.values())[-1][0]
    if not path or path.startswith("_empty_nn_module_stack"):  # an op of the top module's own forward
        return "<top>"
    return path


@dataclass
class _Value:
    """What an input-dependent node carries: sources [(group id, idx (F,) int, -1 = none)] along dim 1,
    and shape (without the batch)."""

    sources: list
    shape: tuple
    chain: int | None = None  # group whose output this is, through single-consumer elementwise ops only


class _Recorder(torch.fx.Interpreter):
    def __init__(self, gm):
        super().__init__(gm)
        self.values = {}

    def run_node(self, n):
        out = super().run_node(n)
        self.values[n.name] = out
        return out


def export_module(module: torch.nn.Module, example: torch.Tensor):
    """torch.export of `module` in eval mode with a dynamic batch dimension (static when that fails)."""
    module = module.eval()
    try:
        return torch.export.export(module, (example,), dynamic_shapes=({0: torch.export.Dim.AUTO},))
    except Exception:  # noqa: BLE001 - some models specialise the batch: export it as given
        try:
            return torch.export.export(module, (example,))
        except Exception as error:  # torch raises many kinds when a module cannot be exported
            raise TraceError(
                f"torch.export cannot capture this module ({type(error).__name__}: "
                f"{str(error).splitlines()[0][:200]}); make its forward exportable"
            ) from None


def load_exported(path) -> torch.export.ExportedProgram:
    """A .pt2 written by torch.export.save (graph and weights; no pickled code is run)."""
    import logging
    import zipfile

    from utils.files import regular_file
    from utils.limits import memory_budget

    path = regular_file(
        Path(path), "exported model", memory_budget() // 2
    )  # a folder, FIFO, device: one line
    if not zipfile.is_zipfile(path):
        raise InputError(
            f"{path} is not a torch.export file (not a zip archive); write it with "
            "torch.export.save(torch.export.export(model.eval(), (example,)), path)"
        )
    quiet = logging.getLogger("torch.export")
    level = quiet.level
    quiet.setLevel(logging.ERROR + 10)  # torch logs a traceback for a damaged archive: our one line says it
    try:
        return torch.export.load(str(path))
    except Exception as error:  # damaged or foreign file
        raise InputError(
            f"{path} is not a readable torch.export file ({type(error).__name__}); write it with "
            "torch.export.save(torch.export.export(model.eval(), (example,)), path)"
        ) from None
    finally:
        quiet.setLevel(level)


def _user_input(gm):
    inputs = [n for n in gm.graph.nodes if n.op == "placeholder"]
    if len(inputs) != 1:
        raise TraceError(f"the module takes {len(inputs)} inputs; tracing needs a module of one tensor input")
    return inputs[0]


def example_for(gm) -> tuple[torch.Tensor, int | None]:
    """A random example input of the exported shape and the fixed batch size (None when dynamic)."""
    val = _user_input(gm).meta.get("val")
    if val is None:
        raise TraceError("the exported graph does not record its input shape; re-export it")
    shape = list(val.shape)
    fixed = shape[0] if isinstance(shape[0], int) else None
    dims = [int(s) if isinstance(s, int) else 2 for s in shape]
    if fixed is not None:
        dims[0] = fixed
    return torch.randn(*dims, generator=torch.Generator().manual_seed(0)), fixed


# -- tracing ---------------------------------------------------------------------------------------------


def trace_module(module: torch.nn.Module, example: torch.Tensor, source: str = "module") -> TracedModel:
    """Trace a module (eval mode) on an example input (batch first) into its unit graph."""
    if not isinstance(module, torch.nn.Module):
        raise InputError(f"expected a torch.nn.Module, got {type(module).__name__}")
    if not isinstance(example, torch.Tensor) or example.dim() < 2:
        raise InputError("the example input must be a tensor (batch, features) or (batch, C, H, W)")
    program = export_module(module, example.detach().float().cpu())
    return trace_program(program, source)


def trace_program(program, source: str = "exported program") -> TracedModel:
    """Trace an ExportedProgram into a TracedModel (see the module docstring)."""
    try:
        gm = program.module()
    except Exception as error:  # noqa: BLE001
        raise TraceError(f"{source}: cannot rebuild the exported module ({type(error).__name__})") from None
    example, fixed = example_for(gm)
    recorder = _Recorder(gm)
    with torch.no_grad():
        try:
            recorder.run(example)
        except Exception as error:  # the graph's own forward failed on an input of its own shape
            raise TraceError(
                f"{source}: the exported module fails on its own input shape ({error})"
            ) from None
    groups, output = _walk(gm, recorder.values, source)
    network = _layered(groups, output, source, tuple(example.shape[1:]))
    traced = TracedModel(gm, groups, network, fixed)
    network.layout["module"] = traced
    return traced


def _walk(gm, values: dict, source: str):
    """Follow the graph: groups of units with their edge blocks, and the output group id."""
    user = _user_input(gm)
    x = values[user.name]
    width = int(x.shape[1])
    groups = [Group("input", "input", width, user.name, user.name, np.zeros(width))]
    carried: dict[str, _Value] = {user.name: _Value([(0, np.arange(width))], tuple(x.shape[1:]))}
    used_modules: dict[str, str] = {}
    merged_into: dict[int, int] = {}

    def value(arg):
        return carried.get(arg.name) if isinstance(arg, torch.fx.Node) else None

    output = None
    for node in gm.graph.nodes:
        if node.op == "output":
            outs = [a for a in torch.utils._pytree.tree_leaves(node.args) if isinstance(a, torch.fx.Node)]
            got = [carried[a.name] for a in outs if a.name in carried]
            if len(got) != 1:
                raise TraceError(f"{source}: the module returns {len(got)} input-dependent outputs; need one")
            srcs = got[0].sources
            if len(srcs) != 1 or not _identity(srcs[0][1], groups[srcs[0][0]].width):
                raise TraceError(f"{source}: the output is not the output of one linear or conv layer")
            output = srcs[0][0]
            continue
        if node.op != "call_function":
            continue
        ins = [
            value(a)
            for a in torch.utils._pytree.tree_leaves((node.args, node.kwargs))
            if isinstance(a, torch.fx.Node)
        ]
        ins = [v for v in ins if v is not None]
        if not ins:
            continue  # constants only (weights, masks): their values are recorded
        op, where = _op(node), _module_of(node)
        out = values.get(node.name)
        if out is None or isinstance(out, (int, float, bool, torch.SymInt, torch.SymFloat)):
            continue  # sizes (x.size(0) for a reshape) and checks: no units flow through them
        shape = tuple(out.shape[1:]) if isinstance(out, torch.Tensor) else None
        first = value(node.args[0]) if node.args else None
        if op in _LINEAR or op in _CONV:
            if op == "addmm":
                raise TraceError(
                    f"{source}: op {op} in module {where} (a matmul with bias) is not a module call"
                )
            if op in _CONV and (len(node.args) > 6 and node.args[6] not in (1, None) or _groups(node) != 1):
                raise TraceError(
                    f"{source}: grouped convolution in module {where} cannot be traced to channels"
                )
            param = _param_of(node.args[1])
            if param in used_modules:
                raise TraceError(
                    f"{source}: the weight {param} of module {where} is used twice (weight sharing other "
                    "than "
                    "convolution, or recurrence)"
                )
            used_modules[param] = node.name
            weight = values[node.args[1].name].detach().double().numpy()
            bias_node = node.args[2] if len(node.args) > 2 else node.kwargs.get("bias")
            bias = (
                values[bias_node.name].detach().double().numpy()
                if isinstance(bias_node, torch.fx.Node)
                else np.zeros(weight.shape[0])
            )
            kind = "fc" if op in _LINEAR else "conv"
            if kind == "conv":
                edge = np.abs(weight).reshape(weight.shape[0], weight.shape[1], -1).sum(axis=2)
            else:
                edge = weight
            g = Group(where, kind, int(weight.shape[0]), node.name, node.name, bias)
            for src, idx in first.sources:
                block = np.zeros((g.width, groups[src].width))
                if kind == "fc" and _identity(idx, groups[src].width):
                    block += edge
                else:
                    keep = idx >= 0
                    np.add.at(block.T, idx[keep], np.abs(edge[:, keep]).T)
                g.blocks[src] = g.blocks.get(src, 0) + block
            groups.append(g)
            gid = len(groups) - 1
            carried[node.name] = _Value(
                [(gid, np.arange(g.width))], shape, gid if len(node.users) == 1 else None
            )
            continue
        if op in _BN:
            training = node.args[5] if op == "batch_norm" else (op == "native_batch_norm" and node.args[5])
            if training:
                raise TraceError(
                    f"{source}: batch norm {where} runs in training mode; export the model after model.eval()"
                )
            gid = first.chain
            group = groups[gid] if gid is not None else None
            if group is None or group.point != node.args[0].name:
                raise TraceError(
                    f"{source}: batch norm {where} does not follow a linear or conv directly; it cannot be "
                    "folded"
                )
            gamma, beta, mean, var = (
                values[a.name].detach().double().numpy() if isinstance(a, torch.fx.Node) else None
                for a in node.args[1:5]
            )
            eps = float(node.args[7] if op == "batch_norm" else node.args[6])
            gamma = np.ones(group.width) if gamma is None else gamma
            beta = np.zeros(group.width) if beta is None else beta
            scale = gamma / np.sqrt(var + eps)
            for src, block in group.blocks.items():
                group.blocks[src] = block * (np.abs(scale) if group.kind == "conv" else scale)[:, None]
            group.bias = (group.bias - mean) * scale + beta
            group.point = group.act = node.name
            carried[node.name] = _Value(first.sources, shape, gid if len(node.users) == 1 else None)
            continue
        if op == "getitem":
            if node.args[1] != 0:
                continue  # pooling indices
            carried[node.name] = _Value(first.sources, shape, None)
            continue
        if op == "dropout" or op == "native_dropout":
            if node.args[2] if len(node.args) > 2 else False:
                raise TraceError(
                    f"{source}: dropout {where} runs in training mode; export after model.eval()"
                )
            op = "clone"
        if op in _PASS or (op in _SCALE and len(ins) == 1 and value(node.args[0]) is not None):
            chain = first.chain if first is not None and len(node.users) == 1 else None
            if first is None:
                raise TraceError(f"{source}: op {op} in module {where} has its input in an unexpected place")
            if chain is not None and groups[chain].act == node.args[0].name:
                groups[chain].act = node.name
            carried[node.name] = _Value(first.sources, shape, chain)
            continue
        if op in ("flatten", "view", "reshape", "_unsafe_view"):
            carried[node.name] = _Value(_flattened(first, shape, op, where, source), shape, None)
            continue
        if op == "mean" and first is not None and len(first.shape) >= 2 and len(shape or ()) == 1:
            carried[node.name] = _Value(first.sources, shape, None)
            continue
        if op in ("add", "add_") and len(ins) == 2:
            a, b = value(node.args[0]), value(node.args[1])
            if a.shape != b.shape:
                raise TraceError(f"{source}: addition in module {where} broadcasts two activations")
            if (
                a.chain is not None
                and b.chain is not None
                and a.chain != b.chain
                and groups[a.chain].kind in ("fc", "merged")
                and groups[b.chain].kind in ("fc", "merged")
                and groups[a.chain].width == groups[b.chain].width
            ):
                gid = _merge(groups, min(a.chain, b.chain), max(a.chain, b.chain), node.name, merged_into)
                carried[node.name] = _Value(
                    [(gid, np.arange(groups[gid].width))], shape, gid if len(node.users) == 1 else None
                )
                continue
            carried[node.name] = _Value(a.sources + b.sources, shape, None)
            continue
        if op == "cat":
            parts = node.args[0]
            dim = node.args[1] if len(node.args) > 1 else 0
            if dim not in (1, -len(shape) if shape else 1):
                raise TraceError(f"{source}: concatenation in module {where} is not along features/channels")
            sources, start, total = [], 0, shape[0]
            for part in parts:
                v = value(part)
                size = int(values[part.name].shape[1])
                if v is not None:
                    for src, idx in v.sources:
                        full = np.full(total, -1, dtype=np.int64)
                        full[start : start + size] = idx
                        sources.append((src, full))
                start += size
            carried[node.name] = _Value(sources, shape, None)
            continue
        raise TraceError(
            f"{source}: op {op} in module {where} cannot be mapped onto units (supported: linear, conv, "
            "batch "
            "norm, activations, dropout, pooling, flatten, residual additions, concatenation; not attention, "
            "products of activations or recurrence)"
        )
    for g in groups:
        g.blocks = {merged_into.get(s, s): b for s, b in g.blocks.items()}
    return groups, output


def _groups(node) -> int:
    op = _op(node)
    if op == "convolution":
        return int(node.args[8]) if len(node.args) > 8 else 1
    return int(node.args[6]) if len(node.args) > 6 else 1


def _param_of(node) -> str:
    """The parameter a weight comes from (itself, or the first one under a mask product)."""
    seen = [node]
    while seen:
        current = seen.pop(0)
        if current.op in ("get_attr", "placeholder"):
            return str(current.target)
        seen.extend(current.all_input_nodes)
    return node.name


def _identity(idx: np.ndarray, width: int) -> bool:
    return len(idx) == width and bool(np.array_equal(idx, np.arange(width)))


def _flattened(first: _Value, shape, op: str, where: str, source: str) -> list:
    if shape is None or first is None:
        raise TraceError(f"{source}: {op} in module {where} cannot be followed")
    if len(shape) == 1:
        positions = int(np.prod(first.shape[1:])) if len(first.shape) > 1 else 1
        if positions * first.shape[0] != shape[0]:
            raise TraceError(f"{source}: {op} in module {where} mixes the batch with features")
        return [(src, np.repeat(idx, positions)) for src, idx in first.sources]
    if shape[0] == first.shape[0] and int(np.prod(shape)) == int(np.prod(first.shape)):
        return first.sources  # channels kept, positions reshaped
    raise TraceError(f"{source}: {op} to {tuple(shape)} in module {where} moves features across channels")


def _merge(groups: list[Group], keep: int, other: int, node: str, merged_into: dict) -> int:
    """Linear outputs summed with nothing else reading them: one set of units (edges of both)."""
    a, b = groups[keep], groups[other]
    for src, block in b.blocks.items():
        a.blocks[src] = a.blocks.get(src, 0) + block
    a.bias = a.bias + b.bias
    a.kind = "merged" if a.kind in ("fc", "merged") else a.kind
    a.point = a.act = node
    b.width = 0
    merged_into[other] = keep
    for src, target in list(merged_into.items()):
        if target == other:
            merged_into[src] = keep
    return keep


def _layered(groups: list[Group], output: int, source: str, input_shape: tuple) -> LayeredNetwork:
    """The LayeredNetwork of the groups (layer = longest path from the input)."""
    live = [g for g in range(len(groups)) if groups[g].width > 0]
    for g in live[1:]:
        groups[g].layer = 1 + max((groups[s].layer for s in groups[g].blocks), default=0)
    top = groups[output].layer
    at_top = [g for g in live if groups[g].layer == top]
    if at_top != [output]:
        names = ", ".join(groups[g].name for g in at_top if g != output)
        raise TraceError(f"{source}: {names} compute beside the output layer but do not feed it")
    layers = [[g for g in live if groups[g].layer == l] for l in range(top + 1)]
    if any(not members for members in layers):
        raise TraceError(f"{source}: a layer of the traced graph is empty")
    arch = [sum(groups[g].width for g in members) for members in layers]
    start = {}
    for members in layers:
        offset = 0
        for g in members:
            start[g] = offset
            offset += groups[g].width
    full = {}
    for t, members in enumerate(layers):
        for g in members:
            for s, block in groups[g].blocks.items():
                sl = groups[s].layer
                key = (sl, t)
                if key not in full:
                    full[key] = np.zeros((arch[t], arch[sl]))
                full[key][start[g] : start[g] + groups[g].width, start[s] : start[s] + groups[s].width] += (
                    block
                )
    weights, masks, biases, skips, kinds = [], [], [], [], []
    for i in range(top):
        w = full.get((i, i + 1), np.zeros((arch[i + 1], arch[i])))
        weights.append(w)
        masks.append(w != 0)
        biases.append(np.concatenate([groups[g].bias for g in layers[i + 1]]))
        kinds.append("conv" if any(groups[g].kind == "conv" for g in layers[i + 1]) else "fc")
    for (s, t), w in sorted(full.items()):
        if t > s + 1 and np.any(w != 0):
            skips.append(Block(s, t, w, w != 0))
    names = [[f"{groups[g].name}:{u}" for g in members for u in range(groups[g].width)] for members in layers]
    layout = {"input_shape": list(input_shape), "unit_names": names, "traced": True}
    return LayeredNetwork(
        arch, weights, biases, masks, kinds=kinds, skips=skips, source=source, layout=layout
    )
