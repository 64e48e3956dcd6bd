"""plan --refresh-only, apply --refresh-only, plan --destroy and show FLEET, end to end."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from click.testing import CliRunner, Result

from reconciler.cli import cli
from reconciler.cli.app import _register_commands
from reconciler.emulator import Emulator, EmulatorConfig

_register_commands()
KEY = "refresh-only-test-key"


@pytest.fixture
def cloud() -> Iterator[tuple[Emulator, dict[str, str]]]:
    emulator = Emulator(EmulatorConfig(api_key=KEY, boot_seconds=0.0, delete_seconds=0.0))
    with emulator.serve_in_thread() as url:
        yield emulator, {"SHADEFORM_API_KEY": KEY, "SHADEFORM_API_URL": url, "NO_COLOR": "1"}


def invoke(args: list[str], env: dict[str, str]) -> Result:
    return CliRunner().invoke(cli, args, env=env, catch_exceptions=False)


def test_refresh_only_shows_drift_and_records_it(workspace, cloud) -> None:
    emulator, env = cloud
    manifests, state_dir, _ = workspace
    common = [str(manifests), "--state-dir", str(state_dir)]
    assert invoke(["apply", *common, "--auto-approve"], env).exit_code == 0
    quiet = invoke(["plan", *common, "--refresh-only", "--detailed-exitcode"], env)
    assert quiet.exit_code == 0 and "No drift" in quiet.output
    state = json.loads((state_dir / "web.json").read_text())
    first = state["instances"]["web/api-0"]["instance_id"]
    second = state["instances"]["web/api-1"]["instance_id"]
    emulator.delete_instance_out_of_band(first, immediate=True)
    (current,) = [i for i in emulator.live_instances() if i["id"] == second]
    tags = [*current["tags"], "edited-in-console"]
    emulator.retag_instance(second, tags)
    drift = invoke(["plan", *common, "--refresh-only", "--detailed-exitcode"], env)
    assert drift.exit_code == 2, drift.output
    assert f"! web/api-0 [{first}]: deleted outside the reconciler" in drift.output
    assert f"! web/api-1 [{second}]: changed outside the reconciler" in drift.output
    assert "edited-in-console" in drift.output
    assert "to create" not in drift.output  # drift only: no proposed changes
    data = json.loads(invoke(["plan", *common, "--refresh-only", "--json"], env).output)
    assert data["kind"] == "reconciler-drift" and data["has_drift"] is True
    recorded = invoke(["apply", *common, "--refresh-only", "--auto-approve"], env)
    assert recorded.exit_code == 0, recorded.output
    assert "forgot web/api-0 (gone)" in recorded.output
    records = json.loads((state_dir / "web.json").read_text())["instances"]
    assert set(records) == {"web/api-1"}  # the gone instance is no longer recorded
    assert "edited-in-console" in records["web/api-1"]["applied_spec"]["tags"]
    assert "edited-in-console" in records["web/api-1"]["live"]["tags"]
    # Recorded: the drift is gone (Terraform's refresh-only semantics) ...
    after = invoke(["plan", *common, "--refresh-only", "--detailed-exitcode"], env)
    assert after.exit_code == 0 and "No drift" in after.output
    # ... while plan still proposes what makes Shadeform match the manifests again.
    again = invoke(["plan", *common], env)
    assert "+ web/api-0" in again.output and "~ web/api-1" in again.output


def test_refresh_only_does_not_go_with_flags_that_change_infrastructure(workspace, cloud):
    _, env = cloud
    manifests, state_dir, _ = workspace
    common = [str(manifests), "--state-dir", str(state_dir), "--refresh-only"]
    for extra in (["--target", "web"], ["--replace", "web/api-0"], ["--allow-over-budget"]):
        done = invoke(["apply", *common, "--auto-approve", *extra], env)
        assert done.exit_code == 64 and "does not go with" in done.output, extra


def test_an_instance_being_deleted_is_not_drift(workspace, cloud) -> None:
    """Right after a destroy the instances are still `deleting`: that is not "unrecorded"."""
    emulator, env = cloud
    manifests, state_dir, _ = workspace
    slow = Emulator(EmulatorConfig(api_key=KEY, boot_seconds=0.0, delete_seconds=600.0))
    with slow.serve_in_thread() as url:
        env = {**env, "SHADEFORM_API_URL": url}
        common = [str(manifests), "--state-dir", str(state_dir)]
        assert invoke(["apply", *common, "--auto-approve"], env).exit_code == 0
        assert invoke(["destroy", *common, "--auto-approve"], env).exit_code == 0
        drift = invoke(["plan", *common, "--refresh-only", "--detailed-exitcode"], env)
    assert drift.exit_code == 0, drift.output


def test_plan_destroy_previews_a_destroy_without_deleting(workspace, cloud) -> None:
    emulator, env = cloud
    manifests, state_dir, _ = workspace
    common = [str(manifests), "--state-dir", str(state_dir)]
    assert invoke(["apply", *common, "--auto-approve"], env).exit_code == 0
    preview = invoke(["plan", *common, "--destroy", "--detailed-exitcode"], env)
    assert preview.exit_code == 2, preview.output
    assert "Destroy plan:" in preview.output and "2 to delete" in preview.output
    assert len(emulator.live_instances()) == 2


def test_show_a_fleet_state_for_people_and_as_json(workspace, cloud) -> None:
    _, env = cloud
    manifests, state_dir, _ = workspace
    assert invoke(["apply", str(manifests), "--state-dir", str(state_dir), "--auto-approve"], env)
    human = invoke(["show", "web", "--state-dir", str(state_dir)], env)
    assert human.exit_code == 0, human.output
    assert human.output.startswith("Fleet web (lineage ")
    assert "A6000 on_demand in hyperstack/canada-1" in human.output
    data = json.loads(invoke(["show", "web", "--json", "--state-dir", str(state_dir)], env).output)
    (fleet,) = data["fleets"]
    assert fleet["fingerprint_key"] == "(hidden)" and set(fleet["instances"]) == {
        "web/api-0",
        "web/api-1",
    }
    every = invoke(["show", "--state-dir", str(state_dir)], env)
    assert every.exit_code == 0 and "Fleet web" in every.output
    missing = invoke(["show", "nope", "--state-dir", str(state_dir)], env)
    assert missing.exit_code == 64 and "no state" in missing.output
