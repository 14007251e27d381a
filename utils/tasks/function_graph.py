"""Boolean tasks as function graphs: load, validate, evaluate into truth tables, derive the ground truth.

A function graph (a readable JSON file, format in datasets/README.md) has `n_inputs` input nodes x0..x{n-1},
sub-function nodes arranged in levels (each a named boolean gate of input indices or earlier node names) and
an ordered list of output node names. Evaluating it over every input row gives the task's truth table; its
structure gives the ground truth that detected modules are scored against.

Conventions shared with the published study: rows are in counting order with x0 the MOST significant bit;
a "table" gate pattern such as "0011" lists its children's values in child order (first child first).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from utils.atomic_io import write_text_atomic
from utils.errors import InputError

REPO_ROOT = Path(__file__).resolve().parents[2]
DATASETS_DIR = REPO_ROOT / "datasets"
GRAPHS_DIR = DATASETS_DIR / "graphs"

# Reference models use another folder name for the family whose tables live in increasing_reuse_non_separable.
FAMILY_ALIASES = {"non_separable_increasing_use": "increasing_reuse_non_separable"}
# Search order when the caller's family has no graph for a modularity (4 1 2 16 exists in two families).
FAMILY_ORDER = (
    "exemplar",
    "increasing_reuse_non_separable",
    "input_overlap_exp",
    "increasing_hierarchical_levels",
)

UNARY_GATES = ("not", "identity")
MULTI_GATES = ("and", "or", "xor", "nand", "nor", "xnor")
BUILTIN_GATES = UNARY_GATES + MULTI_GATES + ("table",)
MAX_INPUTS = 24  # 2^24 rows x n bytes is already ~400 MB; larger tables are not trainable as full tables
MAX_TABLE_ARITY = 16
GRAPH_KEYS = {"family", "modularity", "n_inputs", "description", "tables", "levels", "outputs"}
NODE_KEYS = {"name", "gate", "children", "ones", "comment"}
GENERATE_HINT = "python3 main.py --experiment generate_task --graph my.json --dataset_path DIR"


# ----------------------------------------------------------------------------------------------- graph


@dataclass(frozen=True)
class Node:
    """One sub-function node. `children` are input indices (int) or names of earlier nodes (str).

    `ones` is the set of child patterns on which a table gate is 1 (None for named gates); `level` is the
    1-based level of the file the node was listed in.
    """

    name: str
    gate: str
    children: tuple[int | str, ...]
    level: int
    ones: tuple[str, ...] | None = None


@dataclass(frozen=True)
class SubFunction:
    """A sub-function of the ground truth (unary not/identity nodes are folded into what they copy).

    depth:        1 + the deepest sub-function among its children (inputs have depth 0)
    children:     input indices and sub-function names it reads (unary chains resolved)
    inputs:       sorted input indices it depends on (transitively)
    input_groups: indices into GroundTruth.input_groups of the first-level sub-functions feeding it
    outputs:      output indices whose value depends on it
    """

    name: str
    gate: str
    depth: int
    children: tuple[int | str, ...]
    inputs: tuple[int, ...]
    input_groups: tuple[int, ...]
    outputs: tuple[int, ...]


@dataclass(frozen=True)
class GroundTruth:
    """What a network trained on the task should sculpt itself into.

    input_groups:  per first-level sub-function (depth 1, file order), the sorted inputs feeding it;
                   groups may overlap or repeat (input_overlap_exp)
    output_groups: output indices grouped by the sub-function that computes them, up to negation/identity
                   (y1 = NOT y0 groups with y0), groups ordered by their first output
    levels:        sub-functions by depth (levels[0] is depth 1)
    output_nodes:  per output, the sub-function name computing it (or an input index for a copied input)
    """

    n_inputs: int
    n_outputs: int
    input_groups: tuple[tuple[int, ...], ...]
    output_groups: tuple[tuple[int, ...], ...]
    levels: tuple[tuple[SubFunction, ...], ...]
    output_nodes: tuple[int | str, ...]
    modules_per_level: tuple[int, ...] = field(init=False)

    def __post_init__(self):
        object.__setattr__(self, "modules_per_level", tuple(len(level) for level in self.levels))

    def to_dict(self) -> dict:
        """JSON-ready form (tuples become lists)."""
        return {
            "n_inputs": self.n_inputs,
            "n_outputs": self.n_outputs,
            "input_groups": [list(g) for g in self.input_groups],
            "output_groups": [list(g) for g in self.output_groups],
            "modules_per_level": list(self.modules_per_level),
            "output_nodes": list(self.output_nodes),
            "levels": [[_subfunction_dict(s) for s in level] for level in self.levels],
        }


def _subfunction_dict(sub: SubFunction) -> dict:
    return {
        "name": sub.name,
        "gate": sub.gate,
        "depth": sub.depth,
        "children": list(sub.children),
        "inputs": list(sub.inputs),
        "input_groups": list(sub.input_groups),
        "outputs": list(sub.outputs),
    }


class FunctionGraph:
    """A validated function graph. Build with `from_file` / `from_dict`; invalid graphs raise InputError."""

    def __init__(
        self,
        n_inputs: int,
        nodes: list[Node],
        outputs: list[str],
        family: str = "custom",
        modularity: tuple[int, ...] | None = None,
        description: str = "",
        tables: dict[str, tuple[str, ...]] | None = None,
        source: str = "function graph",
    ):
        self.n_inputs = n_inputs
        self.nodes = tuple(nodes)
        self.outputs = tuple(outputs)
        self.family = family
        self.description = description
        self.tables = dict(tables or {})
        self.source = source
        self._by_name = {node.name: node for node in self.nodes}
        self._check_all_used()
        # Without an explicit modularity the task is named [n, sub-functions per depth..., m].
        self.modularity = tuple(modularity) if modularity else self._derived_modularity()

    # -- construction ------------------------------------------------------------------------------

    @classmethod
    def from_file(cls, path: str | os.PathLike) -> FunctionGraph:
        """Read and validate a graph JSON file; a missing or broken file raises InputError."""
        path = Path(path)
        fix = "fix: point --graph at a function-graph JSON file (format in datasets/README.md)"
        if not path.is_file():
            raise InputError(f"graph file {path} not found; {fix}")
        try:
            data = json.loads(path.read_text())
        except (OSError, UnicodeDecodeError) as error:
            raise InputError(f"graph file {path} unreadable ({error}); {fix}") from None
        except json.JSONDecodeError as error:
            raise InputError(f"graph file {path} is not valid JSON ({error}); {fix}") from None
        return cls.from_dict(data, source=f"graph file {path}")

    @classmethod
    def from_dict(cls, data: dict, source: str = "function graph") -> FunctionGraph:
        """Validate the graph dict (the JSON file's content) and build the graph."""
        return _parse_graph(data, source)

    def to_dict(self) -> dict:
        """The JSON form, round-trippable through `from_dict`."""
        data: dict = {"family": self.family, "modularity": list(self.modularity), "n_inputs": self.n_inputs}
        if self.description:
            data["description"] = self.description
        if self.tables:
            data["tables"] = {name: list(ones) for name, ones in self.tables.items()}
        levels: list[list[dict]] = [[] for _ in range(max(node.level for node in self.nodes))]
        for node in self.nodes:
            entry: dict = {"name": node.name, "gate": node.gate, "children": list(node.children)}
            if node.gate == "table":
                entry["ones"] = list(node.ones or ())
            levels[node.level - 1].append(entry)
        data["levels"] = levels
        data["outputs"] = list(self.outputs)
        return data

    def save(self, path: str | os.PathLike) -> Path:
        """Write the graph as readable JSON (one node per line), atomically."""
        write_text_atomic(path, format_graph_json(self.to_dict()))
        return Path(path)

    def node(self, name: str) -> Node:
        return self._by_name[name]

    # -- evaluation --------------------------------------------------------------------------------

    def truth_table(self) -> tuple[np.ndarray, np.ndarray]:
        """Evaluate every input row.

        Returns inputs uint8 (2^n, n) in counting order (x0 most significant) and outputs uint8 (2^n, m).
        """
        inputs = all_input_rows(self.n_inputs)
        columns = [inputs[:, i].astype(bool) for i in range(self.n_inputs)]  # each (2^n,)
        values: dict[str, np.ndarray] = {}
        for node in self.nodes:
            args = [columns[c] if isinstance(c, int) else values[c] for c in node.children]
            values[node.name] = _evaluate_gate(node, args)
        outputs = np.stack([values[name] for name in self.outputs], axis=1).astype(np.uint8)
        return inputs, outputs

    # -- ground truth ------------------------------------------------------------------------------

    def ground_truth(self) -> GroundTruth:
        """Input groups, output groups and sub-functions per depth (see GroundTruth)."""
        subs = self._sub_function_nodes()  # name -> resolved children, in file order
        depth, support = self._depth_and_support(subs)
        first_level = [name for name in subs if depth[name] == 1]
        input_groups = tuple(support[name] for name in first_level)
        feeding = self._first_level_feeding(subs, first_level)
        output_nodes = tuple(self._resolve(name) for name in self.outputs)
        served = self._outputs_served(subs, output_nodes)
        max_depth = max(depth.values(), default=0)
        levels = tuple(
            tuple(
                SubFunction(
                    name=name,
                    gate=self._by_name[name].gate,
                    depth=depth[name],
                    children=subs[name],
                    inputs=support[name],
                    input_groups=feeding[name],
                    outputs=served[name],
                )
                for name in subs
                if depth[name] == d
            )
            for d in range(1, max_depth + 1)
        )
        return GroundTruth(
            n_inputs=self.n_inputs,
            n_outputs=len(self.outputs),
            input_groups=input_groups,
            output_groups=_group_outputs(output_nodes),
            levels=levels,
            output_nodes=output_nodes,
        )

    def _resolve(self, ref: int | str) -> int | str:
        """Follow not/identity chains: a negated or copied value is the same sub-function."""
        while isinstance(ref, str) and self._by_name[ref].gate in UNARY_GATES:
            ref = self._by_name[ref].children[0]
        return ref

    def _sub_function_nodes(self) -> dict[str, tuple[int | str, ...]]:
        """Non-unary nodes in file order -> their children with unary chains resolved (duplicates dropped)."""
        subs = {}
        for node in self.nodes:
            if node.gate not in UNARY_GATES:
                subs[node.name] = tuple(dict.fromkeys(self._resolve(c) for c in node.children))
        return subs

    @staticmethod
    def _depth_and_support(subs):
        """Depth (inputs 0) and sorted input support of every sub-function; file order is topological."""
        depth: dict[str, int] = {}
        support: dict[str, tuple[int, ...]] = {}
        for name, children in subs.items():
            depth[name] = 1 + max((0 if isinstance(c, int) else depth[c]) for c in children)
            inputs: set[int] = set()
            for c in children:
                inputs.update([c] if isinstance(c, int) else support[c])
            support[name] = tuple(sorted(inputs))
        return depth, support

    @staticmethod
    def _first_level_feeding(subs, first_level) -> dict[str, tuple[int, ...]]:
        """For each sub-function, the indices of the first-level sub-functions it is built on."""
        feeding: dict[str, tuple[int, ...]] = {}
        for name, children in subs.items():
            if name in first_level:
                feeding[name] = (first_level.index(name),)
                continue
            groups: set[int] = set()
            for c in children:
                if isinstance(c, str):
                    groups.update(feeding[c])
            feeding[name] = tuple(sorted(groups))
        return feeding

    @staticmethod
    def _outputs_served(subs, output_nodes) -> dict[str, tuple[int, ...]]:
        """For each sub-function, the outputs that depend on it (walk down from each output's node)."""
        served: dict[str, set[int]] = {name: set() for name in subs}
        for j, top in enumerate(output_nodes):
            stack = [top] if isinstance(top, str) else []
            while stack:
                name = stack.pop()
                if j not in served[name]:
                    served[name].add(j)
                    stack.extend(c for c in subs[name] if isinstance(c, str))
        return {name: tuple(sorted(outs)) for name, outs in served.items()}

    def _derived_modularity(self) -> tuple[int, ...]:
        sizes = self.ground_truth().modules_per_level
        return (self.n_inputs, *sizes, len(self.outputs))

    def _check_all_used(self) -> None:
        """Every node must feed some output: a dangling node would be a sub-function no output needs."""
        used: set[str] = set()
        stack = list(self.outputs)
        while stack:
            name = stack.pop()
            if name not in used:
                used.add(name)
                stack.extend(c for c in self._by_name[name].children if isinstance(c, str))
        unused = [node.name for node in self.nodes if node.name not in used]
        if unused:
            raise InputError(
                f"{self.source}: node(s) {', '.join(unused)} feed no output; fix: remove them or list them in"
                " outputs"
            )


def _group_outputs(output_nodes) -> tuple[tuple[int, ...], ...]:
    groups: dict[int | str, list[int]] = {}
    for j, node in enumerate(output_nodes):
        groups.setdefault(node, []).append(j)
    return tuple(tuple(g) for g in groups.values())


def all_input_rows(n_inputs: int) -> np.ndarray:
    """Every n-bit row in counting order, x0 the most significant bit: uint8 (2^n, n)."""
    rows = np.arange(2**n_inputs, dtype=np.int64)[:, None]
    shifts = np.arange(n_inputs - 1, -1, -1, dtype=np.int64)[None, :]
    return ((rows >> shifts) & 1).astype(np.uint8)


def _evaluate_gate(node: Node, columns: list[np.ndarray]) -> np.ndarray:
    """Apply the node's gate to its children's columns (each bool (rows,)); returns bool (rows,)."""
    gate = node.gate
    if gate == "identity":
        return columns[0].copy()
    if gate == "not":
        return ~columns[0]
    if node.ones is not None:  # "table" or a named table: look each row's child pattern up
        lookup = np.zeros(2 ** len(columns), dtype=bool)
        lookup[[int(p, 2) for p in node.ones]] = True
        index = np.zeros(columns[0].shape, dtype=np.int64)
        for a in columns:  # first child is the most significant bit of the pattern
            index = (index << 1) | a
        return lookup[index]
    stacked = np.stack(columns)  # (k, rows)
    base = {"and": np.logical_and, "nand": np.logical_and, "or": np.logical_or, "nor": np.logical_or}
    base.update(xor=np.logical_xor, xnor=np.logical_xor)
    value = base[gate].reduce(stacked, axis=0)
    return ~value if gate in ("nand", "nor", "xnor") else value


# ------------------------------------------------------------------------------------------- parsing


def _parse_graph(data, source: str) -> FunctionGraph:
    """Check every field of a graph dict and build the FunctionGraph; InputError names the first problem."""

    def fail(problem: str, fix: str = "see the format in datasets/README.md"):
        raise InputError(f"{source}: {problem}; fix: {fix}")

    if not isinstance(data, dict):
        fail(f"expected a JSON object, got {type(data).__name__}")
    unknown = sorted(set(data) - GRAPH_KEYS)
    if unknown:
        fail(f"unknown key(s) {unknown}", f"use only {sorted(GRAPH_KEYS)}")
    for key in ("n_inputs", "levels", "outputs"):
        if key not in data:
            fail(f"missing key {key!r}")
    n_inputs = data["n_inputs"]
    if not _is_int(n_inputs) or not 1 <= n_inputs <= MAX_INPUTS:
        fail(f"n_inputs must be an integer in 1..{MAX_INPUTS}, got {n_inputs!r}")
    family = data.get("family", "custom")
    if not isinstance(family, str) or not family or "/" in family or "\\" in family:
        fail(f"family must be a folder-like name, got {family!r}")
    description = data.get("description", "")
    if not isinstance(description, str):
        fail("description must be a string")
    tables = _parse_tables(data.get("tables", {}), fail)
    nodes = _parse_levels(data["levels"], n_inputs, tables, fail)
    names = {node.name for node in nodes}
    outputs = data["outputs"]
    if not isinstance(outputs, list) or not outputs:
        fail("outputs must be a non-empty list of node names")
    for out in outputs:
        if not isinstance(out, str) or out not in names:
            fail(f"output {out!r} is not a node name", "list node names (an identity node can copy an input)")
    modularity = data.get("modularity")
    if modularity is not None:
        if (
            not isinstance(modularity, list)
            or len(modularity) < 2
            or not all(_is_int(v) and v > 0 for v in modularity)
        ):
            fail(f"modularity must be a list of at least two positive integers, got {modularity!r}")
        if modularity[0] != n_inputs or modularity[-1] != len(outputs):
            fail(
                f"modularity {modularity} must start with n_inputs ({n_inputs}) and end with the number of"
                f" outputs ({len(outputs)})",
                "correct the modularity or leave it out to have it derived",
            )
    return FunctionGraph(n_inputs, nodes, outputs, family, modularity, description, tables, source)


def _parse_tables(tables, fail) -> dict[str, tuple[str, ...]]:
    """Named table gates: {"F": ["0011", "1010", "1100"], ...} -> name -> patterns."""
    if not isinstance(tables, dict):
        fail("tables must be an object mapping a gate name to its list of 1-patterns")
    parsed = {}
    for name, ones in tables.items():
        if name in BUILTIN_GATES:
            fail(f"table name {name!r} shadows a built-in gate", "rename the table")
        parsed[name] = _parse_patterns(ones, f"table {name!r}", fail)
    return parsed


def _parse_patterns(ones, where: str, fail) -> tuple[str, ...]:
    if not isinstance(ones, list) or not all(isinstance(p, str) for p in ones):
        fail(f'{where}: ones must be a list of bit strings such as "0011"')
    if ones and len({len(p) for p in ones}) != 1:
        fail(f"{where}: patterns differ in length: {ones}")
    for p in ones:
        if not p or set(p) - {"0", "1"} or len(p) > MAX_TABLE_ARITY:
            fail(f"{where}: pattern {p!r} must be 1..{MAX_TABLE_ARITY} characters of 0/1")
    if len(set(ones)) != len(ones):
        fail(f"{where}: repeated pattern in {ones}")
    return tuple(ones)


def _parse_levels(levels, n_inputs: int, tables, fail) -> list[Node]:
    if not isinstance(levels, list) or not levels:
        fail("levels must be a non-empty list of levels, each a list of nodes")
    nodes: list[Node] = []
    earlier: set[str] = set()  # names of nodes in levels before the current one
    for index, level in enumerate(levels, start=1):
        if not isinstance(level, list) or not level:
            fail(f"level {index} must be a non-empty list of nodes")
        current = [_parse_node(raw, index, n_inputs, earlier, tables, fail) for raw in level]
        for node in current:
            if node.name in earlier or sum(n.name == node.name for n in current) > 1:
                fail(f"node name {node.name!r} is used twice", "give every node its own name")
        nodes.extend(current)
        earlier.update(node.name for node in current)
    return nodes


def _parse_node(raw, level: int, n_inputs: int, earlier: set[str], tables, fail) -> Node:
    if not isinstance(raw, dict):
        fail(f"level {level}: each node must be an object with name, gate, children")
    name = raw.get("name")
    if not isinstance(name, str) or not name:
        fail(f"level {level}: node without a name: {raw}")
    where = f"node {name!r}"
    unknown = sorted(set(raw) - NODE_KEYS)
    if unknown:
        fail(f"{where}: unknown key(s) {unknown}", f"use only {sorted(NODE_KEYS)}")
    gate = raw.get("gate")
    if gate not in BUILTIN_GATES and gate not in tables:
        fail(f"{where}: unknown gate {gate!r}", f"use one of {', '.join(BUILTIN_GATES)} or a name in tables")
    children = raw.get("children")
    if not isinstance(children, list) or not children:
        fail(f"{where}: children must be a non-empty list of input indices or earlier node names")
    for c in children:
        if _is_int(c):
            if not 0 <= c < n_inputs:
                fail(f"{where}: input index {c} out of range 0..{n_inputs - 1}")
        elif not isinstance(c, str) or c not in earlier:
            fail(
                f"{where}: child {c!r} is neither an input index nor a node of an earlier level",
                "refer to inputs by index and to nodes listed in earlier levels by name",
            )
    ones = _node_patterns(raw, gate, where, tables, fail)
    _check_arity(gate, len(children), ones, where, fail)
    return Node(name=name, gate=gate, children=tuple(children), level=level, ones=ones)


def _node_patterns(raw, gate, where, tables, fail) -> tuple[str, ...] | None:
    if gate == "table":
        if "ones" not in raw:
            fail(f"{where}: a table gate needs ones (the child patterns on which it is 1)")
        return _parse_patterns(raw["ones"], where, fail)
    if "ones" in raw:
        fail(f'{where}: ones is only for gate "table"')
    return tables.get(gate)


def _check_arity(gate: str, k: int, ones, where: str, fail) -> None:
    if gate in UNARY_GATES and k != 1:
        fail(f"{where}: gate {gate} takes exactly 1 child, got {k}")
    if gate in MULTI_GATES and k < 2:
        fail(f"{where}: gate {gate} takes at least 2 children, got {k}", "use identity or not for one child")
    if ones is not None:
        if k > MAX_TABLE_ARITY:
            fail(f"{where}: a table gate takes at most {MAX_TABLE_ARITY} children, got {k}")
        if ones and len(ones[0]) != k:
            fail(f"{where}: patterns have {len(ones[0])} bits but the node has {k} children")


def _is_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def format_graph_json(data: dict) -> str:
    """Readable JSON for a graph dict: one node per line, small lists inline."""
    lines = ["{"]
    items = []
    for key, value in data.items():
        if key == "levels":
            levels = []
            for level in value:
                nodes = ",\n".join(f"      {json.dumps(node)}" for node in level)
                levels.append(f"    [\n{nodes}\n    ]")
            items.append('  "levels": [\n' + ",\n".join(levels) + "\n  ]")
        else:
            items.append(f"  {json.dumps(key)}: {json.dumps(value)}")
    lines.append(",\n".join(items))
    lines.append("}")
    return "\n".join(lines) + "\n"


# ---------------------------------------------------------------------------------------- shipped graphs


def modularity_name(modularity) -> str:
    """[4, 2, 4] -> "4-2-4" (the published file stem)."""
    return "-".join(str(int(v)) for v in modularity)


def canonical_family(family: str | None) -> str | None:
    """Map folder aliases (non_separable_increasing_use) to the tables' family name."""
    if not family:
        return None
    family = str(family).strip().strip("/\\")
    return FAMILY_ALIASES.get(family, family)


def family_from_path(dataset_path: str | os.PathLike) -> str | None:
    """The family a --dataset_path names: its last folder ("./datasets/exemplar/" -> "exemplar")."""
    return canonical_family(Path(dataset_path).name) or None


def shipped_families() -> list[str]:
    """Families with shipped graphs, FAMILY_ORDER first."""
    present = sorted(p.name for p in GRAPHS_DIR.iterdir() if p.is_dir()) if GRAPHS_DIR.is_dir() else []
    return [f for f in FAMILY_ORDER if f in present] + [f for f in present if f not in FAMILY_ORDER]


def find_graph(modularity, family: str | None = None) -> Path | None:
    """The shipped graph file for a modularity, preferring `family` (aliases accepted); None if none."""
    stem = modularity_name(modularity) + ".json"
    wanted = canonical_family(family)
    families = shipped_families()
    if wanted in families:
        families.remove(wanted)
        families.insert(0, wanted)
    for fam in families:
        path = GRAPHS_DIR / fam / stem
        if path.is_file():
            return path
    return None


def shipped_graphs() -> list[Path]:
    """Every shipped graph file, sorted by family then name."""
    return sorted(GRAPHS_DIR.glob("*/*.json"))


# ----------------------------------------------------------------------------------------- truth tables


@dataclass
class TruthTable:
    """A boolean task: inputs uint8 (2^n, n), outputs uint8 (2^n, m); graph when the structure is known."""

    family: str
    modularity: tuple[int, ...]
    inputs: np.ndarray
    outputs: np.ndarray
    graph: FunctionGraph | None = None
    path: Path | None = None  # the file it was read from, None when built from a graph


def table_from_graph(graph: FunctionGraph) -> TruthTable:
    inputs, outputs = graph.truth_table()
    return TruthTable(graph.family, tuple(graph.modularity), inputs, outputs, graph)


def write_truth_table(path: str | os.PathLike, family: str, modularity, inputs, outputs) -> Path:
    """Write a table in the reference schema {family, modularity, inputs, outputs}, atomically.

    Same layout as the published files (one line of json.dumps), so a regenerated table is byte-identical.
    """
    data = {
        "family": family,
        "modularity": [int(v) for v in modularity],
        "inputs": np.asarray(inputs, dtype=int).tolist(),
        "outputs": np.asarray(outputs, dtype=int).tolist(),
    }
    write_text_atomic(path, json.dumps(data))
    return Path(path)


def read_truth_table(path: str | os.PathLike) -> TruthTable:
    """Read and check a reference-schema table file; problems raise InputError naming the fix."""
    path = Path(path)
    fix = (
        "fix: regenerate it with python3 main.py --experiment generate_task --modularity M ... "
        f"--dataset_path {path.parent} (or restore the file)"
    )

    def fail(problem: str):
        raise InputError(f"dataset file {path}: {problem}; {fix}")

    try:
        data = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError) as error:
        fail(f"unreadable ({error})")
    except json.JSONDecodeError as error:
        fail(f"not valid JSON ({error})")
    if not isinstance(data, dict) or not {"modularity", "inputs", "outputs"} <= set(data):
        fail("expected an object with keys family, modularity, inputs, outputs")
    inputs = _bit_matrix(data["inputs"], "inputs", fail)
    outputs = _bit_matrix(data["outputs"], "outputs", fail)
    n = inputs.shape[1]
    if inputs.shape[0] != 2**n or len(np.unique(_row_index(inputs))) != 2**n:
        fail(f"inputs must hold each of the {2**n} rows of {n} bits exactly once")
    if outputs.shape[0] != inputs.shape[0]:
        fail(f"{outputs.shape[0]} output rows for {inputs.shape[0]} input rows")
    modularity = data["modularity"]
    if not isinstance(modularity, list) or len(modularity) < 2 or not all(_is_int(v) for v in modularity):
        fail(f"modularity must be a list of integers, got {modularity!r}")
    if modularity[0] != n or modularity[-1] != outputs.shape[1]:
        fail(f"modularity {modularity} does not match {n} inputs and {outputs.shape[1]} outputs")
    family = data.get("family") or canonical_family(path.parent.name) or "custom"
    return TruthTable(str(family), tuple(modularity), inputs, outputs, None, path)


