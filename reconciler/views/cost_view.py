"""What the fleets have cost so far and what they burn now: the ``reconciler cost`` view.

Figures come from Shadeform itself: each live instance's ``hourly_price`` (cents) and
``cost_estimate`` (spend so far, decimal dollars). Nothing here does I/O::

    report = [fleet_spend(states[name], snapshots[name]) for name in names]
    render_cost_human(report, sys.stdout)
    render_cost_json(report, sys.stdout)

::

    Fleet web:

      ADDRESS    INSTANCE  STATUS  CREATED (UTC)     $/HOUR  SPENT
      web/api-0  i-1       active  2026-11-27 10:00   $0.80  $1.60
      web/api-1  i-2       active  2026-11-27 10:00   $0.80  $1.60

      Burn rate $1.60/h ($1,152.00 per 30 days); spent so far $3.20.

Instances that carry the fleet's tag but are not in its state are listed too (they cost the
same), marked ``(not in state)``; an instance Shadeform is deleting no longer counts towards the
burn rate.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TextIO

from pydantic_core import to_json

from reconciler.models.catalog import HOURS_PER_30_DAYS, dollars_to_cents, format_cents
from reconciler.models.live import Health, LiveInstance, LiveSnapshot
from reconciler.models.state import FleetState
from reconciler.views._values import clean_text

COST_KIND = "reconciler-cost"
NOT_IN_STATE = " (not in state)"


@dataclass(frozen=True, slots=True)
class InstanceSpend:
    """One live instance: what it costs per hour and what it has cost so far."""

    address: str
    instance_id: str
    status: str
    hourly_cents: int | None
    spent_cents: int | None
    created_at: str | None = None
    in_state: bool = True
    burning: bool = True  # counts towards the burn rate (Shadeform is not deleting it)


@dataclass(frozen=True, slots=True)
class FleetSpend:
    """A fleet's instances, plus the addresses its state records that Shadeform lacks."""

    fleet: str
    instances: tuple[InstanceSpend, ...] = ()
    missing: tuple[str, ...] = ()

    @property
    def hourly_cents(self) -> int:
        return sum(i.hourly_cents or 0 for i in self.instances if i.burning)

    @property
    def monthly_cents(self) -> int:
        return self.hourly_cents * HOURS_PER_30_DAYS

    @property
    def spent_cents(self) -> int:
        return sum(i.spent_cents or 0 for i in self.instances)

    @property
    def unknown_prices(self) -> int:
        return sum(1 for i in self.instances if i.burning and i.hourly_cents is None)

    @property
    def unknown_spend(self) -> int:
        return sum(1 for i in self.instances if i.spent_cents is None)


def _spend(instance: LiveInstance, address: str, *, in_state: bool) -> InstanceSpend:
    spent = instance.cost_estimate
    return InstanceSpend(
        address=address,
        instance_id=instance.id,
        status=instance.status,
        hourly_cents=instance.hourly_price,
        spent_cents=dollars_to_cents(spent) if spent is not None else None,
        created_at=instance.created_at,
        in_state=in_state,
        burning=instance.health is not Health.GONE,
    )


def fleet_spend(state: FleetState, snapshot: LiveSnapshot) -> FleetSpend:
    """The fleet's spend from its state (which instances are ours) and a fresh snapshot."""
    instances = []
    missing = []
    for address, record in sorted(state.instances.items()):
        found = snapshot.by_id.get(record.instance_id)
        if found is None:
            missing.append(address)
        else:
            instances.append(_spend(found, address, in_state=True))
    for orphan in snapshot.orphans:
        address = orphan.address or f"{state.fleet}/{orphan.name}"
        instances.append(_spend(orphan, address, in_state=False))
    instances.sort(key=lambda i: (i.address, i.instance_id))
    return FleetSpend(fleet=state.fleet, instances=tuple(instances), missing=tuple(missing))


# -- human ----------------------------------------------------------------------------------------

_HEADINGS = ("ADDRESS", "INSTANCE", "STATUS", "CREATED (UTC)", "$/HOUR", "SPENT")
_RIGHT_ALIGNED = frozenset({4, 5})


def _created(value: str | None) -> str:
    """``2026-11-27T10:00:00Z`` -> ``2026-11-27 10:00`` (UTC, to the minute)."""
    if not value:
        return "-"
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return clean_text(value)
    if moment.tzinfo is not None:
        moment = moment.astimezone(UTC)
    return moment.strftime("%Y-%m-%d %H:%M")


def _row(spend: InstanceSpend) -> tuple[str, ...]:
    status = clean_text(spend.status)
    return (
        clean_text(spend.address) + ("" if spend.in_state else NOT_IN_STATE),
        clean_text(spend.instance_id),
        status if spend.burning else f"{status} (not counted)",
        _created(spend.created_at),
        format_cents(spend.hourly_cents),
        format_cents(spend.spent_cents),
    )


