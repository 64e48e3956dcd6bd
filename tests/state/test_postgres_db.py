"""The PostgreSQL connection layer: schema versions, reconnection, translated errors."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from urllib.parse import urlsplit

import psycopg
import pytest

from reconciler.errors import StateError
from reconciler.state.backend_url import PostgresBackend, parse_backend_url
from reconciler.state.postgres_db import Database
from reconciler.state.postgres_schema import SCHEMA_VERSION

from .postgres_server import bare_schema, server_url

SECRET = "not-the-password"


def database(url: str) -> Database:
    backend = parse_backend_url(url)
    assert isinstance(backend, PostgresBackend)
    return Database(backend)


@pytest.fixture
def bare_url() -> Iterator[str]:
    with bare_schema() as url:
        yield url


def test_an_uninitialised_schema_says_to_run_backend_init(bare_url: str) -> None:
    db = database(bare_url)
    assert db.installed_version() == 0
    with pytest.raises(StateError, match="backend init") as caught:
        db.run(lambda cur: None)
    assert "not set up" in str(caught.value)


def test_migrate_is_idempotent_and_concurrent_runs_agree(bare_url: str) -> None:
    results = []

    def init() -> None:
        db = database(bare_url)
        results.append(db.migrate())
        db.close()

    threads = [threading.Thread(target=init) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted((r.before, r.after) for r in results) == [
        (0, SCHEMA_VERSION),
        (SCHEMA_VERSION, SCHEMA_VERSION),
        (SCHEMA_VERSION, SCHEMA_VERSION),
    ]
    again = database(bare_url).migrate()
    assert not again.changed and again.after == SCHEMA_VERSION
    assert database(bare_url).run(lambda cur: "ready") == "ready"


def test_a_newer_schema_is_refused(bare_url: str) -> None:
    db = database(bare_url)
    db.migrate()
    db.run(
        lambda cur: cur.execute(
            db.query("INSERT INTO {schema}.schema_migrations (version, summary) VALUES (99, 'x')")
        )
    )
    fresh = database(bare_url)
    with pytest.raises(StateError, match="newer than the"):
        fresh.run(lambda cur: None)
    with pytest.raises(StateError, match="Upgrade the reconciler"):
        fresh.migrate()


def test_unreachable_server_is_a_state_error_without_the_password() -> None:
    db = database(f"postgresql://someone:{SECRET}@127.0.0.1:1/nothing")
    with pytest.raises(StateError, match="Cannot connect to the PostgreSQL state backend") as c:
        db.run(lambda cur: None)
    assert SECRET not in str(c.value) and "someone:***@127.0.0.1:1" in str(c.value)


def test_wrong_password_is_reported_without_it() -> None:
    parts = urlsplit(server_url())
    netloc = f"{parts.username}:{SECRET}@{parts.hostname}:{parts.port or 5432}"
    with pytest.raises(StateError) as caught:
        database(parts._replace(netloc=netloc).geturl()).run(lambda cur: None)
    assert SECRET not in str(caught.value) and "***" in str(caught.value)


def test_a_broken_connection_is_reopened_for_idempotent_work(bare_url: str) -> None:
    db = database(bare_url)
    db.migrate()
    pid = db.run(lambda cur: cur.execute("SELECT pg_backend_pid()").fetchone())
    assert pid is not None
    with psycopg.connect(database(bare_url).backend.conninfo, autocommit=True) as admin:
        admin.execute("SELECT pg_terminate_backend(%s)", [pid[0]])
    again = db.run(lambda cur: cur.execute("SELECT pg_backend_pid()").fetchone())
    assert again is not None and again[0] != pid[0]


def test_sql_errors_become_state_errors(bare_url: str) -> None:
    db = database(bare_url)
    db.migrate()
    with pytest.raises(StateError, match="failed: .*does_not_exist"):
        db.run(lambda cur: cur.execute("SELECT * FROM does_not_exist"))
    assert db.run(lambda cur: 1) == 1, "the connection is still usable afterwards"