def _bit_matrix(rows, key: str, fail) -> np.ndarray:
    """A non-empty rectangular list of 0/1 lists -> uint8 (rows, width)."""
    if not isinstance(rows, list) or not rows or not all(isinstance(r, list) and r for r in rows):
        fail(f"{key} must be a non-empty list of non-empty 0/1 rows")
    if len({len(r) for r in rows}) != 1:
        fail(f"{key} rows differ in length")
    if not all(_is_int(v) and v in (0, 1) for r in rows for v in r):
        fail(f"{key} may hold only 0 and 1")
    return np.asarray(rows, dtype=np.uint8)


def _row_index(inputs: np.ndarray) -> np.ndarray:
    """Row number of each input row in counting order (x0 most significant): int64 (rows,)."""
    weights = 1 << np.arange(inputs.shape[1] - 1, -1, -1, dtype=np.int64)
    return inputs.astype(np.int64) @ weights


def graph_matches(graph: FunctionGraph, table: TruthTable) -> bool:
    """True when the graph computes exactly the table (rows matched by their input bits)."""
    if graph.n_inputs != table.inputs.shape[1] or len(graph.outputs) != table.outputs.shape[1]:
        return False
    _, outputs = graph.truth_table()
    return bool(np.array_equal(outputs[_row_index(table.inputs)], table.outputs))


