"""--experiment summarize on a fabricated results tree (run/study/summary.py, success_plots.py)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from detection_pipeline.success_plots import panels_for
from run.study.summary import read_run, success_rates, summarize
from utils.errors import SculptError

ALL_TRUE = {
    "input_separability": True,
    "output_grouping": True,
    "hidden_separability": True,
    "modules_per_depth": True,
    "success": True,
}


def record(**changes) -> dict:
    base = {
        "status": "ok",
        "error": None,
        "task": "boolean",
        "family": "exemplar",
        "modularity": [4, 2, 4],
        "arch": [4, 24, 4],
        "depth": 1,
        "seed": 0,
        "test_accuracy": 100.0,
        "density": 12.5,
        "n_modules": 2,
        "chosen": {"unit_step": 70.0, "edge_step": 2.5, "run": "somewhere"},
        "candidates": [{"unit_step": 70.0, "edge_step": 2.5, "density": 12.5, "test_accuracy": 100.0}],
        "score": dict(ALL_TRUE, details={}),
        "paths": {},
    }
    base.update(changes)
    return base


def write(root: Path, relative: str, content) -> None:
    folder = root / relative
    folder.mkdir(parents=True, exist_ok=True)
    text = content if isinstance(content, str) else json.dumps(content)
    (folder / "sculpt.json").write_text(text)


@pytest.fixture
def results(tmp_path) -> Path:
    root = tmp_path / "results"
    write(root, "exemplar/4-2-4/a", record())
    write(
        root,
        "exemplar/4-2-4/b",
        record(seed=1, density=10.0, n_modules=3, score=dict(ALL_TRUE, output_grouping=False, success=False)),
    )
    write(
        root,
        "exemplar/4-2-4/c",
        record(
            seed=2,
            status="failed",
            error="RuntimeError: boom\n  at x",
            test_accuracy=None,
            density=None,
            n_modules=None,
            chosen=None,
            score=None,
        ),
    )
    write(
        root,
        "exemplar/4-1-4/a",
        record(
            modularity=[4, 1, 4],
            arch=[4, 24, 24, 4],
            depth=2,
            density=5.0,
            n_modules=1,
            score=dict(ALL_TRUE, hidden_separability=None),
        ),
    )
    write(root, "garbled", "{not json")
    write(root, "wrong", {"status": "ok", "family": "exemplar", "modularity": "4 2 4"})
    return root


SUMMARY = """\
family,task,arch,depth,seed,status,accuracy,density,modules,unit_step,edge_step,input_separability,\
output_grouping,hidden_separability,modules_per_depth,success,error,path
exemplar,4 1 4,4 24 24 4,2,0,ok,100,5,1,70,2.5,True,True,,True,True,,exemplar/4-1-4/a
exemplar,4 2 4,4 24 4,1,0,ok,100,12.5,2,70,2.5,True,True,True,True,True,,exemplar/4-2-4/a
exemplar,4 2 4,4 24 4,1,1,ok,100,10,3,70,2.5,True,False,True,True,False,,exemplar/4-2-4/b
exemplar,4 2 4,4 24 4,1,2,failed,,,,,,,,,,,RuntimeError: boom at x,exemplar/4-2-4/c
exemplar,,,,,unreadable,,,,,,,,,,,sculpt.json has unexpected values: modularity='4 2 4',wrong
,,,,,unreadable,,,,,,,,,,,sculpt.json is not valid JSON: Expecting property name enclosed in double \
quotes: line 1 column 2 (char 1),garbled
"""

RATES = """\
family,task,depth,n_runs,n_failed,n_scored,rate_input_separability,rate_output_grouping,\
rate_hidden_separability,rate_modules_per_depth,n_success,success_rate,success_rate_all
exemplar,4 1 4,2,1,0,1,1,1,,1,1,1,1
exemplar,4 2 4,1,3,1,2,1,0.5,1,1,1,0.5,0.333333
unknown,,,2,2,0,,,,,0,,0
"""


def test_summarize_writes_exact_rows_rates_and_pictures(results, tmp_path):
    out = summarize(results, tmp_path / "summary", tmp_path / "pictures")
    assert (tmp_path / "summary" / "summary.csv").read_text() == SUMMARY
    assert (tmp_path / "summary" / "success_rates.csv").read_text() == RATES
    png = tmp_path / "pictures" / "success_exemplar.png"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 5000
    assert sorted(p.name for p in (tmp_path / "pictures").iterdir()) == ["success_exemplar.png"]
    assert [p.name for p in out.files] == ["summary.csv", "success_rates.csv", "success_exemplar.png"]
    assert len(out.rows) == 6 and sum(r["status"] != "ok" for r in out.rows) == 3


def test_summarize_cli_defaults_to_result_path(results, tmp_path, capsys):
    import main

    rc = main.main(
        [
            "--experiment",
            "summarize",
            "--result_path",
            str(results),
            "--visualization_path",
            str(tmp_path / "v"),
        ]
    )
    assert rc == 0
    assert (results / "summary.csv").read_text() == SUMMARY
    assert (results / "success_rates.csv").read_text() == RATES
    assert "6 runs (3 not ok" in capsys.readouterr().out


def test_summarize_without_runs_is_a_config_error(tmp_path, capsys):
    with pytest.raises(SculptError, match="no sculpt.json"):
        summarize(tmp_path)
    import main

    assert main.main(["--experiment", "summarize", "--result_path", str(tmp_path / "absent")]) == 2
    assert "not a folder" in capsys.readouterr().err


def test_unfinished_and_odd_runs_are_counted_not_dropped(tmp_path):
    write(tmp_path, "x", record(status="running", score=None))
    write(tmp_path, "y", [1, 2, 3])
    write(tmp_path, "z", record(score={"success": None}))  # no criterion applied: not scored
    rows = [read_run(tmp_path / name / "sculpt.json", tmp_path) for name in "xyz"]
    assert [r["status"] for r in rows] == ["running", "unreadable", "ok"]
    assert rows[2]["success"] is None
    rates = success_rates(rows)
    assert [(r["family"], r["n_runs"], r["n_failed"], r["n_scored"]) for r in rates] == [
        ("exemplar", 2, 1, 0),
        ("unknown", 1, 1, 0),
    ]
    assert rates[0]["success_rate"] is None and rates[0]["success_rate_all"] == 0.0


def test_panels_split_families_by_task_prefix():
    single = panels_for(["4 2 4", "4 1 4", "6 3 3 3"])
    assert single == [("", ["4 1 4", "4 2 4", "6 3 3 3"], ["4 1 4", "4 2 4", "6 3 3 3"])]
    split = panels_for(["8 2 16", "8 2 2", "7 3 2 4", "7 3 2 2"])
    assert split == [
        ("7 3 2 k", ["7 3 2 2", "7 3 2 4"], ["2", "4"]),
        ("8 2 k", ["8 2 2", "8 2 16"], ["2", "16"]),
    ]
