"""examples/github-actions/reconciler.yml: its shape, and its steps run for real.

The steps' scripts run unchanged with bash as GitHub runs them, against a real emulator (the
API key and URL are what the workflow would get from secrets), with `gh` faked.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.examples.ci_harness import (
    REPO,
    Sandbox,
    literal_env,
    make_sandbox,
    requires_jq,
    running_emulator,
)
from tests.examples.snippets import github_run_scripts

WORKFLOW_PATH = REPO / "examples" / "github-actions" / "reconciler.yml"
GITHUB_BASH = ("bash", "--noprofile", "--norc", "-eo", "pipefail")
MARKER = "<!-- reconciler-plan -->"


def load_workflow() -> dict[str, Any]:
    workflow: dict[Any, Any] = yaml.safe_load(WORKFLOW_PATH.read_text(encoding="utf-8"))
    workflow["on"] = workflow.pop(True, workflow.get("on"))  # YAML 1.1 reads `on` as true
    return {str(key): value for key, value in workflow.items()}


WORKFLOW = load_workflow()


def step(job: str, name: str) -> dict[str, Any]:
    return next(s for s in WORKFLOW["jobs"][job]["steps"] if s.get("name") == name)


@pytest.fixture(scope="module")
def emulator_url() -> Iterator[str]:
    with running_emulator() as url:
        yield url


@pytest.fixture
def box(tmp_path: Path, emulator_url: str) -> Sandbox:
    return make_sandbox(tmp_path, emulator_url)


def run_step(
    box: Sandbox, job: str, name: str, **overrides: str
) -> tuple[subprocess.CompletedProcess[str], dict[str, str]]:
    """Run one step's script; returns the process and what it wrote to GITHUB_OUTPUT."""
    spec = step(job, name)
    output = box.root / f"output-{job}-{abs(hash(name))}"
    output.write_text("", encoding="utf-8")
    env = box.base_env()
    env.update(literal_env(WORKFLOW.get("env"), WORKFLOW["jobs"][job].get("env"), spec.get("env")))
    env.update(
        MANIFESTS="fleets",
        GITHUB_OUTPUT=str(output),
        GITHUB_STEP_SUMMARY=str(box.root / "summary.md"),
        GITHUB_REPOSITORY="acme/fleet",
        GITHUB_SHA="c0ffee" * 6 + "c0ff",
        GITHUB_EVENT_NAME="push",
        GITHUB_WORKFLOW="reconciler",
        GH_TOKEN="gh-token-value",
        RUN_URL="https://github.com/acme/fleet/actions/runs/1",
        PR_NUMBER="17",
        HEAD_SHA="abcdef1234567",
    )
    env.update(overrides)
    result = box.run(spec["run"], env, shell=GITHUB_BASH)
    outputs = dict(
        line.split("=", 1)
        for line in output.read_text(encoding="utf-8").splitlines()
        if "=" in line
    )
    return result, outputs


def plan_on_pull_request(box: Sandbox, **overrides: str) -> dict[str, str]:
    result, outputs = run_step(box, "plan", "Plan", **overrides)
    assert result.returncode == 0, result.stderr
    return outputs


# -- shape ------------------------------------------------------------------------------------


def test_triggers_cover_pull_requests_merges_schedule_and_manual_runs() -> None:
    on = WORKFLOW["on"]
    assert on["pull_request"]["branches"] == ["main"]
    assert on["push"]["branches"] == ["main"]
    assert on["schedule"][0]["cron"]
    assert set(on["workflow_dispatch"]["inputs"]["job"]["options"]) == {"apply", "drift-check"}
    assert "pull_request_target" not in on


def test_least_privilege_and_secrets_only_from_secrets() -> None:
    assert WORKFLOW["permissions"] == {}
    jobs = WORKFLOW["jobs"]
    assert jobs["plan"]["permissions"] == {"contents": "read", "pull-requests": "write"}
    assert jobs["drift"]["permissions"] == {"contents": "read", "issues": "write"}
    assert "contents" not in {k for k, v in jobs["apply"]["permissions"].items() if v == "write"}
    for job in jobs.values():
        for key in ("SHADEFORM_API_KEY", "RECONCILER_BACKEND", "PGPASSWORD"):
            assert job["env"][key] == f"${{{{ secrets.{key} }}}}"
    assert "github.repository" in jobs["plan"]["if"]  # forks get no secrets: not planned


