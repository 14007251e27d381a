"""Scoring detected modules against the ground truth (detection_pipeline/scoring.py, docs/scoring.md).

Networks are built by hand: every unit has a tag (the sub-function it serves), edges join tags that feed
each other, and the partition under test is given explicitly.
"""

from __future__ import annotations

import json
from argparse import Namespace
from pathlib import Path

import numpy as np
import pytest

from detection_pipeline.scoring import (
    CRITERIA,
    digit_truth,
    ground_truth_for,
    highest_level,
    score_modules,
    stretches,
)
from utils.tasks.function_graph import FunctionGraph, find_graph

REFERENCE = Path(__file__).resolve().parents[2] / "shared" / "reference" / "models"


def truth(modularity, family=None):
    return ground_truth_for(FunctionGraph.from_file(find_graph(modularity, family)))


def same_tag(lo: str, hi: str) -> bool:
    return lo == hi


def reads(lo: str, hi: str) -> bool:
    """hi reads lo when they are equal or hi's tag lists lo (e.g. "pq" reads "p")."""
    return lo == hi or lo in hi.split("+")


def masks_for(tags, connect=reads):
    """Masks (arch[l+1], arch[l]) with an edge wherever connect(lower tag, upper tag)."""
    return [
        np.array([[connect(lo, hi) for lo in lower] for hi in upper], dtype=np.uint8)
        for lower, upper in zip(tags[:-1], tags[1:], strict=True)
    ]


def score(tags, partition, task_truth, connect=reads, with_masks=True):
    arch = [len(t) for t in tags]
    flat = [m for layer in partition for m in layer]
    return score_modules(arch, flat, task_truth, masks=masks_for(tags, connect) if with_masks else None)


def verdicts(s):
    return {name: s[name] for name in (*CRITERIA, "success")}


# --------------------------------------------------------------------------------------------- 4 2 4

T424 = [list("aabb"), list("aabb"), list("aabb")]


def test_424_perfect_modules_succeed():
    s = score(T424, [[0, 0, 1, 1], [0, 0, 1, 1], [0, 0, 1, 1]], truth([4, 2, 4]))
    assert verdicts(s) == {
        "input_separability": True,
        "output_grouping": True,
        "hidden_separability": True,
        "modules_per_depth": True,
        "success": True,
    }
    assert s["modules_per_layer"] == [2, 2, 2] and s["expected_modules_per_level"] == [2]
    json.dumps(s)  # JSON-ready


def test_424_merged_inputs_fail_input_separability():
    s = score(T424, [[0, 0, 0, 0], [0, 0, 1, 1], [0, 0, 1, 1]], truth([4, 2, 4]))
    assert s["input_separability"] is False and s["success"] is False
    assert "share module 0" in s["details"]["input_separability"]["reason"]


def test_424_outputs_split_wrong_fail_output_grouping():
    s = score(T424, [[0, 0, 1, 1], [0, 0, 1, 1], [0, 1, 1, 1]], truth([4, 2, 4]))
    assert s["output_grouping"] is False and s["input_separability"] is True and s["success"] is False
    s = score(T424, [[0, 0, 1, 1], [0, 0, 1, 1], [0, 0, 0, 0]], truth([4, 2, 4]))
    assert s["output_grouping"] is False


def test_424_dropped_used_input_fails():
    s = score(T424, [[0, -1, 1, 1], [0, 0, 1, 1], [0, 0, 1, 1]], truth([4, 2, 4]))
    assert s["input_separability"] is False
    assert s["details"]["input_separability"]["dropped_used"] == [1]


def test_424_cross_wired_modules_fail_hidden_separability_even_without_masks():
    # inputs and outputs are each grouped right, but the module holding x0, x1 produces y2, y3
    partition = [[0, 0, 1, 1], [0, 0, 1, 1], [1, 1, 0, 0]]
    s = score(T424, partition, truth([4, 2, 4]), with_masks=False)
    assert s["input_separability"] is True and s["output_grouping"] is True
    assert s["hidden_separability"] is False and s["details"]["hidden_separability"]["method"] == "membership"


def test_424_hidden_module_reading_both_groups_fails():
    tags = [list("aabb"), ["a", "a+b", "b", "b"], list("aabb")]  # unit 1 reads both input groups
    s = score(tags, [[0, 0, 1, 1], [0, 0, 1, 1], [0, 0, 1, 1]], truth([4, 2, 4]))
    assert s["hidden_separability"] is False and s["input_separability"] is True
    assert s["details"]["hidden_separability"]["modules"][0]["input_groups"] == [0, 1]


