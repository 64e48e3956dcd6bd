"""Command-line input is checked before anything runs: a typo is exit 64, never a no-op."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from reconciler.cli import cli
from reconciler.cli.app import _register_commands
from reconciler.emulator import Emulator, EmulatorConfig
from reconciler.emulator.config import EndpointFaults

_register_commands()


def invoke(args: list[str], env: dict[str, str]) -> Result:
    return CliRunner().invoke(cli, args, env=env, catch_exceptions=False)


def common(manifests: Path, state_dir: Path) -> list[str]:
    return [str(manifests), "--sandbox", "--state-dir", str(state_dir)]


@pytest.mark.parametrize(
    "backend",
    [
        "postgresql//ci:hunter2-pw@db/fleets",
        "postgres:ci:hunter2-pw@db/fleets",
        "host=db dbname=fleets password=hunter2-pw",
    ],
)
def test_a_backend_that_is_neither_url_nor_path_is_refused(
    workspace, sandbox_env, tmp_path: Path, backend: str
) -> None:
    manifests, state_dir, _ = workspace
    result = invoke(["plan", *common(manifests, state_dir), "--backend", backend], sandbox_env)
    assert result.exit_code == 64, result.output
    assert "hunter2-pw" not in result.output
    assert not any(p.name.startswith(("postgres", "host")) for p in Path.cwd().iterdir())


@pytest.mark.parametrize(
    ("flag", "selector", "hint"),
    [
        ("--target", "web/apii-0", "did you mean 'web/api-0'?"),
        ("--target", "wbe", "did you mean 'web'?"),
        ("--replace", "web/ap", "did you mean 'web/api'?"),
    ],
)
def test_a_selector_that_names_nothing_is_a_usage_error(
    workspace, sandbox_env, flag: str, selector: str, hint: str
) -> None:
    manifests, state_dir, _ = workspace
    result = invoke(["plan", *common(manifests, state_dir), flag, selector], sandbox_env)
    assert result.exit_code == 64, result.output
    assert f"{flag} {selector} names no fleet or address" in result.output
    assert hint in result.output


@pytest.mark.parametrize("selector", ["web", "web/api", "web/api-1"])
def test_selectors_naming_a_fleet_a_group_or_an_address_are_fine(
    workspace, sandbox_env, selector: str
) -> None:
    manifests, state_dir, _ = workspace
    result = invoke(["plan", *common(manifests, state_dir), "--target", selector], sandbox_env)
    assert result.exit_code == 0, result.output


@pytest.mark.parametrize("grace", ["-5", "nan", "inf", "-inf", "soon"])
def test_a_bad_intent_grace_is_a_usage_error(workspace, sandbox_env, grace: str) -> None:
    manifests, state_dir, _ = workspace
    result = invoke(["plan", *common(manifests, state_dir), "--intent-grace", grace], sandbox_env)
    assert result.exit_code == 64, result.output
    assert "--intent-grace" in result.output


@pytest.mark.parametrize("grace", ["0", "0.5", "90", "2m"])
def test_intent_grace_takes_seconds_or_a_duration(workspace, sandbox_env, grace: str) -> None:
    manifests, state_dir, _ = workspace
    result = invoke(["plan", *common(manifests, state_dir), "--intent-grace", grace], sandbox_env)
    assert result.exit_code == 0, result.output


def test_backend_init_without_psycopg_gives_the_install_command() -> None:
    code = (
        "import sys; sys.modules['psycopg'] = None; "
        "sys.argv = ['reconciler', 'backend', 'init', '--backend', 'postgresql://u@127.0.0.1/db']; "
        "from reconciler.cli import main; main()"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 64, done.stderr
    assert "pip install 'shadeform-reconciler[postgres]'" in done.stderr
    assert "Internal error" not in done.stderr


def test_no_coroutine_is_left_unawaited_when_a_read_fails(tmp_path: Path) -> None:
    """The catalog read failing while refresh connects used to leave httpx's connection
    attempt unawaited (a RuntimeWarning after the error)."""
    emulator = Emulator(EmulatorConfig(api_key="key-for-this-test", boot_seconds=0.0))
    emulator.faults.endpoints["InstancesTypes"] = EndpointFaults(
        error_rate=1.0, error_statuses=(500,)
    )
    (tmp_path / "m.yaml").write_text(
        "fleet: f\ninstances:\n  - {name: a, cloud: hyperstack, region: canada-1,"
        " shade_instance_type: A6000, shade_cloud: true}\n"
    )
    with emulator.serve_in_thread() as url:
        env = dict(
            os.environ,
            SHADEFORM_API_KEY="key-for-this-test",
            SHADEFORM_API_URL=url,
            PYTHONWARNINGS="always",
        )
        args = [sys.executable, "-m", "reconciler", "plan", str(tmp_path / "m.yaml")]
        args += ["--state-dir", str(tmp_path / "state")]
        done = subprocess.run(args, env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 6, done.stderr
    assert "Shadeform had a server error after 5 attempts" in done.stderr
    assert "never awaited" not in done.stderr and "Warning" not in done.stderr


def test_exclude_leaves_addresses_out_and_a_typo_is_refused(workspace, sandbox_env) -> None:
    manifests, state_dir, _ = workspace
    result = invoke(["plan", *common(manifests, state_dir), "--exclude", "web/api-0"], sandbox_env)
    assert result.exit_code == 0, result.output
    assert "Left out (--exclude): web/api-0" in result.output
    assert "+ web/api-1" in result.output and "+ web/api-0" not in result.output
    typo = invoke(["plan", *common(manifests, state_dir), "--exclude", "web/api-9"], sandbox_env)
    assert typo.exit_code == 64 and "--exclude web/api-9 names no fleet or address" in typo.output
