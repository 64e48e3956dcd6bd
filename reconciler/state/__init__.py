"""State storage: where each fleet's :class:`FleetState` lives, and its lock.

Public surface::

    StateStore            the Protocol every backend implements (read, write, lock, ...)
    FileStateStore        local files: <state_dir>/<fleet>.json, atomic writes, flock locks
    MemoryStateStore      in-memory backend with the same semantics, for tests
    open_store(dir)       the store for a ``--state-dir``
    new_state(fleet)      a fresh state (new lineage, serial 0, new fingerprint key)

Errors are :class:`reconciler.errors.StateError` and its subclass ``LockError``.
"""

from __future__ import annotations

from pathlib import Path

from reconciler.state.file import FileStateStore
from reconciler.state.memory import MemoryStateStore
from reconciler.state.store import StateStore, check_fleet_name, new_state


def open_store(state_dir: Path) -> StateStore:
    """The state store for ``state_dir`` (the local file backend)."""
    return FileStateStore(state_dir)


__all__ = [
    "FileStateStore",
    "MemoryStateStore",
    "StateStore",
    "check_fleet_name",
    "new_state",
    "open_store",
]
