"""Sweeps: the local pool and Ray run the same jobs into the same run folders; failed jobs are
listed, named in their logs, and make the sweep exit 2."""

from __future__ import annotations

import csv
import importlib.util

import pytest

from run.study.sweep import read_jobs, run_name
from tests.conftest import run_cli
from utils.errors import SculptError

QUICK = (
    "--task boolean --modularity 4 2 4 --arch 4 24 4 --seed {seed} --unit_pruning_gradient 70 "
    "--pruning_gradient 2.5 --quiet"
)


def _jobs_file(tmp_path, root, seeds, extra=()):
    lines = [f"python3 main.py --experiment sculpt {QUICK.format(seed=s)} --result_path {root} "
             f"--visualization_path {root}-v" for s in seeds]  # fmt: skip
    path = tmp_path / f"jobs-{root.name}.txt"
    path.write_text("# a comment\n\n" + "\n".join([*lines, *extra]) + "\n")
    return path


def _summary(root) -> list[dict]:
    rc, _, err = run_cli(
        "--experiment", "summarize", "--result_path", str(root), "--visualization_path", f"{root}-v"
    )
    assert rc == 0, err
    with open(root / "summary.csv") as handle:
        return [{k: v for k, v in row.items() if k != "path"} for row in csv.DictReader(handle)]


def test_job_names_and_bad_files(tmp_path):
    assert (
        run_name(["--modularity", "4", "2", "4", "--arch", "4", "24", "4", "--seed", "5"], 0)
        == "4-2-4_arch-4-24-4_seed-5"
    )
    jobs = read_jobs(_jobs_file(tmp_path, tmp_path / "r", [0, 0]))
    assert [j.name for j in jobs] == [
        "boolean_4-2-4_arch-4-24-4_seed-0",
        "boolean_4-2-4_arch-4-24-4_seed-0_2",
    ]
    bad = tmp_path / "bad.txt"
    bad.write_text("rm -rf /\n")
    with pytest.raises(SculptError, match="not a main.py command line"):
        read_jobs(bad)
    with pytest.raises(SculptError, match="does not exist"):
        read_jobs(tmp_path / "missing.txt")


def test_local_sweep_reports_failures_and_logs_start_with_the_command(tmp_path):
    root = tmp_path / "local"
    failing = f"--experiment train {QUICK.format(seed=3)} --epochs 0 --result_path {root}"
    jobs = _jobs_file(tmp_path, root, [0], extra=[failing])
    rc, out, err = run_cli(
        "--experiment", "sweep", "--jobs_file", str(jobs), "--result_path", str(root), "--quiet"
    )
    assert rc == 2
    assert "2 runs, 1 ok, 1 failed" in out and "boolean_4-2-4_arch-4-24-4_seed-3" in out
    assert err.strip().splitlines()[-1].startswith("error: 1 of 2 runs failed")
    logs = sorted((root / "logs").glob("*.log"))
    assert [p.name for p in logs] == [
        "boolean_4-2-4_arch-4-24-4_seed-0.log",
        "boolean_4-2-4_arch-4-24-4_seed-3.log",
    ]
    assert logs[0].read_text().startswith("$ python3 main.py --experiment sculpt")
    assert "success" in logs[0].read_text().splitlines()[-1]


@pytest.mark.slow
@pytest.mark.skipif(importlib.util.find_spec("ray") is None, reason="Ray is optional (requirements-ray.txt)")
def test_ray_sweep_gives_the_same_summary_as_the_local_pool(tmp_path):
    rows = {}
    for backend in ("local", "ray"):
        root = tmp_path / backend
        jobs = _jobs_file(tmp_path, root, [0, 1])
        rc, out, err = run_cli(
            "--experiment", "sweep", "--jobs_file", str(jobs), "--backend", backend, "--jobs", "2",
            "--result_path", str(root), "--quiet", timeout=600,
        )  # fmt: skip
        assert rc == 0, err
        assert f"sweep ({backend}): 2 runs, 2 ok, 0 failed" in out
        rows[backend] = _summary(root)
    assert len(rows["local"]) == 2 and rows["local"] == rows["ray"]
