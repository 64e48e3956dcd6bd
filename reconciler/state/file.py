"""The local file backend: ``<state_dir>/<fleet>.json``, written atomically.

Layout of the state directory::

    <fleet>.json                 the state (mode 0600)
    <fleet>.json.backup          the previous version (a hard link to the old file)
    <fleet>.lock                 the lock file (see ``locking.py``)
    .<fleet>.json.write-lock     held only for the instant of a compare-and-swap
    .<fleet>.json.tmp-*          a write in progress (left behind only by a crash)
    <fleet>.emergency-<time>.json  copies saved when a write failed

A write never modifies a state file in place: the new version goes to a temp file in the
same directory (flushed and fsynced), the current file is hard-linked to the backup name
(so a valid state file exists at every instant), then ``os.replace`` swaps the new file in
and the directory is fsynced. A kill at any moment leaves the old or the new version.

Example::

    store = FileStateStore(Path("state"))
    with store.lock("inference", timeout=30.0, command="reconciler apply"):
        state = store.write(store.read("inference") or new_state("inference"))
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import secrets
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping
from datetime import UTC, datetime
from pathlib import Path

from reconciler.errors import StateError
from reconciler.models.state import FleetState, LockInfo
from reconciler.state import locking
from reconciler.state.codec import decode_state, encode_state
from reconciler.state.holder import make_lock_info
from reconciler.state.store import check_fleet_name, is_fleet_name, next_version
from reconciler.state.upgrade import UPGRADES, Upgrade

STATE_SUFFIX = ".json"
BACKUP_SUFFIX = ".json.backup"
LOCK_SUFFIX = ".lock"
EMERGENCY_MARK = ".emergency-"


class FileStateStore:
    """States as JSON files in one directory; locks as flocks on ``<fleet>.lock``."""

    def __init__(
        self,
        state_dir: Path,
        *,
        environ: Mapping[str, str] | None = None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
        upgrades: Mapping[int, Upgrade] = UPGRADES,
        emergency_fallback_dir: Path | None = None,
    ) -> None:
        self.state_dir = state_dir
        self._environ = os.environ if environ is None else environ
        self._clock = clock
        self._sleep = sleep
        self._now = now
        self._upgrades = upgrades
        self._emergency_fallback_dir = emergency_fallback_dir
        self._held: dict[str, locking.HeldFileLock] = {}  # by lock id

    def __repr__(self) -> str:
        return f"FileStateStore({str(self.state_dir)!r})"

    # -- paths -------------------------------------------------------------------------

    def state_path(self, fleet: str) -> Path:
        check_fleet_name(fleet)
        return self.state_dir / f"{fleet}{STATE_SUFFIX}"

    def backup_path(self, fleet: str) -> Path:
        check_fleet_name(fleet)
        return self.state_dir / f"{fleet}{BACKUP_SUFFIX}"

    def lock_path(self, fleet: str) -> Path:
        check_fleet_name(fleet)
        return self.state_dir / f"{fleet}{LOCK_SUFFIX}"

    # -- reading -----------------------------------------------------------------------

    def read(self, fleet: str) -> FleetState | None:
        path = self.state_path(fleet)
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise StateError(f"Cannot read the state file {path}: {exc.strerror}.") from exc
        return decode_state(data, fleet=fleet, where=str(path), upgrades=self._upgrades)

    def list_fleets(self) -> list[str]:
        try:
            candidates = sorted(self.state_dir.glob(f"*{STATE_SUFFIX}"))
        except OSError as exc:
            raise StateError(f"Cannot list the state directory {self.state_dir}: {exc}.") from exc
        return [path.name[: -len(STATE_SUFFIX)] for path in candidates if _is_state_file(path)]

    # -- writing -----------------------------------------------------------------------

    def write(self, state: FleetState) -> FleetState:
        fleet = state.fleet
        path = self.state_path(fleet)
        self._check_own_locks(fleet)
        self._ensure_dir()
        with self._write_lock(fleet):
            persisted = next_version(self.read(fleet), state)
            if persisted is None:
                return state
            self._replace(path, self.backup_path(fleet), encode_state(persisted).encode("utf-8"))
        return persisted

    def write_emergency_copy(self, state: FleetState) -> Path:
        stamp = self._now().astimezone(UTC).strftime("%Y%m%dT%H%M%S%fZ")
        data = encode_state(state).encode("utf-8")
        fallback = self._emergency_fallback_dir or Path(tempfile.gettempdir())
        errors: list[str] = []
        for directory in (self.state_dir, fallback):
            try:
                directory.mkdir(mode=0o700, parents=True, exist_ok=True)
                return _write_unique_file(directory, f"{state.fleet}{EMERGENCY_MARK}{stamp}", data)
            except OSError as exc:
                errors.append(f"{directory}: {exc.strerror or exc}")
        raise StateError(
            f"Could not save an emergency copy of fleet {state.fleet!r}'s state anywhere "
            f"({'; '.join(errors)})."
        )

    # -- locking -----------------------------------------------------------------------

    @contextlib.contextmanager
    def lock(self, fleet: str, *, timeout: float = 0.0, command: str) -> Iterator[LockInfo]:
        path = self.lock_path(fleet)
        self._ensure_dir()
        info = make_lock_info(fleet, command=command, environ=self._environ, now=self._now())
        held = locking.acquire(
            path, info, timeout=max(timeout, 0.0), clock=self._clock, sleep=self._sleep
        )
        self._held[info.id] = held
        try:
            yield info
        finally:
            del self._held[info.id]
            held.release()

    def lock_holder(self, fleet: str) -> LockInfo | None:
        return locking.read_holder(self.lock_path(fleet))

    def force_unlock(self, fleet: str, lock_id: str) -> None:
        locking.force_unlock(self.lock_path(fleet), lock_id)

    # -- internals ---------------------------------------------------------------------

    def _check_own_locks(self, fleet: str) -> None:
        """Refuse to write if every lock this store holds on ``fleet`` was force-unlocked."""
        held = [lock for lock in list(self._held.values()) if lock.info.fleet == fleet]
        if held and not any(lock.is_intact() for lock in held):
            held[0].check_intact()

    def _ensure_dir(self) -> None:
        try:
            self.state_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        except OSError as exc:
            raise StateError(
                f"Cannot create the state directory {self.state_dir}: {exc.strerror}."
            ) from exc

    @contextlib.contextmanager
    def _write_lock(self, fleet: str) -> Iterator[None]:
        """Serialise the read-compare-replace of concurrent writers (blocks briefly)."""
        path = self.state_dir / f".{fleet}{STATE_SUFFIX}.write-lock"
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        except OSError as exc:
            raise StateError(f"Cannot open {path}: {exc.strerror}.") from exc
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)

    def _replace(self, path: Path, backup: Path, data: bytes) -> None:
        """Atomically make ``path`` hold ``data``, keeping the old version as the backup."""
        temp = path.with_name(f".{path.name}.tmp-{secrets.token_hex(6)}")
        try:
            _write_new_file(temp, data)
            if path.exists():
                _keep_backup(path, backup)
            os.replace(temp, path)
            _fsync_dir(path.parent)
        except OSError as exc:
            with contextlib.suppress(OSError):
                temp.unlink()
            raise StateError(
                f"Could not write the state file {path}: {exc.strerror or exc}. The previous "
                "state is intact."
            ) from exc


def _write_new_file(path: Path, data: bytes) -> None:
    """Create ``path`` (must not exist) with mode 0600 and ``data``, flushed to disk."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
    try:
        os.fchmod(fd, 0o600)  # whatever the umask
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
        os.fsync(fd)
    finally:
        os.close(fd)


