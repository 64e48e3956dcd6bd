"""The steps the commands chain: refresh and plan many fleets; check a saved plan is fresh."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from datetime import datetime

from reconciler.api import ShadeformClient
from reconciler.engine.catalog import fetch_catalog
from reconciler.engine.planner import PlanOptions, plan_fleet
from reconciler.engine.refresh import RefreshOptions, refresh_fleets
from reconciler.errors import StalePlanError
from reconciler.models.plan import Plan
from reconciler.models.spec import Fleet
from reconciler.models.state import FleetState


async def refresh_and_plan(
    client: ShadeformClient,
    fleets: Sequence[Fleet],
    states: Mapping[str, FleetState],
    *,
    now: datetime,
    options: PlanOptions = PlanOptions(),
    refresh_options: RefreshOptions = RefreshOptions(),
) -> Plan:
    """Refresh every fleet (one list call in all), read the catalog once, plan each purely."""
    snapshots, catalog = await asyncio.gather(
        refresh_fleets(client, states, now=now, options=refresh_options), fetch_catalog(client)
    )
    fleet_plans = tuple(
        plan_fleet(fleet, states[fleet.name], snapshots[fleet.name], options, catalog)
        for fleet in fleets
    )
    plan = Plan(
        fleets=fleet_plans,
        targets=options.targets,
        replace=options.replace,
        created_at=now.isoformat().replace("+00:00", "Z"),
    )
    return plan


def check_plan_fresh(
    plan: Plan, fleets: Mapping[str, Fleet], states: Mapping[str, FleetState]
) -> None:
    """Refuse a saved plan whose state or manifests moved on since it was made."""
    problems = []
    for fleet_plan in plan.fleets:
        name = fleet_plan.fleet
        state = states.get(name)
        fleet = fleets.get(name)
        serial = state.serial if state else 0
        if fleet is None:
            problems.append(f"fleet {name} is no longer in the manifests")
            continue
        if fleet_plan.serial == 0:
            if serial != 0:
                problems.append(
                    f"fleet {name} had no state when the plan was made; it now has serial {serial}"
                )
        elif state is None or state.lineage != fleet_plan.lineage:
            problems.append(
                f"fleet {name}'s state has lineage "
                f"{state.lineage if state else '(none)'}, the plan was made from {fleet_plan.lineage}"
            )
        elif serial != fleet_plan.serial:
            problems.append(
                f"fleet {name}'s state is at serial {serial}, the plan was made at {fleet_plan.serial}"
            )
        if fleet.digest != fleet_plan.manifest_digest:
            problems.append(f"fleet {name}'s manifests changed since the plan was made")
    if problems:
        raise StalePlanError(
            "Stale plan: the world moved on since it was made, so applying it could do something "
            "nobody reviewed. " + "; ".join(problems) + ". Run `reconciler plan` again."
        )
