"""Plumbing shared by the commands that talk to Shadeform: API target, stores, locks, prompts."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import click

from reconciler.api import ApiSettings, ShadeformClient
from reconciler.cli.options import state_options
from reconciler.errors import UsageError
from reconciler.models.spec import Fleet
from reconciler.models.state import FleetState
from reconciler.state import StateStore, new_state, open_store

F = TypeVar("F", bound=Callable[..., Any])

SANDBOX_CLOUD_FILE = "sandbox-cloud.json"
SANDBOX_BOOT_SECONDS_ENV = "RECONCILER_SANDBOX_BOOT_SECONDS"


def connection_options(command: F) -> F:
    """``--sandbox``, ``--parallelism`` and the state options."""
    command = click.option(
        "--parallelism",
        type=click.IntRange(1, 512),
        default=10,
        show_default=True,
        help="How many API actions run at once (look-ups use a wider bound).",
    )(command)
    command = click.option(
        "--sandbox",
        is_flag=True,
        help="Run against the built-in Shadeform emulator (cloud kept in the state dir); "
        "no API key needed.",
    )(command)
    return state_options(command)


@dataclass(frozen=True)
class ApiTarget:
    api_key: str
    base_url: str
    sandbox: bool

    def client(self, *, parallelism: int) -> ShadeformClient:
        # Look-ups are cheap reads: let them fan out wider than the mutating actions.
        return ShadeformClient(self.api_key, self.base_url, parallelism=max(64, parallelism))


@contextmanager
def api_target(*, sandbox: bool, state_dir: Path) -> Iterator[ApiTarget]:
    """The real API from the environment, or the emulator served on loopback for ``--sandbox``.

    Sandbox mode is just a different base URL: the emulator runs as a real HTTP server in a
    thread, its cloud persisted in ``<state_dir>/sandbox-cloud.json``.
    """
    if not sandbox:
        if not os.environ.get("SHADEFORM_API_KEY"):
            raise UsageError(
                "No Shadeform account chosen. Set SHADEFORM_API_KEY to work against your "
                "Shadeform account, or pass --sandbox to try everything against the built-in "
                "emulator (no key needed; its cloud is kept in the state directory)."
            )
        settings = ApiSettings.from_env(environ=os.environ)
        yield ApiTarget(settings.api_key.get_secret_value(), settings.base_url, sandbox=False)
        return
    from reconciler.emulator import SANDBOX_API_KEY, SANDBOX_VOLUMES, Emulator, EmulatorConfig

    state_dir.mkdir(parents=True, exist_ok=True)
    boot = float(os.environ.get(SANDBOX_BOOT_SECONDS_ENV, "2"))
    emulator = Emulator(
        EmulatorConfig(
            api_key=SANDBOX_API_KEY,
            boot_seconds=boot,
            data_file=state_dir / SANDBOX_CLOUD_FILE,
            volumes=SANDBOX_VOLUMES,
        )
    )
    with emulator.serve_in_thread(host="127.0.0.1", port=0) as base_url:
        yield ApiTarget(SANDBOX_API_KEY, base_url, sandbox=True)


@dataclass
class FleetStores:
    """Each fleet's store: the manifest's ``state_dir`` if it sets one, else ``--state-dir``."""

    default_dir: Path
    stores: dict[str, StateStore]

    @classmethod
    def for_fleets(cls, fleets: Sequence[Fleet], state_dir: Path) -> FleetStores:
        by_dir: dict[Path, StateStore] = {}
        stores: dict[str, StateStore] = {}
        for fleet in fleets:
            directory = state_dir
            if fleet.state_dir:
                directory = (Path(fleet.source).parent / fleet.state_dir).resolve()
            if directory not in by_dir:
                by_dir[directory] = open_store(directory)
            stores[fleet.name] = by_dir[directory]
        return cls(default_dir=state_dir, stores=stores)


@contextmanager
def locked_states(
    stores: FleetStores, fleet_names: Sequence[str], *, timeout: float, command: str
) -> Iterator[dict[str, FleetState]]:
    """Hold every fleet's lock (in name order, so two runs never deadlock) and read states.

    Fleets without a stored state get a fresh, unsaved one (serial 0).
    """
    with ExitStack() as stack:
        states: dict[str, FleetState] = {}
        for name in sorted(set(fleet_names)):
            store = stores.stores[name]
            stack.enter_context(store.lock(name, timeout=timeout, command=command))
            states[name] = store.read(name) or new_state(name)
        yield states


def command_line() -> str:
    """The command as typed, for lock holder information (never contains secrets we know)."""
    return " ".join(["reconciler", *sys.argv[1:]])[:500]


def confirm_or_abort(question: str, *, auto_approve: bool) -> None:
    """Terraform-style: type 'yes'. Refuse to prompt when stdin is not a terminal."""
    if auto_approve:
        return
    if not sys.stdin.isatty():
        raise UsageError(
            "Refusing to ask for confirmation: standard input is not a terminal. "
            "Review the plan and pass --auto-approve (or apply a saved plan file)."
        )
    answer = click.prompt(f"{question}\n  Only 'yes' will be accepted", default="", show_default=False)
    if answer.strip() != "yes":
        raise UsageError("Cancelled: nothing was changed.")
