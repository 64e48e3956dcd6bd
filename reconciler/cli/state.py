"""``reconciler state list|show|history|rm|mv|migrate`` and ``reconciler force-unlock``.

These edit what the reconciler *remembers*, never the resources themselves. Addresses are
``<fleet>/<name>`` (instances), ``<fleet>/volume.<name>`` and ``<fleet>/ssh_key.<name>``. Commands that change a state take the fleet's lock (``--lock-timeout``)
and write through the store's compare-and-swap, so they cannot race an apply. Every command
works on ``--backend URL`` (or ``$RECONCILER_BACKEND``) when given, else on ``--state-dir``.
"""

from __future__ import annotations

import dataclasses
import json
import sys
from pathlib import Path

import click

from reconciler.cli.app import cli
from reconciler.cli.options import state_dir_option, state_options
from reconciler.cli.session import (
    backend_location,
    command_line,
    same_backend,
    store_for_command,
)
from reconciler.errors import UsageError
from reconciler.models.state import FleetState, InstanceRecord, ResourceRecord
from reconciler.state import StateStore, check_fleet_name, open_backend, redact_urls
from reconciler.state.holder import matching_holder
from reconciler.state.transfer import MigratedFleet, migrate_fleet
from reconciler.state.versions import StateVersion, VersionHistory

HIDDEN_KEY = "(hidden)"


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
        for address in sorted(state.resources):  # keys and volumes: what instances use
            resource = state.resources[address]
            rows.append((address, resource.resource_id))
            rows.extend(
                (address, f"{old} (replaced; deleted once unused)") for old in resource.retiring
            )
        for address in sorted(state.instances):
            rows.append((address, state.instances[address].instance_id))
        for intent in sorted(state.intents.values(), key=lambda i: (i.address, i.intent_id)):
            rows.append((intent.address, f"(create pending, intent {intent.intent_id})"))
    if not rows:
        return ""
    width = max(len(address) for address, _ in rows)
    return "".join(f"{address.ljust(width)}  {detail}\n" for address, detail in rows)


def render_record(record: InstanceRecord | ResourceRecord) -> str:
    return json.dumps(record.model_dump(mode="json"), indent=2, sort_keys=True) + "\n"


def render_state(state: FleetState) -> str:
    """The whole state as JSON, its fingerprint key hidden (it would help guess secrets)."""
    document = state.model_dump(mode="json")
    document["fingerprint_key"] = HIDDEN_KEY
    return json.dumps(document, indent=2, sort_keys=True) + "\n"


def render_history(fleet: str, versions: list[StateVersion]) -> str:
    """Newest first; a heading whenever the lineage changes (a state replaced by another)."""
    if not versions:
        return f"Fleet {fleet!r} has no recorded versions.\n"
    lines: list[str] = []
    lineage: str | None = None
    for version in versions:
        if version.lineage != lineage:
            lineage = version.lineage
            lines += [
                f"Fleet {fleet!r}, lineage {lineage}:",
                f"{'SERIAL':>6}  {'WRITTEN (UTC)':<24}  {'PLAN':<19}  BY",
            ]
        plan = _short_digest(version.plan_digest)
        lines.append(
            f"{version.serial:>6}  {version.written_at:<24}  {plan:<19}  {version.written_by}"
        )
    return "\n".join(lines) + "\n"


def render_history_json(versions: list[StateVersion]) -> str:
    return json.dumps([dataclasses.asdict(v) for v in versions], indent=2) + "\n"


def render_migration(moved: MigratedFleet, destination: str) -> str:
    if moved.copied:
        return (
            f"Fleet {moved.fleet!r}: copied serial {moved.serial} (lineage {moved.lineage}) "
            f"to {destination}.\n"
        )
    return f"Fleet {moved.fleet!r}: {destination} already holds serial {moved.serial}; nothing copied.\n"


# -- commands -----------------------------------------------------------------------------


@cli.group("state")
def state_group() -> None:
    """Inspect and edit the recorded state (never the instances themselves)."""


@state_group.command("list")
@click.option("--fleet", help="Only this fleet.")
@state_dir_option
def list_command(fleet: str | None, state_dir: Path) -> None:
    """List recorded addresses with their instance ids."""
    store = store_for_command(state_dir)
    fleets = [fleet] if fleet is not None else store.list_fleets()
    states = [state for name in fleets if (state := store.read(name)) is not None]
    if fleet is not None and not states:
        raise UsageError(f"Fleet {fleet!r} has no state in {backend_location(state_dir)}.")
    text = render_state_list(states)
    click.echo(text or f"Nothing recorded in {backend_location(state_dir)}.", nl=not text)


