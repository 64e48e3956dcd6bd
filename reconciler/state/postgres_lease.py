"""Lock leases in PostgreSQL: one ``leases`` row per locked fleet, kept alive by a heartbeat.

* **Take**: one ``INSERT ... ON CONFLICT DO UPDATE ... WHERE expires_at <= now`` statement:
  it creates the row, or takes over a lease whose holder stopped renewing it, atomically.
* **Heartbeat**: a daemon thread with its own connection pushes ``expires_at`` to
  now + ttl every ttl/3. A killed holder stops renewing, so its lease runs out within ttl.
* **Check before writing**: :func:`check_for_write` runs inside the write transaction and
  locks the lease row ``FOR SHARE``, so nobody can take the lease over or break it between
  the check and the commit. A lost lease (force-unlocked, or expired and taken over) and an
  expired one both refuse the write with :class:`LockError`.
* **Release** and **force-unlock** delete the row only if it still carries the lock id.

All times are the database server's (``clock_timestamp()``), so clients' clocks may differ.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import psycopg
from pydantic import ValidationError

from reconciler.errors import LockError, StateError
from reconciler.models.state import LockInfo
from reconciler.state.holder import lock_refused
from reconciler.state.postgres_db import Connection, Cursor, Database

POLL_INTERVAL = 0.2

_TAKE = """
    INSERT INTO {schema}.leases AS l (fleet, lock_id, holder, acquired_at, renewed_at, expires_at)
    VALUES (%(fleet)s, %(id)s, %(holder)s::jsonb, clock_timestamp(), clock_timestamp(),
            clock_timestamp() + %(ttl)s * interval '1 second')
    ON CONFLICT (fleet) DO UPDATE
        SET lock_id = EXCLUDED.lock_id, holder = EXCLUDED.holder,
            acquired_at = EXCLUDED.acquired_at, renewed_at = EXCLUDED.renewed_at,
            expires_at = EXCLUDED.expires_at
        WHERE l.expires_at <= clock_timestamp()
    RETURNING l.lock_id"""
_HOLDER = "SELECT holder, expires_at FROM {schema}.leases WHERE fleet = %s"
_RENEW = """
    UPDATE {schema}.leases
    SET renewed_at = clock_timestamp(), expires_at = clock_timestamp() + %s * interval '1 second'
    WHERE fleet = %s AND lock_id = %s
    RETURNING expires_at"""
_FOR_WRITE = """
    SELECT lock_id, expires_at > clock_timestamp(), expires_at
    FROM {schema}.leases WHERE fleet = %s FOR SHARE"""
_RELEASE = "DELETE FROM {schema}.leases WHERE fleet = %s AND lock_id = %s"


def acquire(
    db: Database,
    info: LockInfo,
    *,
    timeout: float,
    clock: Callable[[], float],
    sleep: Callable[[float], None],
) -> None:
    """Take ``info.fleet``'s lease for ``info``, polling up to ``timeout`` seconds.

    Raises :class:`LockError` naming the holder and when its lease runs out.
    """
    ttl = db.backend.lease_ttl
    params = {
        "fleet": info.fleet,
        "id": info.id,
        "holder": json.dumps(info.model_dump(mode="json")),
        "ttl": ttl,
    }

    def take(cur: Cursor) -> bool:
        cur.execute(db.query(_TAKE), params)
        return cur.fetchone() is not None

    started = clock()
    while not db.run(take):
        found = current_holder(db, info.fleet)
        if found is None:
            continue  # released between the two statements: try again at once
        waited = clock() - started
        if waited >= timeout:
            holder, expires_at = found
            refusal = lock_refused(info.fleet, holder, waited=timeout)
            raise LockError(
                f"{refusal.message} Its lease runs out at {timestamp(expires_at)} unless its "
                f"holder keeps renewing it (lease time {ttl:g}s)."
            )
        sleep(min(POLL_INTERVAL, timeout - waited))


def current_holder(db: Database, fleet: str) -> tuple[LockInfo | None, datetime] | None:
    """The lease row's holder (None if unreadable) and expiry, or None when unlocked."""

    def work(cur: Cursor) -> tuple[Any, datetime] | None:
        cur.execute(db.query(_HOLDER), [fleet])
        return cur.fetchone()

    row = db.run(work)
    if row is None:
        return None
    try:
        return LockInfo.model_validate(row[0]), row[1]
    except ValidationError:
        return None, row[1]


