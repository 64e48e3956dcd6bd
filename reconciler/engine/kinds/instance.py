"""Instances: GPU machines, owned through their ``reconciler:`` tags, placed on catalog offers.

Ownership: an instance carries ``reconciler:fleet=`` and ``reconciler:address=`` tags, and the
create intent's ``reconciler:intent=`` tag; refresh finds orphans (created, record lost) by
them. Only ``name``, ``tags``, ``auto_delete`` and ``alert`` change in place (the fields of
Shadeform's update request); any other change replaces the instance. An instance uses at most
one managed volume and one managed SSH key: their ids are fixed at create, so an instance whose
volume or key is created anew is replaced too.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

from reconciler.engine.comparable import comparable_spec
from reconciler.engine.diff import diff_specs
from reconciler.engine.kinds.base import FleetObservation, KindExecutor, Recorded, ResourceKind
from reconciler.engine.kinds.live_instances import to_live_instance
from reconciler.engine.kinds.references import (
    instance_references,
    recorded_instance_references,
)
from reconciler.engine.placement import PLACEMENT_KEYS, Envelope, envelope_for
from reconciler.engine.plan_context import PlanContext, address_selected, reason
from reconciler.errors import ManifestError, ManifestIssue
from reconciler.models.api import Instance, UpdateRequest
from reconciler.models.catalog import Cents, dollars_to_cents, unknown_offer_problem
from reconciler.models.live import FLEET_TAG, INTENT_TAG, Health, LiveInstance
from reconciler.models.plan import (
    Action,
    Blocked,
    BlockedKind,
    Change,
    CostSummary,
    FieldChange,
    PlacementChoice,
    Reason,
    ReasonCode,
)
from reconciler.models.spec import (
    SSH_KEY_PREFIX,
    Fleet,
    InstanceSpec,
)
from reconciler.models.state import FleetState

if TYPE_CHECKING:
    from reconciler.api import ShadeformClient
    from reconciler.engine.apply_context import ApplyRun

UPDATABLE_IN_PLACE: frozenset[str] = frozenset(UpdateRequest.model_fields)
"""What Shadeform's ``/instances/{id}/update`` can change: exactly its request's fields. The
diff marks every other field as forcing a replacement, and the update request is built from
these, so the two cannot drift apart."""


class InstanceKind(ResourceKind):
    name = "instance"
    noun = "instance"
    address_prefix = ""

    def specs(self, fleet: Fleet) -> Sequence[InstanceSpec]:
        return fleet.instances

    def records(self, state: FleetState) -> Mapping[str, Recorded]:
        return {a: Recorded(a, r.instance_id, r.applied_spec) for a, r in state.instances.items()}

    def comparable(self, spec: Any, key: str) -> dict[str, Any]:
        return comparable_spec(spec, key)

    def references(self, spec: Any) -> tuple[str, ...]:
        return instance_references(spec)

    def recorded_references(self, fleet: str, applied: dict[str, Any]) -> tuple[str, ...]:
        return recorded_instance_references(fleet, applied)

    def forget(self, draft: FleetState, address: str, resource_id: str | None) -> None:
        record = draft.instances.get(address)
        if record is not None and record.instance_id == resource_id:
            del draft.instances[address]

    def wanted(self, fleet: Fleet | None, state: FleetState) -> bool:
        return True  # the one list call also finds orphans by their tags

    async def observe(
        self, client: ShadeformClient, states: Mapping[str, FleetState], info_threshold: int
    ) -> dict[str, FleetObservation]:
        """One list call for every fleet; small fleets also get an info call per instance
        (it reports ``auto_delete`` and ``alert`` too); ids missing from the list are
        confirmed with an info call before they are declared gone."""
        listed = await client.list_instances()
        listed_by_id = {i.id: i for i in listed}
        want_info: list[str] = []
        for state in states.values():
            ids = [r.instance_id for r in state.instances.values()]
            if len(ids) <= info_threshold:
                want_info.extend(ids)
            else:
                want_info.extend(i for i in ids if i not in listed_by_id)
        infos = await client.get_instances(sorted(set(want_info))) if want_info else {}
        by_intent: dict[str, list[str]] = {}
        for instance in listed:
            for tag in instance.tags:
                if tag.startswith(INTENT_TAG) and instance.status != "deleted":
                    by_intent.setdefault(tag[len(INTENT_TAG) :], []).append(instance.id)
        observations = {}
        for fleet, state in states.items():
            by_id: dict[str, LiveInstance] = {}
            for record in state.instances.values():
                found: Instance | None
                if record.instance_id in infos:
                    found = infos[record.instance_id]  # authoritative: None means gone
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
            observations[fleet] = FleetObservation(
                by_id=by_id,
                orphans=orphans,
                intent_matches={
                    i.intent_id: tuple(sorted(by_intent.get(i.intent_id, [])))
                    for i in state.intents.values()
                    if i.kind == self.name
                },
            )
        return observations

    def prepare(self, ctx: PlanContext) -> None:
        for orphan in ctx.live.orphans:
            if orphan.address is None:
                ctx.warnings.append(
                    f"instance {orphan.id} ({orphan.name}) carries fleet {ctx.fleet.name}'s tag "
                    "but no address tag; left alone: delete it or `reconciler import` it"
                )

    def addresses(self, ctx: PlanContext) -> set[str]:
        addresses = set(ctx.state.instances)
        if not ctx.options.destroy:
            addresses.update(s.address for s in ctx.fleet.instances)
        addresses.update(o.address for o in ctx.live.orphans if o.address)
        return addresses

    def plan(self, ctx: PlanContext, address: str) -> None:
        _InstancePlanner(ctx).plan(address)

    def count_untouched(self, ctx: PlanContext, address: str) -> None:
        record = ctx.state.instances.get(address)
        current = ctx.live.by_id.get(record.instance_id) if record else None
        if record is None or current is None or current.health is Health.GONE:
            return
        planner = _InstancePlanner(ctx)
        price = planner.live_price(current, _before_from_live(record.applied_spec, current))
        if price is None:
            ctx.untouched = ctx.untouched + CostSummary(unknown_prices=1)
        else:
            ctx.untouched = ctx.untouched + CostSummary(
                hourly_cents_before=price, hourly_cents_after=price
            )

    def protected(self, ctx: PlanContext, address: str) -> bool:
        spec = ctx.declared.get(address)
        if spec is not None:
            return spec.lifecycle.prevent_destroy
        record = ctx.state.instances.get(address)
        if record is not None:
            return bool(record.applied_spec.get("lifecycle", {}).get("prevent_destroy", False))
        return False

    def check(self, ctx: PlanContext) -> None:
        if ctx.catalog_issues:
            raise ManifestError(
                [
                    ManifestIssue(file, line, None, where, f"{', '.join(addresses)}: {problem}")
                    for (file, line, where, problem), addresses in ctx.catalog_issues.items()
                ]
            )
        _check_auto_delete_dates(ctx)
        _check_mounted_replacements(ctx)

    def executor(self, run: ApplyRun) -> KindExecutor:
        from reconciler.engine.kinds.instance_apply import InstanceExecutor

        return InstanceExecutor(run, self)


# -- planning -------------------------------------------------------------------------------------


def _best_orphan(orphans: list[LiveInstance]) -> LiveInstance:
    rank = {Health.HEALTHY: 0, Health.IN_PROGRESS: 1, Health.BROKEN: 2, Health.GONE: 3}
    return min(orphans, key=lambda o: (rank[o.health], o.created_at or "", o.id))


def _before_from_live(base: dict[str, Any], live: LiveInstance) -> dict[str, Any]:
    """What exists: the applied (or desired) spec overlaid with the fields the API reported.

    Only fields the spec sets are overlaid, so a value Shadeform fills in by itself (say the
    default ``os``) is not mistaken for drift.
    """
    before = dict(base)
    before.update({k: v for k, v in live.observed.items() if k in base})
    return before


def _placed(after: dict[str, Any], key: tuple[Any, ...]) -> dict[str, Any]:
    """``after`` with cloud, region, type and rental type set to ``key``'s."""
    placed = dict(after)
    placed.update(zip(PLACEMENT_KEYS, key, strict=True))
    return placed