def test_applies_never_race_and_drift_checks_cannot_cancel_them() -> None:
    jobs = WORKFLOW["jobs"]
    assert jobs["apply"]["concurrency"] == {
        "group": "reconciler-apply",
        "cancel-in-progress": False,
    }
    assert jobs["drift"]["concurrency"]["group"] != "reconciler-apply"
    assert jobs["plan"]["concurrency"]["cancel-in-progress"] is True


def test_scripts_run_with_pipefail_and_take_no_expressions() -> None:
    assert WORKFLOW["defaults"]["run"]["shell"] == "bash"
    for name, script in github_run_scripts(WORKFLOW).items():
        assert "${{" not in script, f"{name}: pass expressions through env, not into scripts"


# -- pull request -----------------------------------------------------------------------------


@requires_jq
def test_plan_saves_the_plan_and_posts_one_comment(box: Sandbox) -> None:
    box.write_fleet("pr-new")
    outputs = plan_on_pull_request(box)
    assert outputs["exit_code"] == "0"
    comment = (box.work / "comment.md").read_text(encoding="utf-8")
    assert comment.startswith(MARKER + "\n### Reconciler plan: 1 to create")
    assert json.loads((box.work / "plan.json").read_text(encoding="utf-8"))["fleets"]

    box.route("gh", "--paginate", stdout="[]")
    result, _ = run_step(box, "plan", "Post or update the plan comment")
    assert result.returncode == 0, result.stderr
    posts = [c for c in box.calls("gh") if "--method" in c.args]
    assert [c.args[:3] for c in posts] == [["api", "--method", "POST"]]
    assert "repos/acme/fleet/issues/17/comments" in posts[0].line
    assert json.loads(posts[0].payload or "")["body"] == comment


@requires_jq
def test_plan_updates_the_bots_comment_not_a_quote_of_it(box: Sandbox) -> None:
    box.write_fleet("pr-update")
    plan_on_pull_request(box)
    comments = [
        {"id": 5, "user": {"login": "alice"}, "body": MARKER + " quoted by a human"},
        {"id": 42, "user": {"login": "github-actions[bot]"}, "body": MARKER + "\nold plan"},
    ]
    box.route("gh", "--paginate", stdout=json.dumps(comments))
    result, _ = run_step(box, "plan", "Post or update the plan comment")
    assert result.returncode == 0, result.stderr
    writes = [c for c in box.calls("gh") if "--method" in c.args]
    assert len(writes) == 1
    assert writes[0].args[2] == "PATCH" and "issues/comments/42" in writes[0].line


def test_a_failed_plan_is_reported_in_the_comment_and_fails_the_job(box: Sandbox) -> None:
    manifests = box.write_fleet("pr-broken")
    (manifests / "pr-broken.yaml").write_text("fleet: pr-broken\ninstances:\n  - nme: x\n")
    outputs = plan_on_pull_request(box)
    assert outputs["exit_code"] == "3"
    comment = (box.work / "comment.md").read_text(encoding="utf-8")
    assert "Reconciler plan failed (exit code 3)" in comment and "nme" in comment
    assert not (box.work / "plan.json").exists()
    result, _ = run_step(box, "plan", "Fail when the plan failed", EXIT_CODE="3")
    assert result.returncode == 3


def test_secret_values_are_never_published(box: Sandbox) -> None:
    box.write_fleet("pr-leak", extra_tags=", '${env:HF_TOKEN}'")
    plan_on_pull_request(box, HF_TOKEN="hf-very-secret-value")
    comment = (box.work / "comment.md").read_text(encoding="utf-8")
    # The manifest loader refuses ${env:...} outside secret fields, so nothing leaks...
    assert "hf-very-secret-value" not in comment and "kept secret" in comment
    # ...and, in depth, the workflow's guard refuses to publish a comment holding a secret.
    (box.work / "comment.md").write_text("leak: hf-very-secret-value\n", encoding="utf-8")
    result, _ = run_step(box, "plan", "Refuse to publish secrets", HF_TOKEN="hf-very-secret-value")
    assert result.returncode == 1
    assert "HF_TOKEN" in result.stdout and "hf-very-secret-value" not in result.stdout


