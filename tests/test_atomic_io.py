"""Atomic writes: all or nothing, no temp files left, usual permissions."""

import json
import os

import pytest

from utils.atomic_io import atomic_path, write_json_atomic


def test_json_written_with_usual_permissions(tmp_path):
    target = tmp_path / "sub" / "metrics.json"
    write_json_atomic(target, {"a": 1})
    assert json.loads(target.read_text()) == {"a": 1}
    mask = os.umask(0)
    os.umask(mask)
    assert target.stat().st_mode & 0o777 == 0o666 & ~mask
    assert [p.name for p in target.parent.iterdir()] == ["metrics.json"]


def test_failed_write_keeps_the_old_file_and_leaves_no_temp(tmp_path):
    target = tmp_path / "model.pt"
    target.write_text("old")
    with pytest.raises(RuntimeError), atomic_path(target) as tmp:
        tmp.write_text("half")
        raise RuntimeError("killed mid-write")
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["model.pt"]


def test_temp_keeps_the_suffix_for_writers_that_infer_the_format(tmp_path):
    with atomic_path(tmp_path / "picture.png") as tmp:
        assert tmp.suffix == ".png" and tmp.parent == tmp_path
        tmp.write_bytes(b"x")
    assert (tmp_path / "picture.png").read_bytes() == b"x"
