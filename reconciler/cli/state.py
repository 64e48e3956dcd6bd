"""``reconciler state list|show|rm|mv`` and ``reconciler force-unlock``.

These edit what the reconciler *remembers*, never the instances themselves. Addresses are
``<fleet>/<name>``. Commands that change a state take the fleet's lock (``--lock-timeout``)
and write through the store's compare-and-swap, so they cannot race an apply.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from reconciler.cli.app import cli
from reconciler.cli.options import state_dir_option, state_options
from reconciler.errors import UsageError
from reconciler.models.state import FleetState, InstanceRecord
from reconciler.state import StateStore, check_fleet_name, open_store
from reconciler.state.holder import matching_holder


def parse_address(text: str) -> tuple[str, str]:
    """Split ``<fleet>/<name>``; raise :class:`UsageError` for anything else."""
    fleet, slash, name = text.partition("/")
    if not slash or not fleet or not name or "/" in name or name != name.strip():
        raise UsageError(
            f"{text!r} is not an address: write <fleet>/<name>, e.g. inference/vllm-0."
        )
    check_fleet_name(fleet)
    return fleet, name


# -- rendering (pure: data in, text out) --------------------------------------------------


def render_state_list(states: list[FleetState]) -> str:
    rows: list[tuple[str, str]] = []
    for state in states:
        for address in sorted(state.instances):
            rows.append((address, state.instances[address].instance_id))
        for intent in sorted(state.intents.values(), key=lambda i: (i.address, i.intent_id)):
            rows.append((intent.address, f"(create pending, intent {intent.intent_id})"))
    if not rows:
        return ""
    width = max(len(address) for address, _ in rows)
    return "".join(f"{address.ljust(width)}  {detail}\n" for address, detail in rows)


def render_record(record: InstanceRecord) -> str:
    return json.dumps(record.model_dump(mode="json"), indent=2, sort_keys=True) + "\n"


# -- commands -----------------------------------------------------------------------------


@cli.group("state")
def state_group() -> None:
    """Inspect and edit the recorded state (never the instances themselves)."""


@state_group.command("list")
@click.option("--fleet", help="Only this fleet.")
@state_dir_option
def list_command(fleet: str | None, state_dir: Path) -> None:
    """List recorded addresses with their instance ids."""
    store = open_store(state_dir)
    fleets = [fleet] if fleet is not None else store.list_fleets()
    states = [state for name in fleets if (state := store.read(name)) is not None]
    if fleet is not None and not states:
        raise UsageError(f"Fleet {fleet!r} has no state in {state_dir}.")
    text = render_state_list(states)
    click.echo(text or f"No instances recorded in {state_dir}.", nl=not text)


@state_group.command("show")
@click.argument("address")
@state_dir_option
def show_command(address: str, state_dir: Path) -> None:
    """Show the record at ADDRESS as JSON (secrets appear only as fingerprints)."""
    fleet, _ = parse_address(address)
    state = _read_existing(open_store(state_dir), fleet, state_dir)
    click.echo(render_record(_record_at(state, address)), nl=False)


@state_group.command("rm")
@click.argument("address")
@state_options
@click.pass_context
def rm_command(ctx: click.Context, address: str, state_dir: Path, lock_timeout: float) -> None:
    """Forget the instance at ADDRESS (it keeps running; the reconciler stops managing it)."""
    fleet, _ = parse_address(address)
    store = open_store(state_dir)
    with store.lock(fleet, timeout=lock_timeout, command=f"{ctx.command_path} {address}"):
        state = _read_existing(store, fleet, state_dir)
        record = state.instances.get(address)
        intents = {k: v for k, v in state.intents.items() if v.address != address}
        if record is None and len(intents) == len(state.intents):
            raise UsageError(_missing(address, state))
        instances = {k: v for k, v in state.instances.items() if k != address}
        saved = store.write(state.model_copy(update={"instances": instances, "intents": intents}))
    what = f"instance {record.instance_id}" if record else "its pending create"
    click.echo(
        f"Removed {address} ({what}) from the state of fleet {fleet!r} (serial {saved.serial}). "
        f"The instance itself was not touched. It still carries fleet {fleet!r}'s tags, so "
        "the next plan will offer to adopt it again; remove those tags from it to let it go."
    )


@state_group.command("mv")
@click.argument("source", metavar="FROM")
@click.argument("destination", metavar="TO")
@state_options
@click.pass_context
def mv_command(
    ctx: click.Context, source: str, destination: str, state_dir: Path, lock_timeout: float
) -> None:
    """Move the record at FROM to the address TO within the same fleet."""
    fleet, _ = parse_address(source)
    to_fleet, _ = parse_address(destination)
    if to_fleet != fleet:
        raise UsageError(
            f"Cannot move {source} to another fleet ({to_fleet!r}): the instance carries fleet "
            f"{fleet!r}'s ownership tags, so fleet {to_fleet!r} would never touch it and fleet "
            f"{fleet!r} would adopt it back. Move it within {fleet!r}, or remove it with "
            "`reconciler state rm` and let the other fleet create its own."
        )
    if source == destination:
        raise UsageError(f"{source} and {destination} are the same address.")
    store = open_store(state_dir)
    command = f"{ctx.command_path} {source} {destination}"
    with store.lock(fleet, timeout=lock_timeout, command=command):
        state = _read_existing(store, fleet, state_dir)
        moved = _moved(state, source, destination)
        saved = store.write(moved)
    click.echo(
        f"Moved {source} to {destination} in the state of fleet {fleet!r} "
        f"(serial {saved.serial}). The next plan updates the instance's name and tags in place."
    )


@cli.command("force-unlock")
@click.argument("fleet")
@click.argument("lock_id")
@click.option("--force", is_flag=True, help="Do not ask for confirmation.")
@state_dir_option
def force_unlock_command(fleet: str, lock_id: str, force: bool, state_dir: Path) -> None:
    """Break the lock LOCK_ID on FLEET's state, left by a run that died or hung."""
    store = open_store(state_dir)
    holder = matching_holder(fleet, lock_id, store.lock_holder(fleet))
    if not force:
        if not sys.stdin.isatty():
            raise UsageError(
                "force-unlock needs confirmation but stdin is not a terminal; pass --force to "
                "break the lock without a prompt."
            )
        click.echo(f"Fleet {fleet!r}: {holder.describe()}.")
        click.confirm(
            "Break this lock? Only do so if that run is dead or hung; if it is still running, "
            "its further state writes will be refused",
            default=False,
            abort=True,
        )
    store.force_unlock(fleet, lock_id)
    click.echo(f"Lock {lock_id} on fleet {fleet!r} was broken; the next run can take it.")


