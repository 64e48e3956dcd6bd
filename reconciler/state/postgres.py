"""The PostgreSQL backend: fleet states, every version of them, and lock leases.

The backend is three modules, psycopg's only home: this store, ``postgres_db`` (the
connection, transactions, schema checks, error translation) and ``postgres_lease`` (leases
and their heartbeat). Tables: ``postgres_schema``.

How a write stays safe
----------------------
One short transaction (pooler-safe, see ``postgres_db``):

1. if this store holds a lease on the fleet, check it is still ours and unexpired, locking
   the lease row ``FOR SHARE`` so it cannot be taken over or broken before we commit;
2. lock the fleet's ``states`` row ``FOR UPDATE`` and apply the shared rules
   (``store.check_write``: serial, lineage, format; unchanged content is not written);
3. append the new version to ``state_history`` (who wrote it, under which lock, from which
   plan) and move the pointer with ``UPDATE states ... WHERE serial = <old>``: if another
   writer got there first, nothing is written and the caller gets a :class:`StateError`.

A write whose commit reply is lost (the connection dropped) is looked up by its
``write_id`` before it is retried, so it is neither applied twice nor reported lost.

The store remembers the last version it read or wrote, so an apply that saves after every
action neither re-reads nor re-validates the whole state each time.

Example::

    store = PostgresStateStore(parse_backend_url("postgresql://ci@db/fleets"))
    store.migrate_schema()                    # what `reconciler backend init` does
    with store.lock("inference", timeout=30, command="reconciler apply"):
        state = store.write(store.read("inference") or new_state("inference"))
"""

from __future__ import annotations

import contextlib
import os
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pydantic_core

from reconciler.errors import StateError
from reconciler.models.state import FleetState, LockInfo
from reconciler.state import atomic, postgres_lease
from reconciler.state.backend_url import PostgresBackend
from reconciler.state.codec import decode_state, encode_state
from reconciler.state.holder import make_lock_info, matching_holder
from reconciler.state.postgres_db import (
    SET_LOCK_WAIT,
    ConnectionLost,
    Cursor,
    Database,
    SchemaMigration,
)
from reconciler.state.store import StateStore, check_fleet_name, check_write
from reconciler.state.versions import StateVersion, import_needed

_READ = """
    SELECT s.lineage, s.serial,
           CASE WHEN s.lineage = %(lineage)s AND s.serial = %(serial)s
                THEN NULL ELSE h.state::text END
    FROM {schema}.states s JOIN {schema}.state_history h USING (fleet, lineage, serial)
    WHERE s.fleet = %(fleet)s"""
_CURRENT_FOR_UPDATE = "SELECT lineage, serial FROM {schema}.states WHERE fleet = %s FOR UPDATE"
_VERSION_TEXT = """
    SELECT state::text FROM {schema}.state_history
    WHERE fleet = %s AND lineage = %s AND serial = %s"""
_APPEND = """
    INSERT INTO {schema}.state_history
        (fleet, lineage, serial, written_by, lock_id, plan_digest, write_id, state)
    VALUES (%s, %s, %s, %s, %s, %s, %s, %s::jsonb)"""
_ADVANCE = """
    UPDATE {schema}.states SET serial = %s, updated_at = clock_timestamp()
    WHERE fleet = %s AND lineage = %s AND serial = %s"""
_CREATE = """
    INSERT INTO {schema}.states (fleet, lineage, serial) VALUES (%s, %s, %s)
    ON CONFLICT (fleet) DO NOTHING"""
_LANDED = "SELECT 1 FROM {schema}.state_history WHERE write_id = %s"
_FLEETS = "SELECT fleet FROM {schema}.states ORDER BY fleet"
_HISTORY = """
    SELECT fleet, lineage, serial, written_at, written_by, lock_id, plan_digest
    FROM {schema}.state_history WHERE fleet = %s
    ORDER BY written_at DESC, serial DESC LIMIT %s"""
_VERSION = """
    SELECT h.state::text FROM {schema}.state_history h
    LEFT JOIN {schema}.states s ON s.fleet = h.fleet
    WHERE h.fleet = %s AND h.serial = %s
    ORDER BY (h.lineage = s.lineage) DESC NULLS LAST, h.written_at DESC
    LIMIT 1"""


