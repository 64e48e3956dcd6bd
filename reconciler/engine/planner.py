"""The pure planner: (desired fleet, prior state, live snapshot) -> FleetPlan.

No network, no files, no clock, no printing; the same inputs always give the same plan. The
core knows no kind of resource by name: each kind's handler (``reconciler.engine.kinds``)
plans its own addresses, in dependency order (what is used before what uses it), and the core
then checks the graph the changes form:

* a change that creates waits for what it uses: if that is blocked, or not created by this
  plan at all (left out by ``--target``/``--exclude``), the change is blocked too;
* a change that destroys (deletes or replaces) something needs everything that uses it gone
  first: if one of those users is not deleted or replaced by this plan, it is blocked;
* a blocked change takes with it the replacements it forced.

Policy violations (``prevent_destroy``) raise :class:`PolicyError`; budget ones
:class:`BudgetError`.
"""

from __future__ import annotations

from typing import Any

from reconciler.engine.apply_context import job_steps
from reconciler.engine.budget import check_budget, fleet_cost
from reconciler.engine.kinds import KINDS, ResourceKind, kind_named
from reconciler.engine.plan_context import (
    PlanContext,
    PlanOptions,
    address_selected,
)
from reconciler.engine.rollout import plan_rollouts
from reconciler.errors import PolicyError
from reconciler.models.catalog import Catalog
from reconciler.models.live import IntentResolution, LiveSnapshot, ResolvedIntent
from reconciler.models.plan import (
    Action,
    Blocked,
    BlockedKind,
    Change,
    FleetPlan,
    Kept,
    ReasonCode,
)
from reconciler.models.spec import Fleet
from reconciler.models.state import FleetState

__all__ = ["PlanOptions", "address_selected", "plan_fleet"]


def _pending_message(kind: ResourceKind, intent: ResolvedIntent, state: FleetState) -> str:
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
    stored = state.intents.get(intent.intent_id)
    unseen = kind.not_seen_yet(stored.anchor if stored else {})
    return (
        f"a create was recorded{recorded} (intent {intent.intent_id}) and may have reached "
        f"Shadeform, but {unseen}. It is adopted as soon as one appears"
        f"{when}. `reconciler apply` waits for this by itself; `--intent-grace 0` releases it "
        "now, but only do that if you are sure the create never reached Shadeform (else the "
        "address is billed twice)"
    )


def _creates(change: Change) -> bool:
    return "create" in job_steps(change)


def _destroys(change: Change) -> bool:
    return "destroy" in job_steps(change)