# -- helpers ------------------------------------------------------------------------------


def _read_existing(store: StateStore, fleet: str, state_dir: Path) -> FleetState:
    state = store.read(fleet)
    if state is None:
        raise UsageError(f"Fleet {fleet!r} has no state in {state_dir}.")
    return state


def _missing(address: str, state: FleetState) -> str:
    return (
        f"No instance is recorded at {address} in the state of fleet {state.fleet!r}; "
        f"see `reconciler state list --fleet {state.fleet}`."
    )


def _record_at(state: FleetState, address: str) -> InstanceRecord:
    record = state.instances.get(address)
    if record is None:
        raise UsageError(_missing(address, state))
    return record


def _moved(state: FleetState, source: str, destination: str) -> FleetState:
    has_source = source in state.instances or any(
        i.address == source for i in state.intents.values()
    )
    if not has_source:
        raise UsageError(_missing(source, state))
    taken = destination in state.instances or any(
        i.address == destination for i in state.intents.values()
    )
    if taken:
        raise UsageError(
            f"{destination} is already recorded in the state of fleet {state.fleet!r}; "
            "remove it first or choose another address."
        )
    instances = {
        (destination if address == source else address): (
            record.model_copy(update={"address": destination}) if address == source else record
        )
        for address, record in state.instances.items()
    }
    intents = {
        key: (
            intent.model_copy(update={"address": destination})
            if intent.address == source
            else intent
        )
        for key, intent in state.intents.items()
    }
    return state.model_copy(update={"instances": instances, "intents": intents})
