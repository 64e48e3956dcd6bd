"""Drift: how Shadeform differs from what a fleet's state recorded (pure, like the planner).

``plan --refresh-only`` shows this instead of a plan: the manifests are not consulted, so it
answers "did someone change our machines?" without proposing anything. What the state
recorded is each record's applied spec as last seen: a status or tags the state already
recorded (``apply --refresh-only``) are not drift again, and fields under the record's
``lifecycle.ignore_changes`` are never drift.
"""

from __future__ import annotations

from reconciler.engine.diff import diff_specs
from reconciler.engine.kinds.instance import UPDATABLE_IN_PLACE
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
            items.append(DriftItem(address=address, resource_id=record.instance_id, kind=kind,
                                   message=message))  # fmt: skip
            continue
        last_seen = record.live or {}
        if fleet_tag not in seen.tags and not _recorded_unowned(last_seen, fleet_tag):
            items.append(
                DriftItem(
                    address=address,
                    resource_id=record.instance_id,
                    kind=DriftKind.NOT_OWNED,
                    message=f"no longer carries the tag {fleet_tag}",
                )
            )
            continue
        if fleet_tag not in seen.tags:
            continue  # recorded as not ours already: the reconciler leaves it alone
        if seen.health is Health.BROKEN and last_seen.get("status") != seen.status:
            detail = f": {seen.status_details}" if seen.status_details else ""
            items.append(
                DriftItem(
                    address=address,
                    resource_id=record.instance_id,
                    kind=DriftKind.BROKEN,
                    message=f"in error{detail}",
                )
            )
        applied = record.applied_spec
        observed = {k: v for k, v in seen.observed.items() if k in applied}
        ignored = tuple((applied.get("lifecycle") or {}).get("ignore_changes") or ())
        changes = diff_specs(
            applied, {**applied, **observed}, updatable=UPDATABLE_IN_PLACE, ignore=ignored
        )
        if changes:
            items.append(
                DriftItem(
                    address=address,
                    resource_id=record.instance_id,
                    kind=DriftKind.CHANGED,
                    message="changed outside the reconciler",
                    field_changes=changes,
                )
            )
    for orphan in live.orphans:
        if orphan.health is Health.GONE:
            continue  # on its way out (a destroy just ran): nothing to adopt
        items.append(
            DriftItem(
                address=orphan.address or f"(no address tag) {orphan.name}",
                resource_id=orphan.id,
                kind=DriftKind.UNRECORDED,
                message="carries the fleet's tags but is not in the state (an interrupted "
                "apply?); the next plan adopts it",
            )
        )
    items.extend(_resource_drift(state, live))
    return FleetDrift(fleet=state.fleet, serial=state.serial, items=tuple(items))


def _resource_drift(state: FleetState, live: LiveSnapshot) -> list[DriftItem]:
    """Volumes and keys: deleted, or changed (resized, renamed) outside the reconciler."""
    items = []
    for address, record in sorted(state.resources.items()):
        seen = live.resources.get(record.resource_id)
        kind = record.kind
        if seen is None:
            lost = " (its data is gone)" if kind == "volume" else ""
            items.append(
                DriftItem(
                    address=address,
                    resource_id=record.resource_id,
                    resource_kind=kind,  # type: ignore[arg-type]
                    kind=DriftKind.GONE,
                    message=f"deleted outside the reconciler{lost}",
                )
            )
            continue
        applied = record.applied_spec
        observed = {k: v for k, v in seen.observed.items() if k in applied}
        changes = diff_specs(applied, {**applied, **observed}, updatable=frozenset())
        if changes:
            items.append(
                DriftItem(
                    address=address,
                    resource_id=record.resource_id,
                    resource_kind=kind,  # type: ignore[arg-type]
                    kind=DriftKind.CHANGED,
                    message="changed outside the reconciler",
                    field_changes=changes,
                )
            )
    return items


def _recorded_unowned(last_seen: dict[str, object], fleet_tag: str) -> bool:
    tags = last_seen.get("tags")
    return isinstance(tags, list) and fleet_tag not in tags


def state_matching_shadeform(state: FleetState, live: LiveSnapshot, *, now: str) -> FleetState:
    """What ``apply --refresh-only`` records (pure): the state brought to what exists now.

    Records of instances, volumes and keys that are gone are dropped (the next plan creates
    them anew); fields
    changed outside are taken into the record's applied spec; every record gets its live
    attributes. Instances carrying the fleet's tags but missing from the state are left for
    ``plan``/``apply`` to adopt: only they can record them with the manifest's spec.
    """
    records = {}
    for address, record in state.instances.items():
        seen = live.by_id.get(record.instance_id)
        if seen is None or seen.health is Health.GONE:
            continue
        applied = dict(record.applied_spec)
        applied.update({k: v for k, v in seen.observed.items() if k in applied})
        records[address] = record.model_copy(
            update={
                "applied_spec": applied,
                "live": seen.model_dump(mode="json"),
                "refreshed_at": now,
            }
        )
    resources = {}
    for address, resource in state.resources.items():
        found = live.resources.get(resource.resource_id)
        if found is None:
            continue  # gone: the next plan creates it anew
        applied = dict(resource.applied_spec)
        applied.update({k: v for k, v in found.observed.items() if k in applied})
        resources[address] = resource.model_copy(
            update={
                "applied_spec": applied,
                "live": found.model_dump(mode="json"),
                "refreshed_at": now,
                "retiring": tuple(i for i in resource.retiring if i in live.resources),
            }
        )
    return state.model_copy(update={"instances": records, "resources": resources})
