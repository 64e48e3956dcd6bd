"""What some backends offer beyond :class:`~reconciler.state.store.StateStore`.

* :class:`VersionHistory`: every version of a fleet's state is kept; list them, read one.
* :class:`PlanAttributedWrites`: a write can carry the digest of the plan that produced it.
* :class:`StateImporter`: store a state *as is* (same lineage and serial), for migrations.

The PostgreSQL backend has all three; callers check with ``isinstance`` (the Protocols are
runtime-checkable) and fall back to plain ``write`` when a backend lacks one.

:func:`import_needed` is the rule every importer applies, so migrations refuse the same
things whatever the destination.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from reconciler.errors import StateError
from reconciler.models.state import FleetState


@dataclass(frozen=True)
class StateVersion:
    """One stored version of a fleet's state (the audit trail entry, without the state)."""

    fleet: str
    lineage: str
    serial: int
    written_at: str
    written_by: str
    lock_id: str | None = None
    plan_digest: str | None = None


@runtime_checkable
class VersionHistory(Protocol):
    def history(self, fleet: str, *, limit: int | None = None) -> list[StateVersion]:
        """The fleet's stored versions, newest first (at most ``limit``)."""
        ...

    def read_version(self, fleet: str, serial: int) -> FleetState | None:
        """Version ``serial`` of the fleet's current lineage (or latest lineage), if kept."""
        ...


@runtime_checkable
class PlanAttributedWrites(Protocol):
    def write_from_plan(self, state: FleetState, *, plan_digest: str) -> FleetState:
        """``write``, recording that applying the plan ``plan_digest`` produced this version."""
        ...


@runtime_checkable
class StateImporter(Protocol):
    def import_state(self, state: FleetState) -> bool:
        """Store ``state`` with its own lineage and serial; False when it was already there.

        Refuses (see :func:`import_needed`) to replace another lineage or a newer version.
        """
        ...


def import_needed(
    incoming: FleetState,
    *,
    stored_lineage: str | None,
    stored_serial: int | None,
    same_content: bool,
    where: str,
) -> bool:
    """Whether importing ``incoming`` over what ``where`` holds changes anything.

    Nothing stored, or an older version of the same lineage: import. The same version:
    nothing to do. Another lineage, a newer version, or different content under the same
    serial: :class:`StateError`, because something would be lost.
    """
    fleet = incoming.fleet
    if stored_lineage is None or stored_serial is None:
        return True
    if stored_lineage != incoming.lineage:
        raise StateError(
            f"Refusing to overwrite the state of fleet {fleet!r} at {where}: it has lineage "
            f"{stored_lineage}, a different history from the migrated state's lineage "
            f"{incoming.lineage}. Remove it there first if it is really unwanted."
        )
    if stored_serial > incoming.serial:
        raise StateError(
            f"Refusing to migrate fleet {fleet!r}: {where} already holds serial "
            f"{stored_serial}, newer than the serial {incoming.serial} being migrated."
        )
    if stored_serial == incoming.serial:
        if same_content:
            return False
        raise StateError(
            f"Refusing to migrate fleet {fleet!r}: {where} holds a different serial "
            f"{stored_serial} of the same lineage; the two copies have diverged."
        )
    return True
