"""Shared helpers for the training and pruning tests.

- `run_cli(*args)`: `python3 main.py ...` in a subprocess (cwd = the repository) -> (rc, stdout, stderr).
- `call_main(argv, capsys)`: main.main in this process (no torch import cost) -> (rc, stdout, stderr).
- `result_path`: a fresh result folder under pytest's tmp_path (not created).
- `DONE_WHEN`: the options of the issue's Done-when training run (4 2 4, arch 4 24 4, 15 epochs, seed 0).
- `published_example`: the published unit (70) + edge (2.5) pruning example, run once per session.
- `out_folder(root, name)`: the output folder of a --checkpoint file under `root` (named
  `<parent>_<stem>-<8 hex digits>`).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

REPO = Path(__file__).resolve().parent.parent

# The networks here are tiny (4 24 4): intra-op threads only add synchronisation, and on a shared 2-core
# machine OpenMP spin-waits make a 2-thread run several times slower than a 1-thread one. Results are
# compared between runs made under the same setting, so this changes speed, not what is tested.
torch.set_num_threads(1)

DONE_WHEN = [
    "--task", "boolean", "--modularity", "4", "2", "4", "--arch", "4", "24", "4",
    "--lr", "0.05", "--batch_size", "8", "--epochs", "15", "--seed", "0",
]  # fmt: skip

# The published example, pruning options on top of DONE_WHEN.
UNIT_OPTIONS = ["--experiment", "prune", "--unit_pruning_gradient", "70.0", "--prune_acc_threshold", "100.0"]
UNIT_PRUNE = [*UNIT_OPTIONS, "--prune_units", "1"]
EDGE_PRUNE = [*UNIT_OPTIONS, "--prune_units", "0", "--pruning_gradient", "2.5"]

DENSE_PARTS = ("boolean-exemplar", "4-2-4", "arch-4-24-4", "lr-0.05_batch-8_epochs-15", "seed-0")
UNIT_RUN = "activation_gradient_product_linear_step-70_acc-100"


def seed_path(result_path: Path) -> Path:
    """The seed folder of the DONE_WHEN options under `result_path`."""
    return Path(result_path).joinpath(*DENSE_PARTS)


def unit_run_path(result_path: Path) -> Path:
    return seed_path(result_path) / "units" / UNIT_RUN


def edge_run_path(result_path: Path, step: str = "2.5") -> Path:
    return unit_run_path(result_path) / "edges" / f"magnitude_linear_step-{step}_acc-100"


def out_folder(root: Path, name: str) -> Path:
    """The one folder under `root` named `<name>-<8 hex digits>` (a --checkpoint file's outputs)."""
    import re

    found = [p for p in Path(root).iterdir() if re.fullmatch(re.escape(name) + r"-[0-9a-f]{8}", p.name)]
    assert len(found) == 1, f"expected one {name}-XXXXXXXX folder in {root}, found {found}"
    return found[0]


def run_cli(*args: str, timeout: float = 180, env: dict | None = None) -> tuple[int, str, str]:
    """Run `python3 main.py ARGS` in the repository; returns (returncode, stdout, stderr)."""
    proc = subprocess.run(
        [sys.executable, "main.py", *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env if env is not None else cli_env(),
    )
    return proc.returncode, proc.stdout, proc.stderr


def cli_env() -> dict:
    """Environment for CLI subprocesses: few threads (the tests run on 2 cores), no user site noise."""
    env = dict(os.environ)
    env.setdefault("OMP_NUM_THREADS", "1")
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    return env


def call_main(argv: list[str], capsys) -> tuple[int, str, str]:
    """main.main(argv) in this process; returns (exit code, stdout, stderr) captured by capsys."""
    import main

    capsys.readouterr()  # drop anything printed before
    rc = main.main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return rc, out, err


def all_files(root: Path) -> list[Path]:
    """Every file under `root` (relative paths, sorted); [] when root does not exist."""
    root = Path(root)
    if not root.exists():
        return []
    return sorted(p.relative_to(root) for p in root.rglob("*") if p.is_file())


def load_state(path: Path) -> dict:
    return torch.load(path, map_location="cpu", weights_only=True)


def assert_states_equal(a: dict, b: dict) -> None:
    """Same keys and bit-identical tensors (weights, biases and masks)."""
    assert sorted(a) == sorted(b)
    for key in a:
        assert torch.equal(a[key], b[key]), f"{key} differs"


def one_error_line(err: str) -> str:
    """Assert stderr holds exactly one non-empty line starting with 'error:' and return it."""
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1, f"expected one stderr line, got {len(lines)}: {err!r}"
    assert lines[0].startswith("error: "), lines[0]
    return lines[0]


@pytest.fixture
def result_path(tmp_path) -> Path:
    """A result folder that does not exist yet."""
    return tmp_path / "results"


@pytest.fixture
def cli():
    return run_cli


@pytest.fixture(scope="session")
def published_example(tmp_path_factory) -> Path:
    """Result path holding dense, unit-pruned (70) and edge-pruned (2.5) runs of the published example.

    Run in this process (main.main) once per session; tests must copy it before writing into it.
    """
    import main

    root = tmp_path_factory.mktemp("published") / "results"
    common = [*DONE_WHEN, "--result_path", str(root), "--quiet"]
    assert main.main([*common, *UNIT_PRUNE]) == 0
    assert main.main([*common, *EDGE_PRUNE]) == 0
    return root