def _write_unique_file(directory: Path, stem: str, data: bytes) -> Path:
    """Write ``<stem>.json`` in ``directory``, or ``<stem>-2.json``... if that exists."""
    for attempt in range(1, 100):
        suffix = "" if attempt == 1 else f"-{attempt}"
        path = directory / f"{stem}{suffix}{STATE_SUFFIX}"
        try:
            _write_new_file(path, data)
        except FileExistsError:
            continue
        return path
    raise FileExistsError(f"too many files named {stem}*{STATE_SUFFIX}")


def _keep_backup(path: Path, backup: Path) -> None:
    """Make ``backup`` the current content of ``path`` without ever touching ``path``."""
    staging = backup.with_name(f".{backup.name}.tmp-{secrets.token_hex(6)}")
    try:
        try:
            os.link(path, staging)  # the state file is never modified in place: a snapshot
        except OSError:
            _write_new_file(staging, path.read_bytes())  # file systems without hard links
        os.replace(staging, backup)
    except OSError:
        with contextlib.suppress(OSError):
            staging.unlink()
        raise


def _fsync_dir(directory: Path) -> None:
    try:
        fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    except OSError:
        return  # not supported here; the data itself is already fsynced
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _is_state_file(path: Path) -> bool:
    """A ``<fleet>.json`` that is a state, not an emergency copy or another tool's JSON."""
    name = path.name[: -len(STATE_SUFFIX)]
    if EMERGENCY_MARK in name or not is_fleet_name(name) or not path.is_file():
        return False
    try:
        document = json.loads(path.read_bytes())
    except (OSError, ValueError):
        return True  # a damaged state is still a state: show it so reading it reports why
    return isinstance(document, dict) and "lineage" in document and "fleet" in document
