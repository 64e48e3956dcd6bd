"""``reconciler output`` and ``reconciler ssh``: reaching the machines after an apply."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from pathlib import Path

from click.testing import CliRunner, Result

from reconciler.cli import cli
from reconciler.cli.app import _register_commands

_register_commands()


def invoke(args: list[str], env: dict[str, str]) -> Result:
    return CliRunner().invoke(cli, args, env=env, catch_exceptions=False)


def applied(workspace, sandbox_env) -> tuple[Path, Path]:  # type: ignore[no-untyped-def]
    manifests, state_dir, _ = workspace
    args = ["apply", str(manifests), "--sandbox", "--state-dir", str(state_dir), "--auto-approve"]
    assert invoke(args, sandbox_env).exit_code == 0
    return manifests, state_dir


def test_output_shows_how_to_reach_each_instance(workspace, sandbox_env) -> None:
    manifests, state_dir = applied(workspace, sandbox_env)
    common = [str(manifests), "--sandbox", "--state-dir", str(state_dir)]
    table = invoke(["output", *common], sandbox_env)
    assert table.exit_code == 0, table.output
    header, *rows = table.output.splitlines()
    assert header.split() == ["ADDRESS", "ID", "STATUS", "IP", "SSH", "$/H"]
    assert [r.split()[0] for r in rows] == ["web/api-0", "web/api-1"]
    data = json.loads(invoke(["output", *common, "--json"], sandbox_env).output)
    assert data["kind"] == "reconciler-output"
    first = data["instances"][0]
    assert first["address"] == "web/api-0" and first["status"] == "active"
    assert first["ip"] and first["ssh_user"] == "shadeform" and first["ssh_port"] == 22
    assert first["hourly_price_cents"] == 80
    assert f"{first['ssh_user']}@{first['ip']} -p 22" in table.output
    inventory = json.loads(invoke(["output", *common, "--ansible"], sandbox_env).output)
    assert inventory["all"]["children"] == ["fleet_web"]
    assert inventory["fleet_web"]["hosts"] == ["web__api_0", "web__api_1"]
    hostvars = inventory["_meta"]["hostvars"]["web__api_0"]
    assert hostvars["ansible_host"] == first["ip"] and hostvars["reconciler_address"] == "web/api-0"


def test_refresh_records_ip_and_ssh_in_the_state(workspace, sandbox_env) -> None:
    manifests, state_dir = applied(workspace, sandbox_env)
    done = invoke(
        ["refresh", str(manifests), "--sandbox", "--state-dir", str(state_dir)], sandbox_env
    )
    assert done.exit_code == 0, done.output
    live = json.loads((state_dir / "web.json").read_text())["instances"]["web/api-0"]["live"]
    assert live["ip"] and live["ssh_user"] == "shadeform" and live["ssh_port"] == 22


def test_ssh_runs_ssh_with_the_right_user_port_and_ip(workspace, sandbox_env, tmp_path: Path):
    manifests, state_dir = applied(workspace, sandbox_env)
    common = ["--path", str(manifests), "--sandbox", "--state-dir", str(state_dir)]
    ip = json.loads(
        invoke(["output", str(manifests), "--sandbox", "--state-dir", str(state_dir), "--json"],
               sandbox_env).output
    )["instances"][0]["ip"]  # fmt: skip
    printed = invoke(
        ["ssh", "web/api-0", *common, "--print", "--", "nvidia-smi", "-L"], sandbox_env
    )
    assert printed.exit_code == 0, printed.output
    assert printed.output.strip() == f"ssh -p 22 -l shadeform -- {ip} nvidia-smi -L"
    # Run for real, with a recording ssh first on PATH.
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    fake = bin_dir / "ssh"
    fake.write_text(f'#!/bin/sh\nprintf "%s\\n" "$@" > {tmp_path / "argv"}\n')
    fake.chmod(fake.stat().st_mode | stat.S_IEXEC)
    env = {**sandbox_env, "PATH": f"{bin_dir}:{os.environ['PATH']}"}
    done = subprocess.run(
        [sys.executable, "-m", "reconciler", "ssh", "web/api-1", *common, "--", "uptime"],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr
    argv = (tmp_path / "argv").read_text().split()
    assert argv[:5] == ["-p", "22", "-l", "shadeform", "--"] and argv[-1] == "uptime"


def test_ssh_to_an_unknown_address_suggests_the_right_one(workspace, sandbox_env) -> None:
    manifests, state_dir = applied(workspace, sandbox_env)
    args = [
        "ssh",
        "web/api-9",
        "--path",
        str(manifests),
        "--sandbox",
        "--state-dir",
        str(state_dir),
    ]
    done = invoke(args, sandbox_env)
    assert (
        done.exit_code == 64
        and "is not an instance in the state; did you mean 'web/api-" in done.output
    )


def test_hostile_addresses_from_the_api_never_reach_ssh_as_options() -> None:
    """An ip or user starting with "-" would be read by ssh as an option (-oProxyCommand=...
    runs a command on the operator's machine): refresh drops such values."""
    from reconciler.engine.refresh import safe_host, safe_user

    assert safe_host("-oProxyCommand=touch /tmp/x") is None
    assert safe_host("1.2.3.4") == "1.2.3.4" and safe_host("2001:db8::1") == "2001:db8::1"
    assert safe_host("gpu-1.example.com") == "gpu-1.example.com"
    assert safe_host("a b") is None and safe_host("") is None
    assert safe_user("-oProxyCommand=id") is None and safe_user("ubuntu") == "ubuntu"
    assert safe_user("root;id") is None
