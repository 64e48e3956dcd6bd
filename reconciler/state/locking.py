"""Exclusive per-fleet locks on a separate ``<fleet>.lock`` file, with ``fcntl.flock``.

Design
------
* **The lock is the kernel's flock** on the open lock file, not the file's existence. The
  kernel drops it when the holder's last descriptor closes, including on SIGKILL or a crash,
  so a dead holder never blocks anyone. The lock file is separate from the state file, so
  the state's atomic renames never disturb it.
* **Holder information** (:class:`LockInfo` as JSON) is written into the lock file by the
  holder right after it takes the flock, and truncated away on release.
* **Stale** means: the lock file names a holder whose process is gone from this host. If
  nobody holds the flock, the next taker simply wins and overwrites the record (a holder
  killed with SIGKILL leaves exactly this). If the flock *is* still held while the recorded
  pid is gone (a child process inherited the descriptor), the refusal says the lock is stale
  and suggests ``force-unlock``.
* **force-unlock** first tries the flock itself: if it is free, it just clears the leftover
  record. If the flock is held (a hung or runaway holder), it *removes the lock file* after
  checking the id. The next taker creates a fresh file (a new inode) and locks that, so it
  is no longer blocked. The old holder still holds a flock on the unlinked inode, so every
  holder checks before each state write that the lock path still leads to its own inode
  (:meth:`HeldFileLock.check_intact`); a broken holder's writes are refused with
  :class:`LockError` instead of silently racing the new holder.
* Takers re-check after locking that the path still names the inode they locked, so a taker
  that opened the file just before a force-unlock removed it does not hold a phantom lock.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from pydantic import ValidationError

from reconciler.errors import LockError, StateError
from reconciler.models.state import LockInfo
from reconciler.state.holder import lock_refused, matching_holder

POLL_INTERVAL = 0.1


@dataclass
class HeldFileLock:
    """A flock we hold; ``release`` exactly once."""

    path: Path
    fd: int
    info: LockInfo

    def is_intact(self) -> bool:
        """False once a force-unlock removed the file this lock is held on."""
        return _same_file(self.fd, self.path)

    def check_intact(self) -> None:
        """Raise :class:`LockError` if a force-unlock broke this lock since we took it."""
        if not self.is_intact():
            raise LockError(
                f"The lock {self.info.id} on fleet {self.info.fleet!r} was force-unlocked "
                "while this run held it, so it no longer owns the state; nothing more was "
                "written. Another run may now hold the lock."
            )

    def release(self) -> None:
        try:
            if _same_file(self.fd, self.path):
                os.ftruncate(self.fd, 0)  # no holder any more; leaves the file for the next taker
        except OSError:
            pass  # the kernel drops the flock on close either way
        finally:
            os.close(self.fd)  # releases the flock


def acquire(
    path: Path,
    info: LockInfo,
    *,
    timeout: float,
    clock: Callable[[], float],
    sleep: Callable[[float], None],
) -> HeldFileLock:
    """Take the flock on ``path`` and record ``info``; poll up to ``timeout`` seconds."""
    started = clock()
    while True:
        fd = _open_lock_file(path)
        try:
            flocked = try_flock(fd)
            current = _same_file(fd, path)
        except BaseException:
            os.close(fd)
            raise
        if flocked and current:
            _record_holder(fd, info)
            return HeldFileLock(path=path, fd=fd, info=info)
        os.close(fd)
        if not current:
            continue  # force-unlocked between our open and flock: try the new file at once
        waited = clock() - started
        if waited >= timeout:
            holder = read_holder(path)
            raise lock_refused(
                info.fleet,
                holder,
                waited=timeout,
                unreadable_id=unreadable_lock_id(path) if holder is None else None,
            )
        sleep(min(POLL_INTERVAL, timeout - waited))


def read_holder(path: Path) -> LockInfo | None:
    """The holder recorded in the lock file, or ``None`` (no file, empty, or unreadable)."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise StateError(f"Cannot read the lock file {path}: {exc.strerror}.") from exc
    if not text.strip():
        return None
    try:
        return LockInfo.model_validate(json.loads(text))
    except (ValueError, ValidationError):
        return None  # being written right now, or damaged: the flock is what counts


UNREADABLE_PREFIX = "unreadable-"


def unreadable_lock_id(path: Path) -> str | None:
    """The id ``force-unlock`` takes for a lock whose holder record cannot be read (empty or
    damaged): ``unreadable-<inode>``, so only the lock file that was seen can be broken."""
    try:
        return f"{UNREADABLE_PREFIX}{os.stat(path).st_ino}"
    except OSError:
        return None


def force_unlock(path: Path, lock_id: str) -> None:
    """Break the lock recorded with ``lock_id`` on ``path`` (see the module docstring).

    A lock whose holder record is unreadable is broken with the id the refusal named,
    ``unreadable-<inode>`` (see :func:`unreadable_lock_id`)."""
    recorded = read_holder(path)
    if recorded is None and lock_id.startswith(UNREADABLE_PREFIX):
        if lock_id != unreadable_lock_id(path):
            raise LockError(
                f"Refusing to force-unlock fleet {path.stem!r}: {lock_id} does not name its "
                "current lock file (it was replaced since); run the command again to see the "
                "lock's id now."
            )
        holder: LockInfo | None = None
    else:
        holder = matching_holder(path.stem, lock_id, recorded)
    fd = _open_lock_file(path)
    try:
        if try_flock(fd):
            # Nobody holds it: clear the record a dead holder left behind.
            if read_holder(path) == holder:
                os.ftruncate(fd, 0)
            return
        # A live (hung) holder: detach it by removing the file it locked.
        if _same_file(fd, path) and read_holder(path) == holder:
            path.unlink(missing_ok=True)
    except OSError as exc:
        raise StateError(f"Cannot force-unlock {path}: {exc.strerror}.") from exc
    finally:
        os.close(fd)  # also drops our flock if we took it


def _open_lock_file(path: Path) -> int:
    try:
        return os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    except OSError as exc:
        raise StateError(f"Cannot open the lock file {path}: {exc.strerror}.") from exc


def try_flock(fd: int) -> bool:
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as exc:
        if exc.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
            return False
        raise StateError(f"Cannot lock a state lock file: {exc.strerror}.") from exc
    return True


def _same_file(fd: int, path: Path) -> bool:
    try:
        on_path = os.stat(path)
    except FileNotFoundError:
        return False
    held = os.fstat(fd)
    return (held.st_dev, held.st_ino) == (on_path.st_dev, on_path.st_ino)


def _record_holder(fd: int, info: LockInfo) -> None:
    data = (json.dumps(info.model_dump(mode="json"), indent=2, sort_keys=True) + "\n").encode()
    with contextlib.suppress(OSError):  # holder info is for humans; the flock is the lock
        os.ftruncate(fd, 0)
        os.pwrite(fd, data, 0)
