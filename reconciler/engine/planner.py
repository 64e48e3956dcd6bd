"""The pure planner: (desired fleet, prior state, live snapshot) -> FleetPlan.

No network, no files, no clock, no printing; the same inputs always give the same plan, with
changes ordered by address. Policy violations (``prevent_destroy``) raise :class:`PolicyError`.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from reconciler.engine.budget import check_budget, fleet_cost
from reconciler.engine.comparable import comparable_spec
from reconciler.engine.diff import diff_specs
from reconciler.engine.placement import PLACEMENT_KEYS, Envelope, envelope_for
from reconciler.errors import ManifestError, ManifestIssue, PolicyError
from reconciler.models.catalog import Catalog, dollars_to_cents, unknown_offer_problem
from reconciler.models.live import (
    Health,
    IntentResolution,
    LiveInstance,
    LiveSnapshot,
    ResolvedIntent,
)
from reconciler.models.plan import (
    Action,
    Blocked,
    BlockedKind,
    Change,
    CostSummary,
    FieldChange,
    FleetPlan,
    PlacementChoice,
    Reason,
    ReasonCode,
)
from reconciler.models.spec import Fleet, InstanceSpec
from reconciler.models.state import FleetState, InstanceRecord


@dataclass(frozen=True)
class PlanOptions:
    targets: tuple[str, ...] = ()
    excludes: tuple[str, ...] = ()  # the inverse of targets: left out of the plan
    replace: tuple[str, ...] = ()
    destroy: bool = False  # plan the deletion of everything the fleet owns
    allow_over_budget: bool = False  # record budget violations instead of failing
    now: datetime | None = None
    """The plan's moment (data, not a clock): a new instance's ``auto_delete`` date must
    follow it, or Shadeform would delete the machine as soon as it is created."""


def address_selected(address: str, selectors: Iterable[str]) -> bool:
    """``--target`` matching: an exact address, a fleet name, or a replica group.

    ``inference`` selects the whole fleet; ``inference/vllm`` selects ``inference/vllm`` and
    its replicas ``inference/vllm-0``, ``inference/vllm-1``, ...
    """
    for selector in selectors:
        if address == selector or address.startswith(selector + "/"):
            return True
        if re.fullmatch(re.escape(selector) + r"-\d+", address):
            return True
    return False


def _pending_message(intent: ResolvedIntent) -> str:
    """What a pending create is, when it resolves and how to resolve it sooner."""
    recorded = f" at {intent.recorded_at}" if intent.recorded_at else ""
    left = intent.seconds_left
    grace = intent.grace_seconds
    when = (
        f"; it is released in {left:.0f}s, when --intent-grace ({grace:g}s) has passed since "
        "it was recorded, and then created anew"
        if left is not None and grace is not None
        else "; it is released once --intent-grace has passed since it was recorded"
    )
    return (
        f"a create was recorded{recorded} (intent {intent.intent_id}) and may have reached "
        "Shadeform, but no instance carries its tag yet. It is adopted as soon as one appears"
        f"{when}. `reconciler apply` waits for this by itself; `--intent-grace 0` releases it "
        "now, but only do that if you are sure the create never reached Shadeform (else the "
        "address is billed twice)"
    )


def _reason(code: ReasonCode, message: str) -> Reason:
    return Reason(code=code, message=message)


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
    reasons = []
    for change in changes:
        if change.forces_replacement:
            reasons.append(
                _reason(
                    ReasonCode.FORCES_REPLACEMENT, f"{change.path} changed (forces replacement)"
                )
            )
        else:
            reasons.append(_reason(ReasonCode.FIELD_CHANGED, f"{change.path} changed"))
    return tuple(reasons)


class _FleetPlanner:
    def __init__(
        self,
        fleet: Fleet,
        state: FleetState,
        live: LiveSnapshot,
        options: PlanOptions,
        catalog: Catalog | None,
    ) -> None:
        self.fleet = fleet
        self.catalog = catalog
        self.no_capacity: list[Blocked] = []
        self.catalog_issues: dict[tuple[str, int | None, str, str], list[str]] = {}
        self.untouched = CostSummary()
        """The burn of running instances outside --target/--exclude: unchanged by this plan,
        but part of the fleet's burn before and after (and of its max_hourly budget)."""
        self.state = state
        self.live = live
        self.options = options
        self.key = state.fingerprint_key
        self.desired = {} if options.destroy else {s.address: s for s in fleet.instances}
        self.changes: list[Change] = []
        self.blocked: dict[str, Blocked] = {}
        self.warnings: list[str] = []

    def run(self) -> FleetPlan:
        for intent in self.live.intents:
            if not self._selected(intent.address):
                continue  # outside --target/--exclude: neither reported nor waited for
            if intent.resolution is IntentResolution.PENDING:
                self.blocked[intent.address] = Blocked(
                    address=intent.address,
                    kind=BlockedKind.PENDING_CREATE,
                    resolves_in_seconds=intent.seconds_left,
                    message=_pending_message(intent),
                )
            elif intent.resolution is IntentResolution.AMBIGUOUS:
                ids = ", ".join(intent.instance_ids)
                self.blocked[intent.address] = Blocked(
                    address=intent.address,
                    kind=BlockedKind.AMBIGUOUS_CREATE,
                    message=(
                        f"more than one instance carries create intent {intent.intent_id} "
                        f"({ids}), so Shadeform bills them all for one address; delete the "
                        "extra ones by hand, then run again"
                    ),
                )
        orphans_by_address: dict[str, list[LiveInstance]] = {}
        for orphan in self.live.orphans:
            if orphan.address is None:
                self.warnings.append(
                    f"instance {orphan.id} ({orphan.name}) carries fleet {self.fleet.name}'s tag "
                    "but no address tag; left alone: delete it or `reconciler import` it"
                )
                continue
            orphans_by_address.setdefault(orphan.address, []).append(orphan)

        addresses = set(self.desired) | set(self.state.instances) | set(orphans_by_address)
        for address in sorted(addresses):
            if not self._selected(address):
                self._count_untouched(address)
                continue
            if address in self.blocked:
                continue
            orphans = sorted(orphans_by_address.get(address, []), key=lambda o: o.id)
            spec = self.desired.get(address)
            record = self.state.instances.get(address)
            if spec is not None:
                self._plan_desired(spec, record, orphans)
            else:
                self._plan_undesired(address, record, orphans)

        if self.catalog_issues:
            raise ManifestError(
                [
                    ManifestIssue(file, line, None, where, f"{', '.join(addresses)}: {problem}")
                    for (file, line, where, problem), addresses in self.catalog_issues.items()
                ]
            )
        self._check_prevent_destroy()
        self._check_auto_delete_dates()
        changes = tuple(self.changes)
        overrides = check_budget(
            self.fleet,
            changes,
            allow_over_budget=self.options.allow_over_budget,
            untouched=self.untouched,
        )
        return FleetPlan(
            fleet=self.fleet.name,
            lineage=self.state.lineage if self.state.serial > 0 else None,
            serial=self.state.serial,
            manifest_digest=self.fleet.digest,
            changes=changes,
            blocked=tuple(self.blocked[a] for a in sorted(self.blocked)),
            no_capacity=tuple(self.no_capacity),
            cost=fleet_cost(changes) + self.untouched,
            budget_overrides=overrides,
            warnings=tuple(self.warnings),
            released_intents=tuple(
                sorted(
                    i.intent_id
                    for i in self.live.intents
                    if i.resolution in (IntentResolution.FOUND, IntentResolution.ABANDONED)
                )
            ),
        )

    # -- desired addresses -------------------------------------------------------------------

    def _plan_desired(
        self, spec: InstanceSpec, record: InstanceRecord | None, orphans: list[LiveInstance]
    ) -> None:
        after = comparable_spec(spec, self.key)
        cbd = spec.lifecycle.create_before_destroy
        current: LiveInstance | None = None
        adopt = False
        if record is not None:
            current = self.live.by_id.get(record.instance_id)
            base = record.applied_spec
        else:
            base = after
        live_orphans = [o for o in orphans if o.health is not Health.GONE]
        if (current is None or current.health is Health.GONE) and live_orphans:
            current = _best_orphan(live_orphans)
            adopt = True
            base = after
        for extra in live_orphans:
            if current is not None and extra.id != current.id:
                self._add(
                    Change(
                        address=spec.address,
                        action=Action.DELETE,
                        instance_id=extra.id,
                        reasons=(
                            _reason(
                                ReasonCode.DUPLICATE_ORPHAN,
                                f"duplicate instance {extra.id} for this address "
                                f"(keeping {current.id})",
                            ),
                        ),
                        hourly_cents_before=self._live_price(extra, dict(extra.observed)),
                    )
                )

        if current is None or current.health is Health.GONE:
            if record is None:
                reason = _reason(ReasonCode.NEW, "new instance")
            elif current is not None and current.preempted:
                reason = _reason(ReasonCode.PREEMPTED, "spot instance was preempted by Shadeform")
            else:
                reason = _reason(
                    ReasonCode.DELETED_OUTSIDE,
                    f"instance {record.instance_id} was deleted outside the reconciler",
                )
            envelope = self._envelope(spec)
            choice = self._choose(spec, envelope, from_manifest=record is None)
            if envelope is not None and choice is None:
                return
            if choice is not None:
                after = _placed(after, choice.chosen.key)
            self._add(
                Change(
                    address=spec.address,
                    action=Action.CREATE,
                    after=after,
                    reasons=(reason,),
                    placement=choice,
                    hourly_cents_after=self._price_of(after)
                    if choice is None
                    else choice.chosen.hourly_price_cents,
                )
            )
            return

        if current.fleet != self.fleet.name:
            self.warnings.append(
                f"{spec.address}: instance {current.id} no longer carries the tag "
                f"reconciler:fleet={self.fleet.name}; the reconciler will not touch it. "
                "Restore the tag, or `reconciler state rm` the address"
            )
            self._add(
                Change(
                    address=spec.address,
                    action=Action.NOOP,
                    instance_id=current.id,
                    reasons=(_reason(ReasonCode.NOT_OWNED, "instance lost its ownership tag"),),
                )
            )
            return

        before = _before_from_live(base, current)
        price_now = (
            current.hourly_price if current.hourly_price is not None else self._price_of(before)
        )
        envelope = self._envelope(spec)
        if spec.placement is not None and envelope is not None:
            if envelope.contains(*_placement_of(before)):
                # No churn: an instance inside its envelope stays where it is.
                after = _placed(after, _placement_of(before))
            else:
                choice = self._choose(spec, envelope)
                if choice is None:
                    return
                after = _placed(after, choice.chosen.key)
        adopted = (
            (_reason(ReasonCode.ADOPTED_ORPHAN, f"adopted orphan {current.id}"),) if adopt else ()
        )
        if current.health is Health.BROKEN:
            detail = f": {current.status_details}" if current.status_details else ""
            choice = self._choose(spec, envelope)
            if envelope is not None and choice is None:
                return
            if choice is not None:
                after = _placed(after, choice.chosen.key)
            self._add(
                Change(
                    address=spec.address,
                    action=Action.REPLACE,
                    instance_id=current.id,
                    adopt=adopt,
                    before=before,
                    after=after,
                    create_before_destroy=cbd,
                    reasons=(
                        *adopted,
                        _reason(ReasonCode.IN_ERROR, f"instance is in error{detail}"),
                    ),
                    placement=choice,
                    hourly_cents_before=price_now,
                    hourly_cents_after=choice.chosen.hourly_price_cents if choice else price_now,
                )
            )
            return

        field_changes = diff_specs(before, after, ignore=spec.lifecycle.ignore_changes)
        reasons: tuple[Reason, ...]
        if address_selected(spec.address, self.options.replace):
            action = Action.REPLACE
            reasons = (_reason(ReasonCode.REPLACE_REQUESTED, "replacement requested (--replace)"),)
        elif any(c.forces_replacement for c in field_changes):
            action = Action.REPLACE
            reasons = _field_reasons(field_changes)
        elif field_changes:
            action = Action.UPDATE
            reasons = _field_reasons(field_changes)
        else:
            action = Action.NOOP
            reasons = (_reason(ReasonCode.UNCHANGED, "up to date"),) if not adopt else ()
        choice = None
        price_after = price_now
        if action is Action.REPLACE:
            choice = self._choose(
                spec, envelope, prefer=_placement_of(after), from_manifest=bool(field_changes)
            )
            if envelope is not None and choice is None:
                return
            if choice is not None:
                after = _placed(after, choice.chosen.key)
                price_after = choice.chosen.hourly_price_cents
        self._add(
            Change(
                address=spec.address,
                action=action,
                instance_id=current.id,
                adopt=adopt,
                before=before,
                after=after,
                field_changes=field_changes,
                create_before_destroy=cbd and action is Action.REPLACE,
                reasons=(*adopted, *reasons),
                placement=choice,
                hourly_cents_before=price_now,
                hourly_cents_after=price_after,
            )
        )

    # -- addresses no longer desired ------------------------------------------------------------

    def _plan_undesired(
        self, address: str, record: InstanceRecord | None, orphans: list[LiveInstance]
    ) -> None:
        why = "destroy requested" if self.options.destroy else "removed from the manifest"
        if record is not None:
            current = self.live.by_id.get(record.instance_id)
            if current is None or current.health is Health.GONE:
                self._add(
                    Change(
                        address=address,
                        action=Action.FORGET,
                        instance_id=record.instance_id,
                        before=record.applied_spec,
                        reasons=(_reason(ReasonCode.DELETED_OUTSIDE, "instance is already gone"),),
                    )
                )
            elif current.fleet != self.fleet.name:
                self.warnings.append(
                    f"{address}: instance {current.id} lost its fleet tag; not deleting it. "
                    "`reconciler state rm` the address to forget it"
                )
            else:
                before = _before_from_live(record.applied_spec, current)
                self._add(
                    Change(
                        address=address,
                        action=Action.DELETE,
                        instance_id=current.id,
                        before=before,
                        reasons=(_reason(ReasonCode.REMOVED_FROM_MANIFEST, why),),
                        hourly_cents_before=self._live_price(current, before),
                    )
                )
        for orphan in orphans:
            if orphan.health is Health.GONE:
                continue
            self._add(
                Change(
                    address=address,
                    action=Action.DELETE,
                    instance_id=orphan.id,
                    before=dict(orphan.observed),
                    reasons=(
                        _reason(ReasonCode.ADOPTED_ORPHAN, f"orphan {orphan.id} found by its tags"),
                        _reason(ReasonCode.REMOVED_FROM_MANIFEST, why),
                    ),
                    hourly_cents_before=self._live_price(orphan, dict(orphan.observed)),
                )
            )

    # -- placement and prices ---------------------------------------------------------------------

    def _envelope(self, spec: InstanceSpec) -> Envelope | None:
        if self.catalog is None:
            return None
        return envelope_for(spec, self.catalog)

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
            self.no_capacity.append(
                Blocked(
                    address=spec.address,
                    kind=BlockedKind.NO_CAPACITY,
                    message=f"no capacity: no approved offer is available (approved: {tried}{unknown})",
                )
            )
            return None
        budget = self.fleet.budget
        ceiling = (
            dollars_to_cents(budget.max_instance_hourly)
            if budget and budget.max_instance_hourly and not self.options.allow_over_budget
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
        if not envelope.unknown_keys or self.catalog is None or not self.catalog.offers:
            return False
        file = spec.source.file if spec.source else self.fleet.source
        line = spec.source.line if spec.source else None
        found = False
        for cloud, region, kind, rental in envelope.unknown_keys:
            field, problem = unknown_offer_problem(self.catalog, cloud, region, kind, rental)
            if field == "rental_type":
                continue
            found = True
            where = field if spec.placement is None else f"placement.candidates ({field})"
            # Replicas share a manifest line: one problem names them all.
            self.catalog_issues.setdefault((file, line, where, problem), []).append(spec.address)
        return found

    def _price_of(self, data: dict[str, Any]) -> int | None:
        if self.catalog is None:
            return None
        offer = self.catalog.find(*_placement_of(data))
        return offer.hourly_price_cents if offer else None

    def _live_price(self, live: LiveInstance, data: dict[str, Any]) -> int | None:
        return live.hourly_price if live.hourly_price is not None else self._price_of(data)

    # -- helpers --------------------------------------------------------------------------------

    def _count_untouched(self, address: str) -> None:
        record = self.state.instances.get(address)
        current = self.live.by_id.get(record.instance_id) if record else None
        if record is None or current is None or current.health is Health.GONE:
            return
        price = self._live_price(current, _before_from_live(record.applied_spec, current))
        if price is None:
            self.untouched = self.untouched + CostSummary(unknown_prices=1)
        else:
            self.untouched = self.untouched + CostSummary(
                hourly_cents_before=price, hourly_cents_after=price
            )

    def _selected(self, address: str) -> bool:
        """Inside ``--target`` (when given) and outside every ``--exclude``."""
        if self.options.targets and not address_selected(address, self.options.targets):
            return False
        return not address_selected(address, self.options.excludes)

    def _add(self, change: Change) -> None:
        self.changes.append(change)

    def _protected(self, address: str) -> bool:
        spec = self.desired.get(address)
        if spec is not None:
            return spec.lifecycle.prevent_destroy
        if self.options.destroy:
            spec = next((s for s in self.fleet.instances if s.address == address), None)
            if spec is not None:
                return spec.lifecycle.prevent_destroy
        record = self.state.instances.get(address)
        if record is not None:
            return bool(record.applied_spec.get("lifecycle", {}).get("prevent_destroy", False))
        return False

    def _check_auto_delete_dates(self) -> None:
        """A create or replacement whose ``auto_delete.date_threshold`` has passed is a manifest
        error (exit 3): the new machine would be deleted at once. Instances that already run
        are not held to it (Shadeform deletes them at that date by itself), so a manifest
        whose date has passed can still be planned, destroyed and refreshed."""
        if self.options.now is None:
            return
        issues = []
        for change in self.changes:
            if change.action not in (Action.CREATE, Action.REPLACE):
                continue
            spec = self.desired.get(change.address)
            when_text = spec.auto_delete.date_threshold if spec and spec.auto_delete else None
            if spec is None or when_text is None:
                continue
            when = datetime.fromisoformat(when_text.upper().replace("Z", "+00:00"))
            if when.tzinfo is not None and when <= self.options.now:
                issues.append(
                    ManifestIssue(
                        spec.source.file if spec.source else self.fleet.source,
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

    def _check_prevent_destroy(self) -> None:
        violations = [
            c
            for c in self.changes
            if c.action in (Action.DELETE, Action.REPLACE)
            and not any(r.code is ReasonCode.DUPLICATE_ORPHAN for r in c.reasons)
            and self._protected(c.address)
        ]
        if violations:
            lines = [
                f"  {c.address}: would {c.action.value} instance {c.instance_id} "
                f"({'; '.join(r.message for r in c.reasons)})"
                for c in violations
            ]
            if self.options.destroy:
                excludes = " ".join(f"--exclude {c.address}" for c in violations)
                advice = (
                    "\nNothing was deleted. To destroy everything else, leave these out: "
                    f"{excludes} (or --target what you mean to destroy). To destroy them too, "
                    "remove lifecycle.prevent_destroy from them in the manifest first."
                )
            else:
                advice = (
                    "\nNothing was changed. Leave the fields that force replacement unchanged, "
                    "or remove lifecycle.prevent_destroy from these instances first if you "
                    "really mean to replace or delete them."
                )
            raise PolicyError(
                "The plan would destroy instances protected by lifecycle.prevent_destroy:\n"
                + "\n".join(lines)
                + advice
            )


def plan_fleet(
    fleet: Fleet,
    state: FleetState,
    live: LiveSnapshot,
    options: PlanOptions = PlanOptions(),
    catalog: Catalog | None = None,
) -> FleetPlan:
    """Plan one fleet. ``state`` may be a fresh, never-written state (serial 0).

    With a ``catalog`` every create and replacement is placed on an available approved offer
    (or reported under ``no_capacity``), and changes carry $/hour figures.
    """
    return _FleetPlanner(fleet, state, live, options, catalog).run()
