"""Shared test configuration. Per-area fixtures live in each tests/<area>/conftest.py."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from reconciler.redaction import SECRETS

REPO_ROOT = Path(__file__).resolve().parents[1]
OPENAPI_SPEC = REPO_ROOT.parent / "shared" / "reference" / "shadeform-openapi.yaml"


@pytest.fixture(scope="session")
def openapi_spec_path() -> Path:
    if not OPENAPI_SPEC.exists():
        pytest.skip(f"Shadeform OpenAPI spec not found at {OPENAPI_SPEC}")
    return OPENAPI_SPEC


@pytest.fixture(autouse=True)
def _forget_secrets() -> Iterator[None]:
    """Each test starts with an empty secret registry (in-process CLI runs register into it)."""
    SECRETS.clear()
    yield
    SECRETS.clear()
