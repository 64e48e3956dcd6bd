"""The pure planner: (desired fleet, prior state, live snapshot) -> FleetPlan.

No network, no files, no clock, no printing; the same inputs always give the same plan, with
changes ordered by address. Policy violations (``prevent_destroy``) raise :class:`PolicyError`.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from reconciler.engine.comparable import comparable_spec
from reconciler.engine.diff import diff_specs
from reconciler.errors import PolicyError
from reconciler.models.live import Health, IntentResolution, LiveInstance, LiveSnapshot
from reconciler.models.plan import (
    Action,
    Blocked,
    Change,
    FieldChange,
    FleetPlan,
    Reason,
    ReasonCode,
)
from reconciler.models.spec import Fleet, InstanceSpec
from reconciler.models.state import FleetState, InstanceRecord


@dataclass(frozen=True)
class PlanOptions:
    targets: tuple[str, ...] = ()
    replace: tuple[str, ...] = ()
    destroy: bool = False  # plan the deletion of everything the fleet owns


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
        self, fleet: Fleet, state: FleetState, live: LiveSnapshot, options: PlanOptions
    ) -> None:
        self.fleet = fleet
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
            if intent.resolution is IntentResolution.PENDING:
                self.blocked[intent.address] = Blocked(
                    address=intent.address,
                    message=(
                        f"a create sent earlier (intent {intent.intent_id}) is not visible in "
                        "Shadeform yet; it will be adopted or released on a later run"
                    ),
                )
            elif intent.resolution is IntentResolution.AMBIGUOUS:
                ids = ", ".join(intent.instance_ids)
                self.blocked[intent.address] = Blocked(
                    address=intent.address,
                    message=(
                        f"more than one instance carries create intent {intent.intent_id} "
                        f"({ids}); delete the extra ones by hand, then run again"
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
            if self.options.targets and not address_selected(address, self.options.targets):
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

        self._check_prevent_destroy()
        return FleetPlan(
            fleet=self.fleet.name,
            lineage=self.state.lineage if self.state.serial > 0 else None,
            serial=self.state.serial,
            manifest_digest=self.fleet.digest,
            changes=tuple(self.changes),
            blocked=tuple(self.blocked[a] for a in sorted(self.blocked)),
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
            self._add(
                Change(address=spec.address, action=Action.CREATE, after=after, reasons=(reason,))
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
        adopted = (
            (_reason(ReasonCode.ADOPTED_ORPHAN, f"adopted orphan {current.id}"),) if adopt else ()
        )
        if current.health is Health.BROKEN:
            detail = f": {current.status_details}" if current.status_details else ""
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
                self._add(
                    Change(
                        address=address,
                        action=Action.DELETE,
                        instance_id=current.id,
                        before=_before_from_live(record.applied_spec, current),
                        reasons=(_reason(ReasonCode.REMOVED_FROM_MANIFEST, why),),
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
                )
            )

    # -- helpers --------------------------------------------------------------------------------

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
            raise PolicyError(
                "The plan would destroy instances protected by lifecycle.prevent_destroy:\n"
                + "\n".join(lines)
                + "\nRemove prevent_destroy from these instances first if you really mean it, "
                "or leave the fields that force replacement unchanged."
            )


def plan_fleet(
    fleet: Fleet, state: FleetState, live: LiveSnapshot, options: PlanOptions = PlanOptions()
) -> FleetPlan:
    """Plan one fleet. ``state`` may be a fresh, never-written state (serial 0)."""
    return _FleetPlanner(fleet, state, live, options).run()
