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
