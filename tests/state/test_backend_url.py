"""Backend URLs: parsing, our own query parameters, and password redaction."""

from __future__ import annotations

from pathlib import Path

import pytest

from reconciler.errors import UsageError
from reconciler.state import FileStateStore, open_backend
from reconciler.state.backend_url import (
    FileBackend,
    PostgresBackend,
    parse_backend_url,
    redact_urls,
)
from reconciler.state.postgres import PostgresStateStore

SECRET = "hunter2"


@pytest.mark.parametrize(
    ("url", "directory"),
    [
        ("state", Path("state")),
        ("/var/lib/reconciler", Path("/var/lib/reconciler")),
        ("file://state", Path("state")),
        ("file:///abs/dir", Path("/abs/dir")),
        ("file://localhost/abs/dir", Path("/abs/dir")),
        ("file:///with%20space", Path("/with space")),
    ],
)
def test_file_backends(url: str, directory: Path) -> None:
    assert parse_backend_url(url) == FileBackend(directory)


def test_relative_directories_are_taken_from_the_base_dir(tmp_path: Path) -> None:
    assert parse_backend_url("file://st", base_dir=tmp_path) == FileBackend(tmp_path / "st")
    assert parse_backend_url("st", base_dir=tmp_path) == FileBackend(tmp_path / "st")
    assert parse_backend_url("/abs", base_dir=tmp_path) == FileBackend(Path("/abs"))


def test_postgres_url_with_our_parameters_stripped_for_libpq() -> None:
    backend = parse_backend_url(
        f"postgresql://ci:{SECRET}@db.internal:6432/fleets?sslmode=require&schema=gpu_ops"
        "&lease_ttl=12"
    )
    assert isinstance(backend, PostgresBackend)
    assert backend.schema == "gpu_ops" and backend.lease_ttl == 12.0
    assert backend.conninfo == f"postgresql://ci:{SECRET}@db.internal:6432/fleets?sslmode=require"
    assert SECRET not in backend.display and "ci:***@db.internal" in backend.display
    assert SECRET not in repr(backend)


def test_postgres_defaults_and_the_short_scheme() -> None:
    backend = parse_backend_url("postgres://db/fleets")
    assert isinstance(backend, PostgresBackend)
    assert backend.schema == "reconciler" and backend.lease_ttl == 30.0
    assert backend.conninfo == "postgres://db/fleets"


def test_scrub_removes_the_password_in_every_spelling() -> None:
    backend = parse_backend_url("postgresql://ci:p%40ss@db/x?password=other")
    assert isinstance(backend, PostgresBackend)
    text = 'FATAL: password "p@ss" or p%40ss or other rejected for postgresql://ci:p%40ss@db/x'
    scrubbed = backend.scrub(text)
    assert "p@ss" not in scrubbed and "p%40ss" not in scrubbed and "other" not in scrubbed
    assert "***" in scrubbed


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("", "empty"),
        (f"mysql://root:{SECRET}@db/x", "not a state backend this reconciler knows"),
        ("s3://bucket/state", "not a state backend"),
        ("file://", "names no directory"),
        ("postgresql://db/x?schema=Bad-Name", "not a usable schema name"),
        (f"postgresql://u:{SECRET}@db/x?lease_ttl=0.1", "not a lease time"),
        ("postgresql://db/x?lease_ttl=soon", "not a lease time"),
        # Not URLs and not plain paths: each used to become a local folder, one named after
        # the password.
        (f"postgresql//u:{SECRET}@h/db", "missing the ':' after 'postgresql'"),
        (f"postgres:u:{SECRET}@h/db", "without '//' after 'postgres:'"),
        (f"host=db dbname=fleets password={SECRET}", "libpq connection string"),
        (f"ci:{SECRET}@db/fleets", "without '//' after 'ci:'"),
        (f"ci@db/{SECRET}", "has an '@'"),
    ],
)
def test_bad_urls_are_usage_errors_without_the_password(url: str, message: str) -> None:
    with pytest.raises(UsageError, match=message) as caught:
        parse_backend_url(url)
    assert SECRET not in str(caught.value)


def test_redact_urls_in_free_text() -> None:
    text = f"reconciler plan --backend postgresql://ci:{SECRET}@db/x?password={SECRET}&a=1"
    redacted = redact_urls(text)
    assert SECRET not in redacted
    assert "postgresql://ci:***@db/x?password=***&a=1" in redacted
    assert redact_urls("postgresql://db:5432/x and ./state") == "postgresql://db:5432/x and ./state"


def test_open_backend_picks_the_store_without_connecting(tmp_path: Path) -> None:
    files = open_backend(f"file://{tmp_path}")
    assert isinstance(files, FileStateStore) and files.state_dir == tmp_path
    database = open_backend(f"postgresql://u:{SECRET}@127.0.0.1:1/none")  # nothing listens
    assert isinstance(database, PostgresStateStore)
    assert SECRET not in repr(database)
    with pytest.raises(UsageError):
        open_backend("ftp://x")
