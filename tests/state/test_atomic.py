"""Crash-safe file primitives."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from reconciler.state import atomic


def test_write_new_file_refuses_to_overwrite(tmp_path: Path) -> None:
    target = tmp_path / "a.json"
    atomic.write_new_file(target, b"one")
    with pytest.raises(FileExistsError):
        atomic.write_new_file(target, b"two")
    assert target.read_bytes() == b"one"
    assert stat.S_IMODE(target.stat().st_mode) == 0o600


def test_replace_with_backup_links_the_old_version(tmp_path: Path) -> None:
    path, backup = tmp_path / "f.json", tmp_path / "f.json.backup"
    atomic.replace_with_backup(path, backup, b"v1")
    assert path.read_bytes() == b"v1" and not backup.exists()
    old_inode = path.stat().st_ino
    atomic.replace_with_backup(path, backup, b"v2")
    assert path.read_bytes() == b"v2" and backup.read_bytes() == b"v1"
    assert backup.stat().st_ino == old_inode, "the backup is the old file itself, not a copy"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["f.json", "f.json.backup"]


def test_remove_temp_files_only_touches_this_files_temps(tmp_path: Path) -> None:
    names = [
        ".f.json.tmp-1",
        ".f.json.backup.tmp-2",
        ".g.json.tmp-3",
        "f.json",
        "f.json.backup",
    ]
    for name in names:
        (tmp_path / name).write_text("x")
    assert atomic.remove_temp_files(tmp_path / "f.json") == 2
    assert sorted(os.listdir(tmp_path)) == [".g.json.tmp-3", "f.json", "f.json.backup"]


def test_write_unique_file_numbers_collisions(tmp_path: Path) -> None:
    first = atomic.write_unique_file(tmp_path, "copy", ".json", b"1")
    second = atomic.write_unique_file(tmp_path, "copy", ".json", b"2")
    assert (first.name, second.name) == ("copy.json", "copy-2.json")
    assert second.read_bytes() == b"2"
