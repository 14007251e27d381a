"""Score detected modules against the task's ground truth (definitions in docs/scoring.md).

    truth = ground_truth_for(config)              # or a Task, DigitTask, FunctionGraph, GroundTruth
    score = score_modules(arch, partition, truth, masks=masks)
    score["success"], score["input_separability"], ...

`partition` is the detector's int array of shape (sum(arch),): a module id per unit, layer by layer (inputs
first, outputs last), -1 for a dropped unit. `masks[l]`, optional, is the (arch[l+1], arch[l]) 0/1 mask of
layer l; with it, hidden-unit separability follows the kept edges, without it only module membership.
`skips`, optional with masks, lists a DAG network's skip blocks (utils.network.Block: source, target, mask
(arch[target], arch[source])); their kept edges carry reach too.

Criteria (each True / False, or None when it does not apply to the task):

- input_separability: the kept inputs are grouped exactly as the first-level sub-functions group them.
  Overlapping groups: only each group's *exclusive* inputs are constrained (shared inputs may sit in any
  module). Every input a sub-function uses must be kept (boolean tasks; digit tasks may drop pixels).
- output_grouping: outputs computing the same sub-function share a module, different ones do not.
- hidden_separability: every module with hidden units could be (part of) ONE sub-function: the input groups
  that reach it and the outputs it reaches lie within that sub-function's, and the sub-function's level is
  allowed at every hidden layer the module occupies. None when no partition could fail it.
- modules_per_depth: modules per hidden layer read as the graph's modules_per_level, each level spanning one
  or more consecutive hidden layers. None when the network has fewer hidden layers than the graph levels.
- success: every criterion that applies holds (None when none applies).
"""

from __future__ import annotations

import numpy as np

from utils.tasks.ground_truth import SubFunctionTruth, TaskTruth, digit_truth, ground_truth_for  # noqa: F401

CRITERIA = ("input_separability", "output_grouping", "hidden_separability", "modules_per_depth")


# ------------------------------------------------------------------------------------------------ scoring


def score_modules(arch, partition, truth, n_hidden: int | None = None, masks=None, skips=None) -> dict:
    """Score a partition against `truth`; returns a JSON-ready dict.

    Keys: the four CRITERIA (True / False / None), "success", and "details" (per criterion: what was
    expected, what was found, and a one-line "reason"), plus "n_modules", "modules_per_layer",
    "expected_modules_per_level", "n_hidden". truth None -> every criterion None.
    Raises ValueError when partition, masks or truth do not fit `arch`.
    """
    arch = [int(a) for a in arch]
    partition = np.asarray(partition).astype(np.int64).ravel()
    if len(arch) < 2 or partition.shape != (sum(arch),):
        raise ValueError(f"partition has {partition.size} entries; arch {arch} has {sum(arch)} units")
    if n_hidden is None:
        n_hidden = len(arch) - 2
    if int(n_hidden) != len(arch) - 2:
        raise ValueError(f"n_hidden={n_hidden} but arch {arch} has {len(arch) - 2} hidden layers")
    layers = np.split(partition, np.cumsum(arch)[:-1])
    blocks = _check_blocks(arch, masks, skips)
    per_layer = [len(np.unique(ids[ids >= 0])) for ids in layers]
    score: dict = {name: None for name in CRITERIA}
    score.update(
        success=None,
        n_modules=int(len(np.unique(partition[partition >= 0]))),
        modules_per_layer=per_layer,
        expected_modules_per_level=None,
        n_hidden=len(arch) - 2,
        details={},
    )
    if truth is None:
        score["details"]["reason"] = "no ground truth for this task (no function graph / known structure)"
        return score

    _check_truth(arch, truth)
    levels = getattr(truth, "levels", None) or None
    expected = _modules_per_level(truth, levels)
    score["expected_modules_per_level"] = None if expected is None else list(expected)
    checks = {
        "input_separability": _input_separability(layers[0], truth),
        "output_grouping": _output_grouping(layers[-1], truth),
        "hidden_separability": _hidden_separability(arch, layers, truth, levels, blocks),
        "modules_per_depth": _modules_per_depth(per_layer[1:-1], expected),
    }
    for name, (verdict, detail) in checks.items():
        score[name] = verdict
        score["details"][name] = detail
    applied = [v for v in (score[name] for name in CRITERIA) if v is not None]
    score["success"] = all(applied) if applied else None
    return score


def score_detected(modules, truth, masks=None, skips=None) -> dict:
    """score_modules for a detection_pipeline.partition.Partition."""
    return score_modules(modules.arch, modules.labels, truth, masks=masks, skips=skips)


