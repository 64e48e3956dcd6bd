"""Refresh: look at what exists in Shadeform and build each fleet's :class:`LiveSnapshot`.

Each kind of resource is observed by its handler (``reconciler.engine.kinds``) with one list
call for every fleet at once: instances always (the list also finds orphans by their tags),
volumes and SSH keys only when a fleet declares or records some. The core merges what the kinds
saw and resolves pending create intents: found (exactly one resource carries the intent's tag
or matches its anchor), ambiguous (more than one), pending (none yet, inside the grace) or
abandoned (none after it).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

from reconciler.api import ShadeformClient
from reconciler.engine.concurrency import all_or_nothing
from reconciler.engine.kinds import KINDS
from reconciler.engine.kinds.base import FleetObservation
from reconciler.engine.kinds.live_instances import safe_host, safe_user, to_live_instance
from reconciler.models.live import (
    IntentResolution,
    LiveInstance,
    LiveResource,
    LiveSnapshot,
    ResolvedIntent,
)
from reconciler.models.spec import Fleet
from reconciler.models.state import FleetState

__all__ = [
    "RefreshOptions",
    "refresh_fleets",
    "resolve_intents",
    "safe_host",
    "safe_user",
    "to_live_instance",
]


@dataclass(frozen=True)
class RefreshOptions:
    info_threshold: int = 100
    """Fleets with at most this many recorded instances get one info call per instance."""
    intent_grace_seconds: float = 60.0
    """How long a create intent with no visible instance is waited for before it is released."""


def _age_seconds(created_at: str, now: datetime) -> float:
    return (now - datetime.fromisoformat(created_at.replace("Z", "+00:00"))).total_seconds()


def resolve_intents(
    state: FleetState,
    matches: Mapping[str, tuple[str, ...]],
    *,
    now: datetime,
    grace_seconds: float,
) -> tuple[ResolvedIntent, ...]:
    """Each intent of ``state``, resolved by ``matches`` (intent id -> what carries it)."""
    resolved = []
    for intent in sorted(state.intents.values(), key=lambda i: i.intent_id):
        ids = tuple(sorted(matches.get(intent.intent_id, ())))
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
                kind=intent.kind,
                resolution=resolution,
                resource_ids=ids,
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
    fleets: Sequence[Fleet] = (),
) -> dict[str, LiveSnapshot]:
    """Build a snapshot per fleet: one list call per kind that any fleet uses, plus bounded
    concurrent info calls. ``fleets`` (the manifests) say which kinds are declared."""
    declared = {f.name: f for f in fleets}
    kinds = [
        kind
        for kind in KINDS
        if any(kind.wanted(declared.get(name), state) for name, state in states.items())
    ]
    seen: list[dict[str, FleetObservation]] = await all_or_nothing(
        *(kind.observe(client, states, options.info_threshold) for kind in kinds)
    )
    snapshots: dict[str, LiveSnapshot] = {}
    for fleet, state in states.items():
        by_id: dict[str, LiveInstance] = {}
        orphans: list[LiveInstance] = []
        resources: dict[str, LiveResource] = {}
        unrecorded: list[LiveResource] = []
        matches: dict[str, tuple[str, ...]] = {}
        for observations in seen:
            observed = observations.get(fleet)
            if observed is None:
                continue
            by_id.update(observed.by_id)
            orphans.extend(observed.orphans)
            resources.update(observed.resources)
            unrecorded.extend(observed.unrecorded)
            matches.update(observed.intent_matches)
        snapshots[fleet] = LiveSnapshot(
            fleet=fleet,
            by_id=by_id,
            orphans=tuple(orphans),
            resources=resources,
            unrecorded=tuple(unrecorded),
            intents=resolve_intents(
                state, matches, now=now, grace_seconds=options.intent_grace_seconds
            ),
        )
    return snapshots