def test_424_two_hidden_layers_count_per_depth():
    tags = [list("aabb")] * 4
    good = score(tags, [[0, 0, 1, 1]] * 4, truth([4, 2, 4]))
    assert good["success"] is True and good["modules_per_layer"] == [2, 2, 2, 2]
    one = score(tags, [[0, 0, 1, 1], [0, 0, 1, 1], [2, 2, 2, 2], [3, 3, 4, 4]], truth([4, 2, 4]))
    assert one["modules_per_depth"] is False


# ------------------------------------------------------------------------------------------ 6 3 3 3

T6333 = [list("ppqqrr"), list("pqr"), list("pqr"), ["p+q", "p+r", "q+r"]]


def test_6333_modules_carried_to_the_outputs_succeed():
    # the published networks: p, q, r each span both hidden layers; each output (an OR) is its own module
    s = score(T6333, [[0, 0, 1, 1, 2, 2], [0, 1, 2], [0, 1, 2], [3, 4, 5]], truth([6, 3, 3, 3]))
    assert s["success"] is True and s["modules_per_layer"] == [3, 3, 3, 3]


def test_6333_or_modules_in_the_second_layer_succeed():
    tags = [list("ppqqrr"), list("pqr"), ["p+q", "p+r", "q+r"], ["p+q", "p+r", "q+r"]]
    s = score(tags, [[0, 0, 1, 1, 2, 2], [0, 1, 2], [3, 4, 5], [3, 4, 5]], truth([6, 3, 3, 3]))
    assert s["success"] is True


def test_6333_mixed_first_layer_module_fails():
    s = score(T6333, [[0, 0, 1, 1, 2, 2], [3, 3, 2], [4, 5, 2], [6, 7, 8]], truth([6, 3, 3, 3]))
    assert s["input_separability"] is True and s["output_grouping"] is True
    assert s["hidden_separability"] is False and s["modules_per_depth"] is False


def test_6333_one_hidden_layer_has_no_depth_verdict():
    tags = [list("ppqqrr"), list("pqr"), ["p+q", "p+r", "q+r"]]
    s = score(tags, [[0, 0, 1, 1, 2, 2], [0, 1, 2], [3, 4, 5]], truth([6, 3, 3, 3]))
    assert s["modules_per_depth"] is None and s["success"] is True


# --------------------------------------------------------------------------------------------- 4 1 4

T414 = [["F"] * 4, ["F"] * 4, ["F"] * 4]


def test_414_one_module_succeeds():
    s = score(T414, [[0] * 4, [0] * 4, [0] * 4], truth([4, 1, 4]))
    assert s["success"] is True
    assert s["hidden_separability"] is None  # one sub-function: no partition could fail it
    assert s["modules_per_depth"] is True


def test_414_two_modules_fail():
    tags = [list("FFGG"), list("FFGG"), list("FFGG")]  # a false split into two halves
    s = score(tags, [[0, 0, 1, 1], [0, 0, 1, 1], [0, 0, 1, 1]], truth([4, 1, 4]), connect=same_tag)
    assert s["input_separability"] is False
    assert s["output_grouping"] is False
    assert s["modules_per_depth"] is False
    assert s["success"] is False


# ------------------------------------------------------------------------------------------ 4 1 2 16

T41216 = [["F"] * 4, ["F"] * 3, list("AABB"), list("AB") * 8]


def reuse_reads(lo: str, hi: str) -> bool:
    return lo == hi or lo == "F"


def test_41216_reuse_at_two_hidden_layers_succeeds():
    partition = [[0] * 4, [0] * 3, [1, 1, 2, 2], [1, 2] * 8]
    s = score(T41216, partition, truth([4, 1, 2, 16], "exemplar"), connect=reuse_reads)
    assert verdicts(s) == {
        "input_separability": True,
        "output_grouping": True,
        "hidden_separability": None,  # F reads every input and feeds every output
        "modules_per_depth": True,
        "success": True,
    }


def test_41216_merged_a_and_b_fail():
    partition = [[0] * 4, [0] * 3, [1, 1, 1, 1], [1] * 16]
    s = score(T41216, partition, truth([4, 1, 2, 16], "exemplar"), connect=reuse_reads)
    assert s["output_grouping"] is False and s["modules_per_depth"] is False and s["success"] is False


