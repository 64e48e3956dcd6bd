"""A real PostgreSQL server for the tests, and a fresh schema per test.

The server is ``$RECONCILER_TEST_POSTGRES_URL`` when set (``.ci/run`` sets it), else the
machine's local cluster: already running with the test role, or started here the way
``.ci/run`` does it (``pg_ctlcluster <version> main start`` and a ``reconciler_test`` role
and database). Tests that need PostgreSQL never skip: when no server can be had they fail
and say how to provide one.

Each test gets its own schema (``?schema=t_<random>`` in the URL), dropped afterwards, so
tests never see each other's rows and can run in any order.
"""

from __future__ import annotations

import functools
import os
import shutil
import subprocess
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import psycopg
import pytest

from reconciler.state.backend_url import PostgresBackend, parse_backend_url
from reconciler.state.postgres import PostgresStateStore

URL_ENV = "RECONCILER_TEST_POSTGRES_URL"
ROLE = "reconciler_test"

_CREATE_ROLE = (
    f"DO $$ BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '{ROLE}') THEN "
    f"CREATE ROLE {ROLE} LOGIN PASSWORD '{ROLE}'; END IF; END $$;"
)


def local_url(port: int = 5432) -> str:
    return f"postgresql://{ROLE}:{ROLE}@127.0.0.1:{port}/{ROLE}"


@functools.cache
def server_url() -> str:
    """The test server's URL (without a schema); fails the test run if there is none."""
    url = os.environ.get(URL_ENV)
    if url:
        problem = _connect_problem(url)
        if problem:
            pytest.fail(f"{URL_ENV} is set but its server cannot be used: {problem}")
        return url
    port = _local_cluster_port()
    url = local_url(port)
    if _connect_problem(url) is None:
        return url
    setup_problem = _start_local_cluster()
    problem = setup_problem or _connect_problem(url)
    if problem:
        pytest.fail(
            "The PostgreSQL backend tests need a server and none could be had: "
            f"{problem}. Set {URL_ENV}=postgresql://USER:PASSWORD@HOST:PORT/DB (the role "
            "needs CREATE on that database), or run the tests as root on a machine with "
            "Debian's postgresql package so the local cluster can be started."
        )
    return url


def with_parameters(url: str, **parameters: str) -> str:
    joined = "&".join(f"{key}={value}" for key, value in parameters.items())
    return f"{url}{'&' if '?' in url else '?'}{joined}"


@contextmanager
def bare_schema(url: str | None = None, **parameters: str) -> Iterator[str]:
    """A backend URL naming a schema nobody created; dropped afterwards if a test did."""
    schema = f"t_{uuid.uuid4().hex[:16]}"
    scoped = with_parameters(url or server_url(), schema=schema, **parameters)
    backend = parse_backend_url(scoped)
    assert isinstance(backend, PostgresBackend)
    try:
        yield scoped
    finally:
        with psycopg.connect(backend.conninfo, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')  # type: ignore[arg-type]


@contextmanager
def fresh_schema(url: str | None = None, **parameters: str) -> Iterator[str]:
    """A backend URL with a new, initialised schema of its own; dropped afterwards."""
    with bare_schema(url, **parameters) as scoped:
        store = open_postgres(scoped)
        store.migrate_schema()
        store.close()
        yield scoped


def open_postgres(url: str, **options: object) -> PostgresStateStore:
    backend = parse_backend_url(url)
    assert isinstance(backend, PostgresBackend)
    return PostgresStateStore(backend, **options)  # type: ignore[arg-type]


def _connect_problem(url: str) -> str | None:
    backend = parse_backend_url(url)
    assert isinstance(backend, PostgresBackend)
    try:
        with psycopg.connect(backend.conninfo, connect_timeout=5) as conn:
            conn.execute("SELECT 1")
    except psycopg.Error as exc:
        return backend.scrub(" ".join(str(exc).split()))
    return None


def _local_cluster() -> tuple[str, str, int] | None:
    """(version, name, port) of the first local Debian cluster, if any."""
    if shutil.which("pg_lsclusters") is None:
        return None
    listing = subprocess.run(
        ["pg_lsclusters", "--no-header"], capture_output=True, text=True, check=False
    )
    for line in listing.stdout.splitlines():
        fields = line.split()
        if len(fields) >= 3 and fields[2].isdigit():
            return fields[0], fields[1], int(fields[2])
    return None


def _local_cluster_port() -> int:
    cluster = _local_cluster()
    return cluster[2] if cluster else 5432


Runner = Callable[..., "subprocess.CompletedProcess[str]"]


def _run(args: list[str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, capture_output=True, text=True, check=False)


def _start_local_cluster(run: Runner = _run) -> str | None:
    """Start the local cluster if it is not running, and create the test role and database
    if they are missing; a one-line problem, or None. (A running cluster without the role is
    the common case on a developer's machine: ``pg_ctlcluster start`` then says "already
    running" on standard output and exits 2, which is not a failure.)"""
    cluster = _local_cluster()
    if cluster is None:
        return "no local PostgreSQL cluster (pg_lsclusters not found or lists none)"
    version, name, _ = cluster
    if os.geteuid() != 0:
        return "the local cluster is not usable and only root can start it or create roles"
    if run(["pg_ctlcluster", version, name, "status"]).returncode != 0:
        started = run(["pg_ctlcluster", version, name, "start"])
        said = (started.stdout + started.stderr).strip()
        if started.returncode != 0 and "already running" not in said:
            return f"`pg_ctlcluster {version} {name} start` failed: {said}"
    role = run(
        ["runuser", "-u", "postgres", "--", "psql", "-v", "ON_ERROR_STOP=1", "-qc", _CREATE_ROLE]
    )
    if role.returncode != 0:
        return f"creating the {ROLE} role failed: {(role.stdout + role.stderr).strip()}"
    exists = run(
        ["runuser", "-u", "postgres", "--", "psql", "-tAc",
         f"SELECT 1 FROM pg_database WHERE datname = '{ROLE}'"]
    )  # fmt: skip
    if exists.stdout.strip() != "1":
        created = run(["runuser", "-u", "postgres", "--", "createdb", "-O", ROLE, ROLE])
        if created.returncode != 0:
            return f"createdb failed: {(created.stdout + created.stderr).strip()}"
    return None
