"""Plumbing shared by the commands that talk to Shadeform: API target, stores, locks, prompts.

Which state backend a fleet uses, first match wins::

    --backend URL  >  $RECONCILER_BACKEND  >  the manifest's backend:  >  the manifest's
    state_dir:  >  --state-dir (default ./state)
"""

from __future__ import annotations

import hashlib
import io
import os
import sys
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import click

from reconciler.api import ApiSettings, ShadeformClient
from reconciler.cli.options import chosen_backend, new_state_chosen, state_options
from reconciler.errors import RunCancelled, UsageError
from reconciler.models.plan import Plan
from reconciler.models.spec import Fleet
from reconciler.models.state import FleetState
from reconciler.redaction import scrub
from reconciler.state import (
    Backend,
    FileBackend,
    PostgresBackend,
    StateStore,
    new_state,
    open_backend,
    parse_backend_url,
    redact_urls,
)
from reconciler.views import render_plan_json

F = TypeVar("F", bound=Callable[..., Any])

SANDBOX_CLOUD_FILE = "sandbox-cloud.json"
CANCELLED = "Cancelled: nothing was changed."
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

    state_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
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
    """Each fleet's store, chosen by the precedence in the module docstring.

    Fleets that resolve to the same backend share one store (one database connection).
    """

    default_dir: Path
    stores: dict[str, StateStore]

    @classmethod
    def for_fleets(
        cls, fleets: Sequence[Fleet], state_dir: Path, *, backend: str | None = None
    ) -> FleetStores:
        """``backend`` defaults to the running command's ``--backend``/``RECONCILER_BACKEND``."""
        override = backend if backend is not None else chosen_backend()
        opened: dict[Backend, StateStore] = {}
        stores: dict[str, StateStore] = {}
        for fleet in fleets:
            chosen = fleet_backend(fleet, override=override, state_dir=state_dir)
            if chosen not in opened:
                opened[chosen] = open_backend(chosen, new_state=new_state_chosen())
            stores[fleet.name] = opened[chosen]
        return cls(default_dir=state_dir, stores=stores)


def fleet_backend(fleet: Fleet, *, override: str | None, state_dir: Path) -> Backend:
    """Where ``fleet``'s state lives: ``override`` (the CLI's), else the manifest's choice,
    else ``state_dir``. Relative paths in a manifest are taken from the manifest's folder."""
    manifest_dir = Path(fleet.source).parent
    if override:
        return parse_backend_url(override)
    if fleet.backend is not None:
        chosen = parse_backend_url(fleet.backend.get_secret_value(), base_dir=manifest_dir)
        if isinstance(chosen, PostgresBackend) and running_in_ci():
            # In CI the manifests may come from a pull request: a backend they name could be
            # anyone's server, which libpq would hand PGPASSWORD. Only the job may choose.
            raise UsageError(
                f"Fleet {fleet.name}'s manifest names a database backend ({chosen.display}), "
                "and in CI (CI is set) a backend is only taken from the job, never from a "
                "manifest a pull request could change. Set RECONCILER_BACKEND (or pass "
                "--backend) to the database this job should use."
            )
        return chosen
    if fleet.state_dir:
        return FileBackend((manifest_dir / fleet.state_dir).resolve())
    return FileBackend(state_dir)


def running_in_ci(environ: Mapping[str, str] | None = None) -> bool:
    """``CI`` set to a true value (GitHub Actions, GitLab and most CI systems set CI=true)."""
    value = (os.environ if environ is None else environ).get("CI", "")
    return value.strip().lower() not in ("", "0", "false", "no")


def store_for_command(state_dir: Path, *, backend: str | None = None) -> StateStore:
    """The store of a command that loads no manifests: ``--backend`` (or the environment),
    else ``--state-dir``."""
    chosen = backend if backend is not None else chosen_backend()
    new_state = new_state_chosen()
    if chosen:
        return open_backend(chosen, new_state=new_state)
    return open_backend(FileBackend(state_dir), new_state=new_state)


def backend_location(state_dir: Path, *, backend: str | None = None) -> str:
    """How messages name the store :func:`store_for_command` opens (password redacted)."""
    chosen = backend if backend is not None else chosen_backend()
    return redact_urls(chosen) if chosen else str(state_dir)


def same_backend(url: str, state_dir: Path, *, backend: str | None = None) -> bool:
    """Whether ``url`` names the store :func:`store_for_command` would open."""
    chosen = backend if backend is not None else chosen_backend()
    source = parse_backend_url(chosen) if chosen else FileBackend(state_dir)
    return _identity(source) == _identity(parse_backend_url(url))


def _identity(backend: Backend) -> tuple[str, ...]:
    if isinstance(backend, FileBackend):
        return ("file", str(backend.directory.resolve()))
    return ("postgresql", backend.conninfo, backend.schema)


def plan_digest(plan: Plan) -> str:
    """``sha256:<hex>`` of the plan's JSON form: equal to the saved plan file's digest."""
    buffer = io.StringIO()
    render_plan_json(plan, buffer)
    return "sha256:" + hashlib.sha256(buffer.getvalue().encode("utf-8")).hexdigest()


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


def command_line(argv: Sequence[str] | None = None) -> str:
    """The command as typed, for lock holders and the state history, with URL passwords
    hidden (a ``--backend postgresql://user:pw@...`` must not end up in the database)."""
    words = sys.argv[1:] if argv is None else argv
    return scrub(redact_urls(" ".join(["reconciler", *words])))[:500]


def confirm_or_abort(question: str, *, auto_approve: bool) -> None:
    """Terraform-style: type 'yes'. Refuse to prompt when stdin is not a terminal."""
    if auto_approve:
        return
    if not sys.stdin.isatty():
        raise UsageError(
            "Refusing to ask for confirmation: standard input is not a terminal. "
            "Review the plan and pass --auto-approve (or apply a saved plan file)."
        )
    try:
        answer = click.prompt(
            f"{question}\n  Only 'yes' will be accepted", default="", show_default=False
        )
    except (click.Abort, EOFError, KeyboardInterrupt):  # Ctrl-D (or Ctrl-C without the guard)
        click.echo("", err=True)
        raise RunCancelled(CANCELLED, exit_code=130) from None
    if answer.strip() != "yes":
        raise RunCancelled(CANCELLED, exit_code=1)
