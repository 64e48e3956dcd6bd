"""``reconciler watch``: keep the fleets whole between CI runs (see docs/watch.md)."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Sequence
from pathlib import Path

import click

from reconciler.cli.app import cli
from reconciler.cli.options import DURATION, chosen_backend, new_state_chosen
from reconciler.cli.plan import DEFAULT_INTENT_GRACE
from reconciler.cli.session import (
    api_target,
    command_line,
    connection_options,
    fleet_backend,
)
from reconciler.cli.signals import current_guard
from reconciler.cli.validate import load_from_cli, manifest_options
from reconciler.engine.cancel import CancelToken
from reconciler.errors import UsageError
from reconciler.models.spec import Fleet
from reconciler.state import StateStore, open_backend


def _listen_address(value: str | None) -> tuple[str, int] | None:
    if value is None:
        return None
    host, sep, port = value.rpartition(":")
    if not sep or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise UsageError(f"--listen {value}: expected HOST:PORT, e.g. 127.0.0.1:9464")
    return host.strip("[]") or "127.0.0.1", int(port)


class _Stores:
    """The fleets' stores, opened once per backend and kept across cycles (the manifests
    are read again every cycle; a fleet that appears gets its store then)."""

    def __init__(self, state_dir: Path) -> None:
        self.state_dir = state_dir
        self.override = chosen_backend()
        self.opened: dict[object, StateStore] = {}

    def __call__(self, fleets: Sequence[Fleet]) -> dict[str, StateStore]:
        stores = {}
        for fleet in fleets:
            chosen = fleet_backend(fleet, override=self.override, state_dir=self.state_dir)
            if chosen not in self.opened:
                self.opened[chosen] = open_backend(chosen, new_state=new_state_chosen())
            stores[fleet.name] = self.opened[chosen]
        return stores


@cli.command()
@click.argument("paths", nargs=-1, type=click.Path(path_type=Path))
@click.option(
    "--interval",
    type=DURATION,
    default="60s",
    show_default=True,
    metavar="DURATION",
    help="Time between two cycles (each refreshes every fleet with one list call).",
)
@click.option(
    "--sync",
    is_flag=True,
    help="Apply every plan (an auto-syncing GitOps controller), not only heals; still bound "
    "by budgets, prevent_destroy and the data-loss rule.",
)
@click.option(
    "--listen",
    metavar="HOST:PORT",
    default=None,
    help="Serve /metrics (Prometheus), /healthz and a status page, e.g. 127.0.0.1:9464.",
)
@click.option(
    "--log-format",
    type=click.Choice(["text", "json"]),
    default="text",
    show_default=True,
    help="Readable lines, or one JSON object per event (for log pipelines).",
)
@click.option(
    "--intent-grace",
    type=DURATION,
    default=f"{DEFAULT_INTENT_GRACE:g}s",
    show_default=True,
    metavar="DURATION",
    help="How long a create sent earlier is waited for before it is created anew.",
)
@click.option(
    "--allow-readiness-commands",
    is_flag=True,
    help="With --sync: run the manifests' readiness commands during rollouts.",
)
@click.option(
    "--cycles",
    type=click.IntRange(1),
    default=None,
    hidden=True,
    help="Stop after this many cycles (tests, cron-like use).",
)
@manifest_options
@connection_options
def watch(
    paths: tuple[Path, ...],
    interval: float,
    sync: bool,
    listen: str | None,
    log_format: str,
    intent_grace: float,
    allow_readiness_commands: bool,
    cycles: int | None,
    sandbox: bool,
    parallelism: int,
    state_dir: Path,
    lock_timeout: float,
    vars: tuple[str, ...],  # noqa: A002 - named after --var
    var_files: tuple[Path, ...],
) -> None:
    """Keep the fleets (PATHS) whole until stopped: every --interval, refresh and plan, and
    heal what is preempted, in error or deleted out of band (everything with --sync).

    A fleet's lock is taken only while acting, so CI applies keep working; SIGTERM or SIGINT
    finishes or safely abandons the current action, releases the locks and exits 0.
    """
    from reconciler.controller.events import EventLog, WatchEvent
    from reconciler.controller.metrics import WatchMetrics
    from reconciler.controller.watcher import Watcher, WatchOptions
    from reconciler.readiness import run_readiness_command

    if interval < 1:
        raise UsageError(f"--interval {interval:g}s is too short; use at least 1s.")
    if allow_readiness_commands and not sync:
        raise UsageError("--allow-readiness-commands goes with --sync (heals run no rollouts).")
    address = _listen_address(listen)
    # The first load fails loudly (exit 3): a watcher with broken manifests from the start is
    # a set-up mistake. Later cycles report a broken manifest and keep the fleets as they are.
    load_from_cli(paths, vars=vars, var_files=var_files, state_dir=state_dir)
    events = EventLog(sys.stderr, log_format)  # type: ignore[arg-type]
    metrics = WatchMetrics()
    options = WatchOptions(
        interval=interval,
        sync=sync,
        parallelism=parallelism,
        intent_grace=intent_grace,
        command=command_line(),
        readiness=run_readiness_command if allow_readiness_commands else None,
    )
    stores = _Stores(state_dir)
    guard = current_guard()

    async def main(stop: CancelToken) -> None:
        with api_target(sandbox=sandbox, state_dir=state_dir) as target:
            async with target.client(parallelism=parallelism) as client:
                watcher = Watcher(
                    client,
                    load_fleets=lambda: load_from_cli(
                        paths, vars=vars, var_files=var_files, state_dir=state_dir
                    ),
                    stores_for=stores,
                    options=options,
                    events=events,
                    metrics=metrics,
                    stop=stop,
                )
                server = None
                if address is not None:
                    from reconciler.controller.server import build_app, serve

                    app = build_app(
                        status=watcher.status, events=events, metrics=metrics, interval=interval
                    )
                    listening = asyncio.Event()

                    def started(port: int) -> None:
                        events.emit(
                            WatchEvent(
                                "listen",
                                f"serving /metrics, /healthz and / on http://{address[0]}:{port}/",
                            )
                        )
                        listening.set()

                    server = asyncio.create_task(
                        serve(app, address[0], address[1], started=started)
                    )
                    # Listening before the first cycle, or the reason it cannot (a port in
                    # use is a usage error, exit 64), never a watcher without its probe.
                    ready = asyncio.create_task(listening.wait())
                    await asyncio.wait({server, ready}, return_when=asyncio.FIRST_COMPLETED)
                    ready.cancel()
                    if server.done():
                        server.result()
                        raise UsageError(f"--listen {listen}: the status server stopped at once")
                try:
                    await watcher.run(cycles=cycles)
                finally:
                    if server is not None:
                        server.cancel()
                        await asyncio.gather(server, return_exceptions=True)

    if guard is None:
        asyncio.run(main(CancelToken()))
        return
    with guard.cancellable() as stop:
        guard.run(main(stop))
