"""plan / apply / show / destroy / refresh / import through click's CliRunner, in the sandbox."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner, Result

from reconciler.cli import cli
from reconciler.cli.app import _register_commands

_register_commands()


def invoke(args: list[str], env: dict[str, str], input: str | None = None) -> Result:
    return CliRunner().invoke(cli, args, env=env, input=input, catch_exceptions=False)


def common(manifests: Path, state_dir: Path) -> list[str]:
    return [str(manifests), "--sandbox", "--state-dir", str(state_dir)]


def test_apply_then_detailed_exitcode_zero_and_state_written(workspace, sandbox_env):
    manifests, state_dir, _ = workspace
    result = invoke(["apply", *common(manifests, state_dir), "--auto-approve"], sandbox_env)
    assert result.exit_code == 0, result.output
    assert "Apply complete: 2 created" in result.output
    state = json.loads((state_dir / "web.json").read_text())
    assert set(state["instances"]) == {"web/api-0", "web/api-1"}
    assert (state_dir / "web.json").stat().st_mode & 0o777 == 0o600
    again = invoke(["plan", *common(manifests, state_dir), "--detailed-exitcode"], sandbox_env)
    assert again.exit_code == 0, again.output
    assert "No changes" in again.output


def test_secret_never_reaches_output_state_or_plan_file(workspace, sandbox_env, tmp_path):
    manifests, state_dir, _ = workspace
    out = tmp_path / "plan.json"
    result = invoke(["plan", *common(manifests, state_dir), "--out", str(out)], sandbox_env)
    applied = invoke(["apply", *common(manifests, state_dir), "--auto-approve"], sandbox_env)
    for text in (
        result.output,
        applied.output,
        out.read_text(),
        (state_dir / "web.json").read_text(),
    ):
        assert "s3cr3t-value" not in text


def test_edit_shows_update_then_replacement(workspace, sandbox_env):
    manifests, state_dir, write = workspace
    invoke(["apply", *common(manifests, state_dir), "--auto-approve"], sandbox_env)
    write(**{"tags: [team-web]": "tags: [team-web, prod]"})
    plan = invoke(["plan", *common(manifests, state_dir), "--detailed-exitcode"], sandbox_env)
    assert plan.exit_code == 2
    assert "~ web/api-0" in plan.output and "0 to replace" in plan.output
    write(**{"shade_instance_type: A6000": "shade_instance_type: H100"})
    plan = invoke(["plan", *common(manifests, state_dir), "--json"], sandbox_env)
    data = json.loads(plan.output)
    assert {c["action"] for c in data["fleets"][0]["changes"]} == {"replace"}
    secret_change = invoke(
        ["plan", *common(manifests, state_dir)], {**sandbox_env, "WEB_TOKEN": "other"}
    )
    assert "(sensitive)" in secret_change.output and "other" not in secret_change.output.replace(
        "another", ""
    )


def test_saved_plan_applies_exactly_and_stale_plan_is_refused(workspace, sandbox_env, tmp_path):
    manifests, state_dir, write = workspace
    out = tmp_path / "web.tfplan"
    assert (
        invoke(["plan", *common(manifests, state_dir), "--out", str(out)], sandbox_env).exit_code
        == 0
    )
    shown = invoke(["show", str(out)], sandbox_env)
    assert "Plan: 2 to create" in shown.output
    applied = invoke(["apply", str(out), "--state-dir", str(state_dir)], sandbox_env)
    assert applied.exit_code == 0, applied.output
    # Applying the same plan again: the state moved on (serial changed).
    stale = invoke(["apply", str(out), "--state-dir", str(state_dir)], sandbox_env)
    assert stale.exit_code == 7 and "Stale plan" in stale.output
    # A plan made, then manifests edited: refused too.
    write(replicas=3)
    invoke(["plan", *common(manifests, state_dir), "--out", str(out)], sandbox_env)
    write(replicas=4)
    stale = invoke(["apply", str(out), "--state-dir", str(state_dir)], sandbox_env)
    assert stale.exit_code == 7 and "manifests changed" in stale.output


def test_apply_refuses_to_prompt_without_terminal(workspace, sandbox_env):
    manifests, state_dir, _ = workspace
    result = invoke(["apply", *common(manifests, state_dir)], sandbox_env)
    assert result.exit_code == 64
    assert "--auto-approve" in result.output


def test_destroy_deletes_everything(workspace, sandbox_env):
    manifests, state_dir, _ = workspace
    invoke(["apply", *common(manifests, state_dir), "--auto-approve"], sandbox_env)
    result = invoke(["destroy", *common(manifests, state_dir), "--auto-approve"], sandbox_env)
    assert result.exit_code == 0, result.output
    assert "2 deleted" in result.output
    assert json.loads((state_dir / "web.json").read_text())["instances"] == {}


def test_prevent_destroy_fails_plan_with_policy_exit_code(workspace, sandbox_env):
    manifests, state_dir, write = workspace
    write(**{"    replicas: 2\n": "    replicas: 2\n    lifecycle: {prevent_destroy: true}\n"})
    invoke(["apply", *common(manifests, state_dir), "--auto-approve"], sandbox_env)
    result = invoke(["destroy", *common(manifests, state_dir), "--auto-approve"], sandbox_env)
    assert result.exit_code == 8 and "prevent_destroy" in result.output
    detailed = invoke(
        ["plan", *common(manifests, state_dir), "--replace", "web/api-0", "--detailed-exitcode"],
        sandbox_env,
    )
    assert detailed.exit_code == 1  # every error is 1 with -detailed-exitcode


def test_manifest_error_exit_code_and_no_traceback(workspace, sandbox_env):
    manifests, state_dir, write = workspace
    write(**{"shade_cloud: true": "shade_cloud: true\n  bogus_key: 1"})
    result = invoke(["plan", *common(manifests, state_dir)], sandbox_env)
    assert result.exit_code == 3
    assert "web.yaml:" in result.output and "bogus_key" in result.output
    assert "Traceback" not in result.output
    detailed = invoke(["plan", *common(manifests, state_dir), "--detailed-exitcode"], sandbox_env)
    assert detailed.exit_code == 1


def test_without_key_or_sandbox_explains_how_to_choose(workspace):
    manifests, state_dir, _ = workspace
    result = invoke(
        ["plan", str(manifests), "--state-dir", str(state_dir)], {"SHADEFORM_API_KEY": ""}
    )
    assert result.exit_code == 64
    assert "--sandbox" in result.output and "SHADEFORM_API_KEY" in result.output


def test_markdown_plan(workspace, sandbox_env):
    manifests, state_dir, _ = workspace
    result = invoke(["plan", *common(manifests, state_dir), "--markdown"], sandbox_env)
    assert result.exit_code == 0
    assert "| web | 2 |" in result.output and "<details>" in result.output


def test_refresh_records_live_attributes(workspace, sandbox_env):
    manifests, state_dir, _ = workspace
    invoke(["apply", *common(manifests, state_dir), "--auto-approve"], sandbox_env)
    result = invoke(["refresh", *common(manifests, state_dir)], sandbox_env)
    assert result.exit_code == 0, result.output
    record = json.loads((state_dir / "web.json").read_text())["instances"]["web/api-0"]
    assert record["live"]["status"] == "active" and record["refreshed_at"]


def test_import_adopts_and_tags_an_existing_instance(workspace, sandbox_env):
    manifests, state_dir, _ = workspace
    invoke(["apply", *common(manifests, state_dir), "--auto-approve"], sandbox_env)
    record = json.loads((state_dir / "web.json").read_text())["instances"]["web/api-1"]
    assert (
        invoke(["state", "rm", "web/api-1", "--state-dir", str(state_dir)], sandbox_env).exit_code
        == 0
    )
    result = invoke(
        ["import", "web/api-1", record["instance_id"], *common(manifests, state_dir)], sandbox_env
    )
    assert result.exit_code == 0, result.output
    plan = invoke(["plan", *common(manifests, state_dir), "--detailed-exitcode"], sandbox_env)
    assert plan.exit_code == 0, plan.output


def test_saved_plan_is_only_stale_for_the_fleets_it_changes(workspace, sandbox_env, tmp_path):
    manifests, state_dir, write = workspace
    other = manifests / "batch.yaml"
    other.write_text((manifests / "web.yaml").read_text().replace("fleet: web", "fleet: batch"))
    assert (
        invoke(["apply", *common(manifests, state_dir), "--auto-approve"], sandbox_env).exit_code
        == 0
    )
    write(replicas=3)  # the reviewed change: web only
    out = tmp_path / "web.tfplan"
    assert (
        invoke(["plan", *common(manifests, state_dir), "--out", str(out)], sandbox_env).exit_code
        == 0
    )
    # Meanwhile another merge changes fleet batch (its state serial moves on)...
    other.write_text(other.read_text().replace("replicas: 2", "replicas: 1"))
    assert (
        invoke(
            ["apply", *common(manifests, state_dir), "--auto-approve", "--target", "batch"],
            sandbox_env,
        ).exit_code
        == 0
    )
    other.write_text(other.read_text().replace("replicas: 1", "replicas: 2"))
    # ...which does not make the web plan stale: batch has no changes in it.
    applied = invoke(["apply", str(out), "--state-dir", str(state_dir)], sandbox_env)
    assert applied.exit_code == 0, applied.output
    assert "1 created" in applied.output


def test_usage_errors_exit_1_with_detailed_exitcode_and_64_without(workspace, sandbox_env):
    manifests, state_dir, _ = workspace
    bad = invoke(
        ["plan", *common(manifests, state_dir), "--detailed-exitcode", "--bogus"], sandbox_env
    )
    assert bad.exit_code == 1 and "--bogus" in bad.output
    assert invoke(["plan", *common(manifests, state_dir), "--bogus"], sandbox_env).exit_code == 64
