"""examples/gitlab-ci/.gitlab-ci.yml: its shape, and its jobs' scripts run for real.

Each job's before_script (less the apt/pip installs) and script run in one bash, as GitLab
runs them, against a real emulator, with `curl` faked for the GitLab API.
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
    Call,
    Sandbox,
    literal_env,
    make_sandbox,
    requires_jq,
    running_emulator,
)

PIPELINE_PATH = REPO / "examples" / "gitlab-ci" / ".gitlab-ci.yml"
PIPELINE: dict[str, Any] = yaml.safe_load(PIPELINE_PATH.read_text(encoding="utf-8"))
API = "https://gitlab.example.com/api/v4"
INSTALLS = ("apt-get ", "pip install", "RECONCILER_BACKEND:-")


def job(name: str) -> dict[str, Any]:
    spec = dict(PIPELINE[name])
    template = PIPELINE.get(spec.pop("extends", ""), {})
    return {**template, **spec}


def job_script(name: str, key: str = "script") -> str:
    spec = job(name)
    items = [i for i in spec.get("before_script", []) if not any(m in i for m in INSTALLS)]
    if key != "script":
        items = []
    return "\n".join([*items, *spec[key]]) + "\n"


@pytest.fixture(scope="module")
def emulator_url() -> Iterator[str]:
    with running_emulator() as url:
        yield url


@pytest.fixture
def box(tmp_path: Path, emulator_url: str) -> Sandbox:
    return make_sandbox(tmp_path, emulator_url)


def run_job(
    box: Sandbox, name: str, key: str = "script", **overrides: str
) -> subprocess.CompletedProcess[str]:
    env = box.base_env()
    env.update(literal_env(PIPELINE.get("variables")))
    env.update(
        MANIFESTS="fleets",
        CI_API_V4_URL=API,
        CI_PROJECT_ID="7",
        CI_JOB_URL="https://gitlab.example.com/acme/fleet/-/jobs/1",
        CI_COMMIT_SHA="c0ffee" * 6 + "c0ff",
        CI_COMMIT_SHORT_SHA="c0ffeec0",
        CI_DEFAULT_BRANCH="main",
        CI_PIPELINE_SOURCE="push",
        CI_MERGE_REQUEST_IID="12",
        GITLAB_API_TOKEN="glpat-token-value",
    )
    env.update(overrides)
    return box.run(job_script(name, key), env, shell=("bash", "-e"))


def api_calls(box: Sandbox, method: str) -> list[Call]:
    """The fake curl's calls with this HTTP method (GET when no --request is given)."""

    def method_of(call: Call) -> str:
        args = call.args
        return args[args.index("--request") + 1] if "--request" in args else "GET"

    return [c for c in box.calls("curl") if method_of(c) == method]


# -- shape ------------------------------------------------------------------------------------


def test_jobs_run_in_the_right_pipelines() -> None:
    assert PIPELINE["stages"] == ["plan", "apply", "drift"]
    assert "merge_request_event" in job("plan")["rules"][0]["if"]
    assert all("CI_DEFAULT_BRANCH" in rule["if"] for rule in job("apply")["rules"])
    assert "schedule" in job("drift")["rules"][0]["if"]


def test_applies_and_drift_checks_queue_instead_of_racing() -> None:
    assert job("apply")["resource_group"] == job("drift")["resource_group"] == "reconciler-state"
    assert job("apply")["interruptible"] is False
    assert job("plan")["interruptible"] is True
    assert job("plan")["artifacts"]["paths"] == ["plan.json", "plan.md"]


# -- merge request ----------------------------------------------------------------------------


@requires_jq
def test_plan_creates_the_note_then_updates_its_own(box: Sandbox) -> None:
    box.write_fleet("mr-plan")
    box.route("curl", f"{API}/user", stdout='{"id": 5}')
    box.route("curl", "/notes?", stdout="[]")
    result = run_job(box, "plan")
    assert result.returncode == 0, result.stdout + result.stderr
    (post,) = api_calls(box, "POST")
    assert any(a.endswith("/projects/7/merge_requests/12/notes") for a in post.args)
    body = json.loads(post.payload or "")["body"]
    assert body.startswith("<!-- reconciler-plan -->\n### Reconciler plan: 1 to create")
    assert (box.work / "plan.json").exists()

    notes = [
        {"id": 3, "author": {"id": 9}, "body": "<!-- reconciler-plan --> quoted"},
        {"id": 77, "author": {"id": 5}, "body": "<!-- reconciler-plan -->\nold"},
    ]
    box.routes["curl"] = []
    box.route("curl", f"{API}/user", stdout='{"id": 5}')
    box.route("curl", "/notes?", stdout=json.dumps(notes))
    result = run_job(box, "plan")
    assert result.returncode == 0, result.stdout + result.stderr
    (put,) = api_calls(box, "PUT")
    assert any(a.endswith("/merge_requests/12/notes/77") for a in put.args)