def load_truth_table(dataset_path, modularity, graph_path=None) -> TruthTable:
    """The boolean task to train on.

    - graph_path given: the graph file defines the task (its own modularity; `modularity` is not used).
    - else `<dataset_path>/<m>.json` when present, with the shipped graph attached for ground truth when
      one exists for that modularity (family from the file, then the folder name) and computes the table.
    - else the table is built from the shipped graph for that modularity.
    Raises InputError (one line, with the fix) when none of these works or a file is broken.
    """
    if graph_path:
        return table_from_graph(FunctionGraph.from_file(graph_path))
    modularity = tuple(int(v) for v in modularity)
    folder = Path(dataset_path)
    path = folder / f"{modularity_name(modularity)}.json"
    if path.exists():
        table = read_truth_table(path)
        if table.modularity != modularity:
            raise InputError(
                f"dataset file {path} says modularity {list(table.modularity)}, not {list(modularity)}; "
                "fix: regenerate it with --experiment generate_task or pass the matching --modularity"
            )
        table.graph = _matching_shipped_graph(table, folder)
        return table
    found = find_graph(modularity, family_from_path(folder))
    if found is None:
        raise InputError(
            f"no truth table {path} and no shipped function graph for modularity "
            f"{' '.join(map(str, modularity))}; fix: write a graph file (datasets/README.md) and pass --graph"
            f" FILE, or run {GENERATE_HINT}"
        )
    return table_from_graph(FunctionGraph.from_file(found))


def _matching_shipped_graph(table: TruthTable, folder: Path) -> FunctionGraph | None:
    """The shipped graph that computes this table, for ground truth; None when none does."""
    for family in (table.family, family_from_path(folder)):
        found = find_graph(table.modularity, family)
        if found is not None:
            graph = FunctionGraph.from_file(found)
            if graph_matches(graph, table):
                return graph
    return None


def generate_table_file(dataset_path, graph: FunctionGraph) -> Path:
    """Evaluate `graph` and write `<dataset_path>/<modularity>.json`; returns the path written."""
    table = table_from_graph(graph)
    path = Path(dataset_path) / f"{modularity_name(table.modularity)}.json"
    try:
        return write_truth_table(path, table.family, table.modularity, table.inputs, table.outputs)
    except OSError as error:
        raise InputError(
            f"cannot write {path} ({error.strerror or error}); "
            "fix: choose a writable folder for --dataset_path"
        ) from None
