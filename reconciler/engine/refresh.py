"""Refresh: look at what exists in Shadeform and build each fleet's :class:`LiveSnapshot`.

One ``GET /instances`` serves every fleet: it finds orphans (instances with a fleet's tag the
state does not know) and resolves pending create intents by their tag. Instances the state knows
are read from that list; small fleets (``info_threshold``) also get one concurrent
``/instances/{id}/info`` call each, which reports ``auto_delete`` and ``alert`` too. Ids missing
from the list are confirmed with an info call before they are declared gone.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from reconciler.api import ShadeformClient
from reconciler.models.api import Instance, InstanceInfo
from reconciler.models.live import (
    FLEET_TAG,
    INTENT_TAG,
    OWNERSHIP_PREFIX,
    Health,
    IntentResolution,
    LiveInstance,
    LiveSnapshot,
    ResolvedIntent,
)
from reconciler.models.state import FleetState

_HEALTH = {
    "creating": Health.IN_PROGRESS,
    "pending_provider": Health.IN_PROGRESS,
    "pending": Health.IN_PROGRESS,
    "active": Health.HEALTHY,
    "error": Health.BROKEN,
    "deleting": Health.GONE,
    "deleted": Health.GONE,
}


@dataclass(frozen=True)
class RefreshOptions:
    info_threshold: int = 100
    """Fleets with at most this many recorded instances get one info call per instance."""
    intent_grace_seconds: float = 60.0
    """How long a create intent with no visible instance is waited for before it is released."""


def _thresholds(value: Any) -> dict[str, Any] | None:
    if value is None:
        return None
    dumped = {k: v for k, v in value.model_dump().items() if v is not None}
    return dumped or None


def to_live_instance(instance: Instance) -> LiveInstance:
    """Our view of one API instance: health, tags and the spec fields it reports."""
    user_tags = [t for t in instance.tags if not t.startswith(OWNERSHIP_PREFIX)]
    observed: dict[str, Any] = {
        "name": instance.name,
        "tags": user_tags,
        "cloud": instance.cloud,
        "region": instance.region,
        "shade_instance_type": instance.shade_instance_type,
    }
    if instance.shade_cloud is not None:
        observed["shade_cloud"] = instance.shade_cloud
    if instance.rental_terms is not None and instance.rental_terms.rental_type in (
        "on_demand",
        "spot",
    ):
        observed["rental_type"] = instance.rental_terms.rental_type
    if isinstance(instance, InstanceInfo):
        observed["auto_delete"] = _thresholds(instance.auto_delete)
        observed["alert"] = _thresholds(instance.alert)
    return LiveInstance(
        id=instance.id,
        name=instance.name,
        status=str(instance.status),
        status_details=instance.status_details,
        health=_HEALTH.get(str(instance.status), Health.IN_PROGRESS),
        tags=tuple(instance.tags),
        observed=observed,
        hourly_price=instance.hourly_price,
        cost_estimate=instance.cost_estimate,
        created_at=instance.created_at.isoformat() if instance.created_at else None,
        ip=safe_host(instance.ip),
        ssh_user=safe_user(instance.ssh_user),
        ssh_port=instance.ssh_port if instance.ssh_port and 0 < instance.ssh_port < 65536 else None,
    )


_HOSTNAME = re.compile(
    r"^[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$"
)
_USER = re.compile(r"^[A-Za-z_][A-Za-z0-9._-]{0,31}$")


def safe_host(value: str | None) -> str | None:
    """An IP address or host name as Shadeform reported it, or None when it is anything else.

    These values end up on an ``ssh`` command line and in Ansible inventories: one that
    starts with ``-`` (``-oProxyCommand=...``) would be read as an option and run a command
    on the operator's machine, so only plain addresses and host names pass."""
    if not value:
        return None
    try:
        return str(ipaddress.ip_address(value))
    except ValueError:
        return value if len(value) <= 253 and _HOSTNAME.match(value) else None


def safe_user(value: str | None) -> str | None:
    """A login name of the usual shape, or None (same reason as :func:`safe_host`)."""
    return value if value and _USER.match(value) else None


def _age_seconds(created_at: str, now: datetime) -> float:
    return (now - datetime.fromisoformat(created_at.replace("Z", "+00:00"))).total_seconds()


def resolve_intents(
    state: FleetState, listed: list[Instance], *, now: datetime, grace_seconds: float
) -> tuple[ResolvedIntent, ...]:
    by_intent: dict[str, list[str]] = {}
    for instance in listed:
        for tag in instance.tags:
            if tag.startswith(INTENT_TAG) and instance.status != "deleted":
                by_intent.setdefault(tag[len(INTENT_TAG) :], []).append(instance.id)
    resolved = []
    for intent in sorted(state.intents.values(), key=lambda i: i.intent_id):
        ids = tuple(sorted(by_intent.get(intent.intent_id, [])))
        age = _age_seconds(intent.created_at, now)
        if len(ids) == 1:
            resolution = IntentResolution.FOUND
        elif len(ids) > 1:
            resolution = IntentResolution.AMBIGUOUS
        elif age >= grace_seconds:
            resolution = IntentResolution.ABANDONED
        else:
            resolution = IntentResolution.PENDING
        resolved.append(
            ResolvedIntent(
                intent_id=intent.intent_id,
                address=intent.address,
                resolution=resolution,
                instance_ids=ids,
                recorded_at=intent.created_at,
                age_seconds=age,
                grace_seconds=grace_seconds,
            )
        )
    return tuple(resolved)


async def refresh_fleets(
    client: ShadeformClient,
    states: Mapping[str, FleetState],
    *,
    now: datetime,
    options: RefreshOptions = RefreshOptions(),
) -> dict[str, LiveSnapshot]:
    """Build a snapshot per fleet with one list call plus bounded, concurrent info calls."""
    listed = await client.list_instances()
    listed_by_id = {i.id: i for i in listed}

    want_info: list[str] = []
    for state in states.values():
        ids = [r.instance_id for r in state.instances.values()]
        if len(ids) <= options.info_threshold:
            want_info.extend(ids)
        else:
            want_info.extend(i for i in ids if i not in listed_by_id)
    infos = await client.get_instances(sorted(set(want_info))) if want_info else {}

    snapshots: dict[str, LiveSnapshot] = {}
    for fleet, state in states.items():
        by_id: dict[str, LiveInstance] = {}
        for record in state.instances.values():
            found: Instance | None
            if record.instance_id in infos:
                found = infos[record.instance_id]  # authoritative: None means not found, gone
            else:
                found = listed_by_id.get(record.instance_id)
            if found is not None and found.status != "deleted":
                by_id[record.instance_id] = to_live_instance(found)
        known = {r.instance_id for r in state.instances.values()}
        fleet_tag = f"{FLEET_TAG}{fleet}"
        orphans = tuple(
            to_live_instance(i)
            for i in sorted(listed, key=lambda i: i.id)
            if fleet_tag in i.tags and i.id not in known and i.status != "deleted"
        )
        snapshots[fleet] = LiveSnapshot(
            fleet=fleet,
            by_id=by_id,
            orphans=orphans,
            intents=resolve_intents(
                state, listed, now=now, grace_seconds=options.intent_grace_seconds
            ),
        )
    return snapshots
