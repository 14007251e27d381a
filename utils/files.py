"""The one door for reading input files: only regular files, of a plausible size, are opened.

A FIFO would block open() forever, /dev/zero (or a symlink to it) reads without end, a folder is not a
file: each is refused in one line naming the file before anything is read. Every loader (truth tables,
graphs, networks, partitions, MNIST, input batches, jobs files, configs) goes through `regular_file`.
"""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

from utils.errors import InputError
from utils.limits import MAX_TEXT_BYTES, TooLargeError, human, memory_budget


def text_limit() -> int:
    """Largest text file (JSON, edge list, GraphML, jobs) read: parsing takes ~16 bytes of memory a byte."""
    return min(MAX_TEXT_BYTES, memory_budget() // 16)


def regular_file(path, what: str = "file", max_bytes: int | None = None) -> Path:
    """`path` as a Path when it is an existing regular file (symlinks followed) of at most max_bytes;
    InputError otherwise ('<what> <path> is a folder, not a file', 'is a named pipe', 'does not exist')."""
    path = Path(path)
    try:
        info = os.stat(path)
    except FileNotFoundError:
        raise InputError(f"{what} {path} does not exist; check the path") from None
    except OSError as error:
        raise InputError(f"cannot read {what} {path}: {error.strerror or error}") from None
    mode = info.st_mode
    if stat.S_ISDIR(mode):
        raise InputError(f"{what} {path} is a folder, not a file; give the file inside it")
    if not stat.S_ISREG(mode):
        kind = "a named pipe (FIFO)" if stat.S_ISFIFO(mode) else "a device or special file"
        if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
            kind = "a device"
        raise InputError(f"{what} {path} is {kind}, not a regular file; give a regular file")
    if max_bytes is not None and info.st_size > max_bytes:
        raise TooLargeError(
            f"{what} {path} is {human(info.st_size)}, larger than the {human(max_bytes)} such a file can be; "
            "check that it is the right file"
        )
    return path


def read_text(path, what: str = "file", max_bytes: int | None = None) -> str:
    """The text of a regular file of at most max_bytes (read no further than that: a file that grows while
    read is cut off and refused)."""
    max_bytes = text_limit() if max_bytes is None else max_bytes
    path = regular_file(path, what, max_bytes)
    try:
        with open(path, "rb") as handle:
            data = handle.read(max_bytes + 1)
    except OSError as error:
        raise InputError(f"cannot read {what} {path}: {error.strerror or error}") from None
    if len(data) > max_bytes:
        raise TooLargeError(f"{what} {path} is larger than the {human(max_bytes)} such a file can be")
    try:
        return data.decode()
    except UnicodeDecodeError as error:
        raise InputError(f"{what} {path} is not UTF-8 text ({error.reason} at byte {error.start})") from None


def read_json(path, what: str = "file", max_bytes: int | None = None):
    """The parsed JSON of a regular file; InputError naming the file (and line) when it is not JSON."""
    text = read_text(path, what, max_bytes)
    try:
        return json.loads(text)
    except json.JSONDecodeError as error:
        raise InputError(f"{what} {path} is not valid JSON ({error.msg} at line {error.lineno})") from None
    except RecursionError:
        raise InputError(f"{what} {path} nests too deeply to be a JSON file sculpt writes") from None


def check_npz(path, what: str = "file", budget: int | None = None) -> Path:
    """A regular .npz whose members together inflate to at most `budget` bytes (default: the memory
    budget), checked from the zip directory before any array is read."""
    import zipfile

    path = regular_file(path, what)
    budget = memory_budget() // 4 if budget is None else budget  # the arrays, then their converted copies
    try:
        with zipfile.ZipFile(path) as archive:
            total = sum(info.file_size for info in archive.infolist())
    except (zipfile.BadZipFile, OSError, EOFError, ValueError) as error:
        raise InputError(f"cannot read {what} {path} as .npz ({type(error).__name__}: {error})") from None
    if total > budget:
        raise TooLargeError(
            f"{what} {path} inflates to {human(total)}, more than the {human(budget)} this machine allows"
        )
    return path