def test_41216_one_hidden_layer_cannot_show_reuse():
    tags = [["F"] * 4, ["F"] * 4, list("AB") * 8]
    s = score(tags, [[0] * 4, [0] * 4, [0] * 16], truth([4, 1, 2, 16], "exemplar"), connect=reuse_reads)
    assert s["modules_per_depth"] is None and s["output_grouping"] is False and s["success"] is False


# ------------------------------------------------------------------------------------- input overlap


def overlap_tags(n_inputs, f_inputs, g_inputs):
    inputs = ["+".join(t for t, s in (("F", f_inputs), ("G", g_inputs)) if i in s) for i in range(n_inputs)]
    return [inputs, list("FFGG"), list("FG")]


def overlap_reads(lo: str, hi: str) -> bool:
    return hi in lo.split("+")


def test_overlap_shared_input_may_join_either_module():
    tags = overlap_tags(7, range(0, 4), range(3, 7))  # 7 3 2 2: x3 is shared
    t = truth([7, 3, 2, 2])
    for inputs in ([0, 0, 0, 0, 1, 1, 1], [0, 0, 0, 1, 1, 1, 1], [0, 0, 0, 2, 1, 1, 1]):
        s = score(tags, [inputs, [0, 0, 1, 1], [0, 1]], t, connect=overlap_reads)
        assert s["input_separability"] is True, inputs
        assert s["success"] is True
    assert (
        score(tags, [[0] * 7, [0, 0, 1, 1], [0, 1]], t, connect=overlap_reads)["input_separability"] is False
    )
    dropped = score(tags, [[0, 0, 0, -1, 1, 1, 1], [0, 0, 1, 1], [0, 1]], t, connect=overlap_reads)
    assert dropped["input_separability"] is False  # x3 is used by both sub-functions


def test_full_overlap_needs_separate_hidden_modules():
    tags = overlap_tags(4, range(4), range(4))  # 4 1 2 2 2: F and G read the same inputs
    t = truth([4, 1, 2, 2, 2])
    good = score(tags, [[0] * 4, [1, 1, 2, 2], [1, 2]], t, connect=overlap_reads)
    assert good["success"] is True
    shared = [tags[0], ["F+G"] * 4, list("FG")]
    s = score(shared, [[0] * 4, [0] * 4, [1, 2]], t, connect=lambda lo, hi: True)
    assert s["input_separability"] is True and s["output_grouping"] is True
    assert s["hidden_separability"] is False and s["modules_per_depth"] is False


# --------------------------------------------------------------------------------------- hierarchical

THIER = [list("FFFFGGGG"), list("FFGG"), ["h", "h"], list("AB"), list("AB")]


def hier_reads(lo: str, hi: str) -> bool:
    return lo == hi or (hi == "h" and lo in "FG") or (hi in "AB" and lo == "h")


def test_hierarchical_levels_succeed_at_three_hidden_layers():
    partition = [[0] * 4 + [1] * 4, [0, 0, 1, 1], [2, 2], [3, 4], [3, 4]]
    s = score(THIER, partition, truth([8, 2, 1, 2, 2]), connect=hier_reads)
    assert s["success"] is True and s["expected_modules_per_level"] == [2, 1, 2]


def test_hierarchical_mixed_first_layer_fails():
    partition = [[0] * 4 + [1] * 4, [5, 5, 5, 5], [2, 2], [3, 4], [3, 4]]
    s = score(THIER, partition, truth([8, 2, 1, 2, 2]), connect=hier_reads)
    assert s["input_separability"] is True and s["output_grouping"] is True
    assert s["hidden_separability"] is False and s["modules_per_depth"] is False


def test_hierarchical_two_hidden_layers_have_no_depth_verdict():
    tags = [list("FFFFGGGG"), list("FFGG"), list("AB"), list("AB")]
    s = score(tags, [[0] * 4 + [1] * 4, [0, 0, 1, 1], [2, 3], [2, 3]], truth([8, 2, 1, 2, 2]))
    assert s["modules_per_depth"] is None


# ---------------------------------------------------------------------------------- depth mapping


@pytest.mark.parametrize(
    "counts, expected, ok",
    [
        ((2,), (2,), True),
        ((2, 2), (2,), True),
        ((2, 1), (2,), False),
        ((3, 3), (3, 3), True),
        ((1, 1, 2), (1, 2), True),
        ((1, 2, 2), (1, 2), True),
        ((2, 1, 2), (1, 2), False),
        ((2, 2, 1, 2), (2, 1, 2), True),
        ((2, 1, 1, 2), (2, 1, 2), True),
        ((2, 1, 2, 1), (2, 1, 2), False),
        ((3, 1, 1), (3, 3, 1), False),
        ((2,), (2, 1, 2), False),
    ],
)
def test_stretches(counts, expected, ok):
    assert stretches(counts, expected) is ok


