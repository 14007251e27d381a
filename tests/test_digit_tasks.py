"""Two-digit tasks (sklearn 8x8 digits, MNIST from IDX files the tests write) and the strict IDX reader."""

from __future__ import annotations

import dataclasses
import gzip

import numpy as np
import pytest
from sklearn.datasets import load_digits

from run.options import task_options
from run.parser import parse_config
from utils.errors import SculptError
from utils.tasks import TaskOptions
from utils.tasks.digits import half_indices, load_digit_task, split_counts
from utils.tasks.idx import MNIST_FILES, load_mnist, read_idx, write_idx


def _config(**kw) -> TaskOptions:
    """The task options of `parse_config([])` with task digits 128 2 20, then kw (mnist_path: that IDX
    folder)."""
    base = dict(task="digits", modularity=(128, 2, 20), seed=0)
    base.update(kw)
    options = task_options(parse_config([]))
    if "mnist_path" in base:
        base["data_paths"] = dict(options.data_paths, **{"--mnist_path": base.pop("mnist_path")})
    return dataclasses.replace(options, **base)


@pytest.fixture(scope="module")
def sk():
    bunch = load_digits()
    return bunch.images, bunch.target


@pytest.fixture(scope="module")
def onehot():
    return load_digit_task(_config())


@pytest.fixture(scope="module")
def xor():
    return load_digit_task(_config(modularity=[128, 2, 3, 3]))


def _halves(task, x, rows, cols):
    """Left and right images (n, rows, cols) cut out of x through the task's input groups."""
    left, right = task.input_groups
    return x[:, left].reshape(-1, rows, cols), x[:, right].reshape(-1, rows, cols)


# ---- digits: shapes, values, groups ----


def test_digits_shapes_and_values(onehot):
    t = onehot
    assert t.x_train.shape == (8000, 128) and t.y_train.shape == (8000, 20)
    assert t.x_test.shape == (2000, 128) and t.y_test.shape == (2000, 20)
    for a in (t.x_train, t.y_train, t.x_test, t.y_test):
        assert a.dtype == np.float32
    assert t.x_train.min() == 0.0 and t.x_train.max() == 1.0
    assert set(np.unique(t.y_train)) == {0.0, 1.0}
    assert (t.y_train[:, :10].sum(1) == 1).all() and (t.y_train[:, 10:].sum(1) == 1).all()
    assert t.label_kind == "multilabel" and t.modularity == [128, 2, 20] and t.family == "digits"
    assert t.output_groups == [list(range(10)), list(range(10, 20))]
    assert t.image_shape == (8, 16)


def test_input_groups_are_columns_of_each_row():
    left, right = half_indices(8, 8)
    assert left[:9] == [0, 1, 2, 3, 4, 5, 6, 7, 16] and right[:9] == [8, 9, 10, 11, 12, 13, 14, 15, 24]
    assert sorted(left + right) == list(range(128))


def test_every_digit_pair_80_train_20_test(onehot):
    for digits, count in ((onehot.digits_train, 80), (onehot.digits_test, 20)):
        codes = digits[:, 0] * 10 + digits[:, 1]
        assert (np.bincount(codes, minlength=100) == count).all()


# ---- digits: labels and pixels match the sklearn source images ----


def test_pixels_and_labels_match_sources(onehot, sk):
    images, target = sk
    for x, y, digits, src in (
        (onehot.x_train, onehot.y_train, onehot.digits_train, onehot.sources_train),
        (onehot.x_test, onehot.y_test, onehot.digits_test, onehot.sources_test),
    ):
        left, right = _halves(onehot, x, 8, 8)
        np.testing.assert_array_equal(left, (images[src[:, 0]] / 16).astype(np.float32))
        np.testing.assert_array_equal(right, (images[src[:, 1]] / 16).astype(np.float32))
        np.testing.assert_array_equal(target[src], digits)
        np.testing.assert_array_equal(y[:, :10].argmax(1), digits[:, 0])
        np.testing.assert_array_equal(y[:, 10:].argmax(1), digits[:, 1])


