"""``reconciler show FLEET``: a fleet's state for people (and as JSON, its key hidden)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, TextIO

from pydantic_core import to_json

from reconciler.models.catalog import format_cents
from reconciler.models.state import FleetState
from reconciler.views._values import clean_text

HIDDEN_KEY = "(hidden)"


def state_document(state: FleetState) -> dict[str, Any]:
    """The state as JSON-ready data, its fingerprint key hidden (it would help guess secrets)."""
    document = state.model_dump(mode="json")
    document["fingerprint_key"] = HIDDEN_KEY
    return document


def render_states_json(states: Sequence[FleetState], stream: TextIO) -> None:
    data = {"kind": "reconciler-state", "fleets": [state_document(s) for s in states]}
    stream.write(to_json(data, indent=2).decode() + "\n")


def _offer(spec: dict[str, Any], placement: dict[str, Any] | None) -> str:
    offer = (placement or {}).get("offer") or {}
    cloud = offer.get("cloud") or spec.get("cloud", "?")
    region = offer.get("region") or spec.get("region", "?")
    kind = offer.get("shade_instance_type") or spec.get("shade_instance_type", "?")
    rental = offer.get("rental_type") or spec.get("rental_type", "on_demand")
    price = offer.get("hourly_price_cents")
    at = f" at {format_cents(price)}/h" if isinstance(price, int) else ""
    return f"{kind} {rental} in {cloud}/{region}{at}"


def render_states_human(states: Sequence[FleetState], stream: TextIO) -> None:
    if not states:
        stream.write("No fleet has a state here yet. Run `reconciler apply` first.\n")
        return
    for state in states:
        stream.write(
            f"Fleet {clean_text(state.fleet)} (lineage {state.lineage}, serial {state.serial}):\n"
        )
        if not state.instances and not state.intents:
            stream.write("  no instances\n")
        for address, record in sorted(state.instances.items()):
            live = record.live or {}
            stream.write(f"\n  {clean_text(address)}  {clean_text(record.instance_id)}\n")
            rows = [("offer", _offer(record.applied_spec, record.placement))]
            if live:
                when = f" (refreshed {record.refreshed_at})" if record.refreshed_at else ""
                rows.append(("status", f"{live.get('status', '?')}{when}"))
                if live.get("ip") and live.get("ssh_user"):
                    port = live.get("ssh_port") or 22
                    rows.append(("ssh", f"{live['ssh_user']}@{live['ip']} -p {port}"))
            else:
                rows.append(("status", "not refreshed yet (`reconciler refresh` records it)"))
            image = (
                (record.applied_spec.get("launch_configuration") or {}).get("docker_configuration")
                or {}
            ).get("image")
            if image:
                rows.append(("image", str(image)))
            rows.append(("created", f"{record.created_at}, updated {record.updated_at}"))
            width = max(len(key) for key, _ in rows)
            for key, value in rows:
                stream.write(f"      {key + ':':<{width + 1}} {clean_text(value)}\n")
        for intent in sorted(state.intents.values(), key=lambda i: i.address):
            stream.write(
                f"\n  {clean_text(intent.address)}  (create pending: intent {intent.intent_id}, "
                f"recorded {intent.created_at})\n"
            )
        stream.write("\n")