def test_runs_refuse_to_start_without_shared_state(box: Sandbox) -> None:
    result, _ = run_step(box, "apply", "Require shared state", RECONCILER_BACKEND="")
    assert result.returncode == 1 and "RECONCILER_BACKEND" in result.stdout
    result, _ = run_step(box, "apply", "Require shared state", RECONCILER_BACKEND="postgresql://x")
    assert result.returncode == 0


# -- merge ------------------------------------------------------------------------------------


def test_merge_applies_exactly_the_saved_plan_then_checks_main(box: Sandbox) -> None:
    box.write_fleet("merge-ok", replicas=2)
    plan_on_pull_request(box)
    result, _ = run_step(box, "apply", "Apply", SAVED_PLAN="plan.json")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Apply complete: 2 created" in result.stdout
    assert "Planning main again" not in result.stdout
    result, _ = run_step(box, "apply", "Check main is fully applied")
    assert result.returncode == 0, result.stdout + result.stderr


def test_a_stale_saved_plan_stops_the_apply_unless_told_to_replan(box: Sandbox) -> None:
    box.write_fleet("merge-stale")
    plan_on_pull_request(box)  # reviewed at serial 0
    applied = subprocess.run(
        ["reconciler", "apply", "fleets", "--auto-approve"],
        cwd=box.work,
        env={**box.base_env()},
        capture_output=True,
        text=True,
    )
    assert applied.returncode == 0, applied.stderr  # someone else applied first
    result, _ = run_step(box, "apply", "Apply", SAVED_PLAN="plan.json")
    assert result.returncode == 7
    assert "The reviewed plan is stale" in result.stdout
    result, _ = run_step(box, "apply", "Apply", SAVED_PLAN="plan.json", ON_STALE_PLAN="replan")
    assert result.returncode == 0 and "Planning main again" in result.stdout


def test_no_saved_plan_replans_or_stops_as_configured(box: Sandbox) -> None:
    box.write_fleet("merge-direct")
    result, _ = run_step(box, "apply", "Apply", SAVED_PLAN="", ON_MISSING_PLAN="fail")
    assert result.returncode == 1 and "ON_MISSING_PLAN is fail" in result.stdout
    result, _ = run_step(box, "apply", "Apply", SAVED_PLAN="")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Apply complete: 1 created" in result.stdout


def test_main_not_fully_applied_fails_the_check(box: Sandbox) -> None:
    box.write_fleet("merge-partial")
    result, _ = run_step(box, "apply", "Check main is fully applied")
    assert result.returncode == 2
    assert "main still differs from Shadeform" in result.stdout


def test_finding_the_merged_pull_requests_plan(box: Sandbox) -> None:
    saved = box.root / "plan.json"
    saved.write_text("{}", encoding="utf-8")
    box.route("gh", "commits/", "/pulls", stdout="17\n")
    box.route("gh", "pulls/17", stdout="abc1234def\n")
    box.route("gh", "run list", "--commit abc1234def", stdout="9001\n")
    box.route(
        "gh", "run download 9001", "--name reconciler-plan", copy=str(saved), copy_flag="--dir"
    )
    result, outputs = run_step(box, "apply", "Find the plan reviewed on the pull request")
    assert result.returncode == 0, result.stderr
    assert outputs == {"pr": "17", "file": "saved-plan/plan.json"}
    assert (box.work / "saved-plan" / "plan.json").exists()


def test_an_expired_artifact_means_no_saved_plan(box: Sandbox) -> None:
    box.route("gh", "commits/", "/pulls", stdout="17\n")
    box.route("gh", "pulls/17", stdout="abc1234def\n")
    box.route("gh", "run list", stdout="9001\n")
    box.route("gh", "run download", exit=1)
    result, outputs = run_step(box, "apply", "Find the plan reviewed on the pull request")
    assert result.returncode == 0, result.stderr
    assert outputs == {"pr": "17"}


