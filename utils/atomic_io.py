"""Atomic file writes: write to a temp file in the same folder, then rename over the target.

A killed process therefore leaves either the old file or the new one, never half of one. Temp names carry
the writer's pid (`.<name>.<pid>.<random>.tmp<suffix>`), so `stale_temps` can tell a dead writer's leftovers
from a live process's file in progress, and two processes never share a temp name. Every OSError while
writing (read-only folder, disk full, a file where a folder should be) becomes an OutputError naming the
path and the operation.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

from utils.errors import OutputError


def _current_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


_UMASK = _current_umask()


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temp path beside `path`; on success rename it onto `path`, on error remove it.

    Use for writers that want a file name (matplotlib savefig, torch.save, networkx.write_graphml):
        with atomic_path(out / "net.png") as tmp:
            fig.savefig(tmp, format="png")
    The temp name keeps the suffix so writers that infer the format from it still work. Raises OutputError
    (path and operation named) on any OSError while making the folder, writing or renaming.
    """
    target = Path(path)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(
            prefix=f".{target.name}.{os.getpid()}.", suffix=f".tmp{target.suffix}", dir=target.parent
        )
    except OSError as error:
        raise output_error(error, "create a file in", target.parent) from None
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        try:
            yield tmp
        except OSError as error:
            raise output_error(error, "write", target) from None
        try:
            # mkstemp makes the file private (0600); results should get the usual permissions.
            os.chmod(tmp, 0o666 & ~_UMASK)
            os.replace(tmp, target)
        except OSError as error:
            raise output_error(error, "replace", target) from None
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise


def output_error(error: OSError, operation: str, path) -> OutputError:
    """One-line OutputError: 'cannot <operation> <path>: <reason>'."""
    reason = error.strerror or str(error)
    return OutputError(f"cannot {operation} {path}: {reason}")


def check_writable(folder: str | os.PathLike, option: str) -> None:
    """Check, before any work, that files can be made in `folder` (or the nearest existing folder above
    it, so nothing is created): OutputError naming `option` when it is a file or not writable."""
    folder = Path(folder)
    probe_in = folder
    while not probe_in.exists():
        if probe_in.parent == probe_in:
            break
        probe_in = probe_in.parent
    if not probe_in.is_dir():
        kind = "a file" if probe_in.is_file() else "a special file (named pipe or device)"
        raise OutputError(
            f"{option} {folder} cannot be a folder: {probe_in} is {kind}; choose another {option}"
        )
    if not probe_in.stat().st_mode & 0o222:  # no write bit for anyone: read-only, even to root who could
        raise OutputError(
            f"{option} {folder} is not writable ({probe_in} is a read-only folder); "
            f"choose a writable {option}"
        )
    try:
        fd, name = tempfile.mkstemp(prefix=f".write-check.{os.getpid()}.", suffix=".tmp", dir=probe_in)
        os.close(fd)
        os.unlink(name)
    except OSError as error:
        raise OutputError(
            f"{option} {folder} is not writable ({error.strerror or error} in {probe_in}); "
            f"choose a writable {option}"
        ) from None


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, owned by someone else
        return True
    return True


def stale_temps(folder: str | os.PathLike) -> list[Path]:
    """Temp files in `folder` left by writers that are no longer running (a kill mid-write). Temps of
    live processes (another run writing the same folder right now) are not stale."""
    folder = Path(folder)
    if not folder.is_dir():
        return []
    stale = []
    for temp in folder.glob(".*.tmp*"):
        pid = _temp_pid(temp.name)
        if pid is None or (pid != os.getpid() and not _pid_alive(pid)):
            stale.append(temp)
    return stale


def _temp_pid(name: str) -> int | None:
    """The pid in '.<target>.<pid>.<random>.tmp<suffix>'; None for a temp without one (older versions)."""
    head = name[: name.rfind(".tmp")]
    parts = head.rsplit(".", 2)
    if len(parts) == 3 and parts[1].isdigit():
        return int(parts[1])
    return None


def write_text_atomic(path: str | os.PathLike, text: str) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text)


def write_json_atomic(path: str | os.PathLike, obj) -> None:
    """Write `obj` as indented JSON (numpy scalars and arrays converted) atomically."""
    write_text_atomic(path, json.dumps(obj, indent=2, default=_to_jsonable) + "\n")


def _to_jsonable(value):
    if hasattr(value, "tolist"):  # numpy arrays and scalars, torch tensors
        return value.tolist()
    if isinstance(value, (set, frozenset, tuple)):
        return list(value)
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    raise TypeError(f"cannot write {type(value).__name__} as JSON")
