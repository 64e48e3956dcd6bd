"""``reconciler emulator``: serve a local Shadeform emulator (see docs/emulator.md)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import click
from pydantic import ValidationError

from reconciler.cli.app import cli
from reconciler.emulator import (
    SANDBOX_API_KEY,
    SANDBOX_VOLUMES,
    CapacitySetting,
    Emulator,
    EmulatorConfig,
)
from reconciler.emulator.config import FaultConfig
from reconciler.emulator.problems import CloudProblem
from reconciler.emulator.server import base_url, bind_socket, is_loopback, serve_forever
from reconciler.emulator.settings_file import EmulatorSettings, load_settings
from reconciler.emulator.store import DataFileError
from reconciler.errors import UsageError

# flag name -> FaultConfig field
_FAULT_FLAGS = {
    "seed": "seed",
    "latency_ms": "latency_ms",
    "jitter_ms": "jitter_ms",
    "error_rate": "error_rate",
    "rate_limit": "rate_limit_rps",
    "rate_limit_burst": "rate_limit_burst",
    "hang_rate": "hang_rate",
    "hang_seconds": "hang_seconds",
    "lost_create_rate": "lost_create_rate",
    "lost_response_mode": "lost_response_mode",
    "boot_failure_rate": "boot_failure_rate",
    "preempt_spot_after": "preempt_spot_after_seconds",
}


def _parse_unavailable(value: str) -> CapacitySetting:
    offer, _, rental = value.partition(":")
    parts = offer.split("/")
    if len(parts) != 3 or not all(parts) or rental not in ("", "spot", "on_demand"):
        raise UsageError(
            f"--unavailable {value!r}: expected CLOUD/REGION/TYPE or CLOUD/REGION/TYPE:spot"
        )
    return CapacitySetting(
        cloud=parts[0],
        region=parts[1],
        shade_instance_type=parts[2],
        available=False,
        rental_type="spot" if rental == "spot" else "on_demand",
    )


def build_config(
    settings: EmulatorSettings,
    *,
    api_key: str | None,
    data: Path | None,
    boot_seconds: float | None,
    delete_seconds: float | None,
    fault_flags: dict[str, Any],
    unavailable: tuple[str, ...],
    sandbox_seeds: bool = False,
) -> EmulatorConfig:
    """Flags win over the config file, which wins over the defaults."""
    faults = settings.faults.model_dump()
    faults.update({_FAULT_FLAGS[k]: v for k, v in fault_flags.items() if v is not None})
    try:
        fault_config = FaultConfig.model_validate(faults)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}"
            for e in exc.errors(include_url=False)
        )
        raise UsageError(f"invalid fault settings: {problems}") from None
    boot = boot_seconds if boot_seconds is not None else settings.boot_seconds
    delete = delete_seconds if delete_seconds is not None else settings.delete_seconds
    if (boot is not None and boot < 0) or (delete is not None and delete < 0):
        raise UsageError("--boot-seconds and --delete-seconds must not be negative")
    capacity = [*settings.capacity, *(_parse_unavailable(u) for u in unavailable)]
    return EmulatorConfig(
        api_key=api_key or settings.api_key or SANDBOX_API_KEY,
        boot_seconds=2.0 if boot is None else boot,
        delete_seconds=1.0 if delete is None else delete,
        data_file=data or settings.data_file,
        faults=fault_config,
        capacity=tuple(capacity),
        volumes=(
            *(SANDBOX_VOLUMES if sandbox_seeds else ()),
            *(v.seed() for v in settings.volumes),
        ),
        ssh_keys=tuple(k.seed() for k in settings.ssh_keys),
    )


@cli.command("emulator")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option(
    "--port",
    default=8787,
    show_default=True,
    type=click.IntRange(0, 65535),
    help="Port; 0 picks a free one (printed on the first line).",
)
@click.option("--allow-remote", is_flag=True, help="Allow a non-loopback --host.")
@click.option(
    "--api-key", default=None, help=f"Key expected in X-API-KEY [default: {SANDBOX_API_KEY}]."
)
@click.option(
    "--data",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Keep the emulated cloud in this file across restarts.",
)
@click.option(
    "--config",
    "config_file",
    type=click.Path(dir_okay=False, path_type=Path),
    help="YAML/JSON config file (flags override it).",
)
@click.option("--boot-seconds", type=float, help="Time from create to active [default: 2].")
@click.option("--delete-seconds", type=float, help="Time spent 'deleting' [default: 1].")
@click.option("--seed", type=int, help="Seed for the fault dice.")
@click.option("--latency-ms", type=float, help="Latency added to every request.")
@click.option("--jitter-ms", type=float, help="Plus a uniform random 0..N ms.")
@click.option("--error-rate", type=float, help="Chance (0-1) of an injected 500/502/503.")
@click.option("--rate-limit", type=float, metavar="RPS", help="Token bucket rate; over it: 429.")
@click.option("--rate-limit-burst", type=int, help="Token bucket size [default: RPS].")
@click.option("--hang-rate", type=float, help="Chance (0-1) an answer is held back.")
@click.option("--hang-seconds", type=float, help="How long a held-back answer waits [30].")
@click.option("--lost-create-rate", type=float, help="Chance (0-1) a create's answer is lost.")
@click.option(
    "--lost-response-mode",
    type=click.Choice(["502", "drop"]),
    help="How an answer is lost: empty 502, or the connection is cut.",
)
@click.option("--boot-failure-rate", type=float, help="Chance (0-1) an instance ends in error.")
@click.option(
    "--preempt-spot-after",
    type=float,
    metavar="SECONDS",
    help="Reclaim spot instances this long after creation.",
)
@click.option(
    "--sandbox-seeds",
    is_flag=True,
    help="Start with what --sandbox starts with (the volume specs/training.yaml mounts), so "
    "the example specs apply against this emulator as they do in the sandbox.",
)
@click.option(
    "--unavailable",
    multiple=True,
    metavar="CLOUD/REGION/TYPE[:spot]",
    help="No capacity for this offer (repeatable).",
)
def emulator(
    host: str,
    port: int,
    allow_remote: bool,
    api_key: str | None,
    data: Path | None,
    config_file: Path | None,
    boot_seconds: float | None,
    delete_seconds: float | None,
    unavailable: tuple[str, ...],
    sandbox_seeds: bool,
    **fault_flags: Any,
) -> None:
    """Serve a local Shadeform API emulator (the sandbox's cloud).

    The first line printed is the base URL, e.g.
    'Shadeform emulator listening on http://127.0.0.1:8787/v1'.
    """
    if not is_loopback(host) and not allow_remote:
        raise UsageError(
            f"refusing to listen on non-loopback host {host!r}: the emulator has no real "
            "security; pass --allow-remote if you mean it"
        )
    settings = load_settings(config_file) if config_file else EmulatorSettings()
    config = build_config(
        settings,
        api_key=api_key,
        data=data,
        boot_seconds=boot_seconds,
        delete_seconds=delete_seconds,
        fault_flags=fault_flags,
        unavailable=unavailable,
        sandbox_seeds=sandbox_seeds,
    )
    try:
        emu = Emulator(config)
    except DataFileError as exc:
        raise UsageError(f"cannot use --data file: {exc}") from exc
    except CloudProblem as exc:  # an unknown offer in --unavailable / capacity
        raise UsageError(f"capacity setting: {exc.message}") from exc
    try:
        sock = bind_socket(host, port)
    except OSError as exc:
        emu.close()
        raise UsageError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from exc
    click.echo(f"Shadeform emulator listening on {base_url(sock)}")
    if config.api_key == SANDBOX_API_KEY:
        click.echo(f"API key (X-API-KEY): {SANDBOX_API_KEY}")
    else:
        click.echo("API key (X-API-KEY): the value given to --api-key or the config file")
    if config.data_file:
        click.echo(f"Data file: {config.data_file}")
    click.echo("Press Ctrl+C to stop.", nl=True)
    sys.stdout.flush()
    try:
        serve_forever(emu.app, sock)
    finally:
        emu.close()
