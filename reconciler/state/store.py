"""The state-store interface every backend implements, and the rules they share.

A backend keeps one :class:`~reconciler.models.state.FleetState` per fleet and an exclusive
lock per fleet. The rules that make a write safe are the same for every backend and live here
as plain functions, so the file, memory and (later) PostgreSQL backends cannot drift apart:

* :func:`check_fleet_name`: a fleet name is a safe, portable identifier.
* :func:`next_version`: compare-and-swap on the serial, same lineage only, serial moves only
  when content changes.

Example::

    store = open_store(Path("state"))
    with store.lock("inference", timeout=30, command="reconciler apply"):
        state = store.read("inference") or new_state("inference")
        ...  # change state
        state = store.write(state)
"""

from __future__ import annotations

import re
import secrets
import uuid
from collections.abc import Callable
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Protocol, runtime_checkable

from reconciler.errors import StateError, UsageError
from reconciler.models.state import STATE_FORMAT_VERSION, FleetState, LockInfo

_FLEET_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}")


@runtime_checkable
class StateStore(Protocol):
    """Where fleet states live. Implementations: file, memory; PostgreSQL."""

    def read(self, fleet: str) -> FleetState | None:
        """The stored state, or ``None`` when the fleet has none yet.

        Raises :class:`StateError` when the stored state is corrupt, belongs to another fleet
        or was written by a newer format; older formats are upgraded on the way in.
        """
        ...

    def write(self, state: FleetState) -> FleetState:
        """Persist ``state`` if its content changed; return what is now stored.

        ``state.serial`` must equal the stored serial (0 when nothing is stored) and the
        lineage must match, else :class:`StateError`. Unchanged content is not written and
        ``state`` comes back as is; changed content is stored with ``serial + 1``.
        """
        ...

    def write_emergency_copy(self, state: FleetState) -> Path:
        """Best effort: save ``state`` somewhere a human can find it after ``write`` failed.

        Returns where it went; raises :class:`StateError` only when nowhere was writable.
        """
        ...

    def lock(
        self,
        fleet: str,
        *,
        timeout: float = 0.0,
        command: str,
        on_lost: Callable[[str], None] | None = None,
    ) -> AbstractContextManager[LockInfo]:
        """Hold the fleet's exclusive lock for the ``with`` block; wait up to ``timeout`` s.

        Raises :class:`LockError` naming the holder when the lock cannot be had. ``on_lost``
        is called (from another thread, with why) if the lock is lost while held: a lease
        that could not be renewed in time or was taken over. Local locks cannot be lost.
        """
        ...

    def lock_holder(self, fleet: str) -> LockInfo | None:
        """Who holds (or last held without releasing) the fleet's lock, if anyone."""
        ...

    def force_unlock(self, fleet: str, lock_id: str) -> None:
        """Break the lock ``lock_id``; refused unless it is the one recorded for the fleet."""
        ...

    def list_fleets(self) -> list[str]:
        """Names of the fleets that have a stored state, sorted."""
        ...


def new_state(fleet: str) -> FleetState:
    """A fresh, empty state: new lineage, serial 0, new random fingerprint key."""
    check_fleet_name(fleet)
    return FleetState(
        fleet=fleet,
        lineage=str(uuid.uuid4()),
        serial=0,
        fingerprint_key=secrets.token_hex(32),
    )


def is_fleet_name(fleet: str) -> bool:
    """Letters, digits, '.', '_', '-'; starts with a letter or digit; no '..'; <= 100 chars."""
    return bool(_FLEET_NAME.fullmatch(fleet)) and ".." not in fleet


def check_fleet_name(fleet: str) -> None:
    """Refuse names that could not be stored safely (path separators, leading dots...)."""
    if not is_fleet_name(fleet):
        raise UsageError(
            f"{fleet!r} is not a valid fleet name: use letters, digits, '.', '_' and '-', "
            "starting with a letter or digit (at most 100 characters)."
        )


def check_write(
    incoming: FleetState, *, stored_serial: int | None, stored_lineage: str | None
) -> None:
    """The compare-and-swap checks on a write; ``None`` for both when nothing is stored.

    Raises :class:`StateError` for a conflicting serial, a foreign lineage or a format
    version this code does not write.
    """
    check_fleet_name(incoming.fleet)
    if incoming.format_version != STATE_FORMAT_VERSION:
        raise StateError(
            f"Refusing to write state of fleet {incoming.fleet!r} in format version "
            f"{incoming.format_version}; this reconciler writes version {STATE_FORMAT_VERSION}."
        )
    if stored_lineage is not None and stored_lineage != incoming.lineage:
        raise StateError(
            f"Refusing to write state of fleet {incoming.fleet!r}: its lineage "
            f"{incoming.lineage} differs from the stored state's lineage {stored_lineage}. "
            "They are different histories; a state from elsewhere cannot replace this one."
        )
    expected = stored_serial or 0
    if incoming.serial != expected:
        raise StateError(
            f"The state of fleet {incoming.fleet!r} changed since it was read (read at serial "
            f"{incoming.serial}, stored serial is now {expected}). Another run wrote it; "
            "read it again and re-plan."
        )


def next_version(stored: FleetState | None, incoming: FleetState) -> FleetState | None:
    """What a backend must persist for ``incoming``, or ``None`` when nothing changed.

    The returned copy shares nested objects with ``incoming``; backends that keep objects
    (rather than bytes) must copy it deeply.
    """
    check_write(
        incoming,
        stored_serial=stored.serial if stored else None,
        stored_lineage=stored.lineage if stored else None,
    )
    if stored is not None and stored.content_equal(incoming):
        return None
    return incoming.model_copy(update={"serial": incoming.serial + 1})
