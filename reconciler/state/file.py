"""The local file backend: ``<state_dir>/<fleet>.json``, written atomically.

Layout of the state directory::

    <fleet>.json                   the state (mode 0600)
    <fleet>.json.backup            the previous version (a hard link to the old file)
    <fleet>.lock                   the lock file (see ``locking.py``)
    .<fleet>.json.write-lock       held only for the instant of a compare-and-swap
    .<fleet>.json.tmp-*            a write in progress (a crash leaves it; the next writer
                                   removes it)
    <fleet>.emergency-<time>.json  copies saved when a write failed
    <fleet>.json.backup.before-new-state-<time>
                                   an old backup kept when --new-state began a new lineage

Writes go through :func:`atomic.replace_with_backup`: a kill at any moment leaves the old or
the new version. The store remembers the last version it read or wrote (keyed by the file's
inode, size and mtime), so an apply that saves after every resource does not re-read and
re-validate the whole file each time.

Example::

    store = FileStateStore(Path("state"))
    with store.lock("inference", timeout=30.0, command="reconciler apply"):
        state = store.write(store.read("inference") or new_state("inference"))
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from reconciler.errors import LockError, StateError
from reconciler.models.state import FleetState, LockInfo
from reconciler.state import atomic, locking
from reconciler.state.codec import decode_state, encode_document, encode_state
from reconciler.state.holder import make_lock_info
from reconciler.state.store import check_fleet_name, check_write, is_fleet_name
from reconciler.state.upgrade import UPGRADES, Upgrade

STATE_SUFFIX = ".json"
BACKUP_SUFFIX = ".json.backup"
LOCK_SUFFIX = ".lock"
EMERGENCY_MARK = ".emergency-"
WRITE_LOCK_MIN_WAIT = 5.0

Signature = tuple[int, int, int, int, int]


@dataclass(frozen=True)
class _Snapshot:
    """A stored version as the store last saw it; ``document`` is in the current format."""

    signature: Signature
    document: dict[str, Any]


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
        new_state_despite_backup: bool = False,
    ) -> None:
        self.state_dir = state_dir
        self.new_state_despite_backup = new_state_despite_backup
        self._environ = os.environ if environ is None else environ
        self._clock = clock
        self._sleep = sleep
        self._now = now
        self._upgrades = upgrades
        self._emergency_fallback_dir = emergency_fallback_dir
        self._held: dict[str, locking.HeldFileLock] = {}  # by lock id
        self._lock_timeouts: dict[str, float] = {}  # fleet -> the --lock-timeout it was locked with
        self._snapshots: dict[str, _Snapshot] = {}  # by fleet
        self._states: dict[str, FleetState] = {}
        """The state last parsed per fleet, valid while its snapshot's signature is the file's."""

    def __repr__(self) -> str:
        return f"FileStateStore({str(self.state_dir)!r})"

    def state_path(self, fleet: str) -> Path:
        check_fleet_name(fleet)
        return self.state_dir / f"{fleet}{STATE_SUFFIX}"

    def backup_path(self, fleet: str) -> Path:
        check_fleet_name(fleet)
        return self.state_dir / f"{fleet}{BACKUP_SUFFIX}"

    def lock_path(self, fleet: str) -> Path:
        check_fleet_name(fleet)
        return self.state_dir / f"{fleet}{LOCK_SUFFIX}"

    # -- states ------------------------------------------------------------------------

    def read(self, fleet: str) -> FleetState | None:
        """The stored state, or ``None`` for a fleet that never had one.

        A state file that is gone while its ``.backup`` is still there is not "never had
        one": starting anew would forget every instance the state recorded and begin a new
        lineage, so :class:`StateError` says how to restore it, unless the store was made
        with ``new_state_despite_backup`` (``--new-state``).
        """
        loaded = self._load(fleet)
        if loaded:
            return loaded[0]
        backup = self.backup_path(fleet)
        if backup.exists() and not self.new_state_despite_backup:
            raise StateError(self._missing_state_message(fleet, backup))
        return None

    def _missing_state_message(self, fleet: str, backup: Path) -> str:
        path = self.state_path(fleet)
        try:
            previous = decode_state(
                backup.read_bytes(), fleet=fleet, where=str(backup), upgrades=self._upgrades
            )
            what = (
                f" (lineage {previous.lineage}, serial {previous.serial}, "
                f"{len(previous.instances)} instance(s))"
            )
        except (OSError, StateError):
            what = ""
        return (
            f"The state file {path} is missing, but its backup {backup} is there{what}. "
            "Starting anew would forget every instance it records and begin a new history. "
            f"If the state was deleted by mistake, restore it: cp {backup} {path} (the "
            "backup is the version before the last write; the next plan adopts anything "
            "created since, by its ownership tags). To start a new state anyway, pass "
            "--new-state (the old backup is kept beside it)."
        )

    def write(self, state: FleetState) -> FleetState:
        fleet = state.fleet
        path = self.state_path(fleet)
        self._check_own_locks(fleet)
        self._ensure_dir()
        with self._write_lock(fleet):
            if fleet not in self._snapshots:  # first write of this fleet by this store
                atomic.remove_temp_files(path)
            stored = self._stored_snapshot(fleet)
            if stored is None:
                self._keep_orphaned_backup(fleet)
            check_write(
                state,
                stored_serial=stored.document["serial"] if stored else None,
                stored_lineage=stored.document["lineage"] if stored else None,
            )
            document = state.model_dump(mode="json")
            if stored is not None and _same_content(document, stored.document):
                return state
            document["serial"] = state.serial + 1
            self._states.pop(fleet, None)  # the next read parses what this writes
            try:
                atomic.replace_with_backup(path, self.backup_path(fleet), encode_document(document))
                signature = _signature(os.stat(path))
            except OSError as exc:
                self._snapshots.pop(fleet, None)
                raise StateError(
                    f"Could not write the state file {path}: {exc.strerror or exc}; the "
                    "previous state is intact"
                ) from exc
            self._snapshots[fleet] = _Snapshot(signature=signature, document=document)
        return state.model_copy(update={"serial": document["serial"]})

    def _keep_orphaned_backup(self, fleet: str) -> None:
        """A new state begins where an old backup lies (``--new-state``): move the backup
        aside before the second write of the new lineage would replace it."""
        backup = self.backup_path(fleet)
        if not backup.exists():
            return
        stamp = self._now().astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")
        kept = backup.with_name(f"{backup.name}.before-new-state-{stamp}")
        try:
            os.replace(backup, kept)
        except OSError as exc:
            raise StateError(
                f"Could not keep the old backup {backup} aside before starting a new state: "
                f"{exc.strerror or exc}; nothing was written"
            ) from exc

    def write_emergency_copy(self, state: FleetState) -> Path:
        stamp = self._now().astimezone(UTC).strftime("%Y%m%dT%H%M%S%fZ")
        data = encode_state(state).encode("utf-8")
        fallback = self._emergency_fallback_dir or Path(tempfile.gettempdir())
        errors: list[str] = []
        for directory in (self.state_dir, fallback):
            try:
                directory.mkdir(mode=0o700, parents=True, exist_ok=True)
                stem = f"{state.fleet}{EMERGENCY_MARK}{stamp}"
                return atomic.write_unique_file(directory, stem, STATE_SUFFIX, data)
            except OSError as exc:
                errors.append(f"{directory}: {exc.strerror or exc}")
        raise StateError(
            f"Could not save an emergency copy of fleet {state.fleet!r}'s state anywhere "
            f"({'; '.join(errors)})."
        )

    def list_fleets(self) -> list[str]:
        try:
            candidates = sorted(self.state_dir.glob(f"*{STATE_SUFFIX}"))
        except OSError as exc:
            raise StateError(f"Cannot list the state directory {self.state_dir}: {exc}.") from exc
        return [path.name[: -len(STATE_SUFFIX)] for path in candidates if _is_state_file(path)]

    # -- locks -------------------------------------------------------------------------

    @contextlib.contextmanager
    def lock(
        self,
        fleet: str,
        *,
        timeout: float = 0.0,
        command: str,
        on_lost: Callable[[str], None] | None = None,  # a local lock cannot be lost
    ) -> Iterator[LockInfo]:
        path = self.lock_path(fleet)
        self._ensure_dir()
        info = make_lock_info(fleet, command=command, environ=self._environ, now=self._now())
        held = locking.acquire(
            path, info, timeout=max(timeout, 0.0), clock=self._clock, sleep=self._sleep
        )
        self._held[info.id] = held
        self._lock_timeouts[fleet] = max(timeout, 0.0)
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

    def _load(self, fleet: str) -> tuple[FleetState, _Snapshot] | None:
        """Read, upgrade and validate the stored state; remember it for the next write."""
        path = self.state_path(fleet)
        try:
            with path.open("rb") as handle:
                signature = _signature(os.fstat(handle.fileno()))
                cached = self._snapshots.get(fleet)
                known = self._states.get(fleet)
                if cached is not None and known is not None and cached.signature == signature:
                    # The very file read last time (every write replaces it: a new inode):
                    # a watcher reading an unchanged state every cycle skips the parse. The
                    # caller gets its own copy of the containers, never the cached ones.
                    return _copy_of(known), cached
                data = handle.read()
        except FileNotFoundError:
            self._snapshots.pop(fleet, None)
            self._states.pop(fleet, None)
            return None
        except OSError as exc:
            raise StateError(f"Cannot read the state file {path}: {exc.strerror}.") from exc
        state = decode_state(data, fleet=fleet, where=str(path), upgrades=self._upgrades)
        snapshot = _Snapshot(signature=signature, document=state.model_dump(mode="json"))
        self._snapshots[fleet] = snapshot
        self._states[fleet] = _copy_of(state)  # the caller's changes never reach the cache
        return state, snapshot

    def _stored_snapshot(self, fleet: str) -> _Snapshot | None:
        cached = self._snapshots.get(fleet)
        if cached is not None:
            try:
                if _signature(os.stat(self.state_path(fleet))) == cached.signature:
                    return cached
            except FileNotFoundError:
                pass
        loaded = self._load(fleet)
        return loaded[1] if loaded else None

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
        """Serialise the read-compare-replace of concurrent writers (held for an instant).

        Waits at most the fleet lock's ``--lock-timeout`` (at least
        ``WRITE_LOCK_MIN_WAIT`` seconds: writers hold it for milliseconds), never forever:
        a stuck process holding it gets named as a :class:`LockError`."""
        path = self.state_dir / f".{fleet}{STATE_SUFFIX}.write-lock"
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        except OSError as exc:
            raise StateError(f"Cannot open {path}: {exc.strerror}") from exc
        try:
            limit = max(self._lock_timeouts.get(fleet, 0.0), WRITE_LOCK_MIN_WAIT)
            started = self._clock()
            while not locking.try_flock(fd):
                waited = self._clock() - started
                if waited >= limit:
                    raise LockError(
                        f"Could not write fleet {fleet!r}'s state: another process has held "
                        f"its write lock {path} for {waited:.0f}s (a write takes milliseconds, "
                        "so that process is stuck). Nothing was written; find the process "
                        f"with `fuser {path}` and stop it, or raise --lock-timeout."
                    )
                self._sleep(min(locking.POLL_INTERVAL, limit - waited))
            yield
        finally:
            os.close(fd)


def _copy_of(state: FleetState) -> FleetState:
    """A state whose dicts are its own (the records in them are immutable by convention)."""
    return state.model_copy(
        update={
            "instances": dict(state.instances),
            "intents": dict(state.intents),
            "resources": dict(state.resources),
        }
    )


def _signature(info: os.stat_result) -> Signature:
    # ctime too: it changes on any write or rename, also where mtime is coarse (NFS).
    return (info.st_dev, info.st_ino, info.st_size, info.st_mtime_ns, info.st_ctime_ns)


def _same_content(document: dict[str, Any], stored: dict[str, Any]) -> bool:
    return {**document, "serial": 0} == {**stored, "serial": 0}


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
