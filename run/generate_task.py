"""generate_task: evaluate a function graph into a truth table file `<dataset_path>/<m>.json`.

    python3 main.py --experiment generate_task --modularity 4 2 4 --dataset_path DIR   # a shipped graph
    python3 main.py --experiment generate_task --graph my.json --dataset_path DIR      # your own graph

With --graph the graph file names the task: its "modularity" (or, when it has none, the one derived from
its structure) gives the file name and --modularity may be left out; an explicit --modularity that
disagrees with the graph is an error. Without --graph the shipped graph for --modularity is used, preferring
the family named by the last folder of --dataset_path. The logic lives in utils/tasks/function_graph.py.
"""

from __future__ import annotations

from run.parser import ConfigError, build_parser
from utils.tasks.function_graph import FunctionGraph, family_from_path, find_graph, generate_table_file


def run(config) -> None:
    if config.task != "boolean":
        raise ConfigError(
            f"generate_task makes boolean truth tables, not --task {config.task}; fix: use --task boolean"
        )
    graph = _choose_graph(config)
    path = generate_table_file(config.dataset_path, graph)
    print(
        f"wrote {path} (family {graph.family}, modularity {' '.join(map(str, graph.modularity))}, "
        f"{2**graph.n_inputs} rows, {graph.n_inputs} inputs, {len(graph.outputs)} outputs)"
    )


def _choose_graph(config) -> FunctionGraph:
    modularity = [int(v) for v in config.modularity]
    if config.graph:
        graph = FunctionGraph.from_file(config.graph)
        # argparse cannot tell an explicit --modularity from the default, so only a non-default one can clash.
        explicit = modularity != build_parser().get_default("modularity")
        if explicit and modularity != list(graph.modularity):
            raise ConfigError(
                f"--modularity {' '.join(map(str, modularity))} disagrees with {config.graph} (modularity "
                f"{' '.join(map(str, graph.modularity))}); fix: leave out --modularity or correct the graph"
            )
        return graph
    found = find_graph(modularity, family_from_path(config.dataset_path))
    if found is None:
        raise ConfigError(
            f"no shipped function graph for modularity {' '.join(map(str, modularity))}; fix: write a graph "
            "file (format in datasets/README.md) and pass --graph FILE"
        )
    return FunctionGraph.from_file(found)
