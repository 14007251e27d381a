"""Pruning runs end to end: the published example, errors, prune_edges from dense, reuse, kill-and-resume."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time

import pytest
import torch

import run.pruning_runs as pruning_runs
from models.mlp import MLP
from run.common import prepare
from run.parser import parse_config
from tests.conftest import (
    DONE_WHEN,
    EDGE_PRUNE,
    REPO,
    UNIT_OPTIONS,
    UNIT_PRUNE,
    all_files,
    assert_states_equal,
    call_main,
    cli_env,
    edge_run_path,
    load_state,
    one_error_line,
    run_cli,
    seed_path,
    unit_run_path,
)
from utils.training import evaluate

RUN_FILES = ["config.json", "metrics.json", "model.pt", "network.npz"]


def metrics_of(run) -> dict:
    return json.loads((run / "metrics.json").read_text())


def model_of(run) -> MLP:
    model = MLP([4, 24, 4])
    model.load_state_dict(load_state(run / "model.pt"))
    return model


def test_accuracy(model) -> float:
    ctx = prepare(parse_config(DONE_WHEN))
    return evaluate(model, ctx.data.x_test, ctx.data.y_test, ctx.data, "BCE")[0]


test_accuracy.__test__ = False  # a helper, not a test


def copy_results(src, dst):
    shutil.copytree(src, dst)
    return dst


# -------------------------------------------------------------------------------------- published example


def test_published_example_reaches_100_percent_at_most_12_percent_density(published_example):
    edges = edge_run_path(published_example)
    metrics = metrics_of(edges)
    assert metrics["test_accuracy"] == 100.0
    assert metrics["density"] <= 12.0
    model = model_of(edges)
    assert model.density() == pytest.approx(metrics["density"])
    assert model.units_kept() == metrics["units_kept"]
    assert test_accuracy(model) == 100.0  # the saved network, evaluated afresh


def test_published_example_metrics_and_history(published_example):
    units = metrics_of(unit_run_path(published_example))
    edges = metrics_of(edge_run_path(published_example))
    dense = metrics_of(seed_path(published_example) / "dense")
    assert dense["test_accuracy"] == 100.0 and dense["density"] == 100.0
    assert units["test_accuracy"] == 100.0
    assert units["units_kept"][0] == 4 and units["units_kept"][-1] == 4 and units["units_kept"][1] < 24
    assert units["kind"] == "units" and units["step"] == 70.0
    assert edges["kind"] == "edges" and edges["step"] == 2.5
    assert edges["start"]["density"] == pytest.approx(units["density"])
    for metrics in (units, edges):
        assert {"density", "units_kept", "history", "test_accuracy"} <= set(metrics)
        history = metrics["history"]
        assert len(history) >= 2
        for entry in history:
            assert {"target_percent", "step", "accepted"} <= set(entry)
            if "skipped" in entry:  # not retrained: a target >= 100 %, or a cut that masks nothing new
                assert "test_accuracy" not in entry
                continue
            assert entry["accepted"] == (entry["test_accuracy"] >= 100.0)
        history = [e for e in history if "skipped" not in e]
        accepted = [e for e in history if e["accepted"]]
        assert accepted and any(not e["accepted"] for e in history)
        assert accepted[-1]["density"] == pytest.approx(metrics["density"])
        densities = [e["density"] for e in accepted]
        assert densities == sorted(densities, reverse=True)  # each accepted step prunes more
        assert [e["iteration"] for e in metrics["history"]] == list(range(1, len(metrics["history"]) + 1))
    # unit pruning starts with the published 70 % step
    assert units["history"][0]["target_percent"] == 70.0 and units["history"][0]["step"] == 70.0
    # edge targets start from the unit-pruned sparsity
    assert edges["history"][0]["target_percent"] == pytest.approx(100 - units["density"] + 2.5)


def test_published_example_files_and_masks(published_example):
    assert not [p for p in all_files(published_example) if p.name.startswith(".") or p.suffix == ".tmp"]
    assert not [p for p in all_files(published_example) if p.name == "search_state.pt"]
    for run in (
        seed_path(published_example) / "dense",
        unit_run_path(published_example),
        edge_run_path(published_example),
    ):
        assert sorted(p.name for p in run.iterdir() if p.is_file()) == RUN_FILES
    unit_model = model_of(unit_run_path(published_example))
    edge_model = model_of(edge_run_path(published_example))
    for u, e in zip(unit_model.layers, edge_model.layers):
        assert (e.weight_mask <= u.weight_mask).all()  # edges pruned from the unit-pruned network
        assert torch.equal(e.bias_mask, u.bias_mask)
    for layer, nxt in zip(unit_model.layers[:-1], unit_model.layers[1:]):
        dead = layer.bias_mask == 0
        assert dead.any()
        assert (layer.weight_mask[dead] == 0).all() and (nxt.weight_mask[:, dead] == 0).all()
    config = json.loads((edge_run_path(published_example) / "config.json").read_text())
    assert config["prune_units"] == 0 and config["pruning_gradient"] == [2.5]


# ------------------------------------------------------------------------------------------------ errors


def test_edge_pruning_without_the_unit_pruned_run_names_the_command(result_path, capsys):
    rc, out, err = call_main([*DONE_WHEN, *EDGE_PRUNE, "--result_path", result_path, "--quiet"], capsys)
    assert rc == 2
    line = one_error_line(err)
    assert "--prune_units 1" in line and "--unit_pruning_gradient 70" in line
    assert not result_path.exists()


def test_unreachable_threshold_keeps_dense_and_writes_no_pruned_run(result_path):
    argv = [*DONE_WHEN[:-3], "1", "--seed", "0"]  # one epoch: far from 100 %
    assert argv[-4:] == ["--epochs", "1", "--seed", "0"]
    rc, out, err = run_cli(*argv, *UNIT_PRUNE, "--result_path", str(result_path), "--quiet")
    assert rc == 2, err
    line = one_error_line(err)
    assert "--prune_acc_threshold 100" in line and "dense" in line
    dense_runs = list(result_path.rglob("dense"))
    assert len(dense_runs) == 1
    assert sorted(p.name for p in dense_runs[0].iterdir()) == RUN_FILES
    assert metrics_of(dense_runs[0])["test_accuracy"] < 100.0
    assert str(dense_runs[0]) in line
    assert not list(result_path.rglob("units"))


def test_step_below_one_edge_is_not_silently_a_no_op(published_example, tmp_path, capsys):
    """--pruning_gradient 0.5 (in the published list) is below one edge of 4 24 4 (100 / 192 = 0.52 %).

    It must either prune (a cumulative 0.5 % per step reaches a whole edge) or refuse with exit 2; a result
    that claims to be edge-pruned at step 0.5 but did no step at all is wrong.
    """
    root = copy_results(published_example, tmp_path / "results")
    argv = [
        *DONE_WHEN,
        *UNIT_OPTIONS,
        "--prune_units",
        "0",
        "--pruning_gradient",
        "0.5",
        "--result_path",
        root,
        "--quiet",
    ]
    rc, _, err = call_main(argv, capsys)
    if rc == 2:
        assert "0.5" in one_error_line(err)
        return
    assert rc == 0, err
    metrics = metrics_of(edge_run_path(root, "0.5"))
    unit_density = metrics_of(unit_run_path(root))["density"]
    assert metrics["history"], "the search made no step at all"
    assert metrics["density"] < unit_density


# --------------------------------------------------------------------------------------- prune_edges, reuse


def test_prune_edges_from_dense(published_example, tmp_path, capsys):
    root = tmp_path / "results"
    shutil.copytree(seed_path(published_example) / "dense", seed_path(root) / "dense")  # reuse the dense net
    argv = [
        *DONE_WHEN,
        "--experiment",
        "prune_edges",
        "--pruning_gradient",
        "10",
        "--result_path",
        root,
        "--quiet",
    ]
    rc, out, err = call_main(argv, capsys)
    assert rc == 0, err
    run = seed_path(root) / "edges" / "magnitude_linear_step-10_acc-100"
    assert sorted(p.name for p in run.iterdir()) == RUN_FILES
    metrics = metrics_of(run)
    assert metrics["kind"] == "edges" and metrics["test_accuracy"] == 100.0
    assert metrics["history"][0]["target_percent"] == 10.0  # from dense: 0 % + step
    assert metrics["density"] <= 60.0
    assert metrics["units_kept"] == [4, 24, 4]  # edge pruning leaves bias masks alone
    model = model_of(run)
    assert model.density() == pytest.approx(metrics["density"])
    assert all(torch.equal(l.bias_mask, torch.ones_like(l.bias_mask)) for l in model.layers)
    assert test_accuracy(model) == 100.0
    assert not (seed_path(root) / "units").exists()


def test_finished_pruning_runs_are_reused_and_force_redoes_them(
    published_example, tmp_path, capsys, monkeypatch
):
    root = copy_results(published_example, tmp_path / "results")
    files = [unit_run_path(root) / "model.pt", edge_run_path(root) / "model.pt"]
    stamps = [f.stat().st_mtime_ns for f in files]
    before = [load_state(f) for f in files]

    def no_search(*args, **kwargs):
        raise AssertionError("a finished search was redone")

    monkeypatch.setattr(pruning_runs, "search", no_search)
    common = [*DONE_WHEN, "--result_path", root, "--quiet"]
    assert call_main([*common, *UNIT_PRUNE], capsys)[0] == 0
    assert call_main([*common, *EDGE_PRUNE], capsys)[0] == 0
    assert [f.stat().st_mtime_ns for f in files] == stamps
    monkeypatch.undo()
    assert call_main([*common, *EDGE_PRUNE, "--force"], capsys)[0] == 0
    assert files[0].stat().st_mtime_ns == stamps[0] and files[1].stat().st_mtime_ns != stamps[1]
    assert_states_equal(load_state(files[1]), before[1])  # the same search again gives the same network
    assert call_main([*common, *UNIT_PRUNE, "--force"], capsys)[0] == 0
    assert files[0].stat().st_mtime_ns != stamps[0]
    assert_states_equal(load_state(files[0]), before[0])


# ---------------------------------------------------------------------------------------- kill and resume

RESUME_SPY = """
import sys
import run.pruning_runs as runs
real_search = runs.search
def spy(model, plan, step, retrain, state=None, **kwargs):
    print("RESUMED_AT", None if state is None else state.iteration, flush=True)
    return real_search(model, plan, step, retrain, state=state, **kwargs)
