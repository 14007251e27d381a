"""--experiment module_detection end to end: where the network comes from, what is written, bad input."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import networkx as nx
import numpy as np
import pytest
import torch

from tests.conftest import DONE_WHEN, all_files, call_main, edge_run_path, one_error_line, out_folder

REFERENCE = Path(__file__).parent / "data" / "reference_networks"
DETECT = ["--experiment", "module_detection", "--unit_pruning_gradient", "70.0", "--pruning_gradient", "2.5"]


def partition_groups(partition) -> set[frozenset]:
    """Partition as a set of unit-index groups (labels are arbitrary), dropped units as their own group."""
    groups: dict[int, set] = {}
    for unit, module in enumerate(partition):
        groups.setdefault(int(module), set()).add(unit)
    return {frozenset(g) for g in groups.values()}


@pytest.fixture
def example(published_example, tmp_path) -> Path:
    root = tmp_path / "results"
    shutil.copytree(published_example, root)
    return root


def test_published_example_gives_two_modules_with_inputs_apart(example, tmp_path, capsys):
    vis = tmp_path / "vis"
    rc, out, _ = call_main(
        [*DONE_WHEN, *DETECT, "--result_path", str(example), "--visualization_path", str(vis)], capsys
    )
    assert rc == 0
    run = edge_run_path(example)
    modules = json.loads((run / "modules.json").read_text())
    assert modules["n_modules"] == 2
    inputs = modules["partition"][:4]
    assert inputs[0] == inputs[1] and inputs[2] == inputs[3] and inputs[0] != inputs[2]
    outputs = modules["partition"][-4:]
    assert outputs[0] == outputs[1] == inputs[0] and outputs[2] == outputs[3] == inputs[2]
    assert modules["arch"] == [4, 24, 4] and modules["condensed_arch"][0] == 4
    assert modules["options"]["feature_step_size"] == 2 and len(modules["layers"]) == 2
    # GraphML: the condensed network with layer and module attributes.
    graph = nx.read_graphml(run / "network.graphml")
    kept = [i for i, m in enumerate(modules["partition"]) if m >= 0]
    assert graph.number_of_nodes() == len(kept)
    assert {d["module"] for _, d in graph.nodes(data=True)} == {0, 1}
    state = torch.load(run / "model.pt", weights_only=True)
    assert graph.number_of_edges() <= sum(int(state[f"layers.{i}.weight_mask"].sum()) for i in range(2))
    pictures = list(vis.rglob("modules.png"))
    assert len(pictures) == 1 and pictures[0].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "2 modules" in out


@pytest.mark.parametrize("npz", sorted(REFERENCE.glob("*.npz"))[:4], ids=lambda p: p.stem[:40])
def test_published_npz_checkpoint_reproduces_its_partition(npz, tmp_path, capsys):
    arch = [int(a) for a in np.load(npz)["arch"]]
    steps = str(len(arch) - 1)
    argv = [
        "--experiment",
        "module_detection",
        "--checkpoint",
        str(npz),
        "--result_path",
        str(tmp_path / "r"),
        "--visualization_path",
        str(tmp_path / "v"),
        "--feature_step_size",
        steps,
        "--clusterability_step_size",
        steps,
        "--quiet",
    ]
    assert call_main(argv, capsys)[0] == 0
    folder = out_folder(tmp_path / "r", f"{npz.parent.name}_{npz.stem}")
    modules = json.loads((folder / "modules.json").read_text())
    expected = np.load(npz)["anchor_partition"]
    assert partition_groups(modules["partition"]) == partition_groups(expected)
    assert (out_folder(tmp_path / "v", f"{npz.parent.name}_{npz.stem}") / "modules.png").is_file()


def test_our_checkpoint_file_works_and_arch_is_taken_from_it(example, tmp_path, capsys):
    checkpoint = edge_run_path(example) / "model.pt"
    argv = [
        "--experiment",
        "module_detection",
        "--checkpoint",
        str(checkpoint),
        "--result_path",
        str(tmp_path / "r"),
        "--visualization_path",
        str(tmp_path / "v"),
        "--quiet",
    ]
    assert call_main(argv, capsys)[0] == 0
    folder = out_folder(tmp_path / "r", f"{checkpoint.parent.name}_model")
    assert json.loads((folder / "modules.json").read_text())["n_modules"] == 2


@pytest.mark.parametrize(
    "problem",
    ["missing", "corrupt", "wrong_arch", "no_run", "no_path"],
)
def test_bad_networks_exit_2_with_one_line_and_no_picture(problem, example, tmp_path, capsys):
    out, vis = tmp_path / "r", tmp_path / "v"
    argv = ["--experiment", "module_detection", "--result_path", str(out), "--visualization_path", str(vis)]
    if problem == "missing":
        argv += ["--checkpoint", str(tmp_path / "nope.pt")]
    elif problem == "corrupt":
        bad = tmp_path / "bad.pt"
        bad.write_bytes(b"not a checkpoint")
        argv += ["--checkpoint", str(bad)]
    elif problem == "wrong_arch":
        argv += ["--checkpoint", str(edge_run_path(example) / "model.pt"), "--arch", "4", "16", "4"]
    elif problem == "no_run":
        argv = [*DONE_WHEN, *DETECT, "--result_path", str(out), "--visualization_path", str(vis)]
    else:
        state = torch.load(edge_run_path(example) / "model.pt", weights_only=True)
        state["layers.1.weight_mask"].zero_()  # nothing reaches the outputs
        dead = tmp_path / "dead.pt"
        torch.save(state, dead)
        argv += ["--checkpoint", str(dead)]
    rc, _, err = call_main(argv, capsys)
    assert rc == 2
    line = one_error_line(err)
    assert {
        "missing": "does not exist",
        "corrupt": "corrupt",
        "wrong_arch": "--arch",
        "no_run": "--prune_units",
        "no_path": "path",
    }[problem] in line
    assert all_files(vis) == [] and not list(out.rglob("modules.json"))