def _table(rows: list[tuple[str, ...]]) -> Iterator[str]:
    widths = [max(len(row[n]) for row in rows) for n in range(len(_HEADINGS))]
    for row in rows:
        cells = [
            cell.rjust(width) if n in _RIGHT_ALIGNED else cell.ljust(width)
            for n, (cell, width) in enumerate(zip(row, widths, strict=True))
        ]
        yield "  " + "  ".join(cells).rstrip()


def _figures(hourly: int, spent: int, unknown_prices: int, unknown_spend: int) -> str:
    text = (
        f"burn rate {format_cents(hourly)}/h ({format_cents(hourly * HOURS_PER_30_DAYS)} "
        f"per 30 days); spent so far {format_cents(spent)}"
    )
    notes = []
    if unknown_prices:
        notes.append(f"price unknown for {_count(unknown_prices, 'instance')}")
    if unknown_spend:
        notes.append(f"spend unknown for {_count(unknown_spend, 'instance')}")
    return text + (f" ({'; '.join(notes)}; not counted)" if notes else "")


def _count(number: int, noun: str) -> str:
    return f"{number} {noun}{'' if number == 1 else 's'}"


def _fleet_lines(fleet: FleetSpend) -> Iterator[str]:
    name = clean_text(fleet.fleet)
    if not fleet.instances and not fleet.missing:
        yield f"Fleet {name}: no instances."
        yield ""
        return
    yield f"Fleet {name}:"
    yield ""
    if fleet.instances:
        yield from _table([_HEADINGS, *(_row(i) for i in fleet.instances)])
        yield ""
    if fleet.missing:
        yield "  Recorded in the state but not found in Shadeform:"
        yield from (f"    {clean_text(address)}" for address in fleet.missing)
        yield ""
    figures = _figures(
        fleet.hourly_cents, fleet.spent_cents, fleet.unknown_prices, fleet.unknown_spend
    )
    yield f"  {figures[0].upper()}{figures[1:]}."
    yield ""


def render_cost_human(fleets: Sequence[FleetSpend], stream: TextIO) -> None:
    """Per fleet a table of instances and its totals; a grand total when there are several."""
    lines: list[str] = []
    for fleet in fleets:
        lines.extend(_fleet_lines(fleet))
    if len(fleets) > 1:
        count = sum(len(f.instances) for f in fleets)
        figures = _figures(
            sum(f.hourly_cents for f in fleets),
            sum(f.spent_cents for f in fleets),
            sum(f.unknown_prices for f in fleets),
            sum(f.unknown_spend for f in fleets),
        )
        lines.append(
            f"Total over {_count(len(fleets), 'fleet')}, {_count(count, 'instance')}: {figures}."
        )
    elif not fleets:
        lines.append("No fleets.")
    stream.write("".join(line + "\n" for line in lines))


# -- JSON -----------------------------------------------------------------------------------------


def _fleet_dict(fleet: FleetSpend) -> dict[str, Any]:
    return {
        "fleet": fleet.fleet,
        "hourly_cents": fleet.hourly_cents,
        "monthly_cents": fleet.monthly_cents,
        "spent_cents": fleet.spent_cents,
        "unknown_prices": fleet.unknown_prices,
        "unknown_spend": fleet.unknown_spend,
        "instances": [
            {
                "address": i.address,
                "instance_id": i.instance_id,
                "status": i.status,
                "created_at": i.created_at,
                "hourly_cents": i.hourly_cents,
                "spent_cents": i.spent_cents,
                "in_state": i.in_state,
                "counted_in_burn_rate": i.burning,
            }
            for i in fleet.instances
        ],
        "missing": list(fleet.missing),
    }


def cost_to_json_dict(fleets: Sequence[FleetSpend]) -> dict[str, Any]:
    """``{"kind": "reconciler-cost", "fleets": [...], "total": {...}}``; money in cents."""
    hourly = sum(f.hourly_cents for f in fleets)
    return {
        "kind": COST_KIND,
        "fleets": [_fleet_dict(f) for f in fleets],
        "total": {
            "hourly_cents": hourly,
            "monthly_cents": hourly * HOURS_PER_30_DAYS,
            "spent_cents": sum(f.spent_cents for f in fleets),
            "unknown_prices": sum(f.unknown_prices for f in fleets),
            "unknown_spend": sum(f.unknown_spend for f in fleets),
        },
    }


def render_cost_json(fleets: Sequence[FleetSpend], stream: TextIO) -> None:
    stream.write(to_json(cost_to_json_dict(fleets), indent=2).decode())
    stream.write("\n")
