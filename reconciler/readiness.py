"""Readiness commands: what "serving" means beyond ``active`` for a replica (I/O at the edge).

A manifest's ``readiness.command`` is a program committed inside the manifest's tree (the
loader checks that) and its arguments. It runs without a shell, from the manifest's
directory, with a minimal environment: ``PATH``, ``HOME``, ``LANG`` and what it needs to reach
the new replica, ``ADDRESS``, ``INSTANCE_ID``, ``IP``, ``SSH_USER``, ``SSH_PORT``. None of the
reconciler's own environment (the API key, CI secrets) is passed on. Exit 0 means serving.

A manifest must not make the reconciler run anything on its own: ``plan`` never runs these,
and ``apply`` only with ``--allow-readiness-commands`` (a person's explicit word that the
manifests were reviewed). See docs/rollouts.md and docs/security.md.
"""

from __future__ import annotations

import asyncio
import os
import signal
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from reconciler.manifest.containment import manifest_tree
from reconciler.models.spec import Readiness

OUTPUT_LIMIT = 300
"""Characters of a failed command's output kept for the message (its last ones)."""


@dataclass(frozen=True)
class ProbeTarget:
    """The replica a readiness command checks."""

    address: str
    instance_id: str
    ip: str | None
    ssh_user: str | None
    ssh_port: int | None


@dataclass(frozen=True)
class ProbeResult:
    ok: bool
    detail: str = ""


class ReadinessProbe(Protocol):
    async def __call__(
        self, readiness: Readiness, manifest_dir: Path, target: ProbeTarget, timeout: float
    ) -> ProbeResult:
        """Run one check of ``target``, within ``timeout`` seconds."""
        ...


def probe_environment(target: ProbeTarget) -> dict[str, str]:
    """The whole environment a readiness command gets."""
    return {
        "PATH": os.environ.get("PATH", "/usr/local/bin:/usr/bin:/bin"),
        "HOME": os.environ.get("HOME", "/"),
        "LANG": "C.UTF-8",
        "ADDRESS": target.address,
        "INSTANCE_ID": target.instance_id,
        "IP": target.ip or "",
        "SSH_USER": target.ssh_user or "",
        "SSH_PORT": str(target.ssh_port) if target.ssh_port else "",
    }


async def run_readiness_command(
    readiness: Readiness, manifest_dir: Path, target: ProbeTarget, timeout: float
) -> ProbeResult:
    """Run the command once; a timeout kills it (and what it started) and counts as a fail."""
    try:
        program = (manifest_dir / readiness.command[0]).resolve(strict=True)
    except (OSError, RuntimeError) as exc:  # gone, or a symlink loop since the manifest loaded
        return ProbeResult(False, f"{readiness.command[0]} cannot be opened: {exc}")
    # The loader's rule, checked again: a sidecar pulling the repository may have replaced
    # the file since (the tree: the manifest's git work tree, else its directory).
    tree = manifest_tree(manifest_dir / readiness.command[0], given=manifest_dir)
    if not program.is_relative_to(tree):
        return ProbeResult(False, f"{readiness.command[0]} now leads out of the manifest's tree")
    if not program.is_file():
        return ProbeResult(False, f"{readiness.command[0]} is not a file")
    if not os.access(program, os.X_OK):
        return ProbeResult(False, f"{readiness.command[0]} is not executable (chmod +x it)")
    try:
        process = await asyncio.create_subprocess_exec(
            str(program),
            *readiness.command[1:],
            cwd=manifest_dir,
            env=probe_environment(target),
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
            start_new_session=True,
        )
    except OSError as exc:
        return ProbeResult(False, f"could not run {readiness.command[0]}: {exc.strerror}")
    try:
        output, _ = await asyncio.wait_for(process.communicate(), timeout)
    except TimeoutError:
        _kill_group(process)
        await process.wait()
        return ProbeResult(False, f"{readiness.command[0]} did not finish within {timeout:g}s")
    except asyncio.CancelledError:
        _kill_group(process)
        raise
    text = output.decode("utf-8", "replace").strip()
    if process.returncode == 0:
        return ProbeResult(True, text[-OUTPUT_LIMIT:])
    last = text[-OUTPUT_LIMIT:] if text else "no output"
    return ProbeResult(False, f"{readiness.command[0]} exited {process.returncode}: {last}")


def _kill_group(process: asyncio.subprocess.Process) -> None:
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
