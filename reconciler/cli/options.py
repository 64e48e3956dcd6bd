"""Reusable click options shared by the commands that touch state.

``--backend URL`` (env ``RECONCILER_BACKEND``) rides along with ``--state-dir``: every
command that takes a state directory also takes a backend URL. Its value is kept on the
click context rather than passed as a parameter, so commands keep their signatures;
:func:`chosen_backend` reads it (``FleetStores.for_fleets`` and the state commands do).

Example::

    @cli.command()
    @state_options
    def apply(state_dir: Path, lock_timeout: float) -> None:
        store = store_for_command(state_dir)  # cli.session: --backend, else --state-dir
        with store.lock(fleet, timeout=lock_timeout, command="reconciler apply"):
            ...
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

DEFAULT_STATE_DIR = "state"
STATE_DIR_ENV = "RECONCILER_STATE_DIR"
BACKEND_ENV = "RECONCILER_BACKEND"
_BACKEND_KEY = "reconciler.backend"
_NEW_STATE_KEY = "reconciler.new_state"

_UNIT_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}
_DURATION = re.compile(r"(?:\d+(?:\.\d+)?(?:ms|s|m|h))+")
_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h)")

F = TypeVar("F", bound=Callable[..., Any])


def parse_duration(text: str) -> float:
    """Seconds in ``text``: ``0``, ``30s``, ``5m``, ``1h``, ``1m30s``, ``500ms``.

    Raises :class:`ValueError` with a message fit for the user.
    """
    cleaned = text.strip().lower()
    if cleaned == "0":
        return 0.0
    if not _DURATION.fullmatch(cleaned):
        raise ValueError(
            f"{text!r} is not a duration: write a number with a unit, like 30s, 5m or 1h "
            "(units: ms, s, m, h; 0 means do not wait)."
        )
    return sum(float(number) * _UNIT_SECONDS[unit] for number, unit in _PART.findall(cleaned))


class Duration(click.ParamType):
    """A click parameter type for :func:`parse_duration`; converts to seconds (float)."""

    name = "duration"

    def convert(
        self, value: Any, param: click.Parameter | None, ctx: click.Context | None
    ) -> float:
        if isinstance(value, int | float) and not isinstance(value, bool):
            if value < 0:
                self.fail("a duration cannot be negative.", param, ctx)
            return float(value)
        try:
            return parse_duration(str(value))
        except ValueError as exc:
            self.fail(str(exc), param, ctx)


DURATION = Duration()


class Seconds(click.ParamType):
    """A finite, non-negative number of seconds: ``60``, ``0.5``, or a duration (``2m``)."""

    name = "seconds"

    def convert(
        self, value: Any, param: click.Parameter | None, ctx: click.Context | None
    ) -> float:
        text = str(value).strip()
        try:
            seconds = float(text)
        except ValueError:
            try:
                return parse_duration(text)
            except ValueError:
                self.fail(f"{value!r} is not a number of seconds (e.g. 60, 0.5 or 2m).", param, ctx)
        if not math.isfinite(seconds) or seconds < 0:
            self.fail(f"{value!r} is not a usable number of seconds: give 0 or more.", param, ctx)
        return seconds


SECONDS = Seconds()


def backend_option(command: F) -> F:
    """Add ``--backend URL`` (env ``RECONCILER_BACKEND``), read back with :func:`chosen_backend`."""
    return click.option(
        "--backend",
        metavar="URL",
        envvar=BACKEND_ENV,
        show_envvar=True,
        expose_value=False,
        callback=_remember_backend,
        help="Where states and locks live: a directory, file://DIR or postgresql://... "
        "(overrides a manifest's backend: and --state-dir). Prefer PGPASSWORD or ~/.pgpass "
        "to a password in the URL.",
    )(command)


def chosen_backend(ctx: click.Context | None = None) -> str | None:
    """The ``--backend``/``RECONCILER_BACKEND`` value of the running command, if any."""
    context = ctx or click.get_current_context(silent=True)
    if context is None:
        return None
    value = context.meta.get(_BACKEND_KEY)
    return value if isinstance(value, str) else None


def _remember_backend(ctx: click.Context, param: click.Parameter, value: str | None) -> None:
    from reconciler.cli.app import register_backend_secrets

    ctx.meta[_BACKEND_KEY] = value.strip() if value and value.strip() else None
    register_backend_secrets(ctx.meta[_BACKEND_KEY])


def new_state_option(command: F) -> F:
    """Add ``--new-state`` (read back with :func:`new_state_chosen`)."""
    return click.option(
        "--new-state",
        is_flag=True,
        expose_value=False,
        callback=_remember_new_state,
        help="Start a new state for a fleet whose state file is gone although its .backup "
        "is there (normally refused; the old backup is kept aside).",
    )(command)


def new_state_chosen(ctx: click.Context | None = None) -> bool:
    context = ctx or click.get_current_context(silent=True)
    return bool(context and context.meta.get(_NEW_STATE_KEY))


def _remember_new_state(ctx: click.Context, param: click.Parameter, value: bool) -> None:
    ctx.meta[_NEW_STATE_KEY] = bool(value)


def state_dir_option(command: F) -> F:
    """Add ``--state-dir DIR`` (kwarg ``state_dir: Path``; env ``RECONCILER_STATE_DIR``),
    ``--backend URL`` (see :func:`backend_option`) and ``--new-state``."""
    command = new_state_option(backend_option(command))
    return click.option(
        "--state-dir",
        type=click.Path(file_okay=False, path_type=Path),
        default=DEFAULT_STATE_DIR,
        show_default=True,
        envvar=STATE_DIR_ENV,
        show_envvar=True,
        help="Directory holding the fleets' state files and locks.",
    )(command)


def lock_timeout_option(command: F) -> F:
    """Add ``--lock-timeout DURATION`` (kwarg ``lock_timeout: float`` seconds; default 0)."""
    return click.option(
        "--lock-timeout",
        type=DURATION,
        default="0",
        show_default=True,
        metavar="DURATION",
        help="How long to wait for the fleet's state lock (30s, 5m, 1h); 0 fails at once.",
    )(command)


def state_options(command: F) -> F:
    """Add both ``--state-dir`` and ``--lock-timeout`` (kwargs ``state_dir``, ``lock_timeout``)."""
    return state_dir_option(lock_timeout_option(command))
