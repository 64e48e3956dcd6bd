"""Shared test configuration. Per-area fixtures live in each tests/<area>/conftest.py."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from reconciler.redaction import SECRETS

REPO_ROOT = Path(__file__).resolve().parents[1]
# Shadeform's published spec, kept in the repository (reference/README.md) so the contract tests
# run on any clone; tests/test_reference_copy.py checks it against ../shared when that exists.
OPENAPI_SPEC = REPO_ROOT / "reference" / "shadeform-openapi.yaml"
SHARED_REFERENCE = REPO_ROOT.parent / "shared" / "reference"


@pytest.fixture(scope="session")
def openapi_spec_path() -> Path:
    return OPENAPI_SPEC


@pytest.fixture(autouse=True)
def _forget_secrets() -> Iterator[None]:
    """Each test starts with an empty secret registry (in-process CLI runs register into it)."""
    SECRETS.clear()
    yield
    SECRETS.clear()


@pytest.fixture(autouse=True)
def _not_on_a_ci_runner(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tests see the same environment on a laptop and on a CI runner: the runner's ``CI=true``
    (which changes prompts, progress and who may choose a backend) is removed, and a test that
    is about CI sets it itself."""
    monkeypatch.delenv("CI", raising=False)


_SLOW_DIRECTORIES = ("crash", "examples")
_SLOW_MODULES = (
    "test_prompts.py",
    "test_file_atomicity.py",
    "emulator/test_server.py",
    "test_watch_cli.py",
    "test_browser.py",
    "test_watch_postgres.py",
)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Markers by where a test lives and what it needs, so ``-m "not slow"`` is a quick loop
    and ``-m postgres`` picks the database tests; CI runs everything."""
    for item in items:
        path = Path(str(item.fspath))
        parts = path.relative_to(REPO_ROOT).parts if path.is_relative_to(REPO_ROOT) else ()
        named = path.name in _SLOW_MODULES or "/".join(parts[-2:]) in _SLOW_MODULES
        if len(parts) > 1 and parts[1] in _SLOW_DIRECTORIES or named:
            item.add_marker(pytest.mark.slow)
        if len(parts) > 1 and parts[1] == "crash":
            item.add_marker(pytest.mark.crash)
        params = getattr(getattr(item, "callspec", None), "params", {})
        uses_postgres = (
            "postgres" in path.name
            or "postgres_url" in getattr(item, "fixturenames", ())
            or params.get("store") == "postgres"
        )
        if uses_postgres:
            item.add_marker(pytest.mark.postgres)
