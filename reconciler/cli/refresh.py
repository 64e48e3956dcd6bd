"""``reconciler refresh``, and ``plan --refresh-only`` / ``apply --refresh-only``: drift.

All three refresh the fleets under their locks. ``refresh`` records what exists now in the
state; ``plan --refresh-only`` shows only how Shadeform differs from the state (no proposed
changes; ``--detailed-exitcode`` exits 2 when there is drift); ``apply --refresh-only`` shows
the same, asks, then records it.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import click

from reconciler.cli import signals
from reconciler.cli.app import cli
from reconciler.cli.session import (
    FleetStores,
    api_target,
    command_line,
    confirm_or_abort,
    connection_options,
    locked_states,
)
from reconciler.cli.validate import load_from_cli, manifest_options
from reconciler.engine.drift import fleet_drift, state_matching_shadeform
from reconciler.engine.refresh import RefreshOptions, refresh_fleets
from reconciler.models.live import LiveSnapshot
from reconciler.models.plan import DriftReport
from reconciler.models.spec import Fleet
from reconciler.models.state import FleetState
from reconciler.views.drift_view import render_drift_human, render_drift_json

DEFAULT_PATHS = (Path("specs"),)


@dataclass
class Refreshed:
    stores: FleetStores
    states: dict[str, FleetState]
    snapshots: dict[str, LiveSnapshot]
    sandbox: bool

    def drift(self) -> DriftReport:
        return DriftReport(
            fleets=tuple(
                fleet_drift(self.states[name], self.snapshots[name]) for name in sorted(self.states)
            ),
            sandbox=self.sandbox,
        )


@contextmanager
def refreshed(
    fleets: list[Fleet],
    *,
    sandbox: bool,
    state_dir: Path,
    lock_timeout: float,
    parallelism: int,
    intent_grace: float = 60.0,
) -> Iterator[Refreshed]:
    """Lock the fleets, read their states and refresh them; locks held for the block."""
    stores = FleetStores.for_fleets(fleets, state_dir)
    with (
        api_target(sandbox=sandbox, state_dir=state_dir) as target,
        locked_states(
            stores, [f.name for f in fleets], timeout=lock_timeout, command=command_line()
        ) as states,
    ):

        async def run() -> dict[str, LiveSnapshot]:
            async with target.client(parallelism=parallelism) as client:
                return await refresh_fleets(
                    client,
                    states,
                    now=datetime.now(UTC),
                    options=RefreshOptions(intent_grace_seconds=intent_grace),
                )

        yield Refreshed(stores, states, signals.run(run()), sandbox)


def record_refresh(done: Refreshed) -> None:
    """Write each recorded instance's live attributes (status, IP, SSH, price), and each
    volume's and key's, into the state."""
    now = datetime.now(UTC).isoformat().replace("+00:00", "Z")
    for name, state in sorted(done.states.items()):
        if state.serial == 0:
            continue
        live = done.snapshots[name]
        records = {}
        for address, record in state.instances.items():
            seen = live.by_id.get(record.instance_id)
            attrs = seen.model_dump(mode="json") if seen else {"status": "not_found"}
            records[address] = record.model_copy(update={"live": attrs, "refreshed_at": now})
        resources = {}
        for address, resource in state.resources.items():
            found = live.resources.get(resource.resource_id)
            attrs = found.model_dump(mode="json") if found else {"status": "not_found"}
            resources[address] = resource.model_copy(update={"live": attrs, "refreshed_at": now})
        stored = done.stores.stores[name].write(
            state.model_copy(update={"instances": records, "resources": resources})
        )
        gone = sum(1 for a in records.values() if a.live and a.live.get("health") in (None, "gone"))
        lost = sum(1 for r in resources.values() if r.live and r.live.get("status") == "not_found")
        others = (
            f", {len(resources)} volume(s) and key(s) refreshed ({lost} gone)" if resources else ""
        )
        click.echo(
            f"{name}: {len(records)} instance(s) refreshed, {gone} gone, "
            f"{len(live.orphans)} orphan(s) found{others}; state serial {stored.serial}."
        )


def show_drift(done: Refreshed, *, as_json: bool) -> DriftReport:
    report = done.drift()
    if as_json:
        render_drift_json(report, sys.stdout)
    else:
        render_drift_human(report, sys.stdout)
    return report


def apply_refresh_only(done: Refreshed, *, auto_approve: bool) -> None:
    """Show the drift, ask (unless told not to), then bring the states to what exists now:
    records of instances that are gone are dropped and fields changed outside are recorded,
    so the next ``plan --refresh-only`` shows no drift (unrecorded instances excepted: the
    next plan adopts them)."""
    report = show_drift(done, as_json=False)
    if not report.has_drift:
        return
    confirm_or_abort("Record what exists now in the state?", auto_approve=auto_approve)
    now = datetime.now(UTC).isoformat().replace("+00:00", "Z")
    for name, state in sorted(done.states.items()):
        if state.serial == 0:
            continue
        updated = state_matching_shadeform(state, done.snapshots[name], now=now)
        dropped = sorted(set(state.instances) - set(updated.instances))
        stored = done.stores.stores[name].write(updated)
        forgot = f"; forgot {', '.join(dropped)} (gone)" if dropped else ""
        click.echo(f"{name}: recorded what exists now{forgot}; state serial {stored.serial}.")


@cli.command()
@click.argument("paths", nargs=-1, type=click.Path(path_type=Path))
@manifest_options
@connection_options
def refresh(
    paths: tuple[Path, ...],
    sandbox: bool,
    parallelism: int,
    state_dir: Path,
    lock_timeout: float,
    vars: tuple[str, ...],  # noqa: A002 - named after --var
    var_files: tuple[Path, ...],
) -> None:
    """Record what exists now in the state, changing nothing in Shadeform."""
    chosen = paths or DEFAULT_PATHS
    fleets = load_from_cli(chosen, vars=vars, var_files=var_files, state_dir=state_dir)
    with refreshed(
        fleets,
        sandbox=sandbox,
        state_dir=state_dir,
        lock_timeout=lock_timeout,
        parallelism=parallelism,
    ) as done:
        record_refresh(done)
