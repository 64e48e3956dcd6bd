"""``reconciler validate`` and ``reconciler schema``, plus the manifest options other commands share.

Commands that load manifests reuse these::

    @cli.command()
    @click.argument("paths", nargs=-1, type=click.Path(path_type=Path))
    @manifest_options
    def plan(paths: tuple[Path, ...], **manifest_kwargs: Unpack[ManifestOptions]) -> None:
        fleets = load_from_cli(paths, **manifest_kwargs)
"""

from __future__ import annotations

import json
import os
import re
import sys
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, TextIO, TypedDict, TypeVar, Unpack

import click

from reconciler.cli.app import cli
from reconciler.errors import UsageError
from reconciler.manifest import load_fleets
from reconciler.models.manifest import VARIABLE_NAME_PATTERN, manifest_json_schema
from reconciler.models.spec import Fleet, InstanceSpec
from reconciler.redaction import SECRETS

DEFAULT_MANIFEST_PATHS = (Path("specs"),)
_GPU_PREFIX = re.compile(r"^(\d+)x")
_VARIABLE_NAME = re.compile(VARIABLE_NAME_PATTERN)

CommandT = TypeVar("CommandT", bound=Callable[..., Any])


class ManifestOptions(TypedDict):
    """The keyword arguments :func:`manifest_options` adds (type ``**kwargs`` with Unpack)."""

    vars: tuple[str, ...]
    var_files: tuple[Path, ...]


def manifest_options(command: CommandT) -> CommandT:
    """Adds ``--var NAME=VALUE`` and ``--var-file FILE`` (both repeatable).

    They reach the command as keyword arguments ``vars`` and ``var_files``, exactly the
    parameters of :func:`load_from_cli`.
    """
    command = click.option(
        "--var-file",
        "var_files",
        multiple=True,
        type=click.Path(dir_okay=False, path_type=Path),
        metavar="FILE",
        help="YAML or JSON mapping of variable values (repeatable; later files win).",
    )(command)
    command = click.option(
        "--var",
        "vars",
        multiple=True,
        metavar="NAME=VALUE",
        help="Set a manifest variable; wins over --var-file and the manifest (repeatable).",
    )(command)
    return command


def parse_var_assignments(assignments: Sequence[str]) -> dict[str, str]:
    """``["a=1", "b=x=y"]`` -> ``{"a": "1", "b": "x=y"}``; raises UsageError when malformed."""
    values: dict[str, str] = {}
    for assignment in assignments:
        name, sep, value = assignment.partition("=")
        name = name.strip()
        if not sep or not _VARIABLE_NAME.match(name):
            raise UsageError(
                f"--var expects NAME=VALUE with NAME made of letters, digits, '_' or '-'"
                f" (got '{name if sep else assignment}')"
            )
        values[name] = value
    return values


def load_from_cli(
    paths: Sequence[Path],
    vars: Sequence[str] = (),  # noqa: A002 - named after the --var option
    var_files: Sequence[Path] = (),
    *,
    state_dir: Path | None = None,
) -> list[Fleet]:
    """Load fleets the way every command does: default ``specs/``, os.environ, cwd.

    Every secret the manifests hold (``${env:...}`` values, registry credentials, backend
    URLs and their passwords) is registered with :mod:`reconciler.redaction`, so no message
    of this run can show it."""
    from reconciler.cli.app import register_backend_secrets

    chosen = list(paths) or list(DEFAULT_MANIFEST_PATHS)
    environ = _RecordingEnviron(os.environ)
    try:
        fleets = load_fleets(
            chosen,
            variables=parse_var_assignments(vars),
            var_files=var_files,
            environ=environ,
            protected=(state_dir,) if state_dir is not None else (),
        )
    finally:
        # Every environment value a manifest read is a secret (it may only fill secret
        # fields); a ${env:NAME:-default}'s default is manifest text, not a secret.
        SECRETS.add_all(environ.read_values())
    for fleet in fleets:
        for instance in fleet.instances:
            launch = instance.launch_configuration
            docker = launch.docker_configuration if launch else None
            credentials = docker.registry_credentials if docker else None
            if credentials is not None:
                SECRETS.add(credentials.password)
        if fleet.backend is not None:
            register_backend_secrets(fleet.backend.get_secret_value())
    return fleets