@requires_jq
def test_a_failed_plan_fails_the_job_after_posting_the_error(box: Sandbox) -> None:
    manifests = box.write_fleet("mr-broken")
    (manifests / "mr-broken.yaml").write_text("fleet: mr-broken\ninstances: 3\n")
    box.route("curl", f"{API}/user", stdout='{"id": 5}')
    box.route("curl", "/notes?", stdout="[]")
    result = run_job(box, "plan")
    assert result.returncode == 3
    (post,) = api_calls(box, "POST")
    assert "Reconciler plan failed (exit code 3)" in json.loads(post.payload or "")["body"]


@requires_jq
def test_secret_values_are_never_posted(box: Sandbox) -> None:
    # The loader refuses ${env:...} outside secret fields: the job fails, its note quotes no secret.
    box.write_fleet("mr-leak", extra_tags=", '${env:HF_TOKEN}'")
    box.route("curl", f"{API}/user", stdout='{"id": 5}')
    box.route("curl", "/notes?", stdout="[]")
    result = run_job(box, "plan", HF_TOKEN="hf-very-secret-value")
    assert result.returncode == 3
    assert "hf-very-secret-value" not in result.stdout + result.stderr
    (post,) = api_calls(box, "POST")
    body = json.loads(post.payload or "")["body"]
    assert "kept secret" in body and "hf-very-secret-value" not in body


# -- merge ------------------------------------------------------------------------------------


@requires_jq
def test_merge_applies_the_merge_requests_saved_plan_and_reports(box: Sandbox) -> None:
    box.write_fleet("mr-merge", replicas=2)
    planned = subprocess.run(
        ["reconciler", "plan", "fleets", "--out", str(box.root / "reviewed.json")],
        cwd=box.work,
        env=box.base_env(),
        capture_output=True,
        text=True,
    )
    assert planned.returncode == 0, planned.stderr
    box.route("curl", "/repository/commits/", stdout='[{"iid": 12, "state": "merged"}]')
    box.route("curl", "/merge_requests/12/pipelines", stdout='[{"id": 99}, {"id": 98}]')
    box.route(
        "curl", "/pipelines/99/jobs", stdout='[{"id": 555, "name": "plan", "status": "success"}]'
    )
    box.route(
        "curl",
        "/jobs/555/artifacts/plan.json",
        copy=str(box.root / "reviewed.json"),
        copy_flag="--output",
    )
    result = run_job(box, "apply")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Found the plan of !12 in job 555" in result.stdout
    assert "Apply complete: 2 created" in result.stdout
    assert "again and applying" not in result.stdout

    report = run_job(box, "apply", "after_script", CI_JOB_STATUS="success")
    assert report.returncode == 0, report.stderr
    (post,) = [
        c for c in api_calls(box, "POST") if any("/merge_requests/12/notes" in a for a in c.args)
    ]
    assert "Reconciler apply on main: success" in json.loads(post.payload or "")["body"]


def test_a_pipeline_run_by_hand_replans(box: Sandbox) -> None:
    box.write_fleet("manual")
    result = run_job(box, "apply", CI_PIPELINE_SOURCE="web")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Planning main again and applying it." in result.stdout
    assert "Apply complete: 1 created" in result.stdout
    assert box.calls("curl") == []  # no merge request to look up


# -- drift ------------------------------------------------------------------------------------


@requires_jq
def test_drift_opens_an_issue_and_closes_it_once_converged(box: Sandbox) -> None:
    box.write_fleet("gl-drift")
    box.route("curl", "/issues?labels=reconciler-drift", stdout="[]")
    result = run_job(box, "drift", CI_PIPELINE_SOURCE="schedule")
    assert result.returncode == 0, result.stdout + result.stderr
    (post,) = api_calls(box, "POST")
    created = json.loads(post.payload or "")
    assert created["labels"] == "reconciler-drift" and "1 to create" in created["description"]

    subprocess.run(
        ["reconciler", "apply", "fleets", "--auto-approve"],
        cwd=box.work,
        env=box.base_env(),
        capture_output=True,
        check=True,
    )
    box.routes["curl"] = []
    box.route("curl", "/issues?labels=reconciler-drift", stdout='[{"iid": 4}]')
    result = run_job(box, "drift", CI_PIPELINE_SOURCE="schedule")
    assert result.returncode == 0, result.stdout + result.stderr
    assert any(
        any(a.endswith("/issues/4?state_event=close") for a in c.args)
        for c in api_calls(box, "PUT")
    )


def test_a_drift_check_that_cannot_run_fails(box: Sandbox) -> None:
    box.write_fleet("gl-drift-broken")
    result = run_job(box, "drift", SHADEFORM_API_KEY="")
    assert result.returncode == 1
    assert "The drift check itself failed" in result.stderr
