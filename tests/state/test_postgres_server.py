"""The PostgreSQL test fixture makes what it needs, whatever state the local cluster is in."""

from __future__ import annotations

import subprocess

import pytest

from tests.state import postgres_server


class FakeCluster:
    """Answers the commands the fixture runs like Debian's tools would."""

    def __init__(self, *, running: bool, role: bool, database: bool) -> None:
        self.running, self.role, self.database = running, role, database
        self.commands: list[list[str]] = []

    def __call__(self, args: list[str]) -> subprocess.CompletedProcess[str]:
        self.commands.append(args)
        joined = " ".join(args)
        if args[:1] == ["pg_ctlcluster"] and args[-1] == "status":
            return subprocess.CompletedProcess(args, 0 if self.running else 3, "", "")
        if args[:1] == ["pg_ctlcluster"] and args[-1] == "start":
            if self.running:  # said on stdout, exit 2: the bug the fixture used to trip on
                return subprocess.CompletedProcess(args, 2, "Cluster is already running.\n", "")
            self.running = True
            return subprocess.CompletedProcess(args, 0, "", "")
        if "CREATE ROLE" in joined:
            self.role = True
            return subprocess.CompletedProcess(args, 0, "", "")
        if "pg_database" in joined:
            return subprocess.CompletedProcess(args, 0, "1\n" if self.database else "", "")
        if args[-3:-2] == ["createdb"] or "createdb" in args:
            self.database = True
            return subprocess.CompletedProcess(args, 0, "", "")
        raise AssertionError(f"unexpected command {args}")


@pytest.fixture
def as_root_with_a_cluster(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(postgres_server, "_local_cluster", lambda: ("15", "main", 5432))
    monkeypatch.setattr(postgres_server.os, "geteuid", lambda: 0)


@pytest.mark.parametrize(
    ("running", "role", "database"),
    [(True, False, False), (False, False, False), (True, True, True)],
    ids=["running-without-role", "stopped", "ready"],
)
def test_the_fixture_makes_what_is_missing(
    as_root_with_a_cluster: None, running: bool, role: bool, database: bool
) -> None:
    cluster = FakeCluster(running=running, role=role, database=database)
    assert postgres_server._start_local_cluster(run=cluster) is None
    assert cluster.running and cluster.role and cluster.database
    started = [c for c in cluster.commands if c[-1] == "start"]
    assert bool(started) is not running  # never "start" a running cluster


def test_a_real_failure_is_one_clear_line(as_root_with_a_cluster: None) -> None:
    def broken(args: list[str]) -> subprocess.CompletedProcess[str]:
        if args[-1] == "status":
            return subprocess.CompletedProcess(args, 3, "", "")
        return subprocess.CompletedProcess(args, 1, "", "Error: could not start server\n")

    problem = postgres_server._start_local_cluster(run=broken)
    assert problem == "`pg_ctlcluster 15 main start` failed: Error: could not start server"
