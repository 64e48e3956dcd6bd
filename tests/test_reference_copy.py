"""The repository's copy of Shadeform's API reference matches the workspace's, when present."""

from __future__ import annotations

import pytest

from tests.conftest import OPENAPI_SPEC, SHARED_REFERENCE


def test_the_spec_copy_is_in_the_repository() -> None:
    assert OPENAPI_SPEC.is_file()
    assert "openapi:" in OPENAPI_SPEC.read_text(encoding="utf-8")[:200]


@pytest.mark.parametrize("name", ["shadeform-openapi.yaml", "instances-create.md"])
def test_the_copy_has_not_drifted_from_the_workspace_reference(name: str) -> None:
    shared = SHARED_REFERENCE / name
    if not shared.exists():
        pytest.skip("no ../shared/reference beside this clone (a user's clone): nothing to compare")
    assert (OPENAPI_SPEC.parent / name).read_bytes() == shared.read_bytes(), (
        f"reference/{name} differs from {shared}: copy the new version in"
    )
