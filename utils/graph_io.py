"""Networks as graphs, both ways: networkx, GraphML, edge lists and a compact .npz.

Nodes are named "L<layer>_<index>" and carry `layer` (0 = inputs), `index` (position in the layer), `bias`
and, when a partition is given, `module` (-1 for dropped units). Edges carry `weight`; masked edges are left
out. The graph keeps the layer widths (`arch`) so that units without edges survive a round trip.

Formats (`write_graph(network, path, fmt)` / `read_graph(path)`):
- graphml: standard GraphML that networkx, Gephi and yEd read; written by hand here because networkx's
  writer takes seconds on networks with tens of thousands of edges.
- edgelist: one "source target weight" line per edge; arch, activation, biases and modules in "#" header
  lines, so `networkx.read_edgelist(path, data=[("weight", float)])` reads the edges as well.
- npz: arrays arch, edge_source, edge_target (global unit ids, layer by layer), edge_weight, bias (one per
  unit, 0 for inputs), module (optional), activation.
Batch norm after a layer travels with its units in every format, so a round trip gives the same forward
pass and the same folded weights: per unit bn_gamma, bn_beta, bn_mean, bn_var, bn_eps (npz arrays and "#"
header lines over all units, NaN where a unit has no batch norm; GraphML and networkx node attributes on the
units that have one).

Each format can carry `meta`, a small JSON object (export_graph: the network's fingerprint and source; a run's
network.npz: the sha256 of the model.pt it was written from): the npz array `meta`, the edge list's
"# meta" line, the GraphML graph attribute `meta`. `read_graph_meta(path)` reads it back.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np

from utils.atomic_io import atomic_path
from utils.errors import InputError
from utils.unit_names import flat_unit_names

GRAPH_FORMATS = ("graphml", "edgelist", "npz")
_NODE = re.compile(r"^L(\d+)_(\d+)$")


def node_name(layer: int, index: int) -> str:
    return f"L{layer}_{index}"


def _edge_arrays(network):
    """Global (source, target) ids and weights of every kept edge, in block order: three (E,) arrays."""
    offsets = network.offsets
    src, dst, weight = [], [], []
    for block in network.blocks():
        t, s = np.nonzero(block.mask)
        src.append(offsets[block.source] + s)
        dst.append(offsets[block.target] + t)
        weight.append(block.weight[t, s])
    return np.concatenate(src), np.concatenate(dst), np.concatenate(weight).astype(np.float64)


def _unit_biases(network) -> np.ndarray:
    """(N,) bias per unit, 0 for inputs."""
    return np.concatenate([np.zeros(network.arch[0])] + [np.asarray(b, np.float64) for b in network.biases])


NORM_FIELDS = ("gamma", "beta", "mean", "var", "eps")


def _unit_norms(network) -> dict[str, np.ndarray] | None:
    """{"bn_<field>": (N,) float64} over all units, NaN where a unit has no batch norm; None without any."""
    if not any(norm is not None for norm in network.norms):
        return None
    out = {f"bn_{name}": np.full(network.n_units, np.nan) for name in NORM_FIELDS}
    offsets = network.offsets
    for i, norm in enumerate(network.norms):
        if norm is None:
            continue
        units = slice(offsets[i + 1], offsets[i + 1] + network.arch[i + 1])
        for name in NORM_FIELDS:
            out[f"bn_{name}"][units] = np.asarray(norm[name], dtype=np.float64)
    return out


def _layer_norms(arch: list[int], unit_norms: dict | None, origin: str) -> list[dict | None] | None:
    """The per-layer norms (LayeredNetwork.norms) of per-unit arrays from `_unit_norms`, or None."""
    if not unit_norms:
        return None
    n = sum(arch)
    arrays = {}
    for name in NORM_FIELDS:
        values = np.asarray(unit_norms.get(f"bn_{name}", ()), dtype=np.float64).reshape(-1)
        if values.shape[0] != n:
            raise InputError(f"{origin}: {values.shape[0]} bn_{name} values for {n} units")
        arrays[name] = values
    offsets = np.concatenate([[0], np.cumsum(arch)[:-1]])
    norms: list[dict | None] = []
    for i in range(len(arch) - 1):
        units = slice(offsets[i + 1], offsets[i + 1] + arch[i + 1])
        present = ~np.isnan(arrays["gamma"][units])
        if not present.any():
            norms.append(None)
            continue
        if not present.all():
            raise InputError(f"{origin}: batch norm is given for some units of layer {i + 1} only")
        norm = {name: arrays[name][units].astype(np.float32) for name in NORM_FIELDS[:4]}
        norm["eps"] = float(arrays["eps"][units][0])
        norms.append(norm)
    return norms


def _check_partition(network, partition) -> np.ndarray | None:
    if partition is None:
        return None
    partition = np.asarray(partition, dtype=np.int64).reshape(-1)
    if partition.shape[0] != network.n_units:
        raise InputError(
            f"the partition has {partition.shape[0]} entries but the network has {network.n_units} units "
            f"(arch {' '.join(map(str, network.arch))}); give the modules.json found on this network"
        )
    return partition


def _names(network) -> list[str]:
    return [node_name(l, i) for l, width in enumerate(network.arch) for i in range(width)]


def write_graph(network, path, fmt: str, partition=None, meta: dict | None = None) -> Path:
    """Write `network` (a LayeredNetwork) to `path` in `fmt` (graphml | edgelist | npz), atomically.
    meta: a JSON-able dict stored beside the graph (see the module docstring)."""
    if fmt not in GRAPH_FORMATS:
        raise InputError(f"unknown graph format {fmt!r} (choose from {', '.join(GRAPH_FORMATS)})")
    partition = _check_partition(network, partition)
    path = Path(path)
    src, dst, weight = _edge_arrays(network)
    bias = _unit_biases(network)
    norms = _unit_norms(network) or {}
    if fmt == "npz":
        arrays = dict(
            arch=np.asarray(network.arch, dtype=np.int64),
            edge_source=src.astype(np.int32),
            edge_target=dst.astype(np.int32),
            edge_weight=weight.astype(np.float32),
            bias=bias.astype(np.float32),
            activation=np.asarray(network.activation),
        )
        arrays.update(_unit_norms(network) or {})
        if partition is not None:
            arrays["module"] = partition
        arrays["unit_name"] = np.asarray(flat_unit_names(network))
        if meta:
            arrays["meta"] = np.asarray(json.dumps(meta, sort_keys=True))
        with atomic_path(path) as tmp, open(tmp, "wb") as handle:
            np.savez(handle, **arrays)
        return path
    names = np.asarray(_names(network))
    if fmt == "edgelist":
        header = [
            "# sculpt edge list: source target weight; nodes L<layer>_<index>",
            "# arch " + " ".join(map(str, network.arch)),
            f"# activation {network.activation}",
            "# biases " + " ".join(f"{b:.9g}" for b in bias[network.arch[0] :]),
        ]
        header += [f"# {name} " + " ".join(f"{v:.9g}" for v in values) for name, values in norms.items()]
        if partition is not None:
            header.append("# modules " + " ".join(map(str, partition)))
        header.append("# unit_names " + " ".join(flat_unit_names(network)))
        if meta:
            header.append("# meta " + json.dumps(meta, sort_keys=True))
        lines = [f"{a} {b} {w:.9g}" for a, b, w in zip(names[src], names[dst], weight.tolist())]
        text = "\n".join(header + lines) + "\n"
    else:
        text = _graphml_text(network, names, src, dst, weight, bias, partition, norms, meta)
    with atomic_path(path) as tmp:
        Path(tmp).write_text(text)
    return path


def _graphml_text(network, names, src, dst, weight, bias, partition, norms, meta=None) -> str:
    layers = network.layer_of_units()
    index = np.concatenate([np.arange(w) for w in network.arch])
    keys = [
        '<key id="d0" for="node" attr.name="layer" attr.type="int"/>',
        '<key id="d1" for="node" attr.name="index" attr.type="int"/>',
        '<key id="d2" for="node" attr.name="bias" attr.type="double"/>',
        '<key id="d3" for="node" attr.name="module" attr.type="int"/>',
        '<key id="d4" for="edge" attr.name="weight" attr.type="double"/>',
        '<key id="d5" for="graph" attr.name="arch" attr.type="string"/>',
        '<key id="d6" for="graph" attr.name="activation" attr.type="string"/>',
        '<key id="d7" for="node" attr.name="unit_name" attr.type="string"/>',
    ]
    keys += [f'<key id="{name}" for="node" attr.name="{name}" attr.type="double"/>' for name in norms]
    if meta:
        keys.append('<key id="d8" for="graph" attr.name="meta" attr.type="string"/>')
    from xml.sax.saxutils import escape  # writers only: reading network.npz stays light

    out = [
        '<?xml version="1.0" encoding="utf-8"?>',
        '<graphml xmlns="http://graphml.graphdrawing.org/xmlns">',
        *keys,
        '<graph edgedefault="directed">',
        f'<data key="d5">{" ".join(map(str, network.arch))}</data>',
        f'<data key="d6">{escape(network.activation)}</data>',
    ]
    if meta:
        out.append(f'<data key="d8">{escape(json.dumps(meta, sort_keys=True))}</data>')
    module = partition if partition is not None else None
    unit = flat_unit_names(network)
    for u, name in enumerate(names.tolist()):
        extra = f'<data key="d3">{int(module[u])}</data>' if module is not None else ""
        if norms and not np.isnan(norms["bn_gamma"][u]):
            extra += "".join(f'<data key="{name}">{values[u]:.9g}</data>' for name, values in norms.items())
        out.append(
            f'<node id="{name}"><data key="d0">{layers[u]}</data><data key="d1">{index[u]}</data>'
            f'<data key="d2">{bias[u]:.9g}</data>{extra}<data key="d7">{escape(unit[u])}</data></node>'
        )
    out.extend(
        f'<edge source="{a}" target="{b}"><data key="d4">{w:.9g}</data></edge>'
        for a, b, w in zip(names[src].tolist(), names[dst].tolist(), weight.tolist())
    )
    out.append("</graph>\n</graphml>\n")
    return "\n".join(out)


def graph_format_of(path) -> str:
    suffix = Path(path).suffix.lower()
    if suffix == ".graphml":
        return "graphml"
    if suffix in (".edgelist", ".txt"):
        return "edgelist"
    if suffix == ".npz":
        return "npz"
    raise InputError(f"{path}: unknown graph file type {suffix!r}; use .graphml, .edgelist or .npz")


def read_graph(path, with_partition: bool = False):
    """The LayeredNetwork stored in a graph file (format from the suffix); with_partition also returns the
    stored `module` per unit (or None)."""
    from utils.files import check_npz, regular_file, text_limit

    path = Path(path)
    fmt = graph_format_of(path)
    if fmt == "npz":
        check_npz(path, "graph file")
    else:
        regular_file(path, "graph file", text_limit())
    try:
        if fmt == "npz":
            network, partition = _read_npz(path)
        elif fmt == "edgelist":
            network, partition = _read_edgelist(path)
        else:
            import networkx as nx

            graph = nx.read_graphml(path)
            network = network_from_networkx(graph, str(path))
            partition = _partition_from_nodes(graph, network)
    except InputError:
        raise
    except Exception as error:  # parsers raise many kinds on a damaged file
        raise InputError(f"cannot read {path} as a {fmt} graph ({type(error).__name__}: {error})") from None
    return (network, partition) if with_partition else network


def read_graph_meta(path) -> dict:
    """The `meta` object a graph file carries ({} when it has none or it is unreadable). Reads only the
    meta (the npz array, the edge list's header, the GraphML graph attribute), not the edges."""
    path = Path(path)
    try:
        fmt = graph_format_of(path)
        if fmt == "npz":
            with np.load(path, allow_pickle=False) as data:
                text = str(data["meta"]) if "meta" in data.files else ""
        elif fmt == "edgelist":
            text = ""
            with open(path) as handle:
                for line in handle:
                    if not line.startswith("#"):
                        break
                    if line.startswith("# meta "):
                        text = line[len("# meta ") :]
        else:
            from xml.etree.ElementTree import iterparse

            text = ""
            for _, element in iterparse(path):
                if element.tag.endswith("data") and element.get("key") == "d8":
                    text = element.text or ""
                    break
                if element.tag.endswith("node"):
                    break  # graph attributes come before the nodes
        meta = json.loads(text) if text else {}
    except (OSError, ValueError, KeyError, InputError):
        return {}
    return meta if isinstance(meta, dict) else {}


def _read_npz(path: Path):
    with np.load(path, allow_pickle=False) as data:
        arrays = {k: data[k] for k in data.files}
    for name in ("arch", "edge_source", "edge_target", "edge_weight"):
        if name not in arrays:
            raise InputError(f"{path} lacks array {name!r}; it is not a graph written by export_graph")
    for name in ("arch", "edge_source", "edge_target", "module"):
        if name in arrays and (arrays[name].dtype.kind not in "iu" or arrays[name].ndim != 1):
            raise InputError(
                f"{path}: array {name!r} must be 1-D integers, got {arrays[name].dtype} of shape "
                f"{arrays[name].shape}; it is not a graph written by export_graph"
            )
    for name in ("edge_weight", "bias"):
        if name in arrays and (arrays[name].dtype.kind not in "fiu" or arrays[name].ndim != 1):
            raise InputError(f"{path}: array {name!r} must be 1-D numbers, got {arrays[name].dtype}")
    arch = [int(a) for a in arrays["arch"]]
    if len(arch) < 2 or any(a <= 0 for a in arch):
        raise InputError(f"{path}: 'arch' must hold at least two positive widths, got {arch}")
    n_edges = len(arrays["edge_source"])
    if len(arrays["edge_target"]) != n_edges or len(arrays["edge_weight"]) != n_edges:
        raise InputError(f"{path}: edge_source, edge_target and edge_weight differ in length")
    if "bias" in arrays and len(arrays["bias"]) != sum(arch):
        raise InputError(
            f"{path}: arch {' '.join(map(str, arch))} has {sum(arch)} units but 'bias' holds "
            f"{len(arrays['bias'])}; the arch does not match the arrays"
        )
    if "module" in arrays and len(arrays["module"]) != sum(arch):
        raise InputError(f"{path}: arch has {sum(arch)} units but 'module' holds {len(arrays['module'])}")
    bias = arrays.get("bias")
    if bias is None:
        _check_graph_arch(arch, str(path))
        bias = np.zeros(sum(arch))
    activation = str(arrays.get("activation", "relu"))
    norms = {k: v for k, v in arrays.items() if k.startswith("bn_")}
    network = network_from_edges(
        arch,
        arrays["edge_source"],
        arrays["edge_target"],
        arrays["edge_weight"],
        bias,
        activation,
        str(path),
        norms,
    )
    module = arrays.get("module")
    return network, None if module is None else np.asarray(module, dtype=np.int64)


def _read_edgelist(path: Path):
    arch, activation, biases, modules, norms = None, "relu", None, None, {}
    src_names, dst_names, weights = [], [], []
    seen: dict[tuple[str, str], int] = {}
    with open(path) as handle:
        for number, line in enumerate(handle, start=1):
            line = line.strip()
            if not line:
                continue
            if line.startswith("#"):
                words = line[1:].split()
                if words and words[0] == "arch":
                    arch = [int(v) for v in words[1:]]
                elif words and words[0] == "activation" and len(words) > 1:
                    activation = words[1]
                elif words and words[0] == "biases":
                    biases = np.asarray(words[1:], dtype=np.float64)
                elif words and words[0] == "modules":
                    modules = np.asarray(words[1:], dtype=np.int64)
                elif words and words[0].startswith("bn_"):
                    norms[words[0]] = np.asarray(words[1:], dtype=np.float64)
                continue
            parts = line.split()
            if len(parts) not in (2, 3):
                raise InputError(f"{path}: edge line {line!r} is not 'source target [weight]'")
            first = seen.setdefault((parts[0], parts[1]), number)
            if first != number:
                raise InputError(
                    f"{path}:{number}: edge {parts[0]} -> {parts[1]} appears twice (first on line {first}); "
                    "keep one line per edge"
                )
            src_names.append(parts[0])
            dst_names.append(parts[1])
            weights.append(float(parts[2]) if len(parts) == 3 else 1.0)
    if arch is None:
        import networkx as nx

        graph = nx.DiGraph()
        graph.add_weighted_edges_from(zip(src_names, dst_names, weights))
        return network_from_networkx(graph, str(path)), None
    offsets = np.concatenate([[0], np.cumsum(arch)[:-1]])

    def ids(names):
        out = np.empty(len(names), dtype=np.int64)
        for k, name in enumerate(names):
            match = _NODE.match(name)
            if not match:
                raise InputError(f"{path}: node {name!r} is not named L<layer>_<index>")
            layer, index = int(match.group(1)), int(match.group(2))
            if layer >= len(arch) or index >= arch[layer]:
                raise InputError(f"{path}: node {name} lies outside arch {arch}")
            out[k] = offsets[layer] + index
        return out

    bias = np.zeros(sum(arch))
    if biases is not None:
        if len(biases) != sum(arch) - arch[0]:
            raise InputError(f"{path}: {len(biases)} biases for {sum(arch) - arch[0]} non-input units")
        bias[arch[0] :] = biases
    network = network_from_edges(
        arch, ids(src_names), ids(dst_names), np.asarray(weights), bias, activation, str(path), norms
    )
    return network, modules


def _check_graph_arch(arch: list[int], origin: str) -> None:
    """The widths a graph file states: positive, and small enough for the per-layer arrays built from them
    (checked before they are allocated)."""
    from utils.limits import check_arch

    if len(arch) < 2 or any(a <= 0 for a in arch):
        raise InputError(f"{origin}: arch must hold at least two positive widths, got {arch}")
    check_arch(arch, f"the graph {origin}", "the arch it states is implausible for its edges; fix the file")


def _check_unique_edges(arch, source: np.ndarray, target: np.ndarray, origin: str) -> None:
    """InputError naming the first edge that appears twice (its weight would silently be the last one)."""
    if len(source) < 2:
        return
    order = np.lexsort((target, source))
    s, t = source[order], target[order]
    repeated = np.flatnonzero((s[1:] == s[:-1]) & (t[1:] == t[:-1]))
    if len(repeated):
        offsets = np.concatenate([[0], np.cumsum(arch)[:-1]])
        layer_of = lambda u: int(np.searchsorted(offsets, u, side="right") - 1)  # noqa: E731
        u, v = int(s[repeated[0]]), int(t[repeated[0]])
        raise InputError(
            f"{origin}: edge {node_name(layer_of(u), u - offsets[layer_of(u)])} -> "
            f"{node_name(layer_of(v), v - offsets[layer_of(v)])} appears twice; keep one line per edge"
        )


def network_from_edges(arch, source, target, weight, bias, activation="relu", origin="graph", norms=None):
    """A LayeredNetwork from global edge ids (source, target: (E,) ints, units numbered layer by layer),
    their weights (E,), one bias per unit (N,) (inputs' ignored) and optional batch norm per unit
    ({"bn_gamma": (N,), ...} as `_unit_norms` gives, NaN where none)."""
    from utils.network import Block, LayeredNetwork

    arch = [int(a) for a in arch]
    _check_graph_arch(arch, origin)
    n = sum(arch)
    source = np.asarray(source, dtype=np.int64)
    target = np.asarray(target, dtype=np.int64)
    weight = np.asarray(weight, dtype=np.float32)
    if len(source) and (source.min() < 0 or target.min() < 0 or source.max() >= n or target.max() >= n):
        raise InputError(f"{origin}: an edge names a unit outside arch {arch}")
    if not np.isfinite(weight).all():
        k = int(np.flatnonzero(~np.isfinite(weight))[0])
        raise InputError(
            f"{origin}: edge {k} has weight {weight[k]} (NaN or infinite); weights must be finite"
        )
    _check_unique_edges(arch, source, target, origin)
    layer_of = np.repeat(np.arange(len(arch)), arch)
    offsets = np.concatenate([[0], np.cumsum(arch)[:-1]])
    ls, lt = layer_of[source], layer_of[target]
    backwards = np.flatnonzero(lt <= ls)
    if len(backwards):
        k = backwards[0]
        raise InputError(
            f"{origin}: edge {node_name(ls[k], source[k] - offsets[ls[k]])} -> "
            f"{node_name(lt[k], target[k] - offsets[lt[k]])} does not go to a later layer; a layered network "
            "needs layer(source) < layer(target)"
        )
    depth = len(arch) - 1
    weights = [np.zeros((arch[i + 1], arch[i]), np.float32) for i in range(depth)]
    masks = [np.zeros((arch[i + 1], arch[i]), np.uint8) for i in range(depth)]
    skips: dict[tuple[int, int], tuple[np.ndarray, np.ndarray]] = {}
    for s_layer, t_layer in sorted(set(zip(ls.tolist(), lt.tolist()))):
        pick = (ls == s_layer) & (lt == t_layer)
        rows = target[pick] - offsets[t_layer]
        cols = source[pick] - offsets[s_layer]
        if t_layer == s_layer + 1:
            w, m = weights[s_layer], masks[s_layer]
        else:
            shape = (arch[t_layer], arch[s_layer])
            w, m = skips.setdefault(
                (s_layer, t_layer), (np.zeros(shape, np.float32), np.zeros(shape, np.uint8))
            )
        w[rows, cols] = weight[pick]
        m[rows, cols] = 1
    bias = np.asarray(bias, dtype=np.float32).reshape(-1)
    if bias.shape[0] != n:
        raise InputError(f"{origin}: {bias.shape[0]} biases for {n} units")
    biases = [bias[offsets[i + 1] : offsets[i + 1] + arch[i + 1]] for i in range(depth)]
    blocks = [Block(s, t, w, m) for (s, t), (w, m) in sorted(skips.items())]
    layer_norms = _layer_norms(arch, norms, origin)
    return LayeredNetwork(
        arch,
        weights,
        biases,
        masks,
        skips=blocks,
        activation=activation,
        source=origin,
        norms=layer_norms or [],
    )


def network_to_networkx(network, partition=None):
    """A networkx DiGraph of `network` (see the module docstring for attributes)."""
    import networkx as nx

    partition = _check_partition(network, partition)
    graph = nx.DiGraph(arch=" ".join(map(str, network.arch)), activation=network.activation)
    names = _names(network)
    bias = _unit_biases(network)
    layers = network.layer_of_units()
    index = np.concatenate([np.arange(w) for w in network.arch])
    norms = _unit_norms(network) or {}
    unit = flat_unit_names(network)
    for u, name in enumerate(names):
        attrs = {
            "layer": int(layers[u]),
            "index": int(index[u]),
            "bias": float(bias[u]),
            "unit_name": unit[u],
        }
        if partition is not None:
            attrs["module"] = int(partition[u])
        if norms and not np.isnan(norms["bn_gamma"][u]):
            attrs.update({key: float(values[u]) for key, values in norms.items()})
        graph.add_node(name, **attrs)
    src, dst, weight = _edge_arrays(network)
    graph.add_weighted_edges_from(zip((names[s] for s in src), (names[d] for d in dst), weight.tolist()))
    return graph


def network_from_networkx(graph, source: str = "graph"):
    """A LayeredNetwork from a DiGraph. Layers and positions come from node attributes `layer` and `index`
    when every node has them; otherwise a node's layer is the length of the longest path from an input
    (a node without incoming edges) to it, as deepstruct defines it, and its index its order in the graph.
    Edge `weight` defaults to 1, node `bias` to 0; the `arch` graph attribute keeps units without edges."""
    import networkx as nx

    if not graph.is_directed():
        raise InputError(f"{source}: the graph is undirected; a layered network needs directed edges")
    if graph.number_of_nodes() == 0:
        raise InputError(f"{source}: the graph has no nodes")
    if not nx.is_directed_acyclic_graph(graph):
        cycle = nx.find_cycle(graph)
        raise InputError(
            f"{source}: the graph has a cycle ({' -> '.join(str(u) for u, _ in cycle)}); it must be a DAG"
        )
    nodes = list(graph.nodes)
    if all("layer" in graph.nodes[u] and "index" in graph.nodes[u] for u in nodes):
        layer = {u: _node_int(graph, u, "layer", source) for u in nodes}
        index = {u: _node_int(graph, u, "index", source) for u in nodes}
    else:
        layer = {}
        for u in nx.topological_sort(graph):
            preds = list(graph.predecessors(u))
            layer[u] = 1 + max(layer[p] for p in preds) if preds else 0
        index, seen = {}, {}
        for u in nodes:
            index[u] = seen.get(layer[u], 0)
            seen[layer[u]] = index[u] + 1
    n_layers = max(layer.values()) + 1
    arch = [0] * n_layers
    for u in nodes:
        arch[layer[u]] = max(arch[layer[u]], index[u] + 1)
    stored = graph.graph.get("arch")
    if stored:
        declared = [int(v) for v in str(stored).split()]
        if len(declared) == n_layers and all(d >= a for d, a in zip(declared, arch)):
            arch = declared
    if any(a == 0 for a in arch):
        raise InputError(f"{source}: layer {arch.index(0)} has no units; layers must be numbered 0..L")
    offsets = np.concatenate([[0], np.cumsum(arch)[:-1]])
    gid = {u: int(offsets[layer[u]] + index[u]) for u in nodes}
    if len(set(gid.values())) != len(gid):
        raise InputError(f"{source}: two nodes share a layer and index")
    edges = list(graph.edges(data="weight", default=1.0))
    src = np.fromiter((gid[u] for u, _, _ in edges), dtype=np.int64, count=len(edges))
    dst = np.fromiter((gid[v] for _, v, _ in edges), dtype=np.int64, count=len(edges))
    weight = np.fromiter((float(w) for _, _, w in edges), dtype=np.float64, count=len(edges))
    bias = np.zeros(sum(arch))
    for u in nodes:
        bias[gid[u]] = float(graph.nodes[u].get("bias", 0.0))
    activation = str(graph.graph.get("activation", "relu"))
    norms = None
    if any("bn_gamma" in graph.nodes[u] for u in nodes):
        norms = {f"bn_{name}": np.full(sum(arch), np.nan) for name in NORM_FIELDS}
        for u in nodes:
            for key, values in norms.items():
                values[gid[u]] = float(graph.nodes[u].get(key, np.nan))
    return network_from_edges(arch, src, dst, weight, bias, activation, source, norms)


def _node_int(graph, node, key: str, source: str) -> int:
    """A node attribute that must be a small non-negative integer (a float 1.5 is not silently 1)."""
    value = graph.nodes[node][key]
    try:
        number = int(value)
        exact = float(value) == number
    except (TypeError, ValueError, OverflowError):
        exact = False
    if not exact or not 0 <= number < 2**31:
        raise InputError(f"{source}: node {node} has {key} {value!r}; it must be a non-negative integer")
    return number


def _partition_from_nodes(graph, network) -> np.ndarray | None:
    if not all("module" in d for _, d in graph.nodes(data=True)):
        return None
    out = np.full(network.n_units, -1, dtype=np.int64)
    offsets = network.offsets
    for _, data in graph.nodes(data=True):
        out[offsets[int(data["layer"])] + int(data["index"])] = int(data["module"])
    return out