@state_group.command("show")
@click.argument("address", required=False)
@click.option("--fleet", help="Show the whole state of this fleet instead of one record.")
@click.option(
    "--serial",
    type=click.IntRange(min=1),
    help="Show this version from the fleet's history (PostgreSQL backend) instead of the "
    "current one.",
)
@state_dir_option
def show_command(
    address: str | None, fleet: str | None, serial: int | None, state_dir: Path
) -> None:
    """Show the record at ADDRESS, or with --fleet the whole state, as JSON.

    Secrets appear only as fingerprints; the fingerprint key is hidden.
    """
    if (address is None) == (fleet is None):
        raise UsageError(
            "Give either an ADDRESS (one record, e.g. inference/vllm-0) or --fleet FLEET (the "
            "whole state), not both or neither."
        )
    name = parse_address(address)[0] if address is not None else str(fleet)
    check_fleet_name(name)
    store = store_for_command(state_dir)
    if serial is None:
        state = _read_existing(store, name, state_dir)
    else:
        state = _read_version(store, name, serial, state_dir)
    if address is None:
        click.echo(render_state(state), nl=False)
    else:
        click.echo(render_record(_record_at(state, address)), nl=False)


@state_group.command("history")
@click.argument("fleet")
@click.option("--limit", type=click.IntRange(min=1), help="Only the newest N versions.")
@click.option("--json", "as_json", is_flag=True, help="Print the versions as JSON.")
@state_dir_option
def history_command(fleet: str, limit: int | None, as_json: bool, state_dir: Path) -> None:
    """List every stored version of FLEET's state: serial, time, who wrote it, which plan.

    Needs a backend that keeps history (PostgreSQL). Show one with
    `reconciler state show --fleet FLEET --serial N`.
    """
    check_fleet_name(fleet)
    store = store_for_command(state_dir)
    if not isinstance(store, VersionHistory):
        raise UsageError(_no_history(state_dir))
    versions = store.history(fleet, limit=limit)
    if not versions and store.read(fleet) is None:
        raise UsageError(f"Fleet {fleet!r} has no state in {backend_location(state_dir)}.")
    click.echo(
        render_history_json(versions) if as_json else render_history(fleet, versions), nl=False
    )


@state_group.command("rm")
@click.argument("address")
@state_options
@click.pass_context
def rm_command(ctx: click.Context, address: str, state_dir: Path, lock_timeout: float) -> None:
    """Forget the record at ADDRESS (the instance, volume or key is left as it is; the
    reconciler stops managing it)."""
    fleet, _ = parse_address(address)
    store = store_for_command(state_dir)
    with store.lock(fleet, timeout=lock_timeout, command=f"{ctx.command_path} {address}"):
        state = _read_existing(store, fleet, state_dir)
        instance = state.instances.get(address)
        resource = state.resources.get(address)
        intents = {k: v for k, v in state.intents.items() if v.address != address}
        if instance is None and resource is None and len(intents) == len(state.intents):
            raise UsageError(_missing(address, state))
        instances = {k: v for k, v in state.instances.items() if k != address}
        resources = {k: v for k, v in state.resources.items() if k != address}
        saved = store.write(
            state.model_copy(
                update={"instances": instances, "resources": resources, "intents": intents}
            )
        )
    where = f"from the state of fleet {fleet!r} (serial {saved.serial})"
    if instance is not None:
        click.echo(
            f"Removed {address} (instance {instance.instance_id}) {where}. The instance itself "
            f"was not touched. It still carries fleet {fleet!r}'s tags, so the next plan will "
            "offer to adopt it again; remove those tags from it to let it go."
        )
    elif resource is not None:
        noun = "volume" if resource.kind == "volume" else "SSH key"
        click.echo(
            f"Removed {address} ({noun} {resource.resource_id}) {where}. The {noun} itself was "
            f"not touched, and the reconciler no longer manages it: while it exists, a plan "
            f"that still declares {address} blocks it (`reconciler import {address} "
            f"{resource.resource_id}` takes it back)."
        )
    else:
        click.echo(f"Removed {address} (its pending create) {where}.")


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
    for address in (source, destination):
        if "." in address.partition("/")[2]:
            raise UsageError(
                f"{address} is a volume's or SSH key's address: their name is how Shadeform "
                "and the instances using them know them, and Shadeform cannot rename them, "
                "so their records do not move. `state mv` moves instance records."
            )
    store = store_for_command(state_dir)
    command = f"{ctx.command_path} {source} {destination}"
    with store.lock(fleet, timeout=lock_timeout, command=command):
        state = _read_existing(store, fleet, state_dir)
        moved = _moved(state, source, destination)
        saved = store.write(moved)
    click.echo(
        f"Moved {source} to {destination} in the state of fleet {fleet!r} "
        f"(serial {saved.serial}). The next plan updates the instance's name and tags in place."
    )


