"""Move a fleet's state between backends, keeping its lineage and serial.

:func:`migrate_fleet` holds the fleet's lock on both sides, reads the source and stores the
state *as is* at the destination: a plain ``write`` would give it serial + 1 and could not
reproduce the history the serial counts. The destination refuses to replace another lineage
or a newer version (``versions.import_needed``), so a migration can be re-run safely and
never clobbers a different fleet's history.

Example::

    moved = migrate_fleet(open_store(Path("state")), open_backend(url), "inference",
                          timeout=30, command="reconciler state migrate")
"""

from __future__ import annotations

from dataclasses import dataclass

from reconciler.errors import StateError, UsageError
from reconciler.models.state import FleetState
from reconciler.state import atomic
from reconciler.state.codec import encode_state
from reconciler.state.file import FileStateStore
from reconciler.state.store import StateStore
from reconciler.state.versions import StateImporter, import_needed


@dataclass(frozen=True)
class MigratedFleet:
    fleet: str
    lineage: str
    serial: int
    copied: bool  # False when the destination already held exactly this version


def migrate_fleet(
    source: StateStore,
    destination: StateStore,
    fleet: str,
    *,
    timeout: float,
    command: str,
    source_name: str,
) -> MigratedFleet:
    """Copy ``fleet``'s state from ``source`` to ``destination`` under both locks."""
    with (
        source.lock(fleet, timeout=timeout, command=command),
        destination.lock(fleet, timeout=timeout, command=command),
    ):
        state = source.read(fleet)
        if state is None:
            raise UsageError(f"Fleet {fleet!r} has no state in {source_name}; nothing to migrate.")
        copied = import_state(destination, state)
    return MigratedFleet(fleet=fleet, lineage=state.lineage, serial=state.serial, copied=copied)


def import_state(store: StateStore, state: FleetState) -> bool:
    """Store ``state`` as is in ``store``; False when it was already there."""
    if isinstance(store, StateImporter):
        return store.import_state(state)
    if isinstance(store, FileStateStore):
        return _import_into_directory(store, state)
    raise UsageError(f"{store!r} cannot receive a migrated state.")


def _import_into_directory(store: FileStateStore, state: FleetState) -> bool:
    """The file backend's import: the same atomic replace its writes use, under its lock."""
    stored = store.read(state.fleet)
    needed = import_needed(
        state,
        stored_lineage=stored.lineage if stored else None,
        stored_serial=stored.serial if stored else None,
        same_content=stored is not None and stored.content_equal(state),
        where=str(store.state_dir),
    )
    if not needed:
        return False
    path = store.state_path(state.fleet)
    try:
        store.state_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        data = encode_state(state).encode("utf-8")
        atomic.replace_with_backup(path, store.backup_path(state.fleet), data)
    except OSError as exc:
        raise StateError(f"Could not write the state file {path}: {exc.strerror or exc}.") from exc
    return True
