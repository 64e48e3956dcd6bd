"""State storage: where each fleet's :class:`FleetState` lives, and its lock.

Public surface::

    StateStore            the Protocol every backend implements (read, write, lock, ...)
    FileStateStore        local files: <state_dir>/<fleet>.json, atomic writes, flock locks
    MemoryStateStore      in-memory backend with the same semantics, for tests
    PostgresStateStore    PostgreSQL: states with full history, leases (reconciler.state.postgres;
                          needs the ``postgres`` extra, imported only when used)
    open_backend(url)     the store a backend URL names (a directory, file://DIR, postgresql://)
    open_store(dir)       the store for a ``--state-dir``
    new_state(fleet)      a fresh state (new lineage, serial 0, new fingerprint key)

Optional capabilities (history, plan-attributed writes, importing as is) are Protocols in
``reconciler.state.versions``. Errors are :class:`reconciler.errors.StateError` and its
subclass ``LockError``; a URL this reconciler cannot use is a ``UsageError``.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from reconciler.errors import UsageError
from reconciler.state.backend_url import (
    Backend,
    FileBackend,
    PostgresBackend,
    parse_backend_url,
    redact_urls,
)
from reconciler.state.file import FileStateStore
from reconciler.state.memory import MemoryStateStore
from reconciler.state.store import StateStore, check_fleet_name, new_state

if TYPE_CHECKING:
    from reconciler.state.postgres import PostgresStateStore


def open_store(state_dir: Path) -> StateStore:
    """The state store for ``state_dir`` (the local file backend)."""
    return FileStateStore(state_dir)


def open_backend(
    url: str | Backend, *, base_dir: Path | None = None, new_state: bool = False
) -> StateStore:
    """The store ``url`` names: a directory or ``file://DIR`` (files), or ``postgresql://...``.

    Relative directories are taken from ``base_dir`` when given (a manifest's folder).
    ``new_state`` lets the file backend start a new state where only a backup is left.
    Raises :class:`UsageError` for anything else, with the URL's password redacted.
    Opening connects to nothing; the first operation does.
    """
    backend = parse_backend_url(url, base_dir=base_dir) if isinstance(url, str) else url
    if isinstance(backend, FileBackend):
        return FileStateStore(backend.directory, new_state_despite_backup=new_state)
    return open_postgres(backend)


def open_postgres(backend: PostgresBackend) -> PostgresStateStore:
    """The PostgreSQL store for ``backend``; :class:`UsageError` with the install command
    when the optional driver (psycopg) is missing."""
    try:
        from reconciler.state.postgres import PostgresStateStore
    except ImportError as exc:  # the optional driver is missing
        raise UsageError(
            f"The state backend {backend.display} needs PostgreSQL support, which is not "
            "installed: pip install 'shadeform-reconciler[postgres]'."
        ) from exc
    return PostgresStateStore(backend)


__all__ = [
    "Backend",
    "FileBackend",
    "FileStateStore",
    "MemoryStateStore",
    "StateStore",
    "check_fleet_name",
    "new_state",
    "open_backend",
    "open_postgres",
    "PostgresBackend",
    "open_store",
    "parse_backend_url",
    "redact_urls",
]