def _check_blocks(arch: list[int], masks, skips) -> list[tuple[int, int, np.ndarray]] | None:
    """[(source, target, bool mask (arch[target], arch[source]))]: the consecutive layers, then the skips;
    None without masks."""
    if masks is None:
        if skips:
            raise ValueError("skip blocks need the consecutive layers' masks too (pass masks=...)")
        return None
    if len(masks) != len(arch) - 1:
        raise ValueError(f"{len(masks)} masks for arch {arch} ({len(arch) - 1} layers of edges)")
    pairs = [(layer, layer + 1, mask) for layer, mask in enumerate(masks)]
    pairs += [(int(b.source), int(b.target), b.mask) for b in skips or ()]
    out = []
    for source, target, mask in pairs:
        if hasattr(mask, "detach"):
            mask = mask.detach().cpu().numpy()
        mask = np.asarray(mask) != 0
        if not 0 <= source < target < len(arch) or mask.shape != (arch[target], arch[source]):
            raise ValueError(
                f"mask {source} -> {target} has shape {mask.shape}, expected layers of arch {arch} "
                f"(shape (arch[target], arch[source]))"
            )
        out.append((source, target, mask))
    return out


def _check_truth(arch: list[int], truth) -> None:
    for group in truth.input_groups:
        if any(not 0 <= int(i) < arch[0] for i in group):
            raise ValueError(f"input group {list(group)} does not fit {arch[0]} inputs")
    for group in truth.output_groups:
        if any(not 0 <= int(j) < arch[-1] for j in group):
            raise ValueError(f"output group {list(group)} does not fit {arch[-1]} outputs")


def _modules_per_level(truth, levels) -> tuple[int, ...] | None:
    if levels is None:
        return None
    expected = getattr(truth, "modules_per_level", None)
    return tuple(int(v) for v in expected) if expected else tuple(len(level) for level in levels)


def _fmt(units) -> str:
    return ",".join(str(int(u)) for u in units) or "-"


# ------------------------------------------------------------------------------------------------- inputs


def _input_structure(truth) -> tuple[list[tuple[int, ...]], list[tuple[int, ...]], list[int]]:
    """(distinct groups, exclusive inputs of each distinct group, shared inputs), all sorted.

    Identical groups (two sub-functions of the same inputs) count once; an input is exclusive to a distinct
    group when no other distinct group uses it, shared otherwise.
    """
    distinct: list[tuple[int, ...]] = []
    for group in truth.input_groups:
        g = tuple(sorted({int(i) for i in group}))
        if g and g not in distinct:
            distinct.append(g)
    count: dict[int, int] = {}
    for g in distinct:
        for i in g:
            count[i] = count.get(i, 0) + 1
    exclusive = [tuple(i for i in g if count[i] == 1) for g in distinct]
    shared = sorted(i for i, c in count.items() if c > 1)
    return distinct, exclusive, shared


def _input_separability(ids: np.ndarray, truth) -> tuple[bool | None, dict]:
    distinct, exclusive, shared = _input_structure(truth)
    if not distinct:
        return None, {"reason": "the task has no input groups"}
    required = bool(getattr(truth, "inputs_required", True))
    used = sorted({i for g in distinct for i in g})
    detail: dict = {
        "expected": [list(e) for e in exclusive if e],
        "shared": shared,
        "found": _modules_of(ids, used),
        "dropped_used": [i for i in used if ids[i] < 0],
    }
    if required and detail["dropped_used"]:
        detail["reason"] = f"used input(s) {_fmt(detail['dropped_used'])} were dropped"
        return False, detail
    owner: dict[int, int] = {}  # module -> index of the exclusive group whose inputs it holds
    for index, group in enumerate(exclusive):
        kept = [i for i in group if ids[i] >= 0]
        if group and not kept:
            detail["reason"] = f"every input of group {_fmt(group)} was dropped"
            return False, detail
        modules = sorted({int(ids[i]) for i in kept})
        if len(modules) > 1:
            detail["reason"] = f"inputs {_fmt(kept)} (one group) are split over modules {_fmt(modules)}"
            return False, detail
        if modules:
            if modules[0] in owner:
                other = exclusive[owner[modules[0]]]
                detail["reason"] = f"input groups {_fmt(other)} and {_fmt(group)} share module {modules[0]}"
                return False, detail
            owner[modules[0]] = index
    parts = " | ".join(_fmt(e) for e in exclusive if e)
    extra = f"; shared inputs {_fmt(shared)} unconstrained" if shared else ""
    detail["reason"] = f"inputs grouped as {parts}{extra}"
    return True, detail


