"""Readiness commands run for real: no shell, from the manifest's directory, with only the
environment they are meant to get; a hang is killed."""

from __future__ import annotations

import asyncio
import json
import os
import stat
from pathlib import Path

import pytest

from reconciler.models.spec import Readiness
from reconciler.readiness import ProbeTarget, run_readiness_command

TARGET = ProbeTarget(
    address="inference/mistral-0",
    instance_id="i-1",
    ip="203.0.113.7",
    ssh_user="shadeform",
    ssh_port=2222,
)


def script(directory: Path, name: str, body: str) -> Path:
    path = directory / name
    path.write_text("#!/bin/sh\n" + body, encoding="utf-8")
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return path


def run(directory: Path, *command: str, timeout: float = 5.0):
    readiness = Readiness(command=command, timeout_seconds=60, interval_seconds=1)
    return asyncio.run(run_readiness_command(readiness, directory, TARGET, timeout))


def test_it_gets_the_replica_and_nothing_of_the_reconcilers_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SHADEFORM_API_KEY", "sk-live-do-not-leak")
    monkeypatch.setenv("GITHUB_TOKEN", "ghp-do-not-leak")
    script(
        tmp_path,
        "ready.sh",
        'python3 -c "import json, os; print(json.dumps(dict(os.environ)))" > env.json\n'
        'pwd > cwd.txt\nprintf "%s\\n" "$@" > args.txt\n',
    )
    result = run(tmp_path, "ready.sh", "--port", "8000", "$HOME; rm -rf /")
    assert result.ok, result.detail
    env = json.loads((tmp_path / "env.json").read_text())
    assert {k: env[k] for k in ("ADDRESS", "INSTANCE_ID", "IP", "SSH_USER", "SSH_PORT")} == {
        "ADDRESS": "inference/mistral-0",
        "INSTANCE_ID": "i-1",
        "IP": "203.0.113.7",
        "SSH_USER": "shadeform",
        "SSH_PORT": "2222",
    }
    assert "SHADEFORM_API_KEY" not in env and "GITHUB_TOKEN" not in env
    assert not any("do-not-leak" in v for v in env.values())
    assert Path((tmp_path / "cwd.txt").read_text().strip()) == tmp_path.resolve()
    assert (tmp_path / "args.txt").read_text().splitlines() == [
        "--port",
        "8000",
        "$HOME; rm -rf /",
    ], "arguments are passed as they are, never through a shell"


def test_a_failing_command_reports_its_exit_code_and_last_output(tmp_path: Path) -> None:
    script(tmp_path, "ready.sh", "echo warming up\necho 'HTTP 503' >&2\nexit 3\n")
    result = run(tmp_path, "ready.sh")
    assert not result.ok
    assert result.detail.startswith("ready.sh exited 3:") and "HTTP 503" in result.detail


def test_a_hanging_command_is_killed_with_what_it_started(tmp_path: Path) -> None:
    marker = tmp_path / "child.pid"
    script(tmp_path, "ready.sh", f"sleep 30 &\necho $! > {marker}\nwait\n")
    result = run(tmp_path, "ready.sh", timeout=0.5)
    assert not result.ok and "did not finish within 0.5s" in result.detail
    child = int(marker.read_text())
    for _ in range(50):
        if not _alive(child):
            break
        asyncio.run(asyncio.sleep(0.02))
    else:
        pytest.fail("the command's child survived the timeout")


def _alive(pid: int) -> bool:
    """Running (a killed child whose parent died too may linger as a zombie: not alive)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return False
    return fields[0] != "Z"


def test_a_program_that_is_not_executable_says_so(tmp_path: Path) -> None:
    (tmp_path / "ready.sh").write_text("#!/bin/sh\nexit 0\n")
    result = run(tmp_path, "ready.sh")
    assert not result.ok and "not executable (chmod +x it)" in result.detail
    assert "gone.sh cannot be opened" in run(tmp_path, "gone.sh").detail


def test_a_program_swapped_for_a_link_out_of_the_tree_is_refused(tmp_path: Path) -> None:
    """The loader checked the tree; a sidecar pulling the repository may change it later."""
    tree = tmp_path / "repo"
    (tree / ".git").mkdir(parents=True)
    outside = script(tmp_path, "evil.sh", "exit 0\n")
    (tree / "ready.sh").symlink_to(outside)
    result = run(tree, "ready.sh")
    assert not result.ok and "leads out of the manifest's tree" in result.detail
