"""generate_task through the real CLI: files written, errors are one stderr line with exit code 2."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
DATASETS = REPO / "datasets"


def cli(*args: str) -> subprocess.CompletedProcess:
    command = [sys.executable, "main.py", "--experiment", "generate_task", *args]
    return subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=60)


def test_shipped_modularity_writes_the_published_table(tmp_path):
    out = tmp_path / "exemplar"
    result = cli("--task", "boolean", "--modularity", "4", "2", "4", "--dataset_path", str(out))
    assert result.returncode == 0, result.stderr
    written = out / "4-2-4.json"
    assert str(written) in result.stdout
    assert written.read_bytes() == (DATASETS / "exemplar" / "4-2-4.json").read_bytes()
    assert [p.name for p in out.iterdir()] == ["4-2-4.json"]  # no temp files left behind


def test_family_from_dataset_path_picks_the_graph(tmp_path):
    out = tmp_path / "non_separable_increasing_use"
    result = cli("--modularity", "4", "1", "2", "16", "--dataset_path", str(out))
    assert result.returncode == 0, result.stderr
    data = json.loads((out / "4-1-2-16.json").read_text())
    assert data["family"] == "increasing_reuse_non_separable"


def test_user_graph_names_the_file_by_its_modularity(tmp_path):
    graph = {
        "family": "mine",
        "n_inputs": 2,
        "levels": [
            [{"name": "a", "gate": "and", "children": [0, 1]}],
            [{"name": "na", "gate": "not", "children": ["a"]}],
        ],
        "outputs": ["a", "na"],
    }
    graph_file = tmp_path / "my.json"
    graph_file.write_text(json.dumps(graph))
    result = cli("--graph", str(graph_file), "--dataset_path", str(tmp_path / "out"))
    assert result.returncode == 0, result.stderr
    # Derived modularity: 2 inputs, 1 sub-function (not is folded into and), 2 outputs.
    data = json.loads((tmp_path / "out" / "2-1-2.json").read_text())
    assert data == {
        "family": "mine",
        "modularity": [2, 1, 2],
        "inputs": [[0, 0], [0, 1], [1, 0], [1, 1]],
        "outputs": [[0, 1], [0, 1], [0, 1], [1, 0]],
    }


@pytest.mark.parametrize(
    "args, needle",
    [
        (["--modularity", "5", "5", "5"], "no shipped function graph"),
        (["--graph", "GRAPH_MISSING"], "not found"),
        (["--graph", "GRAPH_BROKEN"], "not valid JSON"),
        (["--graph", "GRAPH_INVALID"], "unknown gate"),
        (["--graph", "GRAPH_VALID", "--modularity", "6", "3", "3", "3"], "disagrees"),
        (["--task", "mnist"], "boolean"),
    ],
)
def test_errors_exit_2_with_one_line_and_write_nothing(tmp_path, args, needle):
    graphs = {
        "GRAPH_MISSING": tmp_path / "missing.json",
        "GRAPH_BROKEN": tmp_path / "broken.json",
        "GRAPH_INVALID": tmp_path / "invalid.json",
        "GRAPH_VALID": DATASETS / "graphs" / "exemplar" / "4-2-4.json",
    }
    graphs["GRAPH_BROKEN"].write_text("{")
    graphs["GRAPH_INVALID"].write_text(
        json.dumps(
            {"n_inputs": 1, "levels": [[{"name": "a", "gate": "nope", "children": [0]}]], "outputs": ["a"]}
        )
    )
    out = tmp_path / "out"
    args = [str(graphs.get(a, a)) for a in args]
    result = cli(*args, "--dataset_path", str(out))
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and needle in lines[0] and "fix" in lines[0], result.stderr
    assert not out.exists()