runs.search = spy
import main
sys.exit(main.main(sys.argv[1:]))
"""


def test_kill_and_resume_gives_the_uninterrupted_result(published_example, tmp_path):
    killed_root = copy_results(published_example, tmp_path / "killed")
    clean_root = copy_results(published_example, tmp_path / "clean")
    options = [*DONE_WHEN, *UNIT_OPTIONS, "--prune_units", "0", "--pruning_gradient", "0.6", "--quiet"]
    run = edge_run_path(killed_root, "0.6")
    saved = run / "search_state.pt"

    def start(root):
        return subprocess.Popen(
            [sys.executable, "main.py", *options, "--result_path", str(root)],
            cwd=REPO,
            env=cli_env(),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )

    clean = start(clean_root)  # the uninterrupted reference runs alongside
    victim = start(killed_root)
    deadline = time.monotonic() + 120
    while not saved.exists():
        assert victim.poll() is None, f"the run ended before it saved a search state: {victim.communicate()}"
        assert time.monotonic() < deadline, "no search_state.pt within 120 s"
        time.sleep(0.002)
    time.sleep(0.25)  # let it accept a few more steps (the whole search takes about a second)
    os.kill(victim.pid, signal.SIGKILL)
    victim.communicate()
    assert victim.returncode == -signal.SIGKILL
    assert not (run / "metrics.json").exists(), "the search finished before the kill; the test proves nothing"
    checkpoint = load_state(saved)
    done_before = checkpoint["search"]["iteration"]
    assert done_before >= 1 and checkpoint["search"]["history"] and not checkpoint["search"]["done"]

    resume = subprocess.run(
        [sys.executable, "-c", RESUME_SPY, *options, "--result_path", str(killed_root)],
        cwd=REPO,
        env=cli_env(),
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert resume.returncode == 0, resume.stderr
    assert f"RESUMED_AT {done_before}" in resume.stdout  # it resumed; it did not start over
    out, err = clean.communicate(timeout=180)
    assert clean.returncode == 0, err

    reference = edge_run_path(clean_root, "0.6")
    assert_states_equal(load_state(run / "model.pt"), load_state(reference / "model.pt"))
    resumed, uninterrupted = metrics_of(run), metrics_of(reference)
    assert resumed["history"] == uninterrupted["history"]
    assert len(resumed["history"]) > done_before
    assert resumed["density"] == uninterrupted["density"] and resumed["test_accuracy"] == 100.0
    assert sorted(p.name for p in run.iterdir()) == RUN_FILES  # search state removed, no temp files


def test_search_state_saves_share_a_budget_of_the_process_time(monkeypatch):
    from run import pruning_runs

    monkeypatch.setattr(pruning_runs, "SEARCH_SAVE_SHARE", 0.02)
    budget = pruning_runs._SaveBudget()
    assert budget.allows(100.0)  # the first save of the process
    budget.spent = 0.05  # 50 ms saving so far
    assert not budget.allows(101.0)  # 2% of 1 s is 20 ms
    assert not budget.allows(102.4)
    assert budget.allows(102.5)  # 2% of 2.5 s: the budget has room again
