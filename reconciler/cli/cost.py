"""``reconciler cost``: what each fleet's instances have cost so far and burn per hour.

Read-only: it reads the fleets' states without taking their locks (a running apply is not
disturbed) and asks Shadeform for the live instances, whose ``hourly_price`` and
``cost_estimate`` it lists per instance and per fleet.
"""

from __future__ import annotations

import sys
from datetime import UTC, datetime
from pathlib import Path

import click

from reconciler.cli import signals
from reconciler.cli.app import cli
from reconciler.cli.options import state_dir_option
from reconciler.cli.session import FleetStores, api_target
from reconciler.cli.validate import load_from_cli, manifest_options
from reconciler.engine.refresh import refresh_fleets
from reconciler.models.live import LiveSnapshot
from reconciler.models.spec import Fleet
from reconciler.models.state import FleetState
from reconciler.state import new_state
from reconciler.views.cost_view import FleetSpend, fleet_spend, render_cost_human, render_cost_json

LOOKUP_PARALLELISM = 10


def read_states(fleets: list[Fleet], state_dir: Path) -> dict[str, FleetState]:
    """Each fleet's stored state, read without its lock; a fresh one for a fleet never applied."""
    stores = FleetStores.for_fleets(fleets, state_dir)
    return {
        fleet.name: stores.stores[fleet.name].read(fleet.name) or new_state(fleet.name)
        for fleet in fleets
    }


def fleet_spends(*, fleets: list[Fleet], state_dir: Path, sandbox: bool) -> list[FleetSpend]:
    """Read the states, refresh them against Shadeform, and total each fleet's spend."""
    states = read_states(fleets, state_dir)
    with api_target(sandbox=sandbox, state_dir=state_dir) as target:

        async def run() -> dict[str, LiveSnapshot]:
            async with target.client(parallelism=LOOKUP_PARALLELISM) as client:
                return await refresh_fleets(client, states, now=datetime.now(UTC))

        snapshots = signals.run(run())
    return [fleet_spend(states[name], snapshots[name]) for name in states]


@cli.command()
@click.argument("paths", nargs=-1, type=click.Path(path_type=Path))
@manifest_options
@state_dir_option
@click.option(
    "--sandbox",
    is_flag=True,
    help="Look at the built-in Shadeform emulator (cloud kept in the state dir).",
)
@click.option("--json", "as_json", is_flag=True, help="Print the figures as JSON (cents).")
def cost(
    paths: tuple[Path, ...],
    sandbox: bool,
    as_json: bool,
    state_dir: Path,
    vars: tuple[str, ...],  # noqa: A002 - named after --var
    var_files: tuple[Path, ...],
) -> None:
    """List spend so far and the hourly burn rate, per instance and per fleet.

    Figures are Shadeform's own: each instance's hourly price and its cost estimate since it
    was created. Read-only; no lock is taken.
    """
    fleets = load_from_cli(paths, vars=vars, var_files=var_files, state_dir=state_dir)
    report = fleet_spends(fleets=fleets, state_dir=state_dir, sandbox=sandbox)
    if as_json:
        render_cost_json(report, sys.stdout)
    else:
        render_cost_human(report, sys.stdout)
