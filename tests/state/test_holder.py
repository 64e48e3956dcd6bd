"""Lock holder information and the refusal messages built from it."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from datetime import UTC, datetime

import pytest

from reconciler.errors import LockError
from reconciler.models.state import LockInfo
from reconciler.state.holder import (
    ci_run_url,
    holder_is_gone,
    lock_refused,
    make_lock_info,
    matching_holder,
)

NOW = datetime(2024, 5, 1, 12, 30, tzinfo=UTC)


@pytest.mark.parametrize(
    ("environ", "expected"),
    [
        (
            {
                "GITHUB_SERVER_URL": "https://github.com/",
                "GITHUB_REPOSITORY": "acme/gpu",
                "GITHUB_RUN_ID": "7",
                "BUILD_URL": "https://jenkins/1",
            },
            "https://github.com/acme/gpu/actions/runs/7",
        ),
        ({"GITHUB_REPOSITORY": "acme/gpu", "GITHUB_RUN_ID": "7"}, None),
        (
            {"CI_JOB_URL": "https://gitlab.com/acme/gpu/-/jobs/9"},
            "https://gitlab.com/acme/gpu/-/jobs/9",
        ),
        ({"BUILD_URL": "https://jenkins.example/job/1/"}, "https://jenkins.example/job/1/"),
        ({"BUILD_URL": ""}, None),
        ({}, None),
    ],
)
def test_ci_run_url(environ: dict[str, str], expected: str | None) -> None:
    assert ci_run_url(environ) == expected


def test_make_lock_info_describes_this_process() -> None:
    info = make_lock_info("inference", command="reconciler apply", environ={}, now=NOW)
    assert info.pid == os.getpid() and info.host == socket.gethostname()
    assert info.created_at == "2024-05-01T12:30:00Z"
    assert info.ci_run_url is None and info.user
    other = make_lock_info("inference", command="reconciler apply", environ={}, now=NOW)
    assert other.id != info.id


def dead_pid() -> int:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def holder(*, pid: int, host: str | None = None) -> LockInfo:
    info = make_lock_info("inference", command="reconciler apply", environ={}, now=NOW)
    return info.model_copy(update={"pid": pid, "host": host or socket.gethostname()})


def test_holder_is_gone_only_for_dead_local_processes() -> None:
    pid = dead_pid()
    assert holder_is_gone(holder(pid=pid))
    assert not holder_is_gone(holder(pid=os.getpid()))
    assert not holder_is_gone(holder(pid=pid, host="some-other-host")), "cannot tell remotely"


def test_refusal_for_a_live_holder_suggests_waiting() -> None:
    live = holder(pid=os.getpid())
    error = lock_refused("inference", live, waited=0)
    assert isinstance(error, LockError) and error.exit_code == 5
    assert live.describe() in str(error) and "--lock-timeout" in str(error)
    assert "stale" not in str(error)
    assert "after waiting 30s" in str(lock_refused("inference", live, waited=30))


def test_refusal_for_a_gone_holder_says_stale_with_the_command() -> None:
    gone = holder(pid=dead_pid())
    message = str(lock_refused("inference", gone, waited=0))
    assert "stale: the process that took it is gone" in message
    assert f"`reconciler force-unlock inference {gone.id}`" in message


def test_refusal_without_a_recorded_holder() -> None:
    assert "has not recorded who it is" in str(lock_refused("inference", None, waited=0))


def test_matching_holder() -> None:
    live = holder(pid=os.getpid())
    assert matching_holder("inference", live.id, live) is live
    with pytest.raises(LockError, match="not locked"):
        matching_holder("inference", live.id, None)
    with pytest.raises(LockError, match=f"does not match the current lock {live.id}"):
        matching_holder("inference", "other", live)