def _placement_of(data: dict[str, Any]) -> tuple[Any, ...]:
    return (
        data.get("cloud"),
        data.get("region"),
        data.get("shade_instance_type"),
        data.get("rental_type", "on_demand"),
    )


def _field_reasons(changes: tuple[FieldChange, ...]) -> tuple[Reason, ...]:
    return tuple(
        reason(ReasonCode.FORCES_REPLACEMENT, f"{c.path} changed (forces replacement)")
        if c.forces_replacement
        else reason(ReasonCode.FIELD_CHANGED, f"{c.path} changed")
        for c in changes
    )


_NO_CAPACITY = object()
"""What :meth:`_InstancePlanner._place` returns when no approved offer is free."""


class _InstancePlanner:
    """Plans one instance address into a :class:`PlanContext`."""

    def __init__(self, ctx: PlanContext) -> None:
        self.ctx = ctx

    def plan(self, address: str) -> None:
        ctx = self.ctx
        orphans = sorted(ctx.orphans_by_address.get(address, []), key=lambda o: o.id)
        spec = ctx.desired(address)
        if spec is not None:
            self.plan_desired(spec, orphans)
        else:
            self.plan_undesired(address, orphans)

    # -- desired addresses --------------------------------------------------------------------

    def plan_desired(self, spec: InstanceSpec, orphans: list[LiveInstance]) -> None:
        ctx = self.ctx
        after = comparable_spec(spec, ctx.key)
        record = ctx.state.instances.get(spec.address)
        current = ctx.live.by_id.get(record.instance_id) if record is not None else None
        base = record.applied_spec if record is not None else after
        adopt = False
        live_orphans = [o for o in orphans if o.health is not Health.GONE]
        if (current is None or current.health is Health.GONE) and live_orphans:
            current, adopt, base = _best_orphan(live_orphans), True, after
        self._delete_duplicates(spec, current, live_orphans)
        if current is None or current.health is Health.GONE:
            self._plan_create(spec, after, record is not None, current)
            return
        if current.fleet != ctx.fleet.name:
            self._not_owned(spec, current)
            return
        before = _before_from_live(base, current)
        envelope = self._envelope(spec)
        if spec.placement is not None and envelope is not None:
            if envelope.contains(*_placement_of(before)):
                # No churn: an instance inside its envelope stays where it is.
                after = _placed(after, _placement_of(before))
            else:
                placed = self._place(spec, envelope, after)
                if placed is _NO_CAPACITY:
                    return
                assert isinstance(placed, tuple)
                after = placed[1]
        adopted = (
            (reason(ReasonCode.ADOPTED_ORPHAN, f"adopted orphan {current.id}"),) if adopt else ()
        )
        field_changes: tuple[FieldChange, ...] = ()
        if current.health is Health.BROKEN:
            detail = f": {current.status_details}" if current.status_details else ""
            action = Action.REPLACE
            why: tuple[Reason, ...] = (
                reason(ReasonCode.IN_ERROR, f"instance is in error{detail}"),
            )
            from_manifest = False
        else:
            field_changes = diff_specs(
                before,
                after,
                ignore=spec.lifecycle.ignore_changes,
                updatable=UPDATABLE_IN_PLACE,
            )
            action, why = self._action_for(spec, field_changes, adopt)
            from_manifest = bool(field_changes)
        price_now = (
            current.hourly_price if current.hourly_price is not None else self.price_of(before)
        )
        choice = None
        price_after = price_now
        if action is Action.REPLACE:
            prefer = _placement_of(after) if current.health is not Health.BROKEN else None
            placed = self._place(spec, envelope, after, prefer=prefer, from_manifest=from_manifest)
            if placed is _NO_CAPACITY:
                return
            assert isinstance(placed, tuple)
            choice, after = placed
            if choice is not None:
                price_after = choice.chosen.hourly_price_cents
        ctx.add(
            Change(
                address=spec.address,
                action=action,
                resource_id=current.id,
                adopt=adopt,
                before=before,
                after=after,
                field_changes=field_changes,
                create_before_destroy=(
                    spec.lifecycle.create_before_destroy and action is Action.REPLACE
                ),
                reasons=(*adopted, *why),
                placement=choice,
                hourly_cents_before=price_now,
                hourly_cents_after=price_after,
            )
        )

    def _action_for(
        self, spec: InstanceSpec, field_changes: tuple[FieldChange, ...], adopt: bool
    ) -> tuple[Action, tuple[Reason, ...]]:
        if address_selected(spec.address, self.ctx.options.replace):
            return Action.REPLACE, (
                reason(ReasonCode.REPLACE_REQUESTED, "replacement requested (--replace)"),
            )
        if any(c.forces_replacement for c in field_changes):
            return Action.REPLACE, _field_reasons(field_changes)
        forced = self._dependencies_created_anew(spec)
        if forced:
            return Action.REPLACE, forced
        if field_changes:
            return Action.UPDATE, _field_reasons(field_changes)
        return Action.NOOP, (() if adopt else (reason(ReasonCode.UNCHANGED, "up to date"),))

    def _dependencies_created_anew(self, spec: InstanceSpec) -> tuple[Reason, ...]:
        """Why the instance must be replaced for what it uses: a volume or key this plan
        creates anew, or one created anew since the instance was (by a run that stopped
        before replacing it). Their ids are fixed when an instance is created."""
        ctx = self.ctx
        record = ctx.state.instances.get(spec.address)
        used = record.uses if record is not None else {}
        reasons = []
        for address in instance_references(spec):
            field = "ssh_key_id" if "/" + SSH_KEY_PREFIX in address else "volume_ids"
            if address in ctx.recreated:
                reasons.append(
                    reason(
                        ReasonCode.DEPENDENCY_REPLACED,
                        f"{address} is created anew, and an instance's {field} is fixed when "
                        "it is created",
                    )
                )
                continue
            now = ctx.state.resources.get(address)
            if now is not None and address in used and used[address] != now.resource_id:
                reasons.append(
                    reason(
                        ReasonCode.DEPENDENCY_REPLACED,
                        f"{address} was created anew ({now.resource_id}) after this instance, "
                        f"which still uses {used[address]} ({field} is fixed when it is created)",
                    )
                )
        return tuple(reasons)

    def _plan_create(
        self,
        spec: InstanceSpec,
        after: dict[str, Any],
        recorded: bool,
        current: LiveInstance | None,
    ) -> None:
        ctx = self.ctx
        record = ctx.state.instances.get(spec.address)
        if not recorded or record is None:
            why = reason(ReasonCode.NEW, "new instance")
        elif current is not None and current.preempted:
            why = reason(ReasonCode.PREEMPTED, "spot instance was preempted by Shadeform")
        else:
            why = reason(
                ReasonCode.DELETED_OUTSIDE,
                f"instance {record.instance_id} was deleted outside the reconciler",
            )
        placed = self._place(spec, self._envelope(spec), after, from_manifest=not recorded)
        if placed is _NO_CAPACITY:
            return
        assert isinstance(placed, tuple)
        choice, after = placed
        ctx.add(
            Change(
                address=spec.address,
                action=Action.CREATE,
                after=after,
                reasons=(why,),
                placement=choice,
                hourly_cents_after=(
                    self.price_of(after) if choice is None else choice.chosen.hourly_price_cents
                ),
            )
        )

    def _delete_duplicates(
        self, spec: InstanceSpec, current: LiveInstance | None, live_orphans: list[LiveInstance]
    ) -> None:
        record = self.ctx.state.instances.get(spec.address)
        unready = (
            current is not None
            and record is not None
            and record.instance_id == current.id
            and record.awaiting_readiness
            and spec.readiness is not None
        )
        for extra in live_orphans:
            if current is None or extra.id == current.id:
                continue
            serving_first = None
            why = f"duplicate instance {extra.id} for this address (keeping {current.id})"
            serves = current.health is Health.HEALTHY and not unready
            if extra.health is Health.HEALTHY and not serves:
                if current.health is Health.BROKEN:
                    # An earlier run's replacement came up broken: the predecessor still
                    # serves, and goes only once the address serves again (a later run).
                    self.ctx.warnings.append(
                        f"{spec.address}: kept {extra.id}, which still serves, until the "
                        f"replacement of {current.id} ({current.status}) serves"
                    )
                    continue
                # An earlier run created the successor and stopped before it served: the
                # predecessor keeps serving until it does (a restart never lowers the floor).
                serving_first = current.id
                state = "active, not ready yet" if unready else current.status
                why = (
                    f"{extra.id} is the predecessor of {current.id}, which is still "
                    f"{state}: deleted once {current.id} serves"
                )
            self.ctx.add(
                Change(
                    address=spec.address,
                    action=Action.DELETE,
                    resource_id=extra.id,
                    reasons=(reason(ReasonCode.DUPLICATE_ORPHAN, why),),
                    serving_first=serving_first,
                    hourly_cents_before=self.live_price(extra, dict(extra.observed)),
                )
            )

    def _not_owned(self, spec: InstanceSpec, current: LiveInstance) -> None:
        ctx = self.ctx
        ctx.warnings.append(
            f"{spec.address}: instance {current.id} no longer carries the tag "
            f"reconciler:fleet={ctx.fleet.name}; the reconciler will not touch it. "
            "Restore the tag, or `reconciler state rm` the address"
        )
        ctx.add(
            Change(
                address=spec.address,
                action=Action.NOOP,
                resource_id=current.id,
                reasons=(reason(ReasonCode.NOT_OWNED, "instance lost its ownership tag"),),
            )
        )

    # -- addresses no longer desired ------------------------------------------------------------

    def plan_undesired(self, address: str, orphans: list[LiveInstance]) -> None:
        ctx = self.ctx
        why = "destroy requested" if ctx.options.destroy else "removed from the manifest"
        record = ctx.state.instances.get(address)
        if record is not None:
            current = ctx.live.by_id.get(record.instance_id)
            if current is not None and current.status == "deleting":
                # An earlier run sent the delete and stopped before it was gone. A delete (not
                # a forget) keeps it in the graph: what it uses waits until it is gone, and the
                # executor sends nothing again.
                ctx.add(
                    Change(
                        address=address,
                        action=Action.DELETE,
                        resource_id=current.id,
                        before=_before_from_live(record.applied_spec, current),
                        reasons=(
                            reason(
                                ReasonCode.REMOVED_FROM_MANIFEST,
                                f"{why}; already deleting, waits until it is gone",
                            ),
                        ),
                        hourly_cents_before=self.live_price(current, record.applied_spec),
                    )
                )
            elif current is None or current.health is Health.GONE:
                ctx.add(
                    Change(
                        address=address,
                        action=Action.FORGET,
                        resource_id=record.instance_id,
                        before=record.applied_spec,
                        reasons=(reason(ReasonCode.DELETED_OUTSIDE, "instance is already gone"),),
                    )
                )
            elif current.fleet != ctx.fleet.name:
                ctx.warnings.append(
                    f"{address}: instance {current.id} lost its fleet tag; not deleting it. "
                    "`reconciler state rm` the address to forget it"
                )
            else:
                before = _before_from_live(record.applied_spec, current)
                ctx.add(
                    Change(
                        address=address,
                        action=Action.DELETE,
                        resource_id=current.id,
                        before=before,
                        reasons=(reason(ReasonCode.REMOVED_FROM_MANIFEST, why),),
                        hourly_cents_before=self.live_price(current, before),
                    )
                )
        for orphan in orphans:
            if orphan.health is Health.GONE:
                continue
            ctx.add(
                Change(
                    address=address,
                    action=Action.DELETE,
                    resource_id=orphan.id,
                    before=dict(orphan.observed),
                    reasons=(
                        reason(ReasonCode.ADOPTED_ORPHAN, f"orphan {orphan.id} found by its tags"),
                        reason(ReasonCode.REMOVED_FROM_MANIFEST, why),
                    ),
                    hourly_cents_before=self.live_price(orphan, dict(orphan.observed)),
                )
            )

    # -- placement and prices ---------------------------------------------------------------------

    def _envelope(self, spec: InstanceSpec) -> Envelope | None:
        if self.ctx.catalog is None:
            return None
        return envelope_for(spec, self.ctx.catalog)

    def _place(
        self,
        spec: InstanceSpec,
        envelope: Envelope | None,
        after: dict[str, Any],
        *,
        prefer: tuple[Any, ...] | None = None,
        from_manifest: bool = False,
    ) -> tuple[PlacementChoice | None, dict[str, Any]] | object:
        """(the offer chosen, ``after`` placed on it) for a new instance; ``(None, after)``
        without a catalog; :data:`_NO_CAPACITY` (recorded) when no approved offer is free."""
        choice = self._choose(spec, envelope, prefer, from_manifest=from_manifest)
        if envelope is not None and choice is None:
            return _NO_CAPACITY
        if choice is None:
            return None, after
        return choice, _placed(after, choice.chosen.key)

    def _choose(
        self,
        spec: InstanceSpec,
        envelope: Envelope | None,
        prefer: tuple[Any, ...] | None = None,
        *,
        from_manifest: bool = False,
    ) -> PlacementChoice | None:
        """The offer for a new instance, or None (recorded as "no capacity") when none is free.

        A fixed spec (or a replacement whose current offer is still approved and available)
        keeps its offer first; the rest of the envelope are the fallbacks. ``from_manifest``:
        the offer comes from what the manifest says now (a new address, or a field change),
        so one the catalog does not list at all is a typo (exit 3); recreating a lost or broken
        instance whose offer was delisted stays "no capacity".
        """
        ctx = self.ctx
        if envelope is None:
            return None
        if from_manifest and self._unknown_offers(spec, envelope):
            return None
        choice = envelope.choose()
        if choice is None:
            tried = ", ".join(o.describe() for o in envelope.offers) or "none in the catalog"
            unknown = (
                f"; not offered at all: {', '.join(envelope.unknown)}" if envelope.unknown else ""
            )
            ctx.no_capacity.append(
                Blocked(
                    address=spec.address,
                    kind=BlockedKind.NO_CAPACITY,
                    message=f"no capacity: no approved offer is available (approved: {tried}{unknown})",
                )
            )
            return None
        budget = ctx.fleet.budget
        ceiling = (
            dollars_to_cents(budget.max_instance_hourly)
            if budget and budget.max_instance_hourly and not ctx.options.allow_over_budget
            else None
        )
        if ceiling is not None:  # a fallback must never break the approved budget
            fallbacks = tuple(o for o in choice.fallbacks if o.hourly_price_cents <= ceiling)
            choice = choice.model_copy(update={"fallbacks": fallbacks})
        if prefer is not None:
            offers = (choice.chosen, *choice.fallbacks)
            first = next((o for o in offers if o.key == prefer), None)
            if first is not None and first is not choice.chosen:
                rest = tuple(o for o in offers if o is not first)
                choice = PlacementChoice(strategy=choice.strategy, chosen=first, fallbacks=rest)
        return choice

    def _unknown_offers(self, spec: InstanceSpec, envelope: Envelope) -> bool:
        """An offer whose cloud, type or region the catalog does not list at all is a typo
        (exit 3 with "did you mean"), not a capacity problem: capacity is for offers that
        exist but are not available (a rental type the catalog does not price stays that).
        Whether any was found."""
        ctx = self.ctx
        if not envelope.unknown_keys or ctx.catalog is None or not ctx.catalog.offers:
            return False
        file = spec.source.file if spec.source else ctx.fleet.source
        line = spec.source.line if spec.source else None
        found = False
        for cloud, region, kind, rental in envelope.unknown_keys:
            field, problem = unknown_offer_problem(ctx.catalog, cloud, region, kind, rental)
            if field == "rental_type":
                continue
            found = True
            where = field if spec.placement is None else f"placement.candidates ({field})"
            # Replicas share a manifest line: one problem names them all.
            ctx.catalog_issues.setdefault((file, line, where, problem), []).append(spec.address)
        return found

    def price_of(self, data: dict[str, Any]) -> Cents | None:
        if self.ctx.catalog is None:
            return None
        offer = self.ctx.catalog.find(*_placement_of(data))
        return offer.hourly_price_cents if offer else None

    def live_price(self, live: LiveInstance, data: dict[str, Any]) -> Cents | None:
        return live.hourly_price if live.hourly_price is not None else self.price_of(data)


