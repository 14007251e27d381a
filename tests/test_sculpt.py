"""--experiment sculpt (the whole study in one command), its failure records, summarize, batch scripts."""

from __future__ import annotations

import csv
import json
import subprocess
from pathlib import Path

import pytest

from tests.conftest import DONE_WHEN, REPO, call_main, one_error_line

SCULPT = ["--experiment", "sculpt", "--unit_pruning_gradient", "70.0", "--pruning_gradient", "2.5", "2.0"]


@pytest.fixture(scope="module")
def sculpted(tmp_path_factory):
    root = tmp_path_factory.mktemp("sculpt")
    import main

    argv = [
        *DONE_WHEN,
        *SCULPT,
        "--result_path",
        str(root / "r"),
        "--visualization_path",
        str(root / "v"),
        "--quiet",
    ]
    assert main.main(argv) == 0
    return root, argv


def test_sculpt_keeps_the_sparsest_detects_and_scores(sculpted):
    root, _ = sculpted
    (record_file,) = list((root / "r").rglob("sculpt.json"))
    record = json.loads(record_file.read_text())
    assert record["status"] == "ok" and record["test_accuracy"] == 100.0
    candidates = record["candidates"]
    assert [c["edge_step"] for c in candidates] == [2.5, 2.0]
    assert record["density"] == min(c["density"] for c in candidates) <= 12.0
    assert record["chosen"]["edge_step"] in (2.5, 2.0)
    assert record["n_modules"] == 2 and record["score"]["success"] is True
    for name in ("modules.json", "score.json", "network.graphml"):
        assert (record_file.parent / name).is_file()
    assert Path(record["paths"]["picture"]).is_file()
    score = json.loads((record_file.parent / "score.json").read_text())
    assert score["input_separability"] and score["output_grouping"]


def test_sculpt_rerun_reuses_everything(sculpted, capsys):
    root, argv = sculpted
    before = {p: p.stat().st_mtime_ns for p in (root / "r").rglob("*") if p.is_file()}
    rc, out, _ = call_main([a for a in argv if a != "--quiet"], capsys)
    assert rc == 0 and out.startswith("success")
    after = {p: p.stat().st_mtime_ns for p in (root / "r").rglob("*") if p.is_file()}
    assert after == before  # nothing retrained or rewritten


def test_failed_sculpt_is_recorded_and_summarized(sculpted, tmp_path, capsys):
    root, _ = sculpted
    results = tmp_path / "r"
    # A one-epoch dense network of 6 3 3 3 cannot reach 100% test accuracy.
    failing = ["--modularity", "6", "3", "3", "3", "--arch", "6", "8", "3", "--epochs", "1", "--lr", "0.001"]
    rc, _, err = call_main([*SCULPT, *failing, "--result_path", str(results), "--quiet"], capsys)
    assert rc == 2 and "prune_acc_threshold" in one_error_line(err)
    (record_file,) = list(results.rglob("sculpt.json"))
    record = json.loads(record_file.read_text())
    assert record["status"] == "failed" and "prune_acc_threshold" in record["error"]
    # summarize sees the failed run next to a successful one, and draws the rates.
    ok_run = next((root / "r").rglob("sculpt.json")).parent
    (results / "ok").mkdir()
    (results / "ok" / "sculpt.json").write_text((ok_run / "sculpt.json").read_text())
    vis = tmp_path / "v"
    rc, _, _ = call_main(
        [
            "--experiment",
            "summarize",
            "--result_path",
            str(results),
            "--visualization_path",
            str(vis),
            "--quiet",
        ],
        capsys,
    )
    assert rc == 0
    rows = list(csv.DictReader((results / "summary.csv").open()))
    assert sorted(r["status"] for r in rows) == ["failed", "ok"]
    assert list(vis.rglob("*.png"))


@pytest.mark.parametrize(
    "script, n_jobs",
    [
        ("exemplar.sh", 4 * 3 * 3 * 4),
        ("increasing_reuse.sh", 5 * 3 * 3 * 4),
        ("input_overlap.sh", 25 * 3 * 3 * 4),
        ("hierarchical_levels.sh", 5 * 4 * 3 * 4),
    ],
)
def test_family_scripts_list_the_published_sweep(script, n_jobs):
    out = subprocess.run(
        ["bash", str(REPO / "shell" / script), "--list"], capture_output=True, text=True, check=True
    ).stdout.splitlines()
    assert len(out) == n_jobs
    assert all(line.startswith("python3 main.py --experiment sculpt") for line in out)
    assert all(
        "--unit_pruning_gradient 5 10 15" in line and "--pruning_gradient 2.5 2.0 1.5 1.0 0.5" in line
        for line in out
    )
    quick = subprocess.run(
        ["bash", str(REPO / "shell" / script), "--quick", "--list"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.splitlines()
    assert len(quick) < len(out) and all("--seed 0 " in q or "--seed 1 " in q for q in quick)


def test_family_script_uses_published_training_options():
    out = subprocess.run(
        ["bash", str(REPO / "shell" / "exemplar.sh"), "--list", "--depths", "2", "--widths", "24"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    # DESIGN's table of published options for the exemplars with two hidden layers of width 24
    assert "--modularity 4 2 4 --arch 4 24 24 4 --lr 0.05 --batch_size 8 --epochs 10" in out
    assert "--modularity 6 3 3 3 --arch 6 24 24 3 --lr 0.05 --batch_size 32 --epochs 10" in out
    assert "--modularity 4 1 4 --arch 4 24 24 4 --lr 0.05 --batch_size 8 --epochs 30" in out
    assert "--modularity 4 1 2 16 --arch 4 24 24 16 --lr 0.1 --batch_size 8 --epochs 40" in out
