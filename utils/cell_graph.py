"""Cell graphs: a layered DAG whose nodes are small modules ("cells"), read from GraphML or an edge list.

A node carries a `cell` attribute, a layer list in the `--cnn` vocabulary (`conv:8:3`, `conv:8:3 pool:2`,
`fc:16`); an edge A -> B says that A's output is summed into B's input. In an edge list the cells are
header lines `# cell <node> <spec>` and the edges are `<source> <target>` lines. A graph file whose nodes
carry no `cell` attribute is a unit-level DAG (utils/graph_io.py), not a cell graph: `read_cell_graph`
returns None for it. Plain Python + networkx; shapes are checked when a model is built (models/cells.py).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

from utils.cnn_spec import LayerSpec, parse_cnn, spec_text
from utils.errors import InputError


@dataclass(frozen=True)
class CellGraph:
    """nodes: cell ids in topological order; specs[i]: cell i's layers; edges: (source, target) indices
    into nodes, sorted. source: the file it was read from."""

    nodes: tuple[str, ...]
    specs: tuple[tuple[LayerSpec, ...], ...]
    edges: tuple[tuple[int, int], ...]
    source: str = ""

    @property
    def n_cells(self) -> int:
        return len(self.nodes)

    @cached_property
    def _neighbours(self) -> tuple[list[list[int]], list[list[int]]]:
        """(predecessors, successors) of every cell, built once: a forward pass asks for them per cell."""
        preds: list[list[int]] = [[] for _ in self.nodes]
        succs: list[list[int]] = [[] for _ in self.nodes]
        for s, t in self.edges:
            preds[t].append(s)
            succs[s].append(t)
        return preds, succs

    def predecessors(self, i: int) -> list[int]:
        return self._neighbours[0][i]

    def successors(self, i: int) -> list[int]:
        return self._neighbours[1][i]

    @property
    def inputs(self) -> list[int]:
        """Cells with no predecessor: they read the stem."""
        return [i for i in range(self.n_cells) if not self.predecessors(i)]

    @property
    def outputs(self) -> list[int]:
        """Cells with no successor: they feed the head."""
        return [i for i in range(self.n_cells) if not self.successors(i)]

    def depths(self) -> list[int]:
        """(n_cells,) longest-path depth of each cell: 1 for input cells (0 is the network input)."""
        depth = [1] * self.n_cells
        for i in range(self.n_cells):  # nodes are in topological order
            for p in self.predecessors(i):
                depth[i] = max(depth[i], depth[p] + 1)
        return depth

    def kind(self) -> str:
        """ "conv" when the cells are convolutional, "fc" when they are dense."""
        return self.specs[0][0].kind

    def text(self) -> str:
        """The graph as an edge list (read back by `parse_cell_edgelist`), e.g. for a checkpoint."""
        lines = [f"# cell {node} {spec_text(list(spec))}" for node, spec in zip(self.nodes, self.specs)]
        lines += [f"{self.nodes[s]} {self.nodes[t]}" for s, t in self.edges]
        return "\n".join(lines) + "\n"


def read_cell_graph(path) -> CellGraph | None:
    """The cell graph in `path` (.graphml, .edgelist/.txt), or None when its nodes carry no `cell`
    attribute. Raises InputError naming the file and the problem (cycle, missing or bad cell spec)."""
    from utils.files import read_text, regular_file

    path = regular_file(Path(path), "--structure file")
    suffix = path.suffix.lower()
    if suffix == ".graphml":
        import networkx as nx

        try:
            graph = nx.read_graphml(path)
        except Exception as error:  # the parser raises many kinds on a damaged file
            raise InputError(f"cannot read {path} as GraphML ({type(error).__name__}: {error})") from None
        cells = {str(n): data["cell"] for n, data in graph.nodes(data=True) if "cell" in data}
        if not cells:
            return None
        nodes = [str(n) for n in graph.nodes]
        edges = [(str(s), str(t)) for s, t in graph.edges]
        return build_cell_graph(nodes, cells, edges, str(path))
    if suffix in (".edgelist", ".txt"):
        text = read_text(path, "--structure file")
        if not any(line.split()[:2] == ["#", "cell"] for line in text.splitlines()):
            return None
        return parse_cell_edgelist(text, str(path))
    return None


def parse_cell_edgelist(text: str, source: str = "") -> CellGraph:
    """A cell graph from edge-list text: `# cell <node> <spec...>` header lines, `<src> <dst>` edges."""
    cells: dict[str, str] = {}
    nodes: list[str] = []
    edges: list[tuple[str, str]] = []
    for number, raw in enumerate(text.splitlines(), start=1):
        words = raw.split()
        if not words:
            continue
        if words[0].startswith("#"):
            if words[:2] == ["#", "cell"]:
                if len(words) < 4:
                    raise InputError(f"{source}:{number}: write '# cell <node> <spec>', got {raw.strip()!r}")
                if words[2] in cells:
                    raise InputError(f"{source}:{number}: cell {words[2]!r} is declared twice")
                cells[words[2]] = " ".join(words[3:])
                nodes.append(words[2])
            continue
        if len(words) != 2:
            raise InputError(f"{source}:{number}: an edge line is '<source> <target>', got {raw.strip()!r}")
        edges.append((words[0], words[1]))
    for node in (n for edge in edges for n in edge):
        if node not in nodes:
            nodes.append(node)  # an undeclared node: build_cell_graph names it
    return build_cell_graph(nodes, cells, edges, source)


def build_cell_graph(nodes: list[str], cells: dict[str, str], edges: list[tuple[str, str]], source: str):
    """Validate and order a cell graph: every node has a parsable spec, no self-loop or cycle, one kind of
    cell (all conv or all fc), and at least one cell."""
    import networkx as nx

    where = source or "the cell graph"
    missing = [n for n in nodes if n not in cells]
    if missing:
        raise InputError(f"{where}: node {missing[0]!r} has no cell spec; give every node a `cell` attribute")
    if not nodes:
        raise InputError(f"{where}: the graph has no cells")
    specs: dict[str, tuple[LayerSpec, ...]] = {}
    for node in nodes:
        try:
            specs[node] = tuple(parse_cnn(cells[node]))
        except InputError as error:
            raise InputError(f"{where}: cell {node!r} spec {cells[node]!r} does not parse: {error}") from None
    graph = nx.DiGraph()
    graph.add_nodes_from(nodes)
    graph.add_edges_from(edges)
    if not nx.is_directed_acyclic_graph(graph):
        cycle = " -> ".join(str(s) for s, _ in nx.find_cycle(graph))
        raise InputError(f"{where}: the cell graph has a cycle ({cycle}); a cell network needs a DAG")
    kinds = {node: specs[node][0].kind for node in nodes}
    for node in nodes:
        if any(s.kind != kinds[node] for s in specs[node]):
            raise InputError(f"{where}: cell {node!r} mixes conv and fc layers; use one kind per cell")
    first = nodes[0]
    for node in nodes:
        if kinds[node] != kinds[first]:
            raise InputError(
                f"{where}: cells {first!r} ({kinds[first]}) and {node!r} ({kinds[node]}) are of different "
                "kinds; a cell network is all conv cells or all fc cells"
            )
    position = {node: k for k, node in enumerate(nodes)}
    order = list(nx.lexicographical_topological_sort(graph, key=position.__getitem__))
    index = {node: i for i, node in enumerate(order)}
    ordered_edges = tuple(sorted({(index[s], index[t]) for s, t in edges}))
    return CellGraph(tuple(order), tuple(specs[n] for n in order), ordered_edges, source)


def is_cell_state(state: dict) -> bool:
    """Whether a state_dict was saved from a cell network (models/cells.py keeps its graph in a buffer)."""
    return isinstance(state, dict) and "cell_graph_text" in state and "cell_io" in state


@dataclass(frozen=True)
class CellPlan:
    """The shapes of a cell network before anything is allocated (models/cells.py builds from it).

    stem_width: channels (or units) of the stem; in_shapes / out_shapes[i]: cell i's input and output
    shape ((C, H, W) or (N,)); head_in: features the head reads; n_weights: weights of every layer (kernel
    entries counted one by one); floats_per_sample: activation values of one input through the network."""

    stem_width: int
    in_shapes: tuple[tuple[int, ...], ...]
    out_shapes: tuple[tuple[int, ...], ...]
    head_in: int
    n_weights: int
    floats_per_sample: int


def numel(shape) -> int:
    """Values in one sample of `shape`."""
    n = 1
    for s in shape:
        n *= int(s)
    return n


def shape_text(shape) -> str:
    return "x".join(str(s) for s in shape)


def plan_cells(graph: CellGraph, input_shape, n_outputs: int) -> CellPlan:
    """The shapes and sizes of `graph` as a network on inputs of `input_shape` with `n_outputs` outputs.
    InputError naming the cells when input cells want different widths, summed inputs differ in shape, a
    cell's layers do not fit its input, a node id has a '.', or conv cells get no image shape."""
    from utils.cnn_spec import layer_shapes

    where = graph.source or "the cell graph"
    input_shape = tuple(int(s) for s in input_shape)
    conv = graph.kind() == "conv"
    if conv and len(input_shape) != 3:
        raise InputError(f"{where}: conv cells need image inputs (C H W); give --input_shape")
    for node in graph.nodes:
        if "." in node or not node:
            raise InputError(f"{where}: cell id {node!r} must be non-empty and have no '.'")
    first = graph.inputs[0]
    width = graph.specs[first][0].size
    for i in graph.inputs[1:]:
        if graph.specs[i][0].size != width:
            raise InputError(
                f"{where}: input cells {graph.nodes[first]!r} ({width}) and {graph.nodes[i]!r} "
                f"({graph.specs[i][0].size}) read the same stem but want different widths; give input "
                "cells one width"
            )
    stem_shape = (width, *input_shape[1:]) if conv else (width,)
    weights = input_shape[0] * width * 9 if conv else numel(input_shape) * width
    floats = numel(stem_shape)
    in_shapes, out_shapes = [], []
    for i, node in enumerate(graph.nodes):
        preds = graph.predecessors(i)
        shape = stem_shape if not preds else out_shapes[preds[0]]
        for p in preds[1:]:
            if out_shapes[p] != shape:
                raise InputError(
                    f"{where}: cells {graph.nodes[preds[0]]!r} ({shape_text(shape)}) and {graph.nodes[p]!r} "
                    f"({shape_text(out_shapes[p])}) both feed {node!r}, but their outputs differ in shape; "
                    "summed inputs need equal widths"
                )
        specs = list(graph.specs[i])
        try:
            shapes = layer_shapes(specs, shape) if conv else [(s.size,) for s in specs]
        except InputError as error:
            raise InputError(f"{where}: cell {node!r} on input {shape_text(shape)}: {error}") from None
        previous = shape[0]
        for spec, out in zip(specs, shapes):
            weights += previous * spec.size * (spec.kernel * spec.kernel if conv else 1)
            floats += numel(out)
            previous = spec.size
        in_shapes.append(shape)
        out_shapes.append(shapes[-1])
    head_in = sum(out_shapes[i][0] for i in graph.outputs)
    weights += head_in * int(n_outputs)
    return CellPlan(width, tuple(in_shapes), tuple(out_shapes), head_in, weights, floats)