def _modules_of(ids: np.ndarray, units) -> dict[str, list[int]]:
    """{module id: units} for the kept units among `units` (JSON keys are strings)."""
    out: dict[str, list[int]] = {}
    for u in units:
        if ids[u] >= 0:
            out.setdefault(str(int(ids[u])), []).append(int(u))
    return out


# ------------------------------------------------------------------------------------------------ outputs


def _output_grouping(ids: np.ndarray, truth) -> tuple[bool | None, dict]:
    groups = [tuple(int(j) for j in g) for g in truth.output_groups if len(g)]
    if not groups:
        return None, {"reason": "the task has no output groups"}
    outputs = sorted({j for g in groups for j in g})
    detail: dict = {"expected": [list(g) for g in groups], "found": _modules_of(ids, outputs)}
    dropped = [j for j in outputs if ids[j] < 0]
    if dropped:
        detail["reason"] = f"output(s) {_fmt(dropped)} were dropped"
        return False, detail
    owner: dict[int, int] = {}
    for index, group in enumerate(groups):
        modules = sorted({int(ids[j]) for j in group})
        if len(modules) > 1:
            detail["reason"] = (
                f"outputs {_fmt(group)} (one sub-function) are split over modules {_fmt(modules)}"
            )
            return False, detail
        if modules[0] in owner:
            other = groups[owner[modules[0]]]
            detail["reason"] = (
                f"outputs {_fmt(other)} and {_fmt(group)} (different sub-functions) share module {modules[0]}"
            )
            return False, detail
        owner[modules[0]] = index
    detail["reason"] = "outputs grouped as " + " | ".join(_fmt(g) for g in groups)
    return True, detail


# ----------------------------------------------------------------------------------------- hidden units


def highest_level(layer: int, n_hidden: int, n_levels: int) -> int:
    """The highest graph level (1-based) that hidden layer `layer` (1-based) of `n_hidden` may compute.

    A level needs a layer of its own above the level it reads from, so with H >= D hidden layers layer l
    reaches at most level l; with H < D the network must fold D - H extra levels into its layers, so layer l
    reaches at most level l + D - H. Lower levels are always allowed: a unit may carry a sub-function
    upward (the output layer itself computes the top level, e.g. y0 = p OR q in 6 3 3 3).
    """
    return min(n_levels, max(layer, n_levels - n_hidden + layer))


def _reach(arch, layers, n_groups, exclusive_of, blocks):
    """Per layer: bool (arch[l], G) input groups reaching each kept unit, bool (arch[l], m) outputs reached.

    blocks: [(source, target, bool mask)] from _check_blocks (skips included). Only edges between kept
    units count. Without blocks, only input units know their group and only output units their output.
    """
    kept = [ids >= 0 for ids in layers]
    g_in = [np.zeros((a, n_groups), dtype=bool) for a in arch]
    for group, inputs in enumerate(exclusive_of):
        for i in inputs:
            g_in[0][i, group] = kept[0][i]
    m = arch[-1]
    o_out = [np.zeros((a, m), dtype=bool) for a in arch]
    o_out[-1][np.arange(m), np.arange(m)] = kept[-1]
    if blocks is None:
        return g_in, o_out
    edges = [(s, t, (mask & kept[t][:, None] & kept[s][None, :]).astype(np.int64)) for s, t, mask in blocks]
    # Layers in order upwards (every block into layer t starts below it), then downwards.
    for layer in range(1, len(arch)):
        into = [e @ g_in[s].astype(np.int64) for s, t, e in edges if t == layer]
        g_in[layer] = np.sum(into, axis=0) > 0 if into else np.zeros_like(g_in[layer])
    for layer in range(len(arch) - 2, -1, -1):
        out = [e.T @ o_out[t].astype(np.int64) for s, t, e in edges if s == layer]
        o_out[layer] = np.sum(out, axis=0) > 0 if out else np.zeros_like(o_out[layer])
    return g_in, o_out


