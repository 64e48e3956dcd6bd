"""Rolling replacement of replica groups (pure): waves that keep a serving fleet serving.

A replica group (``replicas: N`` of one manifest entry) with an ``update_strategy`` has its
replacements of serving replicas planned in waves. Each wave takes up to ``max_surge``
replicas *create-first* (the new one serves before the old one goes: the group runs one more
machine per slot) and up to ``max_unavailable`` *destroy-first* (the old one goes first: one
fewer serves). So the group never has fewer than ``N - max_unavailable`` serving nor more
than ``N + max_surge`` running, and a wave starts only once the one before it has finished
(new replicas serving, old ones gone). Kubernetes' ``maxSurge``/``maxUnavailable``, per wave.

What an earlier run left unfinished (a replica still booting, a predecessor waiting for its
successor to serve) and what is broken anyway (a missing or failed replica) goes first, as
wave 0: the rolling waves start from a group whose replicas all serve.

Without a strategy nothing is reordered, but a plan that would take every serving replica of
a group down at once says so, and names the setting that avoids it.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field

from reconciler.engine.plan_context import PlanContext
from reconciler.models.catalog import Cents, round_cents
from reconciler.models.live import Health
from reconciler.models.plan import Action, Change, Rollout, RolloutWave
from reconciler.models.spec import InstanceSpec


@dataclass
class _Group:
    address: str
    members: list[InstanceSpec] = field(default_factory=list)


def _index(address: str) -> tuple[int, str]:
    """Replica order: ``web-2`` before ``web-10``."""
    match = re.search(r"-(\d+)$", address)
    return (int(match.group(1)) if match else -1, address)


def plan_rollouts(ctx: PlanContext) -> list[Rollout]:
    """Put each group's replacements into waves (rewriting their changes in ``ctx``), warn
    where a group without a strategy would go down at once; the rollouts planned."""
    if ctx.options.destroy:
        return []
    groups: dict[str, _Group] = {}
    for spec in ctx.fleet.instances:
        if spec.group is not None:
            groups.setdefault(spec.group, _Group(spec.group)).members.append(spec)
    by_address: dict[str, list[int]] = {}
    for position, change in enumerate(ctx.changes):
        if change.kind == "instance":
            by_address.setdefault(change.address, []).append(position)
    rollouts = []
    for group in groups.values():
        group.members.sort(key=lambda s: _index(s.address))
        strategy = group.members[0].update_strategy
        if strategy is None:
            _warn_if_all_down(ctx, group, by_address)
            continue
        rollout = _plan_group(ctx, group, by_address)
        if rollout is not None:
            rollouts.append(rollout)
    return rollouts


def _unready(ctx: PlanContext, address: str) -> bool:
    """Recorded as created by a change that waits for readiness, which has not passed."""
    record = ctx.state.instances.get(address)
    spec = ctx.declared.get(address)
    return bool(
        record is not None
        and record.awaiting_readiness
        and spec is not None
        and getattr(spec, "readiness", None) is not None
    )


def _serving(ctx: PlanContext, address: str) -> bool:
    """Whether the address has a serving instance now (its recorded one, or an orphan)."""
    record = ctx.state.instances.get(address)
    current = ctx.live.by_id.get(record.instance_id) if record is not None else None
    if current is not None and current.health is Health.HEALTHY and not _unready(ctx, address):
        return True
    return any(o.health is Health.HEALTHY for o in ctx.orphans_by_address.get(address, ()))


def _changes_of(
    ctx: PlanContext, address: str, by_address: dict[str, list[int]]
) -> list[tuple[int, Change]]:
    return [(i, ctx.changes[i]) for i in by_address.get(address, ())]


def _rolls(ctx: PlanContext, change: Change) -> bool:
    """A replacement of a serving replica: what the waves are for."""
    if change.action is not Action.REPLACE or change.resource_id is None:
        return False
    current = ctx.live.by_id.get(change.resource_id)
    return (
        current is not None
        and current.health is Health.HEALTHY
        and not _unready(ctx, change.address)
    )


def _settles(ctx: PlanContext, change: Change) -> bool:
    """Work that comes before the rolling waves: repairs, and what an earlier run left (a
    predecessor or a duplicate to delete, a replica it created to adopt)."""
    if change.serving_first is not None:
        return True
    if change.action in (Action.CREATE, Action.DELETE):
        return True
    if change.action is Action.NOOP and change.adopt:
        return True
    return change.action is Action.REPLACE and not _rolls(ctx, change)


def _booting_adoption(ctx: PlanContext, change: Change) -> bool:
    """An adopted instance (an earlier run created it, then stopped) that still boots."""
    if not (change.adopt and change.action is Action.NOOP and change.resource_id):
        return False
    found = [
        o for o in ctx.orphans_by_address.get(change.address, ()) if o.id == change.resource_id
    ]
    return bool(found) and found[0].health is Health.IN_PROGRESS


def _plan_group(
    ctx: PlanContext, group: _Group, by_address: dict[str, list[int]]
) -> Rollout | None:
    strategy = group.members[0].update_strategy
    assert strategy is not None
    surge, unavailable = strategy.max_surge, strategy.max_unavailable
    rolling: list[tuple[int, Change]] = []
    settling: list[tuple[int, Change]] = []
    booting: list[str] = []
    for spec in group.members:
        changes = _changes_of(ctx, spec.address, by_address)
        for position, change in changes:
            if _rolls(ctx, change):
                rolling.append((position, change))
            elif _settles(ctx, change):
                settling.append((position, change))
        record = ctx.state.instances.get(spec.address)
        current = ctx.live.by_id.get(record.instance_id) if record is not None else None
        untouched = not any(c.action.is_change for _, c in changes)
        still_booting = current is not None and (
            current.health is Health.IN_PROGRESS
            or (current.health is Health.HEALTHY and _unready(ctx, spec.address))
        )
        if still_booting and untouched:
            booting.append(spec.address)
    if not rolling:
        return None  # nothing serving is replaced: nothing to roll
    serving = sum(1 for s in group.members if _serving(ctx, s.address))
    # Replicas down with nothing in this plan to bring them back (a create still pending, no
    # capacity, held back) stay down through the waves: they use up max_unavailable.
    settled = {c.address for _, c in settling} | set(booting)
    down = [
        s.address
        for s in group.members
        if not _serving(ctx, s.address) and s.address not in settled
    ]
    unavailable = max(0, unavailable - len(down))
    if surge == 0 and unavailable == 0:
        _hold_back(ctx, group, [c for _, c in rolling], down, strategy.max_unavailable)
        return None
    waves: list[RolloutWave] = []
    rewritten: dict[int, Change] = {}
    if settling or booting:
        # Wave 0: replicas still booting are waited for, broken or missing ones repaired,
        # predecessors retired once their successors serve; then the group rolls.
        for address in booting:
            record = ctx.state.instances[address]
            noops = [p for p, c in _changes_of(ctx, address, by_address) if c.action is Action.NOOP]
            if noops:
                position = noops[0]
                waits = ctx.changes[position].model_copy(
                    update={"serving_first": record.instance_id}
                )
                ctx.changes[position] = waits
            else:
                position = len(ctx.changes)
                ctx.changes.append(
                    Change(
                        address=address,
                        action=Action.NOOP,
                        resource_id=record.instance_id,
                        serving_first=record.instance_id,
                    )
                )
            settling.append((position, ctx.changes[position]))
        for position, change in settling:
            update: dict[str, object] = {"rollout": group.address, "wave": 0}
            if _booting_adoption(ctx, change):
                # Adopted while it boots: wave 0 waits until it serves.
                update["serving_first"] = change.resource_id
            rewritten[position] = change.model_copy(update=update)
        waves.append(
            RolloutWave(
                number=0,
                addresses=tuple(sorted({c.address for _, c in settling}, key=_index)),
                create_first=tuple(c.address for _, c in settling if c.create_before_destroy),
                boot_seconds=_boot_seconds(c for _, c in settling),
            )
        )
    queue = sorted(rolling, key=lambda pair: _index(pair[1].address))
    number = 1
    while queue:
        wave, queue = queue[: surge + unavailable], queue[surge + unavailable :]
        first = wave[:surge]  # surge slots: create-first; the rest: destroy-first
        surge_slots = {position for position, _ in first}
        for position, change in wave:
            create_first = position in surge_slots
            rewritten[position] = change.model_copy(
                update={
                    "rollout": group.address,
                    "wave": number,
                    "create_before_destroy": create_first,
                }
            )
        waves.append(
            RolloutWave(
                number=number,
                addresses=tuple(c.address for _, c in wave),
                create_first=tuple(c.address for _, c in first),
                boot_seconds=_boot_seconds(c for _, c in wave),
            )
        )
        number += 1
    for position, change in rewritten.items():
        ctx.changes[position] = change
    boots = [w.boot_seconds for w in waves]
    used_surge = max((len(w.create_first) for w in waves), default=0)
    readiness = group.members[0].readiness
    return Rollout(
        group=group.address,
        replicas=len(group.members),
        serving=serving,
        max_unavailable=unavailable,
        max_surge=surge,
        waves=tuple(waves),
        serving_floor=max(0, min(serving, len(group.members) - strategy.max_unavailable)),
        peak_running=len(group.members) + used_surge,
        expected_seconds=sum(b for b in boots if b is not None) if any(boots) else None,
        surge_hourly_cents=_surge_cents([rewritten[p] for p, _ in rolling], waves),
        readiness=readiness.command if readiness is not None else None,
    )


def _hold_back(
    ctx: PlanContext, group: _Group, rolling: list[Change], down: list[str], allowed: int
) -> None:
    """No replica may go down now: the rolling changes wait (blocked) for the next plan."""
    held = {c.address for c in rolling}
    ctx.changes = [c for c in ctx.changes if not (c.address in held and c.kind == "instance")]
    for address in sorted(held):
        ctx.recreated.discard(address)
        ctx.block(
            address,
            f"the rollout of {group.address} waits: {len(down)} replica(s) are down with "
            f"nothing in this plan to bring them back ({', '.join(down)}), and "
            f"max_unavailable {allowed} with max_surge 0 allows no more to go",
        )


def _boot_seconds(changes: Iterable[Change]) -> int | None:
    boots = [
        c.placement.chosen.boot_seconds_max
        for c in changes
        if c.placement is not None and c.placement.chosen.boot_seconds_max is not None
    ]
    return max(boots) if boots else None


def _price(value: Cents | None) -> Cents:
    return value if value is not None else 0


def _surge_cents(changes: list[Change], waves: list[RolloutWave]) -> Cents:
    """How far the group's burn rises above both its before and its after while a wave's
    surge replicas run beside the replicas they replace."""
    by_address = {c.address: c for c in changes}
    before = sum(_price(c.hourly_cents_before) for c in changes)
    after = sum(_price(c.hourly_cents_after) for c in changes)
    peak: Cents = max(before, after)
    done: set[str] = set()
    for wave in waves:
        if wave.number == 0:
            continue
        burn: Cents = 0
        for address, change in by_address.items():
            if address in done:
                burn += _price(change.hourly_cents_after)
            elif address in wave.addresses:
                burn += _price(change.hourly_cents_after)
                if address in wave.create_first:
                    burn += _price(change.hourly_cents_before)
            else:
                burn += _price(change.hourly_cents_before)
        peak = max(peak, burn)
        done.update(wave.addresses)
    return round_cents(peak - max(before, after))


def _warn_if_all_down(ctx: PlanContext, group: _Group, by_address: dict[str, list[int]]) -> None:
    """A group without a strategy whose every serving replica is replaced destroy-first
    serves nothing until the new ones boot: say so, and how to avoid it."""
    serving = [s.address for s in group.members if _serving(ctx, s.address)]
    if len(group.members) < 2 or not serving:
        return
    down = [
        a
        for a in serving
        if any(
            _rolls(ctx, c) and not c.create_before_destroy
            for _, c in _changes_of(ctx, a, by_address)
        )
    ]
    if len(down) < len(serving):
        return
    boots = [
        c.placement.chosen.boot_seconds_max
        for a in down
        for _, c in _changes_of(ctx, a, by_address)
        if c.placement is not None and c.placement.chosen.boot_seconds_max
    ]
    outage = f" for about {_minutes(max(boots))}" if boots else ""
    ctx.warnings.append(
        f"{group.address}: every serving replica ({len(down)} of {len(group.members)}) is "
        f"replaced at once, so the group serves nothing{outage} while the new ones boot. "
        "Set update_strategy (e.g. max_unavailable: 1, max_surge: 1) on it to replace them "
        "in waves"
    )


def _minutes(seconds: int) -> str:
    return f"{round(seconds / 60)} min" if seconds >= 90 else f"{seconds} s"
