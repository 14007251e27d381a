"""Rules the code keeps, read from its source (AST): the library never takes the command line, and no two
modules import each other, not even through imports inside functions (which import-linter does not see)."""

from __future__ import annotations

import ast
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PACKAGES = ("run", "detection_pipeline", "models", "utils")
LIBRARY = ("detection_pipeline", "models", "utils")


def _modules() -> dict[str, Path]:
    """{dotted module name: file} for every module of the four packages and main."""
    out = {"main": REPO / "main.py"}
    for package in PACKAGES:
        for path in sorted((REPO / package).rglob("*.py")):
            parts = list(path.relative_to(REPO).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts = parts[:-1]
            out[".".join(parts)] = path
    return out


def _imported(tree: ast.AST, name: str, is_package: bool, modules: dict) -> set[str]:
    """The project modules a module imports anywhere in its body (functions included)."""
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                package = name.split(".") if is_package else name.split(".")[:-1]
                package = package[: len(package) - (node.level - 1)]
                base = ".".join([*package, base] if base else package)
            targets = [base] + [f"{base}.{alias.name}" for alias in node.names]
        else:
            continue
        for target in targets:
            # the longest project module the import names (a.b.c -> a.b when c is a function)
            parts = target.split(".")
            while parts and ".".join(parts) not in modules:
                parts.pop()
            if parts and ".".join(parts) != name:
                found.add(".".join(parts))
    return found


def import_graph() -> dict[str, set[str]]:
    modules = _modules()
    return {
        name: _imported(ast.parse(path.read_text()), name, path.name == "__init__.py", modules)
        for name, path in modules.items()
    }


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    out: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                out.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def test_the_cycle_finder_finds_a_cycle_through_a_function_level_import():
    tree = ast.parse("def f():\n    from b import g\n")
    modules = {"a": None, "b": None}
    assert _imported(tree, "a", False, modules) == {"b"}
    assert _cycles({"a": {"b"}, "b": {"a"}, "c": {"a"}}) == [["a", "b"]]


def test_no_import_cycles_counting_imports_inside_functions():
    cycles = _cycles(import_graph())
    assert not cycles, "import cycles: " + "; ".join(" <-> ".join(c) for c in cycles)


def _violations(path: Path, root: Path = REPO) -> list[str]:
    out = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
            arguments = node.args
            names = [a.arg for a in (*arguments.posonlyargs, *arguments.args, *arguments.kwonlyargs)]
            names += [a.arg for a in (arguments.vararg, arguments.kwarg) if a is not None]
            for bad in {"config", "args"} & set(names):
                out.append(f"{path.relative_to(root)}:{node.lineno} parameter {bad!r}")
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Name)
            and node.func.id == "getattr"
            and len(node.args) == 3
            and isinstance(node.args[0], ast.Name)
            and node.args[0].id in ("config", "args", "namespace")
        ):
            out.append(f"{path.relative_to(root)}:{node.lineno} getattr({node.args[0].id}, name, default)")
    return out


def test_the_rule_reader_sees_both_violations(tmp_path):
    path = tmp_path / "probe.py"
    path.write_text("def f(config):\n    return getattr(config, 'x', 1)\n")
    assert len(_violations(path, tmp_path)) == 2


def test_the_library_never_takes_the_command_line():
    """No function below run/ has a parameter named config or args, and none reads an option with a
    fallback default (`getattr(config, name, default)`): typed options built in run/ are its input."""
    found = [
        v for package in LIBRARY for path in sorted((REPO / package).rglob("*.py")) for v in _violations(path)
    ]
    assert not found, "\n".join(found)


def test_library_option_defaults_are_the_parser_defaults():
    """An option has one default: where a library options dataclass keeps one (for notebook use), it is the
    parser's."""
    import dataclasses

    from detection_pipeline.associations.method import NewmanOptions
    from detection_pipeline.detect import DetectionOptions
    from detection_pipeline.spectral.cluster import SpectralOptions
    from run.parser import parse_config

    parsed = vars(parse_config([]))
    for cls in (DetectionOptions, SpectralOptions, NewmanOptions):
        for field in dataclasses.fields(cls):
            if field.name in parsed and field.default is not dataclasses.MISSING:
                value = parsed[field.name]
                value = value[0] if isinstance(value, list) and len(value) == 1 else value
                assert field.default == value, (cls.__name__, field.name)