class _RecordingEnviron(Mapping[str, str]):
    """``os.environ`` as the loader sees it, remembering which values were read."""

    def __init__(self, inner: Mapping[str, str]) -> None:
        self._inner = inner
        self._read: set[str] = set()

    def __getitem__(self, key: str) -> str:
        value = self._inner[key]
        self._read.add(key)
        return value

    def get(self, key: str, default: Any = None) -> Any:
        if key in self._inner:
            return self[key]
        return default

    def __iter__(self) -> Iterator[str]:
        return iter(self._inner)

    def __len__(self) -> int:
        return len(self._inner)

    def read_values(self) -> list[str]:
        return [self._inner[key] for key in sorted(self._read) if key in self._inner]


def gpu_count(shade_instance_type: str) -> int:
    """GPUs in an instance type, from its name: ``8xH100`` -> 8, ``H100`` -> 1."""
    match = _GPU_PREFIX.match(shade_instance_type)
    return int(match.group(1)) if match else 1


def instance_gpus(instance: InstanceSpec) -> int | None:
    """GPUs the instance gets, or None when its placement envelope does not say.

    A fixed instance counts its type's GPUs; a placement envelope counts
    ``requirements.num_gpus``, else its first candidate's type.
    """
    if instance.shade_instance_type is not None:
        return gpu_count(instance.shade_instance_type)
    placement = instance.placement
    if placement is None:
        return None
    if placement.requirements is not None and placement.requirements.num_gpus is not None:
        return placement.requirements.num_gpus
    if placement.candidates:
        return gpu_count(placement.candidates[0].shade_instance_type)
    return None


def count_gpus(instances: Iterable[InstanceSpec]) -> str:
    """``"16 GPUs"``, or ``"at least 9 GPUs"`` when some envelope leaves the count open (each
    such instance counts as one)."""
    counts = [instance_gpus(instance) for instance in instances]
    total = sum(1 if count is None else count for count in counts)
    text = _count(total, "GPU")
    return f"at least {text}" if None in counts else text


def write_summary(fleets: Sequence[Fleet], stream: TextIO) -> None:
    """One line per fleet, then the totals."""
    rows = [
        (
            fleet.source,
            fleet.name,
            _count(len(fleet.instances), "instance"),
            count_gpus(fleet.instances),
            _resources(fleet),
        )
        for fleet in fleets
    ]
    widths = [max((len(row[column]) for row in rows), default=0) for column in range(5)]
    for row in rows:
        cells = [
            cell.ljust(width) if n < 2 else cell.rjust(width)
            for n, (cell, width) in enumerate(zip(row, widths, strict=True))
        ]
        stream.write("  ".join(cells).rstrip() + "\n")
    instances = sum(len(fleet.instances) for fleet in fleets)
    gpus = count_gpus(i for f in fleets for i in f.instances)
    volumes = sum(len(f.volumes) for f in fleets)
    keys = sum(len(f.ssh_keys) for f in fleets)
    extra = (f", {_count(volumes, 'volume')}" if volumes else "") + (
        f", {_count(keys, 'SSH key')}" if keys else ""
    )
    stream.write(
        f"OK: {_count(len(fleets), 'fleet')}, {_count(instances, 'instance')}, {gpus}{extra}\n"
    )


def _resources(fleet: Fleet) -> str:
    """``1 volume (2000 GB), 1 SSH key``, or nothing when the fleet has neither."""
    parts = []
    if fleet.volumes:
        size = sum(v.size_in_gb for v in fleet.volumes)
        parts.append(f"{_count(len(fleet.volumes), 'volume')} ({size:,} GB)")
    if fleet.ssh_keys:
        parts.append(_count(len(fleet.ssh_keys), "SSH key"))
    return ", ".join(parts)


def _count(number: int, noun: str) -> str:
    return f"{number} {noun}{'' if number == 1 else 's'}"


@cli.command()
@click.argument("paths", nargs=-1, type=click.Path(path_type=Path))
@manifest_options
def validate(paths: tuple[Path, ...], **manifest_kwargs: Unpack[ManifestOptions]) -> None:
    """Check fleet manifests (files or directories; default specs/) without touching Shadeform.

    Prints a summary, or every problem found with its file, line and field (exit code 3).
    """
    fleets = load_from_cli(paths, **manifest_kwargs)
    write_summary(fleets, sys.stdout)


@cli.command()
def schema() -> None:
    """Print the JSON Schema of the manifest language (for editors' completion and checks)."""
    click.echo(render_schema(), nl=False)


def render_schema() -> str:
    """The schema text exactly as ``reconciler schema`` prints it (and specs/schema.json holds)."""
    return json.dumps(manifest_json_schema(), indent=2, ensure_ascii=False) + "\n"
