"""The digit tasks end to end through the CLI: MNIST from IDX files the test writes, mnist_10way, the bundled
8x8 digits (training well above chance), and a small digits sculpt that detects and scores modules.

Every run is a `python3 main.py` subprocess (tests/conftest.py: run_cli, one torch thread), on settings small
enough that the whole file takes well under a minute on two shared cores.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

from detection_pipeline.scoring import CRITERIA
from tests.conftest import run_cli
from utils.tasks.idx import MNIST_FILES, write_idx

pytestmark = pytest.mark.slow


def _learnable_mnist(folder: Path, n_train: int = 120, n_test: int = 40, seed: int = 0) -> None:
    """A tiny MNIST-format copy: 28x28 uint8 images whose bright 4x4 block sits at a place set by the label,
    plus noise, so a network can learn it. Labels cycle through 0-9; images gzipped, labels raw."""
    rng = np.random.default_rng(seed)

    def split(n: int) -> tuple[np.ndarray, np.ndarray]:
        labels = (np.arange(n) % 10).astype(np.uint8)
        images = rng.integers(0, 60, (n, 28, 28), dtype=np.uint8)
        for i, label in enumerate(labels):
            row, col = 2 + 12 * (label // 5), 2 + 5 * (label % 5)
            images[i, row : row + 4, col : col + 4] = 255
        return images, labels

    folder.mkdir(parents=True, exist_ok=True)
    arrays = dict(zip(("train_images", "train_labels"), split(n_train)))
    arrays.update(zip(("test_images", "test_labels"), split(n_test)))
    for key, array in arrays.items():
        write_idx(folder / (MNIST_FILES[key] + (".gz" if key.endswith("images") else "")), array)


def _only(root: Path, name: str) -> Path:
    found = sorted(root.rglob(name))
    assert len(found) == 1, f"expected one {name} under {root}, found {found}"
    return found[0]


def _train_metrics(result_path: Path, *args: str) -> dict:
    rc, out, err = run_cli(
        "--experiment", "train", "--result_path", str(result_path), "--seed", "0", "--quiet", *args
    )  # fmt: skip
    assert rc == 0, err
    metrics = json.loads(_only(result_path, "metrics.json").read_text())
    accuracy = metrics["test_accuracy"]
    assert isinstance(accuracy, float) and math.isfinite(accuracy) and 0.0 <= accuracy <= 100.0
    return metrics


@pytest.fixture(scope="module")
def mnist_path(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("mnist")
    _learnable_mnist(folder)
    return folder


def test_mnist_two_digit_task_trains_one_epoch(mnist_path, tmp_path):
    metrics = _train_metrics(
        tmp_path / "results",
        "--task", "mnist", "--mnist_path", str(mnist_path), "--modularity", "1568", "2", "20",
        "--arch", "1568", "32", "20", "--epochs", "1", "--images_per_pair", "4", "--lr", "0.002",
        "--batch_size", "32",
    )  # fmt: skip
    assert len(metrics["train_loss"]) == 1 and metrics["best_epoch"] == 0
    assert metrics["units_kept"] == [1568, 32, 20]


def test_mnist_xor_task_trains_one_epoch(mnist_path, tmp_path):
    _train_metrics(
        tmp_path / "results",
        "--task", "mnist", "--mnist_path", str(mnist_path), "--modularity", "1568", "2", "3", "3",
        "--arch", "1568", "16", "3", "--epochs", "1", "--images_per_pair", "4", "--batch_size", "32",
    )  # fmt: skip


def test_mnist_10way_trains_one_epoch(mnist_path, tmp_path):
    metrics = _train_metrics(
        tmp_path / "results",
        "--task", "mnist_10way", "--mnist_path", str(mnist_path), "--modularity", "784", "10",
        "--arch", "784", "32", "10", "--epochs", "1", "--lr", "0.002", "--batch_size", "16",
    )  # fmt: skip
    assert len(metrics["val_accuracy"]) == 1


def test_mnist_missing_files_is_one_line_error(tmp_path):
    rc, _, err = run_cli(
        "--experiment", "train", "--task", "mnist", "--mnist_path", str(tmp_path / "nowhere"),
        "--modularity", "1568", "2", "20", "--arch", "1568", "8", "20", "--result_path", str(tmp_path),
    )  # fmt: skip
    assert rc == 2
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and "MNIST files not found" in lines[0] and "--mnist_path" in lines[0]


def test_digits_two_epochs_well_above_chance(tmp_path):
    metrics = _train_metrics(
        tmp_path / "results",
        "--task", "digits", "--modularity", "128", "2", "20", "--arch", "128", "32", "20",
        "--epochs", "2", "--lr", "0.005", "--batch_size", "64",
    )  # fmt: skip
    # chance is 10% per digit; two passes over the 7200 training pairs of the default 100 per digit pair
    assert metrics["test_accuracy"] > 70.0, metrics["test_accuracy"]


def test_digits_sculpt_smoke(tmp_path):
    results, pictures = tmp_path / "results", tmp_path / "pictures"
    rc, out, err = run_cli(
        "--experiment", "sculpt", "--task", "digits", "--modularity", "128", "2", "20",
        "--arch", "128", "16", "20", "--images_per_pair", "10", "--lr", "0.01", "--batch_size", "32",
        "--epochs", "3", "--prune_acc_threshold", "30", "--unit_pruning_gradient", "50",
        "--pruning_gradient", "20", "--feature_step_size", "2", "--clusterability_step_size", "2",
        "--result_path", str(results), "--visualization_path", str(pictures), "--seed", "0", "--quiet",
    )  # fmt: skip
    assert rc == 0, err
    assert "test accuracy" in out and "modules" in out
    record = json.loads(_only(results, "sculpt.json").read_text())
    assert record["status"] == "ok" and record["task"] == "digits" and record["depth"] == 1
    assert record["test_accuracy"] >= 30.0 and 0.0 < record["density"] < 100.0
    out_dir = _only(results, "sculpt.json").parent
    modules = json.loads((out_dir / "modules.json").read_text())
    assert len(modules["partition"]) == 128 + 16 + 20
    score = json.loads((out_dir / "score.json").read_text())
    assert set(CRITERIA) <= set(score) and "success" in score
    assert score["expected_modules_per_level"] == [2]
    assert all(score[name] in (True, False, None) for name in CRITERIA)
    assert list(pictures.rglob("modules.png"))