# -- checks over the finished plan -------------------------------------------------------------


def _spec_of(ctx: PlanContext, address: str) -> InstanceSpec | None:
    spec = ctx.desired(address)
    return spec if isinstance(spec, InstanceSpec) else None


def _check_auto_delete_dates(ctx: PlanContext) -> None:
    """A create or replacement whose ``auto_delete.date_threshold`` has passed is a manifest
    error (exit 3): the new machine would be deleted at once. Instances that already run
    are not held to it (Shadeform deletes them at that date by itself), so a manifest
    whose date has passed can still be planned, destroyed and refreshed."""
    if ctx.options.now is None:
        return
    issues = []
    for change in ctx.changes:
        if change.kind != InstanceKind.name or change.action not in (
            Action.CREATE,
            Action.REPLACE,
        ):
            continue
        spec = _spec_of(ctx, change.address)
        when_text = spec.auto_delete.date_threshold if spec and spec.auto_delete else None
        if spec is None or when_text is None:
            continue
        when = datetime.fromisoformat(when_text.upper().replace("Z", "+00:00"))
        if when.tzinfo is not None and when <= ctx.options.now:
            issues.append(
                ManifestIssue(
                    spec.source.file if spec.source else ctx.fleet.source,
                    spec.source.line if spec.source else None,
                    None,
                    "auto_delete.date_threshold",
                    f"{spec.address}: {when_text} is in the past, and this plan would "
                    f"{change.action.value} the instance: Shadeform would delete the new "
                    "machine as soon as it is created. Set a future time or remove the "
                    "date_threshold",
                )
            )
    if issues:
        raise ManifestError(issues)


def _check_mounted_replacements(ctx: PlanContext) -> None:
    """A volume mounts on one machine: an instance that mounts one cannot be created before
    its predecessor is gone, so ``create_before_destroy`` there is refused (exit 3)."""
    issues = []
    for change in ctx.changes:
        if not (change.action is Action.REPLACE and change.create_before_destroy):
            continue
        spec = _spec_of(ctx, change.address)
        if spec is None or not (spec.volumes or spec.volume_ids):
            continue
        mounted = ", ".join((*spec.volumes, *spec.volume_ids))
        issues.append(
            ManifestIssue(
                spec.source.file if spec.source else ctx.fleet.source,
                spec.source.line if spec.source else None,
                None,
                "lifecycle.create_before_destroy",
                f"{spec.address} is to be replaced and mounts volume {mounted}: a volume "
                "mounts on one machine, so the new instance cannot be created before the old "
                "one is gone. Remove create_before_destroy from this instance (it is then "
                "deleted first, and the volume moves to its replacement)",
            )
        )
    if issues:
        raise ManifestError(issues)
