"""Imports every command module so that each registers itself on the ``cli`` group."""

# Each module below does ``@cli.command(...)``; keep this list sorted.
from reconciler.cli import (  # noqa: F401
    apply,
    backend,
    cost,
    emulator,
    output,
    plan,
    refresh,
    state,
    validate,
    watch,
)
