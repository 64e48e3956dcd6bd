"""``reconciler output`` (how to reach every instance) and ``reconciler ssh ADDRESS``.

Both are read-only and take no lock: they read the fleets' states, ask Shadeform for the live
instances (one list call, plus info calls) and show or use each one's IP, SSH user and port.
"""

from __future__ import annotations

import os
import shlex
import shutil
import sys
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import click

from reconciler.cli import signals
from reconciler.cli.app import cli
from reconciler.cli.cost import LOOKUP_PARALLELISM, read_states
from reconciler.cli.options import state_dir_option
from reconciler.cli.session import api_target
from reconciler.cli.validate import load_from_cli, manifest_options
from reconciler.engine.kinds import kind_named
from reconciler.engine.kinds.anchored import AnchoredKind
from reconciler.engine.planner import address_selected
from reconciler.engine.refresh import refresh_fleets
from reconciler.errors import UsageError
from reconciler.models.live import LiveSnapshot
from reconciler.models.plan import Endpoint, ManagedResource
from reconciler.views.output_view import (
    ansible_inventory,
    output_json,
    render_output_human,
    render_output_json,
)

F = TypeVar("F", bound=Callable[..., Any])


def endpoints(*, paths: tuple[Path, ...], vars: tuple[str, ...], var_files: tuple[Path, ...],
              state_dir: Path, sandbox: bool) -> list[Endpoint]:  # fmt: skip
    """Every recorded instance of the fleets with what Shadeform says about it now."""
    return looked_up(paths=paths, vars=vars, var_files=var_files, state_dir=state_dir,
                     sandbox=sandbox)[0]  # fmt: skip


def looked_up(*, paths: tuple[Path, ...], vars: tuple[str, ...], var_files: tuple[Path, ...],
              state_dir: Path, sandbox: bool) -> tuple[list[Endpoint], list[ManagedResource]]:  # fmt: skip
    """Every recorded instance, volume and key of the fleets, as Shadeform has them now."""
    fleets = load_from_cli(paths, vars=vars, var_files=var_files, state_dir=state_dir)
    states = read_states(fleets, state_dir)
    with api_target(sandbox=sandbox, state_dir=state_dir) as target:

        async def run() -> dict[str, LiveSnapshot]:
            async with target.client(parallelism=LOOKUP_PARALLELISM) as client:
                return await refresh_fleets(client, states, now=datetime.now(UTC))

        snapshots = signals.run(run())
    resources = []
    for name, state in sorted(states.items()):
        for address, resource in sorted(state.resources.items()):
            have = snapshots[name].resources.get(resource.resource_id)
            kind = kind_named(resource.kind)
            assert isinstance(kind, AnchoredKind)
            resources.append(
                ManagedResource(
                    fleet=name,
                    address=address,
                    kind=resource.kind,  # type: ignore[arg-type]
                    resource_id=resource.resource_id,
                    present=have is not None,
                    detail=kind.describe(have.observed if have else resource.applied_spec),
                    in_use_by=have.in_use_by if have else (),
                )
            )
    found = []
    for name, state in sorted(states.items()):
        live = snapshots[name]
        for address, record in sorted(state.instances.items()):
            seen = live.by_id.get(record.instance_id)
            found.append(
                Endpoint(
                    fleet=name,
                    address=address,
                    instance_id=record.instance_id,
                    status=seen.status if seen else "not_found",
                    ip=seen.ip if seen else None,
                    ssh_user=seen.ssh_user if seen else None,
                    ssh_port=seen.ssh_port if seen else None,
                    hourly_price_cents=seen.hourly_price if seen else None,
                )
            )
    return found, resources


def _sandbox_option(command: F) -> F:
    return click.option("--sandbox", is_flag=True, help="Look at the built-in Shadeform emulator.")(
        command
    )