def test_a_few_rows_by_hand(onehot, sk):
    images, target = sk
    for i in (0, 1, 4321, 7999):
        row = onehot.x_train[i].reshape(8, 16)
        a, b = onehot.sources_train[i]
        np.testing.assert_allclose(row[:, :8], images[a] / 16)
        np.testing.assert_allclose(row[:, 8:], images[b] / 16)
        expected = np.zeros(20, dtype=np.float32)
        expected[target[a]] = expected[10 + target[b]] = 1
        np.testing.assert_array_equal(onehot.y_train[i], expected)


def test_no_test_image_in_training(onehot, xor):
    for task, n_images in ((onehot, 1797), (xor, 1443)):  # 1443 images show digits 0-7
        train_src, test_src = set(task.sources_train.ravel()), set(task.sources_test.ravel())
        assert not train_src & test_src
        # the split is by single image, and nearly every image is used on one side or the other
        assert len(train_src | test_src) > 0.95 * n_images


def test_rows_are_shuffled_not_grouped(onehot):
    codes = onehot.digits_train[:, 0] * 10 + onehot.digits_train[:, 1]
    assert (np.diff(codes) != 0).mean() > 0.9


# ---- determinism ----


def test_same_seed_same_data_other_seed_differs(onehot):
    again = load_digit_task(_config())
    np.testing.assert_array_equal(again.x_train, onehot.x_train)
    np.testing.assert_array_equal(again.y_test, onehot.y_test)
    other = load_digit_task(_config(seed=1))
    assert not np.array_equal(other.x_train, onehot.x_train)
    assert set(other.sources_test.ravel()) != set(onehot.sources_test.ravel())  # different pools too


# ---- XOR task ----


def test_xor_bits(xor, sk):
    _, target = sk
    assert xor.x_train.shape == (64 * 80, 128) and xor.y_train.shape == (64 * 80, 3)
    assert xor.output_groups == [[0, 1, 2]] and xor.modularity == [128, 2, 3, 3]
    assert xor.digits_train.max() == 7 and xor.digits_test.max() == 7
    np.testing.assert_array_equal(target[xor.sources_train], xor.digits_train)
    value = xor.y_train @ np.array([4, 2, 1], dtype=np.float32)  # output 0 is the most significant bit
    np.testing.assert_array_equal(value, xor.digits_train[:, 0] ^ xor.digits_train[:, 1])
    row = np.flatnonzero((xor.digits_test[:, 0] == 5) & (xor.digits_test[:, 1] == 3))[0]
    np.testing.assert_array_equal(xor.y_test[row], [1, 1, 0])  # 5 ^ 3 = 6 = 0b110


# ---- validation ----


def test_unsupported_modularity_lists_valid_ones():
    with pytest.raises(SculptError, match="'128 2 20' or '128 2 3 3'"):
        load_digit_task(_config(modularity=[4, 2, 4]))
    with pytest.raises(SculptError, match="'1568 2 20' or '1568 2 3 3'"):
        load_digit_task(_config(task="mnist", modularity=[128, 2, 20]))


def test_images_per_pair_counts():
    assert split_counts(1000) == (800, 200) and split_counts(100) == (80, 20)
    with pytest.raises(SculptError, match="at least"):
        split_counts(1)
    small = load_digit_task(_config(), images_per_pair=10)
    assert small.x_train.shape == (800, 128) and small.x_test.shape == (200, 128)
    via_config = load_digit_task(_config(images_per_pair=10))
    np.testing.assert_array_equal(via_config.x_train, small.x_train)


# ---- IDX files ----


