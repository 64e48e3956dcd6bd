"""`reconciler cost` through click's CliRunner, in the sandbox."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner, Result

from reconciler.cli import cli
from reconciler.cli.app import _register_commands
from reconciler.state import open_store

_register_commands()


def invoke(args: list[str], env: dict[str, str]) -> Result:
    return CliRunner().invoke(cli, args, env=env, catch_exceptions=False)


def common(manifests: Path, state_dir: Path) -> list[str]:
    return [str(manifests), "--sandbox", "--state-dir", str(state_dir)]


def applied(workspace, sandbox_env) -> tuple[Path, Path]:  # type: ignore[no-untyped-def]
    manifests, state_dir, _ = workspace
    result = invoke(["apply", *common(manifests, state_dir), "--auto-approve"], sandbox_env)
    assert result.exit_code == 0, result.output
    return manifests, state_dir


def test_lists_each_instance_and_the_fleet_burn_rate(workspace, sandbox_env):
    manifests, state_dir = applied(workspace, sandbox_env)
    result = invoke(["cost", *common(manifests, state_dir)], sandbox_env)
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0] == "Fleet web:"
    assert lines[2].split() == [
        "ADDRESS",
        "INSTANCE",
        "STATUS",
        "CREATED",
        "(UTC)",
        "$/HOUR",
        "SPENT",
    ]
    for address in ("web/api-0", "web/api-1"):
        row = next(line for line in lines if line.startswith(f"  {address} "))
        assert row.split()[2] == "active" and row.split()[-2] == "$0.80"
    assert any(
        line.startswith("  Burn rate $1.60/h ($1,152.00 per 30 days); spent so far $")
        for line in lines
    )
    assert "s3cr3t-value" not in result.output


def test_json_gives_cents_per_instance_and_in_total(workspace, sandbox_env):
    manifests, state_dir = applied(workspace, sandbox_env)
    result = invoke(["cost", *common(manifests, state_dir), "--json"], sandbox_env)
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["kind"] == "reconciler-cost"
    fleet = data["fleets"][0]
    assert [i["address"] for i in fleet["instances"]] == ["web/api-0", "web/api-1"]
    assert all(i["hourly_cents"] == 80 and i["spent_cents"] >= 0 for i in fleet["instances"])
    assert data["total"]["hourly_cents"] == 160
    assert data["total"]["monthly_cents"] == 160 * 720


def test_reads_state_without_taking_the_lock(workspace, sandbox_env):
    manifests, state_dir = applied(workspace, sandbox_env)
    with open_store(state_dir).lock("web", command="reconciler apply (elsewhere)"):
        result = invoke(["cost", *common(manifests, state_dir)], sandbox_env)
    assert result.exit_code == 0, result.output
    assert "$1.60/h" in result.output


def test_instances_missing_from_state_still_count(workspace, sandbox_env):
    manifests, state_dir = applied(workspace, sandbox_env)
    (state_dir / "web.json").unlink()
    (state_dir / "web.json.backup").unlink(missing_ok=True)  # else the loss is refused
    result = invoke(["cost", *common(manifests, state_dir)], sandbox_env)
    assert result.exit_code == 0, result.output
    assert result.output.count("(not in state)") == 2
    assert "Burn rate $1.60/h" in result.output


def test_before_any_apply_there_is_nothing_to_pay(workspace, sandbox_env):
    manifests, state_dir, _ = workspace
    result = invoke(["cost", *common(manifests, state_dir)], sandbox_env)
    assert result.exit_code == 0, result.output
    assert result.output == "Fleet web: no instances.\n\n"


def test_without_key_or_sandbox_is_a_usage_error(workspace):
    manifests, state_dir, _ = workspace
    env = {"NO_COLOR": "1", "SHADEFORM_API_KEY": ""}
    result = invoke(["cost", str(manifests), "--state-dir", str(state_dir)], env)
    assert result.exit_code == 64
    assert "SHADEFORM_API_KEY" in result.output and "Traceback" not in result.output