@dataclass(frozen=True)
class _Snapshot:
    """A stored version as this store last saw it, as a current-format document."""

    lineage: str
    serial: int
    document: dict[str, Any]


class PostgresStateStore:
    """Fleet states in PostgreSQL with their full history; locks as renewed leases."""

    def __init__(
        self,
        backend: PostgresBackend,
        *,
        environ: Mapping[str, str] | None = None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
        emergency_dir: Path | None = None,
        connect_timeout: int = 10,
    ) -> None:
        self.backend = backend
        self.db = Database(backend, connect_timeout=connect_timeout)
        self._environ = os.environ if environ is None else environ
        self._clock = clock
        self._sleep = sleep
        self._now = now
        self._emergency_dir = emergency_dir
        self._held: dict[str, LockInfo] = {}  # by lock id
        self._snapshots: dict[str, _Snapshot] = {}  # by fleet

    def __repr__(self) -> str:
        return f"PostgresStateStore({self.backend.display!r})"

    def close(self) -> None:
        self.db.close()

    def migrate_schema(self) -> SchemaMigration:
        """Create or upgrade this backend's tables (what ``reconciler backend init`` does)."""
        return self.db.migrate()

    # -- states ------------------------------------------------------------------------

    def read(self, fleet: str) -> FleetState | None:
        check_fleet_name(fleet)
        cached = self._snapshots.get(fleet)
        params = {
            "fleet": fleet,
            "lineage": cached.lineage if cached else None,
            "serial": cached.serial if cached else None,
        }

        def work(cur: Cursor) -> tuple[str, int, str | None] | None:
            cur.execute(self.db.query(_READ), params)
            return cur.fetchone()

        row = self.db.run(work)
        if row is None:
            self._snapshots.pop(fleet, None)
            return None
        lineage, serial, text = row
        if text is None and cached is not None:  # unchanged since we last saw it
            return FleetState.model_validate_json(pydantic_core.to_json(cached.document))
        state = decode_state(text or "", fleet=fleet, where=self._where(fleet, serial))
        self._snapshots[fleet] = _Snapshot(lineage, serial, state.model_dump(mode="json"))
        return state

    def write(self, state: FleetState) -> FleetState:
        return self._write(state, plan_digest=None)

    def write_from_plan(self, state: FleetState, *, plan_digest: str) -> FleetState:
        return self._write(state, plan_digest=plan_digest)

    def import_state(self, state: FleetState) -> bool:
        if state.serial < 1:
            raise StateError(f"Cannot import fleet {state.fleet!r}'s state: it was never saved.")
        document = state.model_dump(mode="json")

        def work(cur: Cursor, write_id: uuid.UUID) -> int | None:
            lock_id = self._check_lease(cur, state.fleet)
            stored = self._current_for_update(cur, state.fleet)
            needed = import_needed(
                state,
                stored_lineage=stored.lineage if stored else None,
                stored_serial=stored.serial if stored else None,
                same_content=stored is not None and _same_content(document, stored.document),
                where=self.backend.display,
            )
            if not needed:
                return None
            who = "migrated here by " + self._writer(state.fleet, lock_id)
            self._append(cur, state, document, write_id=write_id, lock_id=lock_id, who=who)
            self._move_pointer(cur, state.fleet, state.lineage, stored, state.serial)
            return state.serial

        imported = self._commit(work, landed_serial=state.serial)
        self._snapshots[state.fleet] = _Snapshot(state.lineage, state.serial, document)
        return imported is not None

    def write_emergency_copy(self, state: FleetState) -> Path:
        stamp = self._now().astimezone(UTC).strftime("%Y%m%dT%H%M%S%fZ")
        data = encode_state(state).encode("utf-8")
        errors: list[str] = []
        for directory in (self._emergency_dir or Path.cwd(), Path(tempfile.gettempdir())):
            try:
                stem = f"{state.fleet}.emergency-{stamp}"
                return atomic.write_unique_file(directory, stem, ".json", data)
            except OSError as exc:
                errors.append(f"{directory}: {exc.strerror or exc}")
        raise StateError(
            f"Could not save an emergency copy of fleet {state.fleet!r}'s state anywhere "
            f"({'; '.join(errors)})."
        )

    def list_fleets(self) -> list[str]:
        def work(cur: Cursor) -> list[str]:
            cur.execute(self.db.query(_FLEETS))
            return [row[0] for row in cur.fetchall()]

        return self.db.run(work)

    # -- history -----------------------------------------------------------------------

    def history(self, fleet: str, *, limit: int | None = None) -> list[StateVersion]:
        check_fleet_name(fleet)

        def work(cur: Cursor) -> list[StateVersion]:
            cur.execute(self.db.query(_HISTORY), [fleet, limit])
            return [
                StateVersion(
                    fleet=row[0],
                    lineage=row[1],
                    serial=row[2],
                    written_at=postgres_lease.timestamp(row[3]),
                    written_by=row[4],
                    lock_id=row[5],
                    plan_digest=row[6],
                )
                for row in cur.fetchall()
            ]

        return self.db.run(work)

    def read_version(self, fleet: str, serial: int) -> FleetState | None:
        check_fleet_name(fleet)

        def work(cur: Cursor) -> str | None:
            cur.execute(self.db.query(_VERSION), [fleet, serial])
            row = cur.fetchone()
            return row[0] if row else None

        text = self.db.run(work)
        if text is None:
            return None
        return decode_state(text, fleet=fleet, where=self._where(fleet, serial))

    # -- locks -------------------------------------------------------------------------

    @contextlib.contextmanager
    def lock(
        self,
        fleet: str,
        *,
        timeout: float = 0.0,
        command: str,
        on_lost: Callable[[str], None] | None = None,
    ) -> Iterator[LockInfo]:
        check_fleet_name(fleet)
        info = make_lock_info(fleet, command=command, environ=self._environ, now=self._now())
        postgres_lease.acquire(
            self.db, info, timeout=max(timeout, 0.0), clock=self._clock, sleep=self._sleep
        )
        heartbeat = postgres_lease.Heartbeat(self.db, info, on_lost=on_lost)
        heartbeat.start()
        self._held[info.id] = info
        try:
            yield info
        finally:
            del self._held[info.id]
            heartbeat.stop()
            with contextlib.suppress(StateError):  # if the database is gone, it expires
                postgres_lease.release(self.db, fleet, info.id)

    def lock_holder(self, fleet: str) -> LockInfo | None:
        check_fleet_name(fleet)
        found = postgres_lease.current_holder(self.db, fleet)
        return found[0] if found else None

    def force_unlock(self, fleet: str, lock_id: str) -> None:
        check_fleet_name(fleet)
        matching_holder(fleet, lock_id, self.lock_holder(fleet))
        if not postgres_lease.release(self.db, fleet, lock_id):
            matching_holder(fleet, lock_id, self.lock_holder(fleet))  # changed meanwhile

    # -- internals ---------------------------------------------------------------------

    def _write(self, state: FleetState, *, plan_digest: str | None) -> FleetState:
        fleet = state.fleet
        check_fleet_name(fleet)
        document = state.model_dump(mode="json")
        document["serial"] = serial = state.serial + 1

        def work(cur: Cursor, write_id: uuid.UUID) -> int | None:
            lock_id = self._check_lease(cur, fleet)
            stored = self._current_for_update(cur, fleet)
            check_write(
                state,
                stored_serial=stored.serial if stored else None,
                stored_lineage=stored.lineage if stored else None,
            )
            if stored is not None and _same_content(document, stored.document):
                return None
            who = self._writer(fleet, lock_id)
            self._append(
                cur,
                state,
                document,
                write_id=write_id,
                lock_id=lock_id,
                who=who,
                plan_digest=plan_digest,
            )
            self._move_pointer(cur, fleet, state.lineage, stored, serial)
            return serial

        if self._commit(work, landed_serial=serial) is None:
            return state
        self._snapshots[fleet] = _Snapshot(state.lineage, serial, document)
        return state.model_copy(update={"serial": serial})

    def _commit(
        self, work: Callable[[Cursor, uuid.UUID], int | None], *, landed_serial: int
    ) -> int | None:
        """Run a writing transaction; after a lost connection, find out whether it landed
        (by its write id) and otherwise try once more. Returns what ``work`` returned."""
        write_id = uuid.uuid4()
        for attempt in (1, 2):
            try:
                return self.db.run(lambda cur: work(cur, write_id), retry=False)
            except ConnectionLost:
                if self._landed(write_id):
                    return landed_serial
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")

    def _check_lease(self, cur: Cursor, fleet: str) -> str | None:
        ours = {info.id for info in list(self._held.values()) if info.fleet == fleet}
        return postgres_lease.check_for_write(self.db, cur, fleet, ours)

    def _current_for_update(self, cur: Cursor, fleet: str) -> _Snapshot | None:
        """The stored version, its row locked until commit (the document from cache if we can)."""
        cur.execute(SET_LOCK_WAIT)
        cur.execute(self.db.query(_CURRENT_FOR_UPDATE), [fleet])
        row = cur.fetchone()
        if row is None:
            return None
        lineage, serial = row
        cached = self._snapshots.get(fleet)
        if cached is not None and (cached.lineage, cached.serial) == (lineage, serial):
            return cached
        cur.execute(self.db.query(_VERSION_TEXT), [fleet, lineage, serial])
        found = cur.fetchone()
        state = decode_state(
            found[0] if found else "", fleet=fleet, where=self._where(fleet, serial)
        )
        return _Snapshot(lineage, serial, state.model_dump(mode="json"))

    def _append(
        self,
        cur: Cursor,
        state: FleetState,
        document: dict[str, Any],
        *,
        write_id: uuid.UUID,
        lock_id: str | None,
        who: str,
        plan_digest: str | None = None,
    ) -> None:
        """Add ``document`` (its serial already set) to the fleet's history."""
        text = pydantic_core.to_json(document).decode("utf-8")  # jsonb orders keys itself
        cur.execute(
            self.db.query(_APPEND),
            [
                state.fleet,
                state.lineage,
                document["serial"],
                who,
                lock_id,
                plan_digest,
                write_id,
                text,
            ],
        )

    def _move_pointer(
        self, cur: Cursor, fleet: str, lineage: str, stored: _Snapshot | None, serial: int
    ) -> None:
        """Compare-and-swap the current version; raise (rolling back) if someone was first."""
        if stored is None:
            cur.execute(self.db.query(_CREATE), [fleet, lineage, serial])
        else:
            cur.execute(self.db.query(_ADVANCE), [serial, fleet, stored.lineage, stored.serial])
        if cur.rowcount != 1:
            raise StateError(
                f"The state of fleet {fleet!r} changed while it was being written (another "
                "run wrote it first); nothing was written. Read it again and re-plan."
            )

    def _landed(self, write_id: uuid.UUID) -> bool:
        def work(cur: Cursor) -> bool:
            cur.execute(self.db.query(_LANDED), [write_id])
            return cur.fetchone() is not None

        return self.db.run(work)

    def _writer(self, fleet: str, lock_id: str | None) -> str:
        """Who is writing, for the history: the lease holder, or this process."""
        info = self._held.get(lock_id) if lock_id else None
        if info is None:
            info = make_lock_info(
                fleet, command="(without a lock)", environ=self._environ, now=self._now()
            )
        who = f"{info.user}@{info.host} (pid {info.pid}) {info.command}"
        return who + (f" [{info.ci_run_url}]" if info.ci_run_url else "")

    def _where(self, fleet: str, serial: int) -> str:
        return f"{self.backend.display} (fleet {fleet}, serial {serial})"


def _same_content(document: dict[str, Any], stored: dict[str, Any]) -> bool:
    return {**document, "serial": 0} == {**stored, "serial": 0}


if TYPE_CHECKING:  # mypy proves the backend satisfies the Protocol
    _conforms: StateStore = PostgresStateStore(PostgresBackend(conninfo="", display=""))