def _fake_mnist(folder, n_train=200, n_test=60, gz_images=True, seed=0):
    """Write a tiny MNIST copy: random 28x28 images, labels cycling through 0-9."""
    rng = np.random.default_rng(seed)
    arrays = {
        "train_images": rng.integers(0, 256, (n_train, 28, 28), dtype=np.uint8),
        "train_labels": (np.arange(n_train) % 10).astype(np.uint8),
        "test_images": rng.integers(0, 256, (n_test, 28, 28), dtype=np.uint8),
        "test_labels": (np.arange(n_test) % 10).astype(np.uint8),
    }
    for key, array in arrays.items():
        gz = gz_images if key.endswith("images") else not gz_images  # mix raw and gz
        write_idx(folder / (MNIST_FILES[key] + (".gz" if gz else "")), array)
    return arrays


@pytest.mark.parametrize("suffix", ["", ".gz"])
def test_idx_round_trip(tmp_path, suffix):
    images = np.random.default_rng(1).integers(0, 256, (200, 28, 28), dtype=np.uint8)
    labels = np.random.default_rng(2).integers(0, 10, 200).astype(np.uint8)
    write_idx(tmp_path / f"img{suffix}", images)
    write_idx(tmp_path / f"lab{suffix}", labels)
    if suffix:
        assert (tmp_path / "img.gz").read_bytes()[:2] == b"\x1f\x8b"
    np.testing.assert_array_equal(read_idx(tmp_path / f"img{suffix}", 3), images)
    np.testing.assert_array_equal(read_idx(tmp_path / f"lab{suffix}", 1), labels)


def test_idx_header_bytes(tmp_path):
    write_idx(tmp_path / "lab", np.array([7, 2], dtype=np.uint8))
    assert (tmp_path / "lab").read_bytes() == bytes([0, 0, 8, 1, 0, 0, 0, 2, 7, 2])


def test_idx_bad_magic(tmp_path):
    write_idx(tmp_path / "lab", np.arange(10, dtype=np.uint8))
    with pytest.raises(SculptError, match="bad IDX magic number 0x00000801"):
        read_idx(tmp_path / "lab", 3)  # a label file where images are expected
    (tmp_path / "html").write_bytes(b"<html>not found</html>")
    with pytest.raises(SculptError, match="magic"):
        read_idx(tmp_path / "html", 1)
    (tmp_path / "html.gz").write_bytes(gzip.compress(b"<html>not found</html>"))
    with pytest.raises(SculptError, match="magic"):
        read_idx(tmp_path / "html.gz", 1)


def test_idx_truncated_and_padded(tmp_path):
    write_idx(tmp_path / "img", np.zeros((5, 28, 28), dtype=np.uint8))
    data = (tmp_path / "img").read_bytes()
    (tmp_path / "short").write_bytes(data[:-1])
    (tmp_path / "long").write_bytes(data + b"\0")
    (tmp_path / "bad.gz").write_bytes(gzip.compress(data)[:-10])
    for name in ("short", "long"):
        with pytest.raises(SculptError, match="truncated or padded"):
            read_idx(tmp_path / name, 3)
    with pytest.raises(SculptError, match="gzip"):
        read_idx(tmp_path / "bad.gz", 3)


def test_missing_folder_names_the_files(tmp_path):
    folder = tmp_path / "nowhere"
    with pytest.raises(SculptError) as err:
        load_digit_task(_config(task="mnist", modularity=[1568, 2, 20], mnist_path=str(folder)))
    message = str(err.value)
    assert "\n" not in message and str(folder) in message and "mnist" in message.lower()
    for name in MNIST_FILES.values():
        assert f"{name}(.gz)" in message


def test_one_missing_file_is_named(tmp_path):
    _fake_mnist(tmp_path)
    for suffix in ("", ".gz"):
        (tmp_path / (MNIST_FILES["test_labels"] + suffix)).unlink(missing_ok=True)
    with pytest.raises(SculptError, match="missing") as err:
        load_mnist(tmp_path)
    assert "t10k-labels-idx1-ubyte(.gz)" in str(err.value) and "train-images" not in str(err.value)


