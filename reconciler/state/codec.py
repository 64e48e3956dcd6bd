"""State documents as text: the one JSON form every backend stores.

``encode_state`` is deterministic (sorted keys, two-space indent, trailing newline) so that a
state file diffs cleanly and equal content gives equal bytes. ``decode_state`` validates,
upgrades older formats and checks the document belongs to the fleet asked for.
"""

from __future__ import annotations

import json
from collections.abc import Mapping

from pydantic import ValidationError

from reconciler.errors import StateError
from reconciler.models.state import FleetState
from reconciler.state.upgrade import UPGRADES, Upgrade, upgrade_document


def encode_state(state: FleetState) -> str:
    return json.dumps(state.model_dump(mode="json"), indent=2, sort_keys=True) + "\n"


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
