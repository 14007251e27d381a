"""--recipe published: the option, and the replay of the published code's own CPU runs (docs/fidelity.md).

The expected trajectories are the published code's, recorded when it was run on CPU (the published_cpu
reference package; seeds 0 and 9 are copied, trimmed, into tests/data/published_cpu). The random-number
facts are checked against torch's own DataLoader with worker processes, the mechanism the published code
used.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from run.parser import ConfigError, parse_config
from tests.conftest import call_main
from utils.published_replay import PublishedStream, worker_noise

DATA = Path(__file__).resolve().parent / "data" / "published_cpu"
REPO = Path(__file__).resolve().parents[1]
REFERENCE = REPO.parent / "shared" / "reference" / "published_cpu"
CELL = [
    "--experiment", "prune", "--task", "boolean",
    "--dataset_path", str(REPO / "datasets" / "increasing_reuse_non_separable"),
    "--modularity", "4", "1", "2", "4", "--arch", "4", "24", "24", "4", "--lr", "0.1", "--batch_size", "8",
    "--epochs", "40", "--unit_pruning_gradient", "70.0", "--prune_acc_threshold", "100.0",
    "--pruning_gradient", "2.5", "--recipe", "published", "--quiet",
]  # fmt: skip
RULES = {
    "table_repeats": 1,
    "best_epoch": "published",
    "retrain_include_start": False,
    "final_step": "one",
    "step_from": "target",
    "edge_bias_mask": "inputless",
}


def test_recipe_sets_every_published_rule_and_names_the_folder():
    config = parse_config(["--recipe", "published"])
    assert {name: getattr(config, name) for name in RULES} == RULES
    from run.runs import dense_dir

    assert "recipe-published" in str(dense_dir(config))
    assert "recipe" not in str(dense_dir(parse_config([])))
    # the same value given explicitly is no contradiction
    assert parse_config(["--recipe", "published", "--table_repeats", "1"]).table_repeats == 1


@pytest.mark.parametrize(
    "option", [["--table_repeats", "2"], ["--final_step", "stop"], ["--edge_bias_mask", "keep"]]
)
def test_recipe_refuses_a_contradicting_option(option):
    with pytest.raises(ConfigError, match=f"--recipe published sets {option[0]}"):
        parse_config(["--recipe", "published", *option])


class _NoisyTable(torch.utils.data.Dataset):
    """The published boolean dataset: table row i plus fresh N(0, 1) x 0.1 noise (drawn in a worker)."""

    def __init__(self, x):
        self.x = x

    def __len__(self):
        return self.x.shape[0]

    def __getitem__(self, index):
        return self.x[index] + torch.randn(self.x[index].size()) * 0.1, index


def test_stream_draws_what_torch_dataloaders_with_two_workers_draw():
    x = torch.arange(16 * 4).reshape(16, 4) % 2
    torch.manual_seed(5)
    loaders = [
        torch.utils.data.DataLoader(_NoisyTable(x), batch_size=8, shuffle=True, num_workers=2),
        torch.utils.data.DataLoader(torch.utils.data.TensorDataset(x), batch_size=8, num_workers=2),
    ]
    seen = [[(xb, ib) for xb, ib in loaders[0]], list(loaders[1]), [(xb, ib) for xb, ib in loaders[0]]]
    after = torch.empty((), dtype=torch.int64).random_().item()

    stream = PublishedStream(5)
    for k in (0, 2):  # two shuffled passes around an unshuffled one
        order, base_seed = stream.shuffled_pass(16)
        noise = worker_noise(base_seed, 16, 8, 4, 0.1)
        got = torch.cat([ib for _, ib in seen[k]])
        assert torch.equal(got, order)
        assert torch.equal(torch.cat([xb for xb, _ in seen[k]]), x[order] + noise)
        if k == 0:
            stream.unshuffled_pass()
    assert stream.draw_int64() == after


def _history(seed: int) -> dict:
    return json.loads((DATA / "history_trimmed.json").read_text())["seeds"][str(seed)]


def _run(tmp_path, seed: int, phase: str, checkpoint: Path, capsys) -> dict:
    argv = [*CELL, "--seed", str(seed), "--prune_units", "1" if phase == "unit" else "0"]
    argv += ["--checkpoint", str(checkpoint), "--result_path", str(tmp_path)]
    rc, _, err = call_main(argv, capsys)
    assert rc == 0, err
    found = list(tmp_path.rglob("units/*/metrics.json" if phase == "unit" else "edges/*/metrics.json"))
    assert len(found) == 1
    return json.loads(found[0].read_text())


def _same_trajectory(ours: list[dict], published: list[dict]) -> None:
    assert len(ours) == len(published)
    for mine, theirs in zip(ours, published):
        assert mine["target_percent"] == pytest.approx(theirs["target_pruned_percent"], abs=1e-9)
        assert mine["trained"] == theirs["trained"]
        assert mine["accepted"] == theirs["accepted"]
        if theirs["trained"]:
            assert mine["mask_hex"] == theirs["mask_hex"]  # the same weights tried
            assert mine["test_accuracy"] == theirs["test_accuracy"]


def test_unit_phase_from_the_published_dense_network_replays_the_published_run(tmp_path, capsys):
    history = _history(0)
    metrics = _run(tmp_path, 0, "unit", DATA / "seed0_dense.npz", capsys)
    _same_trajectory(metrics["history"], [s for s in history["steps"] if s["phase"] == "unit"])
    assert metrics["density"] == pytest.approx(history["unit_result_density_percent"])


def test_edge_phase_from_the_published_unit_network_replays_the_published_run(tmp_path, capsys):
    history = _history(0)
    metrics = _run(tmp_path, 0, "edge", DATA / "seed0_units.npz", capsys)
    start = next(s for s in history["steps"] if s["phase"] == "edge_start")
    assert metrics["replay"]["start_retraining"]["test_accuracy"] == start["test_accuracy"]
    assert metrics["replay"]["start_retraining"]["best_epoch"] == start["selected_epoch"]
    _same_trajectory(metrics["history"], [s for s in history["steps"] if s["phase"] == "edge"])
    assert metrics["density"] == pytest.approx(history["final_density_percent"])


def test_edge_phase_keeps_the_unit_network_when_its_retraining_falls_below_the_threshold(tmp_path, capsys):
    # seed 9: the published edge phase retrains the unit network to 96.875 %, accepts no edge step and saves
    # that retrained network below the threshold; sculpt replays the same tries and keeps the unit network
    history = _history(9)
    metrics = _run(tmp_path, 9, "edge", DATA / "seed9_units.npz", capsys)
    _same_trajectory(metrics["history"], [s for s in history["steps"] if s["phase"] == "edge"])
    assert metrics["replay"]["kept_unit_network"] is True
    assert metrics["test_accuracy"] == 100.0
    with np.load(DATA / "seed9_units.npz") as units:
        kept = sum(int(units[f"mask{i}"].sum()) for i in range(3))
    assert metrics["density"] == pytest.approx(100.0 * kept / 768)


@pytest.mark.skipif(not (REFERENCE / "seed2").is_dir(), reason="published_cpu reference package absent")
def test_seed2_unit_phase_replays_the_reference_package(tmp_path, capsys):
    full = json.loads((REFERENCE / "seed2" / "history.json").read_text())
    metrics = _run(tmp_path, 2, "unit", REFERENCE / "seed2" / "dense.npz", capsys)
    _same_trajectory(metrics["history"], [s for s in full["steps"] if s["phase"] == "unit"])


def test_prune_from_a_file_without_the_recipe_names_the_file_in_its_folder(tmp_path, capsys):
    argv = [c for c in CELL if c not in ("--recipe", "published")]
    argv += ["--seed", "0", "--prune_units", "1", "--checkpoint", str(DATA / "seed0_dense.npz")]
    argv += ["--epochs", "5", "--result_path", str(tmp_path)]
    rc, _, err = call_main(argv, capsys)
    assert rc == 0, err
    (found,) = tmp_path.rglob("units/*/metrics.json")
    assert "/start-seed0_dense-" in str(found) and "recipe" not in str(found)
    metrics = json.loads(found.read_text())
    assert metrics["start"]["test_accuracy"] == 100.0  # the published dense network, as loaded
    assert metrics["start"]["density"] == 100.0


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--arch", "4", "24", "4"], "has arch 4 24 24 4 but --arch is 4 24 4"),
        (["--modularity", "4", "1", "2", "8"], "does not fit task 4-1-2-8"),
    ],
)
def test_prune_from_a_file_that_does_not_fit_is_one_line(tmp_path, capsys, extra, message):
    argv = [*CELL, "--seed", "0", "--prune_units", "1", "--checkpoint", str(DATA / "seed0_dense.npz")]
    rc, out, err = call_main([*argv, *extra, "--result_path", str(tmp_path)], capsys)
    assert rc == 2 and err.count("\n") == 1 and message in err
    assert not list(tmp_path.rglob("metrics.json"))


def test_prune_edges_refuses_a_checkpoint(tmp_path, capsys):
    argv = [
        *CELL,
        "--seed",
        "0",
        "--checkpoint",
        str(DATA / "seed0_dense.npz"),
        "--result_path",
        str(tmp_path),
    ]
    argv[argv.index("prune")] = "prune_edges"
    rc, _, err = call_main(argv, capsys)
    assert rc == 2 and "takes no --checkpoint" in err


def test_edge_searches_after_a_reused_one_continue_the_published_stream(tmp_path, capsys):
    # the published edge phase runs its --pruning_gradient values one after another on one stream: a search
    # after a finished (reused) one must start where that one left the stream
    def edges(steps, where):
        argv = [*CELL, "--seed", "0", "--prune_units", "0", "--checkpoint", str(DATA / "seed0_units.npz")]
        argv[argv.index("--pruning_gradient") + 1 : argv.index("--pruning_gradient") + 2] = steps
        rc, _, err = call_main([*argv, "--result_path", str(where)], capsys)
        assert rc == 0, err
        found = list(where.rglob("edges/*step-1.5*/metrics.json"))
        return json.loads(found[0].read_text()) if found else None

    at_once = edges(["2.5", "1.5"], tmp_path / "a")
    edges(["2.5"], tmp_path / "b")
    after_reuse = edges(["2.5", "1.5"], tmp_path / "b")
    assert after_reuse["history"] == at_once["history"]
    assert after_reuse["replay"]["stream_int64_draws"] == at_once["replay"]["stream_int64_draws"]
