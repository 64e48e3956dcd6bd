"""An in-memory backend with the file backend's semantics, for tests of the layers above.

Same compare-and-swap, lineage and no-op rules (shared via ``store.next_version``), same
lock refusals and force-unlock behaviour (a force-unlocked holder's later writes are
refused), and copies in and out so callers never share objects with the store.

Extra test hooks: :meth:`MemoryStateStore.fail_writes_with` makes every ``write`` raise, and
``emergency_copies`` records what :meth:`write_emergency_copy` saved.

Example::

    store = MemoryStateStore()
    with store.lock("inference", command="test"):
        store.write(new_state("inference"))
"""

from __future__ import annotations

import contextlib
import os
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextvars import ContextVar
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from reconciler.errors import LockError, StateError
from reconciler.models.state import FleetState, LockInfo
from reconciler.state.codec import encode_state
from reconciler.state.holder import lock_refused, make_lock_info, matching_holder
from reconciler.state.store import StateStore, check_fleet_name, next_version

# Lock ids taken in the current context. ``asyncio.to_thread`` copies the context, so a
# write made from a worker thread on behalf of the lock holder is still recognised as its.
_HELD_HERE: ContextVar[frozenset[str]] = ContextVar("memory_store_locks", default=frozenset())


class MemoryStateStore:
    """States and locks in a dict; thread-safe; a lock belongs to the context that took it."""

    def __init__(
        self,
        *,
        emergency_dir: Path | None = None,
        environ: Mapping[str, str] | None = None,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._emergency_dir = emergency_dir
        self._environ = os.environ if environ is None else environ
        self._now = now
        self._states: dict[str, FleetState] = {}
        self._holders: dict[str, LockInfo] = {}
        self._broken: dict[str, LockInfo] = {}  # by lock id, until its holder leaves the block
        self._changed = threading.Condition()
        self._write_failure: StateError | None = None
        self.emergency_copies: list[FleetState] = []

    def __repr__(self) -> str:
        return f"MemoryStateStore(fleets={sorted(self._states)!r})"

    def fail_writes_with(self, error: StateError | None) -> None:
        """Make every later ``write`` raise ``error`` (``None`` restores normal writes)."""
        self._write_failure = error

    def read(self, fleet: str) -> FleetState | None:
        check_fleet_name(fleet)
        with self._changed:
            stored = self._states.get(fleet)
            return stored.model_copy(deep=True) if stored is not None else None

    def write(self, state: FleetState) -> FleetState:
        with self._changed:
            if self._write_failure is not None:
                raise self._write_failure
            held_here = _HELD_HERE.get()
            for broken in self._broken.values():
                if broken.fleet == state.fleet and broken.id in held_here:
                    raise LockError(
                        f"The lock {broken.id} on fleet {state.fleet!r} was force-unlocked "
                        "while this run held it, so it no longer owns the state; nothing more "
                        "was written."
                    )
            persisted = next_version(self._states.get(state.fleet), state)
            if persisted is None:
                return state
            self._states[state.fleet] = persisted.model_copy(deep=True)
            return persisted

    def write_emergency_copy(self, state: FleetState) -> Path:
        self.emergency_copies.append(state.model_copy(deep=True))
        directory = self._emergency_dir or Path(tempfile.gettempdir())
        stamp = self._now().astimezone(UTC).strftime("%Y%m%dT%H%M%S%fZ")
        path = directory / f"{state.fleet}.emergency-{stamp}.json"
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                handle.write(encode_state(state))
        except OSError as exc:
            raise StateError(f"Could not save an emergency copy at {path}: {exc}.") from exc
        return path

    @contextlib.contextmanager
    def lock(
        self,
        fleet: str,
        *,
        timeout: float = 0.0,
        command: str,
        on_lost: Callable[[str], None] | None = None,  # a local lock cannot be lost
    ) -> Iterator[LockInfo]:
        check_fleet_name(fleet)
        info = make_lock_info(fleet, command=command, environ=self._environ, now=self._now())
        deadline = time.monotonic() + max(timeout, 0.0)
        with self._changed:
            while fleet in self._holders:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise lock_refused(fleet, self._holders[fleet], waited=timeout)
                self._changed.wait(remaining)
            self._holders[fleet] = info
        _HELD_HERE.set(_HELD_HERE.get() | {info.id})
        try:
            yield info
        finally:
            _HELD_HERE.set(_HELD_HERE.get() - {info.id})
            with self._changed:
                if self._holders.get(fleet) == info:
                    del self._holders[fleet]
                self._broken.pop(info.id, None)
                self._changed.notify_all()

    def lock_holder(self, fleet: str) -> LockInfo | None:
        check_fleet_name(fleet)
        with self._changed:
            return self._holders.get(fleet)

    def force_unlock(self, fleet: str, lock_id: str) -> None:
        check_fleet_name(fleet)
        with self._changed:
            matching_holder(fleet, lock_id, self._holders.get(fleet))
            self._broken[lock_id] = self._holders.pop(fleet)
            self._changed.notify_all()

    def list_fleets(self) -> list[str]:
        with self._changed:
            return sorted(self._states)


if TYPE_CHECKING:  # mypy proves the backend satisfies the Protocol
    _conforms: StateStore = MemoryStateStore()