# -- drift ------------------------------------------------------------------------------------


def test_drift_opens_one_issue_updates_it_and_closes_it(box: Sandbox) -> None:
    box.write_fleet("drift")
    result, outputs = run_step(box, "drift", "Look for drift")
    assert result.returncode == 0 and outputs["exit_code"] == "2"  # never applied: drift

    result, _ = run_step(box, "drift", "Open or update the drift issue")
    assert result.returncode == 0, result.stderr
    created = [c for c in box.calls("gh") if c.args[:2] == ["issue", "create"]]
    assert len(created) == 1 and "1 to create" in (created[0].payload or "")

    box.route("gh", "issue list", stdout="31\n")
    result, _ = run_step(box, "drift", "Open or update the drift issue")
    assert result.returncode == 0, result.stderr
    assert [c.args[:3] for c in box.calls("gh") if c.args[:2] == ["issue", "edit"]] == [
        ["issue", "edit", "31"]
    ]

    subprocess.run(
        ["reconciler", "apply", "fleets", "--auto-approve"],
        cwd=box.work,
        env=box.base_env(),
        capture_output=True,
        check=True,
    )
    result, outputs = run_step(box, "drift", "Look for drift")
    assert result.returncode == 0 and outputs["exit_code"] == "0"
    result, _ = run_step(box, "drift", "Close the drift issue once converged")
    assert result.returncode == 0, result.stderr
    assert any(c.args[:3] == ["issue", "close", "31"] for c in box.calls("gh"))


def test_a_drift_check_that_cannot_run_fails_the_job(box: Sandbox) -> None:
    box.write_fleet("drift-broken")
    result, outputs = run_step(box, "drift", "Look for drift", SHADEFORM_API_KEY="")
    assert result.returncode == 1 and outputs["exit_code"] not in ("0", "2")
    assert "The drift check itself failed" in result.stdout


# -- the whole flow through a shared PostgreSQL state ------------------------------------------


def test_pull_request_to_merge_through_postgresql(box: Sandbox) -> None:
    """Set-up as the README says (URL without password, PGPASSWORD, backend init), then plan on
    the pull request and apply the saved plan on merge, with the state in PostgreSQL."""
    from urllib.parse import urlsplit, urlunsplit

    from tests.state.postgres_server import bare_schema

    with bare_schema() as url:
        parts = urlsplit(url)
        netloc = f"{parts.username}@{parts.hostname}:{parts.port}"
        secrets = {
            "RECONCILER_BACKEND": urlunsplit(parts._replace(netloc=netloc)),
            "PGPASSWORD": parts.password or "",
        }
        env = {**box.base_env(), **secrets}
        env.pop("RECONCILER_STATE_DIR")
        init = subprocess.run(
            ["reconciler", "backend", "init"], env=env, capture_output=True, text=True
        )
        assert init.returncode == 0, init.stdout + init.stderr

        box.write_fleet("pg-flow", replicas=2)
        for job, name in [("plan", "Require shared state"), ("plan", "Plan")]:
            result, outputs = run_step(box, job, name, **secrets, RECONCILER_STATE_DIR="")
            assert result.returncode == 0, result.stdout + result.stderr
        assert outputs["exit_code"] == "0"
        result, _ = run_step(
            box, "apply", "Apply", **secrets, RECONCILER_STATE_DIR="", SAVED_PLAN="plan.json"
        )
        assert result.returncode == 0, result.stdout + result.stderr
        assert "Apply complete: 2 created" in result.stdout
        result, _ = run_step(
            box, "apply", "Check main is fully applied", **secrets, RECONCILER_STATE_DIR=""
        )
        assert result.returncode == 0, result.stdout + result.stderr
        history = subprocess.run(
            ["reconciler", "state", "history", "pg-flow"], env=env, capture_output=True, text=True
        )
        assert history.returncode == 0, history.stderr
        # The audit trail a GitOps review needs: which saved plan wrote each version.
        assert "sha256:" in history.stdout and "reconciler apply plan.json" in history.stdout
        assert secrets["PGPASSWORD"] not in history.stdout + result.stdout
        assert not (box.work / "state").exists()  # nothing fell back to a local directory
