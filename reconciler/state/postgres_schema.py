"""The PostgreSQL backend's tables, as numbered migrations (plain SQL text, no driver here).

Every table lives in one schema (``reconciler`` unless the URL says ``?schema=NAME``);
``{schema}`` in the statements below is replaced by the quoted schema name. The installed
version is the highest row of ``{schema}.schema_migrations``. ``reconciler backend init``
applies the missing migrations in one transaction under a transaction-scoped advisory lock,
so it is idempotent and safe to run from several CI jobs at once.

Tables (version 1)::

    state_history  every version of every fleet's state, never updated in place:
                   (fleet, lineage, serial) -> state JSON, written_at, written_by, lock_id,
                   plan_digest, write_id (finds a write whose commit reply was lost)
    states         the current version of each fleet: (fleet) -> (lineage, serial), a
                   foreign key into state_history; writes compare-and-swap on ``serial``
    leases         one row per locked fleet: lock_id, holder (JSON), acquired_at,
                   renewed_at, expires_at (the holder's heartbeat pushes it forward)

To add version 2: append ``Migration(2, "...", (...))`` to :data:`MIGRATIONS`; never edit a
released migration.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Migration:
    version: int
    summary: str
    statements: tuple[str, ...]


BOOTSTRAP: tuple[str, ...] = (
    "CREATE SCHEMA IF NOT EXISTS {schema}",
    """CREATE TABLE IF NOT EXISTS {schema}.schema_migrations (
        version integer PRIMARY KEY,
        summary text NOT NULL,
        applied_at timestamptz NOT NULL DEFAULT clock_timestamp()
    )""",
)

MIGRATIONS: tuple[Migration, ...] = (
    Migration(
        1,
        "fleet states, their full history, and lock leases",
        (
            """CREATE TABLE {schema}.state_history (
                fleet text NOT NULL,
                lineage text NOT NULL,
                serial bigint NOT NULL CHECK (serial > 0),
                written_at timestamptz NOT NULL DEFAULT clock_timestamp(),
                written_by text NOT NULL,
                lock_id text,
                plan_digest text,
                write_id uuid NOT NULL UNIQUE,
                state jsonb NOT NULL,
                PRIMARY KEY (fleet, lineage, serial)
            )""",
            """CREATE INDEX state_history_fleet_written_at
                ON {schema}.state_history (fleet, written_at)""",
            """CREATE TABLE {schema}.states (
                fleet text PRIMARY KEY,
                lineage text NOT NULL,
                serial bigint NOT NULL,
                updated_at timestamptz NOT NULL DEFAULT clock_timestamp(),
                FOREIGN KEY (fleet, lineage, serial)
                    REFERENCES {schema}.state_history (fleet, lineage, serial)
            )""",
            """CREATE TABLE {schema}.leases (
                fleet text PRIMARY KEY,
                lock_id text NOT NULL UNIQUE,
                holder jsonb NOT NULL,
                acquired_at timestamptz NOT NULL,
                renewed_at timestamptz NOT NULL,
                expires_at timestamptz NOT NULL
            )""",
        ),
    ),
)

SCHEMA_VERSION = MIGRATIONS[-1].version


def pending(installed: int) -> tuple[Migration, ...]:
    """The migrations to apply on top of version ``installed``, in order."""
    return tuple(m for m in MIGRATIONS if m.version > installed)