def test_mismatched_counts_and_sizes(tmp_path):
    _fake_mnist(tmp_path)
    write_idx(tmp_path / MNIST_FILES["test_labels"], np.zeros(59, dtype=np.uint8))
    (tmp_path / (MNIST_FILES["test_labels"] + ".gz")).unlink(missing_ok=True)
    with pytest.raises(SculptError, match="60 images but .* 59 labels"):
        load_mnist(tmp_path)
    write_idx(tmp_path / (MNIST_FILES["train_images"] + ".gz"), np.zeros((200, 8, 8), dtype=np.uint8))
    with pytest.raises(SculptError, match="28x28"):
        load_mnist(tmp_path)


# ---- MNIST tasks from the tiny copy ----


def test_mnist_two_digit_task_from_idx(tmp_path):
    arrays = _fake_mnist(tmp_path)
    config = _config(task="mnist", modularity=[1568, 2, 20], mnist_path=str(tmp_path))
    t = load_digit_task(config, images_per_pair=10)
    assert t.x_train.shape == (800, 1568) and t.y_train.shape == (800, 20)
    assert t.x_test.shape == (200, 1568) and t.x_train.dtype == np.float32
    assert t.image_shape == (28, 56) and len(t.input_groups[0]) == len(t.input_groups[1]) == 784
    for x, src, images, labels, digits in (
        (t.x_train, t.sources_train, arrays["train_images"], arrays["train_labels"], t.digits_train),
        (t.x_test, t.sources_test, arrays["test_images"], arrays["test_labels"], t.digits_test),
    ):
        left, right = _halves(t, x, 28, 28)
        np.testing.assert_array_equal(left, (images[src[:, 0]] / np.float32(255)).astype(np.float32))
        np.testing.assert_array_equal(right, (images[src[:, 1]] / np.float32(255)).astype(np.float32))
        np.testing.assert_array_equal(labels[src], digits)
    # 20 train images per digit >= 8 needed: no image repeats on one side within a digit pair
    for a in range(10):
        rows = (t.digits_train[:, 0] == a) & (t.digits_train[:, 1] == 3)
        assert len(np.unique(t.sources_train[rows, 0])) == 8
    xor = load_digit_task(_config(task="mnist", modularity=[1568, 2, 3, 3], mnist_path=str(tmp_path)), 10)
    assert xor.y_train.shape == (64 * 8, 3)


def test_mnist_small_pool_samples_with_replacement(tmp_path):
    _fake_mnist(tmp_path)
    config = _config(task="mnist", modularity=[1568, 2, 20], mnist_path=str(tmp_path))
    t = load_digit_task(config, images_per_pair=50)  # 40 train per pair from 20 images per digit
    assert t.x_train.shape == (4000, 1568) and t.x_test.shape == (1000, 1568)


def test_mnist_digit_missing_from_pool(tmp_path):
    _fake_mnist(tmp_path)
    write_idx(tmp_path / MNIST_FILES["test_labels"], np.full(60, 3, dtype=np.uint8))
    (tmp_path / (MNIST_FILES["test_labels"] + ".gz")).unlink(missing_ok=True)
    config = _config(task="mnist", modularity=[1568, 2, 20], mnist_path=str(tmp_path))
    with pytest.raises(SculptError, match="no image of digit"):
        load_digit_task(config, images_per_pair=10)


def test_mnist_10way(tmp_path):
    arrays = _fake_mnist(tmp_path, gz_images=False)
    t = load_digit_task(_config(task="mnist_10way", mnist_path=str(tmp_path)))
    assert t.label_kind == "multiclass" and t.modularity == [784, 10]
    assert t.x_train.shape == (200, 784) and t.y_train.shape == (200, 10) and t.x_test.shape == (60, 784)
    np.testing.assert_array_equal(t.y_train.argmax(1), arrays["train_labels"])
    assert (t.y_train.sum(1) == 1).all()
    np.testing.assert_allclose(t.x_test * 255, arrays["test_images"].reshape(60, 784), atol=1e-4)
