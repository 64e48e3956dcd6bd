"""``reconciler backend init``: create or migrate the state backend's storage.

For PostgreSQL this creates the schema and tables, or brings them to the version this
reconciler needs; it is idempotent and safe to run from several jobs at once. The file
backend needs nothing but its directory.
"""

from __future__ import annotations

from pathlib import Path

import click

from reconciler.cli.app import cli
from reconciler.cli.options import chosen_backend, state_dir_option
from reconciler.state import FileBackend, open_postgres, parse_backend_url


@cli.group("backend")
def backend_group() -> None:
    """Set up where fleet states and locks are kept."""


@backend_group.command("init")
@state_dir_option
def init_command(state_dir: Path) -> None:
    """Create or migrate the backend's schema (--backend URL or RECONCILER_BACKEND).

    Needs the right to create a schema in the database the first time; later runs only
    migrate what is missing and otherwise change nothing.
    """
    chosen = chosen_backend()
    backend = parse_backend_url(chosen) if chosen else FileBackend(state_dir)
    if isinstance(backend, FileBackend):
        click.echo(
            f"The file backend needs no set-up: states and locks go to {backend.display} "
            "(created on first use). Pass --backend postgresql://... to set up a database."
        )
        return
    store = open_postgres(backend)  # the optional driver; an install hint when it is missing
    try:
        done = store.migrate_schema()
    finally:
        store.close()
    where = f"schema {done.schema!r} at {backend.display}"
    if done.changed:
        click.echo(f"Initialised {where}: version {done.before} -> {done.after}.")
    else:
        click.echo(f"The {where} is already at version {done.after}; nothing to do.")
