"""State documents as text: the one JSON form every backend stores.

``encode_state`` and ``encode_document`` are deterministic (keys sorted, two-space indent,
trailing newline) so that a state file diffs cleanly and equal content gives equal bytes.
``decode_state`` validates, upgrades older formats and checks the document belongs to the
fleet asked for.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import pydantic_core
from pydantic import ValidationError

from reconciler.errors import StateError
from reconciler.models.state import FleetState
from reconciler.state.upgrade import UPGRADES, Upgrade, upgrade_document


def encode_state(state: FleetState) -> str:
    return encode_document(state.model_dump(mode="json")).decode("utf-8")


def encode_document(document: dict[str, Any]) -> bytes:
    """Pretty JSON (two-space indent, keys sorted at every level), UTF-8, trailing newline.

    Same text as ``json.dumps(document, indent=2, sort_keys=True, ensure_ascii=False)`` up to
    float spelling, but serialised by pydantic-core: several times faster for big fleets.
    """
    return pydantic_core.to_json(_sorted_keys(document), indent=2) + b"\n"


def decode_state(
    text: str | bytes,
    *,
    fleet: str,
    where: str,
    upgrades: Mapping[int, Upgrade] = UPGRADES,
) -> FleetState:
    """Parse a stored state of ``fleet``; ``where`` names its location in error messages."""
    try:
        document = json.loads(text)
    except (ValueError, UnicodeDecodeError) as exc:
        raise StateError(
            f"The state of fleet {fleet!r} at {where} is not valid JSON ({exc}). Restore it "
            "from its .backup or an emergency copy."
        ) from exc
    if not isinstance(document, dict):
        raise StateError(f"The state of fleet {fleet!r} at {where} is not a JSON object.")
    document = upgrade_document(document, fleet=fleet, upgrades=upgrades)
    try:
        state = FleetState.model_validate(document)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc']) or '(top)'}: {err['msg']}"
            for err in exc.errors(include_input=False)[:5]
        )
        raise StateError(
            f"The state of fleet {fleet!r} at {where} is damaged: {problems}."
        ) from exc
    if state.fleet != fleet:
        raise StateError(
            f"The state at {where} belongs to fleet {state.fleet!r}, not {fleet!r}; "
            "refusing to use another fleet's state."
        )
    return state


_CONTAINERS = (dict, list)


def _sorted_keys(value: Any) -> Any:
    """A copy with every dict's keys in sorted order (recursing only into containers)."""
    if type(value) is dict:
        return {
            key: _sorted_keys(item) if type(item) in _CONTAINERS else item
            for key, item in sorted(value.items())
        }
    return [_sorted_keys(item) if type(item) in _CONTAINERS else item for item in value]
