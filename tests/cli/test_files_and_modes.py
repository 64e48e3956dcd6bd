"""Files the CLI makes are private whatever the umask; a lost state file is never papered over."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from reconciler.cli import cli
from reconciler.cli.app import _register_commands

_register_commands()


def invoke(args: list[str], env: dict[str, str]) -> Result:
    return CliRunner().invoke(cli, args, env=env, catch_exceptions=False)


@pytest.fixture
def open_umask() -> Iterator[None]:
    previous = os.umask(0)
    try:
        yield
    finally:
        os.umask(previous)


def mode_of(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_sandbox_folder_and_saved_plan_are_private_under_umask_0(
    workspace, sandbox_env, tmp_path: Path, open_umask: None
) -> None:
    manifests, state_dir, _ = workspace
    out = tmp_path / "plans" / "web.tfplan"
    args = ["plan", str(manifests), "--sandbox", "--state-dir", str(state_dir), "--out", str(out)]
    result = invoke(args, sandbox_env)
    assert result.exit_code == 0, result.output
    assert mode_of(state_dir) == 0o700
    assert mode_of(state_dir / "sandbox-cloud.json") == 0o600
    assert mode_of(out) == 0o600
    assert mode_of(out.parent) == 0o700
    assert [p.name for p in out.parent.iterdir()] == ["web.tfplan"]  # no temp file left


def test_a_deleted_state_file_is_refused_until_restored_or_new_state(workspace, sandbox_env):
    manifests, state_dir, _ = workspace
    common = [str(manifests), "--sandbox", "--state-dir", str(state_dir)]
    assert invoke(["apply", *common, "--auto-approve"], sandbox_env).exit_code == 0
    invoke(["apply", *common, "--auto-approve", "--replace", "web/api-0"], sandbox_env)
    (state_dir / "web.json").unlink()
    refused = invoke(["plan", *common], sandbox_env)
    assert refused.exit_code == 4, refused.output
    assert f"cp {state_dir / 'web.json.backup'} {state_dir / 'web.json'}" in refused.output
    anew = invoke(["plan", *common, "--new-state"], sandbox_env)
    assert anew.exit_code == 0, anew.output
    assert "adopted orphan" in anew.output  # the instances are found again by their tags
