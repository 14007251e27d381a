"""The option reference (docs/options.md), generated from the parser so that it cannot drift.

    python3 -m run.option_docs > docs/options.md

tests/test_docs.py fails when docs/options.md differs from what this prints, and when an experiment of
`--experiment` has no page in EXPERIMENT_PAGES. Imports only the standard library and the parser.
"""

from __future__ import annotations

import argparse
import sys

from run.parser import EXPERIMENTS, build_parser

# Every experiment's page (relative to docs/) and one line on what it does. A new experiment needs a line
# here and a page; the docs test says so.
EXPERIMENT_PAGES = {
    "train": ("pipeline.md#train", "trains the dense network (MLP, CNN or a network built from a graph)"),
    "prune": ("pipeline.md#prune", "unit pruning (`--prune_units 1`), then edge pruning (`--prune_units 0`)"),
    "prune_edges": ("pipeline.md#prune", "edge pruning straight from the dense network"),
    "prune_cells": ("cells.md#pruning-cells", "prunes a cell network's weakest cells and retrains"),
    "module_detection": ("pipeline.md#detect", "finds modules (`--method sculpt | newman | spectral`)"),
    "generate_task": ("pipeline.md#tasks", "evaluates a function graph into its truth table"),
    "sculpt": ("scoring.md", "the whole study in one command: grid, sparsest network, detect, draw, score"),
    "summarize": ("scoring.md#summaries", "success-rate tables and pictures from a results tree"),
    "export_graph": ("networks.md#networks-as-graphs", "writes a network as graphml, edgelist or npz"),
    "lesion": ("lesion.md", "lesion tests of a partition's modules (single and `--double`)"),
    "sweep": ("scale.md#sweeps", "runs a file of command lines on a process pool or Ray"),
    "clusterability": ("spectral.md", "n-cut of a network against shuffled copies"),
    "spectral_sweep": ("spectral.md#more-experiments", "n-cut and seed-to-seed agreement per cluster count"),
    "compare_partitions": ("associations.md#compare-partitions", "agreement of partitions of one network"),
    "associations": ("associations.md", "eight upstream/downstream association matrices and their Newman-Q"),
    "associations_summary": ("associations.md#summary", "Q per association against regularisation strength"),
}

# Which experiments read the options of each parser group (by its title). A group missing here is listed
# with "see each option's help".
GROUP_USERS = {
    "experiment and task": "every experiment",
    "model and training": "`train`, `prune`, `prune_edges`, `sculpt` (and analyses that rebuild a network)",
    "pruning": "`prune`, `prune_edges`, `sculpt`; the options also name the run that the analyses read",
    "module detection": "`module_detection`, `sculpt`, `lesion`, `clusterability`",
    "associations (--method newman, --experiment associations / compare_partitions)": "`module_detection "
    "--method newman`, `associations`, `compare_partitions`, `associations_summary`",
    "spectral clusterability (--method spectral, --experiment clusterability)": "`module_detection --method "
    "spectral`, `clusterability`, `spectral_sweep`; the training penalty in `train`",
    "lesion tests (--experiment lesion)": "`lesion`",
    "networks as graphs": "`export_graph`; `--structure` for `train`, `prune`, `prune_edges`, `sculpt`",
    "sweeps": "`sweep`, `sculpt`",
    "running": "every experiment",
}

_TYPE_NAMES = {
    "int": "integer",
    "float": "number",
    "str2bool": "True or False",
    "optional_float": "number or None",
    "optional_int": "integer or None",
}


def _cell(text: str) -> str:
    """Markdown table cell: one line, pipes escaped."""
    return " ".join(str(text).split()).replace("|", "\\|")


def _help(action: argparse.Action) -> str:
    """The help text as `--help` shows it (argparse formats it with %-style: `%%` is one `%`)."""
    text = action.help or ""
    params = dict(vars(action), prog="main.py")
    if params.get("choices") is not None:
        params["choices"] = ", ".join(str(c) for c in params["choices"])
    return text % params if "%" in text else text


def _values(action: argparse.Action) -> str:
    if isinstance(action, (argparse._StoreTrueAction, argparse._StoreFalseAction)):
        return "flag"
    if action.choices is not None:
        values = " \\| ".join(f"`{c}`" for c in action.choices)
    else:
        name = getattr(action.type, "__name__", None) if action.type is not None else None
        values = _TYPE_NAMES.get(name, "text")
    if action.nargs in ("+", "*"):
        values = f"one or more: {values}"
    elif isinstance(action.nargs, int):
        values = f"{action.nargs} × {values}"
    return values


def _default(action: argparse.Action) -> str:
    if isinstance(action, (argparse._StoreTrueAction, argparse._StoreFalseAction)):
        return "off"
    value = action.default
    if value is None:
        return "–"
    if isinstance(value, (list, tuple)):
        return "`" + " ".join(str(v) for v in value) + "`"
    return f"`{value}`"


def _groups(parser: argparse.ArgumentParser) -> list[tuple[str, list[argparse.Action]]]:
    """(title, options) per parser group, in the order of `--help`, without -h and empty groups."""
    groups, others = [], []
    for group in parser._action_groups:
        actions = [a for a in group._group_actions if a.option_strings and a.dest != "help"]
        if group.title in ("options", "optional arguments"):  # argparse's own: options added outside a group
            others = actions
        elif actions:
            groups.append((group.title, actions))
    return groups + ([("other options", others)] if others else [])


def _anchor(title: str) -> str:
    """GitHub's heading anchor: lower case, punctuation dropped, spaces to hyphens."""
    kept = "".join(ch for ch in title.lower() if ch.isalnum() or ch in " -_")
    return kept.replace(" ", "-")


def render(parser: argparse.ArgumentParser | None = None) -> str:
    """The whole of docs/options.md."""
    parser = parser or build_parser()
    groups = _groups(parser)
    titles = [title for title, _ in groups]
    lines = [
        "# Option reference",
        "",
        "Generated from the parser: `python3 -m run.option_docs > docs/options.md` (do not edit by hand;",
        "`tests/test_docs.py` fails when this page and the parser disagree). Every option is",
        "`python3 main.py --experiment <name> --option value`; options are never abbreviated, `--dry_run`",
        "prints the resolved options and the run folders as JSON and writes nothing.",
        "",
        "## By experiment",
        "",
        "| experiment | what it does | page |",
        "|---|---|---|",
    ]
    for name in EXPERIMENTS:
        page, what = EXPERIMENT_PAGES.get(name, ("", "(no page yet)"))
        link = f"[{page.split('#')[0].removesuffix('.md')}]({page})" if page else "–"
        lines.append(f"| `{name}` | {_cell(what)} | {link} |")
    lines += ["", "Option groups: " + ", ".join(f"[{t}](#{_anchor(t)})" for t in titles) + ".", ""]
    for title, actions in groups:
        lines += [f"## {title}", "", f"Used by: {GROUP_USERS.get(title, 'see each option’s help')}.", ""]
        lines += ["| option | default | values | what it does |", "|---|---|---|---|"]
        for action in actions:
            option = ", ".join(f"`{s}`" for s in action.option_strings)
            cells = [option, _cell(_default(action)), _values(action), _cell(_help(action))]
            lines.append("| " + " | ".join(cells) + " |")
        lines.append("")
    return "\n".join(lines)


def main() -> int:
    sys.stdout.write(render())
    return 0


if __name__ == "__main__":
    sys.exit(main())
