"""The steps the commands chain: refresh and plan many fleets; check a saved plan is fresh."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import replace
from datetime import datetime
from difflib import get_close_matches

from reconciler.api import ShadeformClient
from reconciler.engine.catalog import fetch_catalog
from reconciler.engine.planner import PlanOptions, address_selected, plan_fleet
from reconciler.engine.refresh import RefreshOptions, refresh_fleets
from reconciler.errors import StalePlanError, UsageError
from reconciler.models.catalog import Catalog
from reconciler.models.live import LiveSnapshot
from reconciler.models.plan import Blocked, Plan
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
    snapshots, catalog = await refresh_with_catalog(
        client, fleets, states, now=now, refresh_options=refresh_options
    )
    check_selectors(options, fleets, states, snapshots)
    if options.now is None:
        options = replace(options, now=now)
    fleet_plans = tuple(
        plan_fleet(fleet, states[fleet.name], snapshots[fleet.name], options, catalog)
        for fleet in fleets
    )
    plan = Plan(
        fleets=fleet_plans,
        targets=options.targets,
        excludes=options.excludes,
        replace=options.replace,
        destroy=options.destroy,
        allow_data_loss=options.allow_data_loss,
        created_at=now.isoformat().replace("+00:00", "Z"),
    )
    return plan


async def refresh_with_catalog(
    client: ShadeformClient,
    fleets: Sequence[Fleet],
    states: Mapping[str, FleetState],
    *,
    now: datetime,
    refresh_options: RefreshOptions = RefreshOptions(),
) -> tuple[dict[str, LiveSnapshot], Catalog]:
    """The fleets' snapshots and the catalog (with storage prices when volumes are in play),
    fetched at the same time."""
    refreshing = asyncio.create_task(
        refresh_fleets(client, states, now=now, options=refresh_options, fleets=fleets)
    )
    volumes = any(f.volumes for f in fleets) or any(
        r.kind == "volume" for s in states.values() for r in s.resources.values()
    )
    cataloguing = asyncio.create_task(fetch_catalog(client, volumes=volumes))
    try:
        snapshots, catalog = await asyncio.gather(refreshing, cataloguing)
    except BaseException:
        # One failed: stop the other and wait for it, so nothing is left running (or
        # unawaited) when the error reaches the user.
        for task in (refreshing, cataloguing):
            task.cancel()
        await asyncio.gather(refreshing, cataloguing, return_exceptions=True)
        raise
    return snapshots, catalog


PENDING_POLL_SECONDS = 3.0

WaitReport = Callable[[tuple[Blocked, ...], float], None]
"""Told, before each wait, the pending addresses and the seconds until the last is released."""


async def refresh_and_plan_settled(
    client: ShadeformClient,
    fleets: Sequence[Fleet],
    states: Mapping[str, FleetState],
    *,
    clock: Callable[[], datetime],
    options: PlanOptions = PlanOptions(),
    refresh_options: RefreshOptions = RefreshOptions(),
    on_wait: WaitReport | None = None,
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    poll_seconds: float = PENDING_POLL_SECONDS,
) -> Plan:
    """:func:`refresh_and_plan`, repeated until no create sent by an earlier run is pending.

    After a killed apply, a create whose answer never came is pending: its instance may yet
    appear (then it is adopted) or its grace runs out (then it is released and planned anew).
    Waiting here, bounded by ``--intent-grace``, lets one ``apply`` converge instead of failing
    with "blocked" until someone runs it again. Other blocked addresses (two instances for
    one create) still need a person and do not make it wait.
    """
    while True:
        plan = await refresh_and_plan(
            client, fleets, states, now=clock(), options=options, refresh_options=refresh_options
        )
        pending = plan.pending
        if not pending:
            return plan
        left = max((b.resolves_in_seconds or 0.0) for b in pending)
        if on_wait is not None:
            on_wait(pending, left)
        await sleep(max(0.05, min(poll_seconds, left + 0.05)))


def check_selectors(
    options: PlanOptions,
    fleets: Sequence[Fleet],
    states: Mapping[str, FleetState],
    snapshots: Mapping[str, LiveSnapshot],
) -> None:
    """Refuse a ``--target``/``--exclude``/``--replace`` that names nothing: a typo must not plan nothing
    and exit 0. Known are the fleets, their declared addresses (and replica groups), the
    addresses in their states and those live instances carry."""
    selectors = [("--target", t) for t in options.targets]
    selectors += [("--exclude", e) for e in options.excludes]
    selectors += [("--replace", r) for r in options.replace]
    if not selectors:
        return
    names = {fleet.name for fleet in fleets}
    addresses: set[str] = set()
    for fleet in fleets:
        addresses.update(spec.address for spec in fleet.instances)
        state = states.get(fleet.name)
        if state is not None:
            addresses.update(state.instances)
        live = snapshots.get(fleet.name)
        if live is not None:
            addresses.update(o.address for o in live.orphans if o.address)
    problems = []
    for flag, selector in selectors:
        if selector in names or any(address_selected(a, (selector,)) for a in addresses):
            continue
        groups = {re.sub(r"-\d+$", "", a) for a in addresses}
        close = get_close_matches(selector, sorted(names | addresses | groups), n=1)
        hint = f"; did you mean '{close[0]}'?" if close else ""
        problems.append(f"{flag} {selector} names no fleet or address in the manifests{hint}")
    if problems:
        raise UsageError(
            "; ".join(problems) + ". Addresses are FLEET/NAME (`reconciler state list` shows "
            "those in the state)."
        )


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
