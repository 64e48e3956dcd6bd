"""The ``reconciler`` command line. Commands live one group per module; see ``app.py``."""

from reconciler.cli.app import cli, main

__all__ = ["cli", "main"]