def _hidden_separability(arch, layers, truth, levels, blocks) -> tuple[bool | None, dict]:
    n_hidden = len(arch) - 2
    if n_hidden < 1:
        return None, {"reason": "the network has no hidden layer"}
    if not levels:
        return None, {"reason": "the task's sub-functions are not known"}
    n_levels = len(levels)
    subs = [s for level in levels for s in level]
    n_groups = len(truth.input_groups)
    # exclusive inputs per group INDEX (identical or overlapping groups keep only what no other has)
    # inputs used by exactly one group index: overlapping inputs, and all inputs of two identical groups
    # (two sub-functions of the same inputs), tell nothing about which sub-function a unit serves
    sets = [{int(i) for i in g} for g in truth.input_groups]
    exclusive_of = [
        sorted(i for i in s if not any(i in t for k, t in enumerate(sets) if k != g))
        for g, s in enumerate(sets)
    ]
    all_groups = {g for g, e in enumerate(exclusive_of) if e}
    all_outputs = set(range(arch[-1]))
    method = "edges" if blocks is not None else "membership"
    detail: dict = {"method": method, "modules": []}

    everywhere = _allowed_everywhere(n_hidden, n_levels)
    universal = [
        s.name
        for s in subs
        if s.depth in everywhere and all_groups <= set(s.input_groups) and all_outputs <= set(s.outputs)
    ]
    if universal:
        detail["reason"] = (
            f"cannot fail: sub-function {universal[0]} reads every input group and feeds every output at "
            "every hidden layer"
        )
        return None, detail

    g_in, o_out = _reach(arch, layers, n_groups, exclusive_of, blocks)
    module_ids = sorted({int(m) for ids in layers[1:-1] for m in ids[ids >= 0]})
    verdict = True
    for module in module_ids:
        hidden = [l for l in range(1, n_hidden + 1) if np.any(layers[l] == module)]
        allowed = set(range(1, min(highest_level(l, n_hidden, n_levels) for l in hidden) + 1))
        reads = set()
        feeds = set()
        # input units add their own group, output units their own index, hidden units what reaches them
        # and what they reach (a shared input reaching both sub-functions says nothing about its module)
        for l, ids in enumerate(layers):
            members = ids == module
            if members.any():
                if l < len(layers) - 1:
                    reads |= set(np.flatnonzero(g_in[l][members].any(axis=0)).tolist())
                if l > 0:
                    feeds |= set(np.flatnonzero(o_out[l][members].any(axis=0)).tolist())
        match = next(
            (
                s.name
                for s in subs
                if s.depth in allowed and reads <= set(s.input_groups) and feeds <= set(s.outputs)
            ),
            None,
        )
        detail["modules"].append(
            {
                "module": module,
                "hidden_layers": hidden,
                "allowed_levels": sorted(allowed),
                "input_groups": sorted(reads),
                "outputs": sorted(feeds),
                "sub_function": match,
            }
        )
        if match is None and verdict:
            verdict = False
            detail["reason"] = (
                f"module {module} (hidden layers {_fmt(hidden)}) reads input groups {_fmt(sorted(reads))} "
                f"and feeds outputs {_fmt(sorted(feeds))}: no single sub-function of level(s) "
                f"{_fmt(sorted(allowed))} does"
            )
    if verdict:
        detail["reason"] = f"every module with hidden units matches one sub-function ({method})"
    return verdict, detail


def _allowed_everywhere(n_hidden: int, n_levels: int) -> set[int]:
    """Levels a module spanning every hidden layer may compute."""
    return set(range(1, min(highest_level(l, n_hidden, n_levels) for l in range(1, n_hidden + 1)) + 1))


# ------------------------------------------------------------------------------------------------- depth


def stretches(counts, expected) -> bool:
    """True when the per-hidden-layer counts are the level counts with every level on >= 1 consecutive
    layers, e.g. (2, 2) for (2,), or (1, 2, 2) and (1, 1, 2) for (1, 2)."""
    counts, expected = list(counts), list(expected)
    h, d = len(counts), len(expected)
    if h < d or d == 0:
        return False
    # ok[j]: the layers read so far can end on level j (0-based), having covered levels 0..j
    ok = [counts[0] == expected[0]] + [False] * (d - 1)
    for c in counts[1:]:
        ok = [(ok[j] or (j > 0 and ok[j - 1])) and c == expected[j] for j in range(d)]
    return ok[-1]


def _modules_per_depth(counts, expected) -> tuple[bool | None, dict]:
    detail: dict = {"expected_per_level": None if expected is None else list(expected), "found": list(counts)}
    if expected is None or not expected:
        detail["reason"] = "the task does not say how many modules each depth has"
        return None, detail
    if not counts:
        detail["reason"] = "the network has no hidden layer"
        return None, detail
    if len(counts) < len(expected):
        detail["reason"] = (
            f"{len(counts)} hidden layer(s) cannot show {len(expected)} levels one per layer; not scored"
        )
        return None, detail
    verdict = stretches(counts, expected)
    shown = " ".join(map(str, counts))
    want = " ".join(map(str, expected))
    detail["reason"] = (
        f"modules per hidden layer {shown} {'fit' if verdict else 'do not fit'} levels {want} "
        "(each level on one or more consecutive layers)"
    )
    return verdict, detail