@cli.command()
@click.argument("paths", nargs=-1, type=click.Path(path_type=Path))
@manifest_options
@state_dir_option
@_sandbox_option
@click.option("--json", "as_json", is_flag=True, help="Print JSON for scripts.")
@click.option(
    "--ansible", is_flag=True, help="Print an Ansible dynamic inventory (a group per fleet)."
)
@click.option("--target", "targets", multiple=True, metavar="ADDRESS", help="Only these.")
def output(
    paths: tuple[Path, ...],
    vars: tuple[str, ...],  # noqa: A002 - named after --var
    var_files: tuple[Path, ...],
    state_dir: Path,
    sandbox: bool,
    as_json: bool,
    ansible: bool,
    targets: tuple[str, ...],
) -> None:
    """How to reach each instance: id, status, IP, SSH user and port, $/hour; and the
    fleets' volumes and SSH keys.

    \b
    reconciler output specs/ --json        # for scripts
    reconciler output specs/ --ansible > inventory.json
    """
    if as_json and ansible:
        raise UsageError("Choose one of --json and --ansible.")
    found, resources = looked_up(
        paths=paths, vars=vars, var_files=var_files, state_dir=state_dir, sandbox=sandbox
    )
    if targets:
        found = [e for e in found if address_selected(e.address, targets)]
        resources = [r for r in resources if address_selected(r.address, targets)]
    if as_json:
        render_output_json(output_json(found, resources), sys.stdout)
    elif ansible:
        render_output_json(ansible_inventory(found), sys.stdout)
    else:
        render_output_human(found, sys.stdout, resources)


def ssh_command(endpoint: Endpoint, remote: tuple[str, ...], extra: tuple[str, ...]) -> list[str]:
    """The ``ssh`` argv for ``endpoint`` (``--`` separates the remote command)."""
    assert endpoint.ip and endpoint.ssh_user
    # User and host never share an argument, and "--" ends ssh's options before the host,
    # so nothing Shadeform reports can be read as an option (values are checked at refresh too).
    port = str(endpoint.ssh_port or 22)
    return ["ssh", "-p", port, "-l", endpoint.ssh_user, *extra, "--", endpoint.ip, *remote]


@cli.command(context_settings={"ignore_unknown_options": False})
@click.argument("address")
@click.argument("remote", nargs=-1, type=click.UNPROCESSED)
@click.option("--path", "paths", multiple=True, type=click.Path(path_type=Path),
              help="Manifests (default specs/).")  # fmt: skip
@manifest_options
@state_dir_option
@_sandbox_option
@click.option("--print", "print_only", is_flag=True, help="Print the ssh command, do not run it.")
@click.option("-i", "--identity", type=click.Path(dir_okay=False), help="Private key (ssh -i).")
def ssh(
    address: str,
    remote: tuple[str, ...],
    paths: tuple[Path, ...],
    vars: tuple[str, ...],  # noqa: A002 - named after --var
    var_files: tuple[Path, ...],
    state_dir: Path,
    sandbox: bool,
    print_only: bool,
    identity: str | None,
) -> None:
    """Open an SSH session to ADDRESS (fleet/name), or run a command there after `--`.

    \b
    reconciler ssh inference/mistral-0
    reconciler ssh inference/mistral-0 -- nvidia-smi
    reconciler ssh inference/mistral-0 --print
    """
    found = endpoints(
        paths=paths, vars=vars, var_files=var_files, state_dir=state_dir, sandbox=sandbox
    )
    match = next((e for e in found if e.address == address), None)
    if match is None:
        from difflib import get_close_matches

        close = get_close_matches(address, [e.address for e in found], n=1)
        hint = f"; did you mean '{close[0]}'?" if close else ""
        raise UsageError(f"{address} is not an instance in the state{hint}")
    if not match.reachable:
        raise UsageError(
            f"{address} ({match.instance_id}) has no IP or SSH user yet (status "
            f"{match.status}); wait until it is active, then try again."
        )
    argv = ssh_command(match, remote, ("-i", identity) if identity else ())
    if print_only:
        click.echo(shlex.join(argv))
        return
    if shutil.which("ssh") is None:
        raise UsageError("ssh is not installed here; `--print` shows the command to run.")
    sys.stdout.flush()
    os.execvp("ssh", argv)
