"""The documented, versioned JSON form of a plan (see ``docs/plan-json.md``).

``plan_to_json_dict`` adds ``kind`` and ``summary`` blocks to the plan model's own fields;
``plan_from_json`` reads a saved plan back, refusing other kinds and newer format versions::

    text = io.StringIO(); render_plan_json(plan, text)
    assert plan_from_json(text.getvalue()) == plan
"""

from __future__ import annotations

import json
from typing import Any, TextIO

from pydantic import ValidationError
from pydantic_core import to_json

from reconciler.errors import UsageError
from reconciler.models.plan import (
    PLAN_FORMAT_VERSION,
    BlockedKind,
    CostSummary,
    FleetPlan,
    Plan,
)
from reconciler.views._outline import Summary, summarize

PLAN_KIND = "reconciler-plan"


def _cost_dict(cost: CostSummary) -> dict[str, int | float | None]:
    """The burn rate before and after (per hour and per 30 days) and the peak while the plan
    is applied (per hour only: it lasts while the plan is applied; null when there is none)."""
    return {
        "hourly_cents_before": cost.hourly_cents_before,
        "hourly_cents_after": cost.hourly_cents_after,
        "monthly_cents_before": cost.monthly_cents_before,
        "monthly_cents_after": cost.monthly_cents_after,
        "unknown_prices": cost.unknown_prices,
        "hourly_cents_peak": cost.hourly_cents_peak,
    }


def _summary_dict(
    summary: Summary, cost: CostSummary, fleets: tuple[FleetPlan, ...]
) -> dict[str, Any]:
    """Counts, plus what keeps the fleets from matching their manifests (``in_sync`` is what
    a drift check wants: false while anything is to change, blocked, pending or unplaceable)."""
    blocked = [b for f in fleets for b in f.blocked]
    return {
        "create": summary.create,
        "update": summary.update,
        "replace": summary.replace,
        "delete": summary.delete,
        "has_changes": summary.has_changes,
        "in_sync": all(f.in_sync for f in fleets),
        "pending": [b.address for b in blocked if b.kind is BlockedKind.PENDING_CREATE],
        "blocked": [b.address for b in blocked if b.kind is not BlockedKind.PENDING_CREATE],
        "no_capacity": [b.address for f in fleets for b in f.no_capacity],
        "data_loss": [c.address for f in fleets for c in f.data_loss],
        "kept": [k.address for f in fleets for k in f.kept],
        "cost": _cost_dict(cost),
    }


def _fleet_dict(fleet: FleetPlan, dumped: dict[str, Any], summary: Summary) -> dict[str, Any]:
    """The fleet's fields in model order, with its ``summary`` just before ``changes``."""
    out: dict[str, Any] = {}
    for key, value in dumped.items():
        if key == "changes":
            out["summary"] = _summary_dict(summary, fleet.cost, (fleet,))
        out[key] = value
    return out


def plan_to_json_dict(plan: Plan) -> dict[str, Any]:
    """The plan as JSON-ready data: ``format_version`` and ``kind`` first, then the plan's
    fields in model order, then ``summary`` and ``fleets`` last.

    Every model field is carried over (a field added to the model appears here by itself).
    """
    dumped = plan.model_dump(mode="json")
    fleets = []
    total = Summary()
    for fleet, fleet_data in zip(plan.fleets, dumped.pop("fleets"), strict=True):
        summary = summarize(fleet.changes)
        total += summary
        fleets.append(_fleet_dict(fleet, fleet_data, summary))
    out: dict[str, Any] = {"format_version": dumped.pop("format_version"), "kind": PLAN_KIND}
    out.update(dumped)
    out["summary"] = _summary_dict(total, plan.cost, plan.fleets)
    out["fleets"] = fleets
    return out


def render_plan_json(plan: Plan, stream: TextIO) -> None:
    """Write the plan as JSON indented by two spaces (UTF-8 text), followed by a newline.

    pydantic-core's serializer writes the same text as ``json.dumps(..., indent=2,
    ensure_ascii=False)`` some ten times faster (the standard library's indenting encoder is
    pure Python), which matters for plans of thousands of changes.
    """
    stream.write(to_json(plan_to_json_dict(plan), indent=2).decode())
    stream.write("\n")


def _refuse(source: str, problem: str) -> UsageError:
    return UsageError(f"{source} is not a plan this reconciler can read: {problem}.")


def plan_from_json(text: str, *, source: str = "The saved plan") -> Plan:
    """Read a plan written by :func:`render_plan_json`; ``source`` names it in errors.

    Raises :class:`UsageError` for text that is not JSON, another kind of document, a plan
    from a newer reconciler, or a plan whose content does not match the format.
    """
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise _refuse(source, f"invalid JSON at line {exc.lineno}, column {exc.colno}") from exc
    if not isinstance(data, dict):
        raise _refuse(source, "expected a JSON object")
    kind = data.pop("kind", None)
    if kind != PLAN_KIND:
        raise _refuse(source, f'its "kind" is {json.dumps(kind)[:60]}, not "{PLAN_KIND}"')
    version = data.get("format_version")
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        raise _refuse(source, f'"format_version" must be a positive integer, got {version!r:.40}')
    if version > PLAN_FORMAT_VERSION:
        raise _refuse(
            source,
            f"it has format_version {version}, newer than {PLAN_FORMAT_VERSION} which this "
            "version understands; upgrade the reconciler or make the plan again",
        )
    data.pop("summary", None)
    fleets = data.get("fleets")
    if isinstance(fleets, list):
        for fleet in fleets:
            if isinstance(fleet, dict):
                fleet.pop("summary", None)
    try:
        return Plan.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "(top level)"
        count = exc.error_count()
        more = f" (and {count - 1} more problems)" if count > 1 else ""
        raise _refuse(source, f"{where}: {first['msg']}{more}") from exc