@state_group.command("migrate")
@click.option(
    "--to",
    "destination",
    required=True,
    metavar="URL",
    help="The backend to copy into: a directory, file://DIR or postgresql://...",
)
@click.option("--fleet", help="Only this fleet (default: every fleet in the source).")
@state_options
def migrate_command(
    destination: str, fleet: str | None, state_dir: Path, lock_timeout: float
) -> None:
    """Copy fleets' states to another backend, keeping lineage and serial.

    The source is --backend (or $RECONCILER_BACKEND), else --state-dir. Both sides are
    locked while a fleet is copied. A destination holding another lineage, or a newer
    version, is never overwritten. The source is left as it was.
    """
    source_name = backend_location(state_dir)
    if same_backend(destination, state_dir):
        raise UsageError(f"The destination {redact_urls(destination)} is the source itself.")
    source = store_for_command(state_dir)
    target = open_backend(destination)
    shown = redact_urls(destination)
    fleets = [fleet] if fleet is not None else source.list_fleets()
    if not fleets:
        raise UsageError(f"There are no fleet states in {source_name}; nothing to migrate.")
    for name in fleets:
        check_fleet_name(name)
        moved = migrate_fleet(
            source,
            target,
            name,
            timeout=lock_timeout,
            command=command_line(),
            source_name=source_name,
        )
        click.echo(render_migration(moved, shown), nl=False)
    click.echo(
        f"The states are still in {source_name} too. Point the reconciler at {shown} "
        "(--backend, RECONCILER_BACKEND or the manifest's backend:), check that "
        "`reconciler plan` shows no changes, then remove the old copies."
    )


@cli.command("force-unlock")
@click.argument("fleet")
@click.argument("lock_id")
@click.option("--force", is_flag=True, help="Do not ask for confirmation.")
@state_dir_option
def force_unlock_command(fleet: str, lock_id: str, force: bool, state_dir: Path) -> None:
    """Break the lock LOCK_ID on FLEET's state, left by a run that died or hung."""
    store = store_for_command(state_dir)
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
        raise UsageError(f"Fleet {fleet!r} has no state in {backend_location(state_dir)}.")
    return state


def _read_version(store: StateStore, fleet: str, serial: int, state_dir: Path) -> FleetState:
    if isinstance(store, VersionHistory):
        state = store.read_version(fleet, serial)
        if state is None:
            raise UsageError(
                f"Fleet {fleet!r} has no version with serial {serial} in "
                f"{backend_location(state_dir)}; see `reconciler state history {fleet}`."
            )
        return state
    current = _read_existing(store, fleet, state_dir)
    if current.serial != serial:
        raise UsageError(_no_history(state_dir) + f" The current serial is {current.serial}.")
    return current


def _no_history(state_dir: Path) -> str:
    return (
        f"The state backend at {backend_location(state_dir)} keeps no history (the file backend "
        "keeps only the previous version, in <fleet>.json.backup). Use a PostgreSQL backend "
        "to keep every version."
    )


def _short_digest(digest: str | None) -> str:
    if not digest:
        return "-"
    return digest if len(digest) <= 19 else digest[:18] + "…"


def _missing(address: str, state: FleetState) -> str:
    return (
        f"Nothing is recorded at {address} in the state of fleet {state.fleet!r}; "
        f"see `reconciler state list --fleet {state.fleet}`."
    )


def _record_at(state: FleetState, address: str) -> InstanceRecord | ResourceRecord:
    record = state.instances.get(address) or state.resources.get(address)
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
