"""The PostgreSQL backend's connection: one short transaction per call, errors translated.

Together with ``postgres.py`` and ``postgres_lease.py`` this is psycopg's only home. Every
driver error leaves as a :class:`StateError` whose text has the URL's password scrubbed.

Pooler-safe by construction: autocommit connections, prepared statements off, every call
its own ``BEGIN ... COMMIT``, nothing kept in the session, so a transaction-mode PgBouncer
may hand each transaction to a different server connection.

Example::

    db = Database(parse_backend_url("postgresql://ci@db/fleets"))
    db.migrate()
    count = db.run(lambda cur: cur.execute(db.query("SELECT count(*) FROM {schema}.states")))
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

import psycopg
from psycopg import sql
from psycopg.rows import TupleRow

from reconciler.errors import StateError
from reconciler.state.backend_url import PostgresBackend
from reconciler.state.postgres_schema import BOOTSTRAP, SCHEMA_VERSION, pending

Connection = psycopg.Connection[TupleRow]
Cursor = psycopg.Cursor[TupleRow]
T = TypeVar("T")

LOCK_WAIT = "15s"  # longest a write waits for a row lock another transaction holds
# Run first in a transaction that locks rows, so a stuck transaction cannot hang it for ever.
SET_LOCK_WAIT = f"SET LOCAL lock_timeout = '{LOCK_WAIT}'"


class ConnectionLost(StateError):
    """The connection broke mid-transaction: whether a commit landed is unknown."""


@dataclass(frozen=True)
class SchemaMigration:
    """What ``migrate`` did: the version found and the version left."""

    schema: str
    before: int
    after: int

    @property
    def changed(self) -> bool:
        return self.after != self.before


class Database:
    """A lazily opened, thread-safe, self-healing connection to the backend's database."""

    def __init__(self, backend: PostgresBackend, *, connect_timeout: int = 10) -> None:
        self.backend = backend
        self._connect_timeout = connect_timeout
        self._queries: dict[str, sql.Composed] = {}
        self._mutex = threading.RLock()
        self._conn: Connection | None = None
        self._schema_ready = False

    def query(self, text: str) -> sql.Composed:
        """``text`` with ``{schema}`` replaced by the quoted schema name (cached)."""
        composed = self._queries.get(text)
        if composed is None:
            template = sql.SQL(text)  # our own constant SQL text, never user input
            composed = template.format(schema=sql.Identifier(self.backend.schema))
            self._queries[text] = composed
        return composed

    def connect(self) -> Connection:
        """A new autocommit connection (no prepared statements: pooler-safe)."""
        try:
            return psycopg.connect(
                self.backend.conninfo,
                autocommit=True,
                prepare_threshold=None,
                connect_timeout=self._connect_timeout,
                application_name="reconciler",
            )
        except psycopg.Error as exc:
            raise StateError(
                f"Cannot connect to the PostgreSQL state backend {self.backend.display}: "
                f"{self.detail(exc)}"
            ) from exc

    def close(self) -> None:
        with self._mutex:
            if self._conn is not None:
                self._conn.close()
                self._conn = None

    def run(self, work: Callable[[Cursor], T], *, ready: bool = True, retry: bool = True) -> T:
        """``work`` in one transaction; a broken connection is reopened and, when ``retry``
        (the work is idempotent), the work is run once more. Otherwise :class:`ConnectionLost`.

        ``ready`` first checks (once) that ``backend init`` created the current tables.
        """
        for attempt in (1, 2):
            with self._mutex:
                if self._conn is None or self._conn.closed:
                    self._conn = self.connect()
                conn = self._conn
                try:
                    if ready and not self._schema_ready:
                        self._check_schema(conn)
                    with conn.transaction(), conn.cursor() as cur:
                        return work(cur)
                except psycopg.Error as exc:
                    if not conn.broken:
                        raise self.failure(exc) from exc
                    self._conn = None
                    conn.close()
                    if attempt == 2 or not retry:
                        raise ConnectionLost(self.failure(exc).message) from exc
        raise AssertionError("unreachable")

    # -- schema ------------------------------------------------------------------------

    def migrate(self) -> SchemaMigration:
        """Create or upgrade the tables; idempotent, and concurrent runs wait for each other."""

        def work(cur: Cursor) -> SchemaMigration:
            key = f"reconciler-schema:{self.backend.schema}"
            cur.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", [key])
            for statement in BOOTSTRAP:
                cur.execute(self.query(statement))
            before = self._installed(cur)
            for migration in pending(before):
                for statement in migration.statements:
                    cur.execute(self.query(statement))
                cur.execute(
                    self.query(
                        "INSERT INTO {schema}.schema_migrations (version, summary) VALUES (%s, %s)"
                    ),
                    [migration.version, migration.summary],
                )
            return SchemaMigration(self.backend.schema, before, max(before, SCHEMA_VERSION))

        result = self.run(work, ready=False)
        self._schema_ready = True
        return result

    def installed_version(self) -> int:
        """The installed schema version; 0 when ``backend init`` never ran here."""
        return self.run(self._installed, ready=False)

    def _check_schema(self, conn: Connection) -> None:
        with conn.transaction(), conn.cursor() as cur:
            installed = self._installed(cur)
        if installed != SCHEMA_VERSION:
            raise StateError(self._schema_problem(installed))
        self._schema_ready = True

    def _installed(self, cur: Cursor) -> int:
        cur.execute(
            "SELECT to_regclass(%s) IS NOT NULL", [f'"{self.backend.schema}".schema_migrations']
        )
        exists = cur.fetchone()
        if not (exists and exists[0]):
            return 0
        cur.execute(self.query("SELECT coalesce(max(version), 0) FROM {schema}.schema_migrations"))
        row = cur.fetchone()
        installed = int(row[0]) if row else 0
        if installed > SCHEMA_VERSION:
            raise StateError(self._schema_problem(installed))
        return installed

    def _schema_problem(self, installed: int) -> str:
        where = f"schema {self.backend.schema!r} of {self.backend.display}"
        if installed == 0:
            return (
                f"The PostgreSQL state backend is not set up: {where} has no reconciler "
                "tables. Run `reconciler backend init --backend URL` once (it needs the right "
                "to create a schema in that database)."
            )
        if installed < SCHEMA_VERSION:
            return (
                f"The reconciler tables in {where} are at version {installed}; this reconciler "
                f"needs version {SCHEMA_VERSION}. Run `reconciler backend init` to migrate them."
            )
        return (
            f"The reconciler tables in {where} are at version {installed}, newer than the "
            f"{SCHEMA_VERSION} this reconciler knows. Upgrade the reconciler."
        )

    # -- errors ------------------------------------------------------------------------

    def failure(self, exc: psycopg.Error) -> StateError:
        """The :class:`StateError` a driver error becomes (password scrubbed)."""
        if isinstance(exc, psycopg.errors.LockNotAvailable):
            return StateError(
                f"The PostgreSQL state backend {self.backend.display} kept a fleet's row locked "
                f"for over {LOCK_WAIT} (another write is stuck); try again."
            )
        return StateError(
            f"The PostgreSQL state backend {self.backend.display} failed: {self.detail(exc)}"
        )

    def detail(self, exc: psycopg.Error) -> str:
        return self.backend.scrub(" ".join(str(exc).split())) or type(exc).__name__
