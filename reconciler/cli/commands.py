"""Imports every command module so that each registers itself on the ``cli`` group."""

# Each module below does ``@cli.command(...)``; keep this list sorted.
from reconciler.cli import (
    emulator,  # noqa: F401
    state,  # noqa: F401
    validate,  # noqa: F401
)
