"""Exit codes and words tell the truth while work is pending, blocked or without capacity."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

from click.testing import CliRunner, Result

from reconciler.cli import cli
from reconciler.cli.app import _register_commands
from reconciler.views.human import NO_CHANGES

_register_commands()


def invoke(args: list[str], env: dict[str, str]) -> Result:
    return CliRunner().invoke(cli, args, env=env, catch_exceptions=False)


def common(manifests: Path, state_dir: Path) -> list[str]:
    return [str(manifests), "--sandbox", "--state-dir", str(state_dir)]


def _leave_a_pending_create(state_dir: Path, address: str) -> None:
    """What a killed apply leaves: an intent recorded, its create never answered."""
    path = state_dir / "web.json"
    state = json.loads(path.read_text())
    now = datetime.now(UTC).isoformat().replace("+00:00", "Z")
    state["intents"]["i-killed"] = {
        "intent_id": "i-killed",
        "address": address,
        "created_at": now,
        "request_sent": False,
    }
    path.write_text(json.dumps(state))


def test_a_pending_create_is_drift_not_a_match(workspace, sandbox_env):
    manifests, state_dir, write = workspace
    assert (
        invoke(["apply", *common(manifests, state_dir), "--auto-approve"], sandbox_env).exit_code
        == 0
    )
    write(replicas=3)
    _leave_a_pending_create(state_dir, "web/api-2")
    plan = invoke(["plan", *common(manifests, state_dir), "--detailed-exitcode"], sandbox_env)
    assert plan.exit_code == 2, plan.output
    assert "match" not in plan.output and NO_CHANGES not in plan.output
    assert "Not in sync: 1 waiting for a create sent earlier" in plan.output
    assert "it is released in" in plan.output and "--intent-grace" in plan.output
    data = json.loads(invoke(["plan", *common(manifests, state_dir), "--json"], sandbox_env).output)
    assert data["summary"]["pending"] == ["web/api-2"]
    assert data["summary"]["in_sync"] is False
    (blocked,) = data["fleets"][0]["blocked"]
    assert blocked["kind"] == "pending_create" and 0 < blocked["resolves_in_seconds"] <= 60


def test_apply_waits_for_the_pending_create_then_finishes(workspace, sandbox_env):
    manifests, state_dir, write = workspace
    assert (
        invoke(["apply", *common(manifests, state_dir), "--auto-approve"], sandbox_env).exit_code
        == 0
    )
    write(replicas=3)
    _leave_a_pending_create(state_dir, "web/api-2")
    args = ["apply", *common(manifests, state_dir), "--auto-approve", "--intent-grace", "1.5"]
    applied = invoke(args, sandbox_env)
    assert applied.exit_code == 0, applied.output
    assert "Waiting for 1 create(s) sent by an earlier run (web/api-2)" in applied.output
    assert "Apply complete: 1 created" in applied.output
    state = json.loads((state_dir / "web.json").read_text())
    assert state["intents"] == {} and "web/api-2" in state["instances"]
    again = invoke(["plan", *common(manifests, state_dir), "--detailed-exitcode"], sandbox_env)
    assert again.exit_code == 0 and NO_CHANGES in again.output


def test_a_plan_without_capacity_never_says_no_changes(workspace, sandbox_env):
    manifests, state_dir, write = workspace
    envelope = (
        "placement: {requirements: {gpu_type: A6000, max_hourly_price: '0.01'}}"  # none that cheap
    )
    write(
        **{
            "  cloud: hyperstack\n  region: canada-1\n  shade_instance_type: A6000\n": "",
            "  shade_cloud: true\n": f"  shade_cloud: true\n  {envelope}\n",
        }
    )
    plan = invoke(["plan", *common(manifests, state_dir)], sandbox_env)
    assert plan.exit_code == 9, plan.output
    assert "No changes" not in plan.output
    assert "Not in sync: 2 without capacity" in plan.output


def test_a_typo_in_the_offer_is_a_manifest_error_with_a_hint(workspace, sandbox_env):
    manifests, state_dir, write = workspace
    for old, new, hint in [
        ("shade_instance_type: A6000", "shade_instance_type: A6001", "did you mean 'A6000'?"),
        ("cloud: hyperstack", "cloud: hyperstak", "did you mean 'hyperstack'?"),
        ("region: canada-1", "region: canada-2", "did you mean 'canada-1'?"),
    ]:
        write(**{old: new})
        plan = invoke(["plan", *common(manifests, state_dir)], sandbox_env)
        assert plan.exit_code == 3, plan.output
        assert f"web.yaml:{_line_of(manifests, 'name: api')}:" in plan.output
        assert "web/api-0, web/api-1:" in plan.output and hint in plan.output
        assert "no capacity" not in plan.output.lower()


def _line_of(manifests: Path, text: str) -> int:
    lines = (manifests / "web.yaml").read_text().splitlines()
    return next(i for i, line in enumerate(lines, 1) if text in line)
