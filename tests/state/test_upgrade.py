"""The format-upgrade mechanism, exercised with synthetic older formats."""

from __future__ import annotations

from typing import Any

import pytest

from reconciler.errors import StateError
from reconciler.models.state import STATE_FORMAT_VERSION
from reconciler.state.upgrade import UPGRADES, upgrade_document

Document = dict[str, Any]


def v0_to_v1(document: Document) -> Document:
    """Synthetic: version 0 kept instances as a list under ``resources``."""
    resources = document.pop("resources")
    document["instances"] = {r["address"]: r for r in resources}
    return document | {"format_version": 1}


def v1_to_v2(document: Document) -> Document:
    """Synthetic: version 2 renames ``name`` to ``fleet`` (to chain two steps)."""
    return document | {"fleet": document.pop("name"), "format_version": 2}


def test_current_format_is_returned_unchanged() -> None:
    document = {"format_version": STATE_FORMAT_VERSION, "fleet": "inference"}
    assert upgrade_document(document, fleet="inference") is document


def test_every_released_format_has_a_step_to_the_current_one() -> None:
    assert sorted(UPGRADES) == list(range(1, STATE_FORMAT_VERSION))


def test_v1_gains_resources_and_its_intents_become_instance_intents() -> None:
    v1 = {
        "format_version": 1,
        "fleet": "inference",
        "instances": {},
        "intents": {"i-1": {"intent_id": "i-1", "address": "inference/a"}},
    }
    upgraded = upgrade_document(v1, fleet="inference")
    assert upgraded["format_version"] == STATE_FORMAT_VERSION
    assert upgraded["resources"] == {}
    assert upgraded["intents"]["i-1"] == {
        "intent_id": "i-1",
        "address": "inference/a",
        "kind": "instance",
        "anchor": {},
    }
    assert "resources" not in v1 and "kind" not in v1["intents"]["i-1"]


def test_one_step_upgrade() -> None:
    v0 = {"format_version": 0, "resources": [{"address": "inference/a"}]}
    upgraded = upgrade_document(v0, fleet="inference", upgrades={0: v0_to_v1}, target=1)
    assert upgraded == {
        "format_version": 1,
        "instances": {"inference/a": {"address": "inference/a"}},
    }


def test_steps_are_chained_up_to_the_target() -> None:
    v0 = {"format_version": 0, "name": "inference", "resources": []}
    upgraded = upgrade_document(
        v0, fleet="inference", upgrades={0: v0_to_v1, 1: v1_to_v2}, target=2
    )
    assert upgraded == {"format_version": 2, "fleet": "inference", "instances": {}}


def test_upgrade_does_not_modify_the_callers_document() -> None:
    v0 = {"format_version": 0, "resources": []}
    upgrade_document(v0, fleet="inference", upgrades={0: v0_to_v1}, target=1)
    assert v0 == {"format_version": 0, "resources": []}


def test_newer_format_is_refused() -> None:
    newer = STATE_FORMAT_VERSION + 1
    with pytest.raises(
        StateError, match=f"format version {newer}, newer than the {STATE_FORMAT_VERSION}"
    ):
        upgrade_document({"format_version": newer}, fleet="inference")


def test_missing_step_is_refused() -> None:
    with pytest.raises(StateError, match="no upgrade from it to version 1"):
        upgrade_document({"format_version": 0}, fleet="inference", upgrades={}, target=1)


def test_step_that_skips_a_version_is_caught() -> None:
    with pytest.raises(StateError, match="produced format 3 instead of 1"):
        upgrade_document(
            {"format_version": 0},
            fleet="inference",
            upgrades={0: lambda d: d | {"format_version": 3}},
            target=3,
        )


@pytest.mark.parametrize("version", [None, "1", -1, True, 1.0])
def test_invalid_format_version_is_a_damaged_state(version: object) -> None:
    with pytest.raises(StateError, match="no valid format_version"):
        upgrade_document({"format_version": version}, fleet="inference")
