"""Drift: how Shadeform differs from what a fleet's state recorded (pure, like the planner).

``plan --refresh-only`` shows this instead of a plan: the manifests are not consulted, so it
answers "did someone change our machines?" without proposing anything.
"""

from __future__ import annotations

from reconciler.engine.diff import diff_specs
from reconciler.models.live import FLEET_TAG, Health, LiveSnapshot
from reconciler.models.plan import DriftItem, DriftKind, FleetDrift
from reconciler.models.state import FleetState


def fleet_drift(state: FleetState, live: LiveSnapshot) -> FleetDrift:
    """Every recorded instance compared with what refresh saw, plus unrecorded ones."""
    items: list[DriftItem] = []
    fleet_tag = f"{FLEET_TAG}{state.fleet}"
    for address, record in sorted(state.instances.items()):
        seen = live.by_id.get(record.instance_id)
        if seen is None or seen.health is Health.GONE:
            if seen is not None and seen.preempted:
                kind, message = DriftKind.PREEMPTED, "spot instance was reclaimed by Shadeform"
            else:
                kind, message = DriftKind.GONE, "deleted outside the reconciler"
            items.append(DriftItem(address=address, instance_id=record.instance_id, kind=kind,
                                   message=message))  # fmt: skip
            continue
        if fleet_tag not in seen.tags:
            items.append(
                DriftItem(
                    address=address,
                    instance_id=record.instance_id,
                    kind=DriftKind.NOT_OWNED,
                    message=f"no longer carries the tag {fleet_tag}",
                )
            )
            continue
        if seen.health is Health.BROKEN:
            detail = f": {seen.status_details}" if seen.status_details else ""
            items.append(
                DriftItem(
                    address=address,
                    instance_id=record.instance_id,
                    kind=DriftKind.BROKEN,
                    message=f"in error{detail}",
                )
            )
        applied = record.applied_spec
        observed = {k: v for k, v in seen.observed.items() if k in applied}
        changes = diff_specs(applied, {**applied, **observed})
        if changes:
            items.append(
                DriftItem(
                    address=address,
                    instance_id=record.instance_id,
                    kind=DriftKind.CHANGED,
                    message="changed outside the reconciler",
                    field_changes=changes,
                )
            )
    for orphan in live.orphans:
        items.append(
            DriftItem(
                address=orphan.address or f"(no address tag) {orphan.name}",
                instance_id=orphan.id,
                kind=DriftKind.UNRECORDED,
                message="carries the fleet's tags but is not in the state (an interrupted "
                "apply?); the next plan adopts it",
            )
        )
    return FleetDrift(fleet=state.fleet, serial=state.serial, items=tuple(items))
