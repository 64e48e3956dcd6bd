"""Crash-safe file primitives for the file backend (POSIX).

:func:`replace_with_backup` never modifies the target in place: the new content goes to a
temp file in the same directory (written, fsynced), the current file is hard-linked to the
backup name, ``os.replace`` swaps the new file in, and the directory is fsynced. A kill at
any instant leaves the old or the new file at the target path, and a valid backup.
"""

from __future__ import annotations

import contextlib
import os
import secrets
from collections.abc import Callable
from pathlib import Path


def replace_with_backup(path: Path, backup: Path, data: bytes) -> None:
    """Atomically make ``path`` hold ``data``; its previous version becomes ``backup``."""
    temp = path.with_name(f".{path.name}.tmp-{secrets.token_hex(6)}")
    try:
        write_new_file(temp, data)
        if path.exists():
            _snapshot_to(path, backup)
        os.replace(temp, path)
    except OSError:
        with contextlib.suppress(OSError):
            temp.unlink()
        raise
    fsync_dir(path.parent)


def remove_temp_files(path: Path) -> int:
    """Remove what crashed writers of ``path`` left behind; only call under the write lock."""
    removed = 0
    for pattern in (f".{path.name}.tmp-*", f".{path.name}.backup.tmp-*"):
        for orphan in path.parent.glob(pattern):
            with contextlib.suppress(OSError):
                orphan.unlink()
                removed += 1
    return removed


Writer = Callable[[int, memoryview], int]


def write_new_file(path: Path, data: bytes, *, write: Writer = os.write) -> None:
    """Create ``path`` (must not exist) with mode 0600 and ``data``, flushed to disk.

    If writing fails part way (a full disk), the partial file is removed: a torn copy is
    never left behind under ``path``. ``write`` is the byte writer (tests pass a failing one).
    """
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
    try:
        os.fchmod(fd, 0o600)  # whatever the umask
        view = memoryview(data)
        while view:
            view = view[write(fd, view) :]
        os.fsync(fd)
    except BaseException:
        os.close(fd)
        with contextlib.suppress(OSError):
            path.unlink()
        raise
    os.close(fd)


def write_unique_file(
    directory: Path, stem: str, suffix: str, data: bytes, *, write: Writer = os.write
) -> Path:
    """Write ``<stem><suffix>`` in ``directory``, or ``<stem>-2<suffix>``... if taken.

    The content goes to a hidden temp file first and is linked under its name only once it
    is complete and on disk, so the name never shows a partial copy."""
    temp = directory / f".{stem}{suffix}.tmp-{secrets.token_hex(6)}"
    write_new_file(temp, data, write=write)
    try:
        for attempt in range(1, 100):
            path = directory / f"{stem}{'' if attempt == 1 else f'-{attempt}'}{suffix}"
            try:
                os.link(temp, path)
            except FileExistsError:
                continue
            except OSError:  # a file system without hard links
                if path.exists():
                    continue
                os.replace(temp, path)
            fsync_dir(directory)
            return path
        raise FileExistsError(f"too many files named {stem}*{suffix} in {directory}")
    finally:
        with contextlib.suppress(OSError):
            temp.unlink()


def fsync_dir(directory: Path) -> None:
    """Make a rename in ``directory`` durable; a no-op where directories cannot be fsynced."""
    try:
        fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _snapshot_to(path: Path, backup: Path) -> None:
    """Make ``backup`` the current content of ``path`` without ever touching ``path``."""
    staging = backup.with_name(f".{backup.name}.tmp-{secrets.token_hex(6)}")
    try:
        try:
            os.link(path, staging)  # ``path`` is never modified in place, so a link is a snapshot
        except OSError:
            write_new_file(staging, path.read_bytes())  # file systems without hard links
        os.replace(staging, backup)
    except OSError:
        with contextlib.suppress(OSError):
            staging.unlink()
        raise