class _FleetPlanner:
    def __init__(
        self,
        fleet: Fleet,
        state: FleetState,
        live: LiveSnapshot,
        options: PlanOptions,
        catalog: Catalog | None,
    ) -> None:
        self.specs: dict[str, tuple[ResourceKind, Any]] = {
            s.address: (kind, s) for kind in KINDS for s in kind.specs(fleet)
        }
        self.recorded_refs: dict[str, tuple[str, ...]] = {
            address: kind.recorded_references(fleet.name, record.applied_spec)
            for kind in KINDS
            for address, record in kind.records(state).items()
        }
        self.recorded_ids: dict[str, str] = {
            address: record.resource_id
            for kind in KINDS
            for address, record in kind.records(state).items()
        }
        self.users: dict[str, list[str]] = {}
        """Recorded address -> the recorded addresses that use it."""
        for user, refs in sorted(self.recorded_refs.items()):
            for ref in refs:
                self.users.setdefault(ref, []).append(user)
        orphans: dict[str, list[Any]] = {}
        for orphan in live.orphans:
            if orphan.address is not None:
                orphans.setdefault(orphan.address, []).append(orphan)
        self.ctx = PlanContext(
            fleet=fleet,
            state=state,
            live=live,
            options=options,
            catalog=catalog,
            also_selected=self._used_by_targets(options),
            declared={a: s for a, (_, s) in self.specs.items()},
            orphans_by_address=orphans,
        )

    def _used_by_targets(self, options: PlanOptions) -> frozenset[str]:
        """What targeted resources use is planned with them (as Terraform does), so
        ``--target fleet/trainer`` also creates the volume and key it needs."""
        if not options.targets or options.destroy:
            return frozenset()
        return frozenset(
            ref
            for address, (kind, spec) in self.specs.items()
            if address_selected(address, options.targets)
            for ref in kind.references(spec)
        )

    def run(self) -> FleetPlan:
        ctx = self.ctx
        self._block_unresolved_intents()
        for kind in KINDS:
            kind.prepare(ctx)
            for address in sorted(kind.addresses(ctx)):
                if not ctx.selected(address):
                    kind.count_untouched(ctx, address)
                elif address not in ctx.blocked:
                    kind.plan(ctx, address)
        for kind in KINDS:
            kind.check(ctx)
        self._link_dependencies()
        self._hold_back_what_cannot_go_yet()
        rollouts = plan_rollouts(ctx)
        self._check_prevent_destroy()
        changes = tuple(ctx.changes)
        overrides = check_budget(
            ctx.fleet,
            changes,
            allow_over_budget=ctx.options.allow_over_budget,
            untouched=ctx.untouched,
            rollouts=rollouts,
        )
        return FleetPlan(
            fleet=ctx.fleet.name,
            lineage=ctx.state.lineage if ctx.state.serial > 0 else None,
            serial=ctx.state.serial,
            manifest_digest=ctx.fleet.digest,
            changes=changes,
            blocked=tuple(ctx.blocked[a] for a in sorted(ctx.blocked)),
            no_capacity=tuple(ctx.no_capacity),
            cost=fleet_cost(changes, rollouts) + ctx.untouched,
            rollouts=tuple(rollouts),
            budget_overrides=overrides,
            warnings=tuple(ctx.warnings),
            kept=tuple(ctx.kept),
            released_intents=tuple(
                sorted(
                    i.intent_id
                    for i in ctx.live.intents
                    if i.resolution in (IntentResolution.FOUND, IntentResolution.ABANDONED)
                )
            ),
        )

    def _block_unresolved_intents(self) -> None:
        ctx = self.ctx
        for intent in ctx.live.intents:
            if not ctx.selected(intent.address):
                continue  # outside --target/--exclude: neither reported nor waited for
            kind = kind_named(intent.kind)
            if intent.resolution is IntentResolution.PENDING:
                ctx.blocked[intent.address] = Blocked(
                    address=intent.address,
                    kind=BlockedKind.PENDING_CREATE,
                    resolves_in_seconds=intent.seconds_left,
                    message=_pending_message(kind, intent, ctx.state),
                )
            elif intent.resolution is IntentResolution.AMBIGUOUS:
                ids = ", ".join(intent.resource_ids)
                ctx.blocked[intent.address] = Blocked(
                    address=intent.address,
                    kind=BlockedKind.AMBIGUOUS_CREATE,
                    message=(
                        f"more than one {kind.noun} {kind.found_by} create intent "
                        f"{intent.intent_id} ({ids}), so Shadeform bills them all for one "
                        "address; delete the extra ones by hand, then run again"
                    ),
                )

    # -- the graph ----------------------------------------------------------------------------------

    def _new_refs(self, address: str) -> tuple[str, ...]:
        if self.ctx.options.destroy or address not in self.specs:
            return ()
        kind, spec = self.specs[address]
        return kind.references(spec)

    def _link_dependencies(self) -> None:
        """Each change names what it uses, before and after (the executor's edges)."""
        linked = []
        for change in self.ctx.changes:
            refs = sorted(
                {*self._new_refs(change.address), *self.recorded_refs.get(change.address, ())}
            )
            linked.append(change.model_copy(update={"depends_on": tuple(refs)}) if refs else change)
        self.ctx.changes = linked

    def _hold_back_what_cannot_go_yet(self) -> None:
        ctx = self.ctx
        while True:
            by_address: dict[str, list[Change]] = {}
            for change in ctx.changes:
                by_address.setdefault(change.address, []).append(change)
            held = self._first_held(by_address)
            if held is None:
                return
            address, message, keep = held
            kind = kind_named(by_address[address][0].kind)
            ctx.changes = [c for c in ctx.changes if c.address != address]
            ctx.recreated.discard(address)
            if keep:
                # A destroy leaves what its kept resources use, and says so.
                ctx.kept.append(
                    Kept(
                        address=address,
                        kind=kind.name,  # type: ignore[arg-type]
                        resource_id=self.recorded_ids[address],
                        message=f"{kind.noun} {self.recorded_ids[address]}: {message}",
                    )
                )
                kind.count_untouched(ctx, address)
            else:
                ctx.blocked.setdefault(address, Blocked(address=address, message=message))

    def _first_held(self, by_address: dict[str, list[Change]]) -> tuple[str, str, bool] | None:
        """The first address (in plan order) whose changes cannot run, why, and whether it
        is simply kept (a destroy leaves what the resources it leaves use)."""
        ctx = self.ctx
        for address, changes in by_address.items():
            if any(_creates(c) for c in changes):
                for ref in self._new_refs(address):
                    waiting = ctx.waiting(ref)
                    if waiting is not None:
                        return (
                            address,
                            f"waits for {ref}, which is left alone: {waiting.message}",
                            False,
                        )
                    created = any(_creates(c) for c in by_address.get(ref, ()))
                    if ref not in self.recorded_refs and not created:  # not in the state
                        return (
                            address,
                            f"uses {ref}, which this plan does not create (left out by "
                            "--target or --exclude?); plan them together",
                            False,
                        )
                    forced = any(
                        r.code is ReasonCode.DEPENDENCY_REPLACED
                        and r.message.startswith(f"{ref} is created anew")
                        for c in changes
                        for r in c.reasons
                    )
                    if forced and not created:
                        return address, f"waits for {ref}, which this plan leaves alone", False
            current = self.recorded_ids.get(address)
            if any(_destroys(c) and c.resource_id == current for c in changes):
                # What uses the address's resource goes first. (A duplicate or a replaced
                # predecessor is not what anything uses now: the executor still orders it.)
                for user in self.users.get(address, ()):
                    user_changes = by_address.get(user, ())
                    # Deleted or replaced by this plan, or gone already (a record to forget,
                    # or one created anew because what it recorded is gone).
                    gone = any(c.action in (Action.FORGET, Action.CREATE) for c in user_changes)
                    if not gone and not any(_destroys(c) for c in user_changes):
                        if self.ctx.options.destroy and not self.ctx.selected(user):
                            return address, f"used by {user}, which this destroy leaves", True
                        noun = kind_named(changes[0].kind).noun
                        return (
                            address,
                            f"this {noun} is used by {user}, which this plan does not replace "
                            f"or delete; plan them together (what uses a {noun} goes first)",
                            False,
                        )
        return None

    def _check_prevent_destroy(self) -> None:
        ctx = self.ctx
        violations = [
            c
            for c in ctx.changes
            if c.action in (Action.DELETE, Action.REPLACE)
            and not any(r.code is ReasonCode.DUPLICATE_ORPHAN for r in c.reasons)
            and kind_named(c.kind).protected(ctx, c.address)
        ]
        if not violations:
            return
        lines = [
            f"  {c.address}: would {c.action.value} {kind_named(c.kind).noun} {c.resource_id} "
            f"({'; '.join(r.message for r in c.reasons)})"
            for c in violations
        ]
        if ctx.options.destroy:
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