def test_highest_level():
    assert [highest_level(l, 2, 2) for l in (1, 2)] == [1, 2]  # H = D
    assert [highest_level(l, 3, 2) for l in (1, 2, 3)] == [1, 2, 2]  # deeper network
    assert [highest_level(l, 2, 3) for l in (1, 2)] == [2, 3]  # shallower network folds levels


# ------------------------------------------------------------------------------ truth objects, errors


def test_ground_truth_for_configs_and_tasks(tmp_path):
    config = Namespace(task="boolean", modularity=[4, 2, 4], dataset_path="./datasets/exemplar/", graph=None)
    t = ground_truth_for(config)
    assert t.input_groups == ((0, 1), (2, 3)) and t.modules_per_level == (2,)
    assert ground_truth_for(t) is t
    assert ground_truth_for(None) is None
    assert ground_truth_for(Namespace(task="mnist_10way", modularity=[784, 10])) is None
    digits = ground_truth_for(Namespace(task="digits", modularity=[128, 2, 20]))
    assert digits.input_groups[0][:9] == (0, 1, 2, 3, 4, 5, 6, 7, 16)
    assert digits.output_groups == (tuple(range(10)), tuple(range(10, 20))) and digits.modules_per_level == (
        2,
    )
    xor = digit_truth("mnist", [1568, 2, 3, 3])
    assert xor.output_groups == ((0,), (1,), (2,)) and xor.modules_per_level == (2, 3)
    assert len(xor.input_groups[1]) == 784 and xor.input_groups[1][0] == 28


def test_digit_task_may_drop_blank_pixels():
    t = digit_truth("digits", [128, 2, 20])
    arch = [128, 4, 20]
    inputs = np.where(np.arange(128) % 16 < 8, 0, 1)
    inputs[[0, 7, 8, 15]] = -1  # border pixels pruned away
    partition = np.concatenate([inputs, [0, 0, 1, 1], [0] * 10 + [1] * 10])
    s = score_modules(arch, partition, t)
    assert s["input_separability"] is True and s["output_grouping"] is True and s["success"] is True
    inputs[8:16] = 0  # the right half's first row joins the left module
    s = score_modules(arch, np.concatenate([inputs, [0, 0, 1, 1], [0] * 10 + [1] * 10]), t)
    assert s["input_separability"] is False


def test_no_truth_gives_no_verdicts():
    s = score_modules([4, 4, 4], [0] * 12, None)
    assert all(s[name] is None for name in (*CRITERIA, "success"))


def test_bad_inputs_raise():
    t = truth([4, 2, 4])
    with pytest.raises(ValueError, match="partition"):
        score_modules([4, 4, 4], [0] * 11, t)
    with pytest.raises(ValueError, match="n_hidden"):
        score_modules([4, 4, 4], [0] * 12, t, n_hidden=2)
    with pytest.raises(ValueError, match="mask"):
        score_modules([4, 4, 4], [0] * 12, t, masks=[np.ones((4, 4)), np.ones((3, 4))])
    with pytest.raises(ValueError, match="group"):
        score_modules([3, 4, 4], [0] * 11, t)


@pytest.mark.skipif(not REFERENCE.is_dir(), reason="../shared/reference is not present")
def test_published_partitions_of_the_exemplars_succeed():
    """The published detections of the exemplars at the depths the paper reports all score success."""
    index = json.loads((REFERENCE / "index.json").read_text())
    wanted = {(4, 2, 4): None, (6, 3, 3, 3): None, (4, 1, 4): None, (4, 1, 2, 16): 2}
    seen = 0
    for entry in index:
        key = tuple(entry["modularity"])
        depth = len(entry["arch"]) - 2
        if entry["family"] != "exemplar" or key not in wanted or wanted[key] not in (None, depth):
            continue
        data = np.load(REFERENCE.parent / entry["file"])
        arch = [int(a) for a in data["arch"]]
        masks = [data[f"mask{i}"] for i in range(len(arch) - 1)]
        s = score_modules(arch, data["anchor_partition"], truth(list(key), "exemplar"), masks=masks)
        assert s["success"] is True, (entry["file"], s["details"])
        seen += 1
    assert seen >= 40