def release(db: Database, fleet: str, lock_id: str) -> bool:
    """Delete the lease if it is still ``lock_id``; True when it was."""

    def work(cur: Cursor) -> bool:
        cur.execute(db.query(_RELEASE), [fleet, lock_id])
        return cur.rowcount == 1

    return db.run(work)


def check_for_write(db: Database, cur: Cursor, fleet: str, ours: set[str]) -> str | None:
    """Inside a write transaction: which of ``ours`` is the live lease on ``fleet``.

    None when this process holds no lease on the fleet (writes without a lock are
    compare-and-swap only, as on the file backend). Raises :class:`LockError` when the lease
    was lost or has expired; the row stays locked until the write commits.
    """
    if not ours:
        return None
    cur.execute(db.query(_FOR_WRITE), [fleet])
    row = cur.fetchone()
    if row is None or row[0] not in ours:
        raise LockError(
            f"The lease {sorted(ours)[0]} on fleet {fleet!r} was lost while this run held it "
            "(it was force-unlocked, or it expired and another run took it over), so this run "
            "no longer owns the state; nothing more was written."
        )
    lock_id, alive, expires_at = row
    if not alive:
        raise LockError(
            f"The lease {lock_id} on fleet {fleet!r} expired at {timestamp(expires_at)} (its "
            "heartbeat could not renew it in time), so another run may take it at any moment; "
            "nothing more was written."
        )
    return str(lock_id)


class Heartbeat:
    """Renews one lease every ttl/3 from a daemon thread that has its own connection.

    A renewal that fails (network, database restart) is retried at the next beat; one that
    finds the lease gone (force-unlocked, or expired and taken over) stops the heartbeat.
    Writes check the lease themselves, so nothing depends on the heartbeat noticing.
    """

    def __init__(
        self, db: Database, info: LockInfo, *, on_lost: Callable[[str], None] | None = None
    ) -> None:
        self._db = db
        self._info = info
        self._interval = db.backend.lease_ttl / 3
        self._on_lost = on_lost
        """Told once if the lease is lost: taken over, or not renewed for 2/3 of its ttl (it
        may expire before the next try), so whoever acts under it can stop in time."""
        self._stop = threading.Event()
        self._thread = threading.Thread(
            target=self._beat, name=f"lease-heartbeat-{info.fleet}", daemon=True
        )

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=max(1.0, self._interval))

    def _beat(self) -> None:
        conn: Connection | None = None
        query = self._db.query(_RENEW)
        params = [self._db.backend.lease_ttl, self._info.fleet, self._info.id]
        renewed = time.monotonic()
        ttl = self._db.backend.lease_ttl
        try:
            while not self._stop.wait(self._interval):
                try:
                    if conn is None or conn.closed:
                        conn = self._db.connect()
                    if conn.execute(query, params).fetchone() is None:
                        self._lost("the lease was taken over or force-unlocked")
                        return  # the lease is no longer ours: nothing left to renew
                    renewed = time.monotonic()
                except (psycopg.Error, StateError):
                    if conn is not None:
                        conn.close()
                    conn = None
                    unrenewed = time.monotonic() - renewed
                    if unrenewed >= ttl * 2 / 3:
                        self._lost(f"the lease could not be renewed for {unrenewed:.0f}s")
                        return
        finally:
            if conn is not None:
                conn.close()

    def _lost(self, why: str) -> None:
        if self._on_lost is not None and not self._stop.is_set():
            self._on_lost(why)


def timestamp(moment: datetime) -> str:
    """RFC 3339 in UTC with milliseconds."""
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
