"""Kinds without tags (volumes, SSH keys): owned by record, found again by their anchor.

Shadeform's volumes and keys carry no tags, so a fleet owns exactly the ids its state records.
A create is still recorded as an intent first; the intent's *anchor* (the exact name, and the
cloud and region or the key's fingerprint) is what finds the resource again after any failure.
For the anchor to be trustworthy, a create is sent only after checking that no unowned resource
of that name exists; one that does blocks the address ("import it or rename") and is never
adopted or deleted. Neither kind has an update endpoint: any change replaces.
"""

from __future__ import annotations

import asyncio
import uuid
from abc import abstractmethod
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, ClassVar

from reconciler.engine.apply_context import ActionFailed, ApplyRun, Job
from reconciler.engine.diff import diff_specs
from reconciler.engine.kinds.base import FleetObservation, KindExecutor, Recorded, ResourceKind
from reconciler.engine.kinds.instance_apply import claim_id
from reconciler.engine.plan_context import PlanContext, address_selected, reason
from reconciler.errors import AmbiguousCreateError, ApiError, NotFoundError
from reconciler.models.catalog import Cents
from reconciler.models.live import LiveResource
from reconciler.models.plan import Action, Change, CostSummary, Kept, Reason, ReasonCode
from reconciler.models.state import CreateIntent, FleetState, ResourceRecord

if TYPE_CHECKING:
    from reconciler.api import ShadeformClient


class AnchoredKind(ResourceKind):
    destroys_data: ClassVar[bool] = False
    """Whether deleting or replacing one destroys data (a volume's contents)."""
    replace_creates_first: ClassVar[bool] = False
    """Whether a replacement creates the new one before deleting the old (keys can: two
    keys may share a name; a volume holds data and mounts on one machine, so it cannot)."""

    found_by = "matches"

    def not_seen_yet(self, anchor: dict[str, str]) -> str:
        name = anchor.get("name")
        return (
            f"no {self.noun} named {name!r} has appeared yet"
            if name
            else super().not_seen_yet(anchor)
        )

    # -- the kind's specifics ---------------------------------------------------------------------

    @abstractmethod
    def anchor(self, spec: Any) -> dict[str, str]:
        """What identifies a just-created resource of ``spec`` (all of it must match)."""

    @abstractmethod
    async def list_live(self, client: ShadeformClient) -> list[LiveResource]:
        """Every resource of this kind in the account."""

    @abstractmethod
    async def get_live(self, client: ShadeformClient, resource_id: str) -> LiveResource | None:
        """One resource, or None when it does not exist."""

    @abstractmethod
    async def send_create(self, client: ShadeformClient, spec: Any) -> str:
        """Create it; the new id."""

    @abstractmethod
    async def send_delete(self, client: ShadeformClient, resource_id: str) -> None: ...

    def hourly_cents(self, ctx: PlanContext, data: dict[str, Any]) -> Cents | None:
        """What one costs an hour, from its comparable form."""
        return 0

    def describe(self, data: dict[str, Any]) -> str:
        """A short description for messages (``2000 GB in lambdalabs/us-east-1``)."""
        return str(data.get("name", ""))

    # -- manifests and state ----------------------------------------------------------------------

    def records(self, state: FleetState) -> Mapping[str, Recorded]:
        return {
            a: Recorded(a, r.resource_id, r.applied_spec)
            for a, r in state.resources.items()
            if r.kind == self.name
        }

    def comparable(self, spec: Any, key: str) -> dict[str, Any]:
        return spec.model_dump(
            mode="json", exclude={"address", "fleet", "source"}, exclude_none=True
        )

    def forget(self, draft: FleetState, address: str, resource_id: str | None) -> None:
        record = draft.resources.get(address)
        if record is None or record.kind != self.name:
            return
        if record.resource_id == resource_id:
            del draft.resources[address]
        elif resource_id in record.retiring:
            retiring = tuple(i for i in record.retiring if i != resource_id)
            draft.resources[address] = record.model_copy(update={"retiring": retiring})

    def _spec(self, ctx: PlanContext, address: str) -> Any | None:
        return ctx.desired(address)

    # -- refresh ----------------------------------------------------------------------------------

    async def observe(
        self, client: ShadeformClient, states: Mapping[str, FleetState], info_threshold: int
    ) -> dict[str, FleetObservation]:
        listed = await self.list_live(client)
        by_id = {r.id: r for r in listed}
        recorded_ids = {
            i
            for state in states.values()
            for r in state.resources.values()
            if r.kind == self.name
            for i in (r.resource_id, *r.retiring)
        }
        # Missing from the list is not gone yet: confirm with one info call each.
        missing = sorted(i for i in recorded_ids if i not in by_id)
        confirmed = await asyncio.gather(*(self.get_live(client, i) for i in missing))
        for resource_id, found in zip(missing, confirmed, strict=True):
            if found is not None:
                by_id[resource_id] = found
        observations = {}
        for fleet, state in states.items():
            mine = {
                i
                for r in state.resources.values()
                if r.kind == self.name
                for i in (r.resource_id, *r.retiring)
            }
            unrecorded = tuple(sorted((r for r in listed if r.id not in mine), key=lambda r: r.id))
            observations[fleet] = FleetObservation(
                resources={i: by_id[i] for i in sorted(mine) if i in by_id},
                unrecorded=unrecorded,
                intent_matches={
                    intent.intent_id: tuple(r.id for r in unrecorded if r.matches(intent.anchor))
                    for intent in state.intents.values()
                    if intent.kind == self.name
                },
            )
        return observations

    # -- plan -------------------------------------------------------------------------------------

    def addresses(self, ctx: PlanContext) -> set[str]:
        addresses = set(self.records(ctx.state))
        if not ctx.options.destroy:
            addresses.update(s.address for s in self.specs(ctx.fleet))
        addresses.update(
            i.address
            for i in ctx.live.intents
            if i.kind == self.name and ctx.live.found_by_intent(i.address)
        )
        return addresses

    def plan(self, ctx: PlanContext, address: str) -> None:
        spec = self._spec(ctx, address)
        recorded = self.records(ctx.state).get(address)
        current = ctx.live.resources.get(recorded.resource_id) if recorded else None
        found_id = ctx.live.found_by_intent(address)
        found = next((r for r in ctx.live.unrecorded if r.id == found_id), None)
        self._plan_retiring(ctx, address)
        if spec is None:
            self._plan_undesired(ctx, address, recorded, current, found)
            return
        after = self.comparable(spec, ctx.key)
        if recorded is not None and current is not None and found is not None:
            self._plan_interrupted_replacement(ctx, address, current, found, after)
            return
        if recorded is not None and current is not None:
            before = {**recorded.applied_spec}
            before.update({k: v for k, v in current.observed.items() if k in before})
            self._plan_existing(ctx, address, current, before, after, adopt=False)
            return
        if found is not None:
            # Created by a run that stopped before recording it: ours by its intent.
            self._plan_existing(ctx, address, found, dict(found.observed), after, adopt=True)
            return
        same_name = [r for r in ctx.live.unrecorded if r.name == spec.name]
        if same_name:
            ctx.block(
                address,
                f"a {self.noun} named {spec.name!r} already exists ({same_name[0].id}, "
                f"{self.describe(same_name[0].observed)}) and this fleet does not own it; "
                f"import it or rename this {self.noun} in the manifest (`reconciler import "
                f"{address} {same_name[0].id}` makes it the fleet's)",
            )
            return
        if recorded is None:
            why = reason(ReasonCode.NEW, f"new {self.noun}")
        else:
            lost = " (its data is gone)" if self.destroys_data else ""
            why = reason(
                ReasonCode.DELETED_OUTSIDE,
                f"{self.noun} {recorded.resource_id} was deleted outside the reconciler{lost}",
            )
        ctx.add(
            Change(
                address=address,
                kind=self.name,  # type: ignore[arg-type]
                action=Action.CREATE,
                after=after,
                reasons=(why,),
                hourly_cents_after=self.hourly_cents(ctx, after),
            )
        )

    def _plan_interrupted_replacement(
        self,
        ctx: PlanContext,
        address: str,
        current: LiveResource,
        found: LiveResource,
        after: dict[str, Any],
    ) -> None:
        """A create-first replacement created ``found`` and stopped before recording it: if
        it is what the manifest wants, adopt it (a create already done) and delete the
        predecessor once what uses it is gone; else it goes, and the replacement starts over."""
        if diff_specs(dict(found.observed), after, updatable=frozenset()):
            ctx.add(
                Change(
                    address=address,
                    kind=self.name,  # type: ignore[arg-type]
                    action=Action.DELETE,
                    resource_id=found.id,
                    before=dict(found.observed),
                    reasons=(
                        reason(
                            ReasonCode.DUPLICATE_ORPHAN,
                            f"{found.id} was created by an interrupted run for a spec that "
                            "has changed since, and never used",
                        ),
                    ),
                    hourly_cents_before=self.hourly_cents(ctx, dict(found.observed)),
                )
            )
            recorded = self.records(ctx.state)[address]
            before = {**recorded.applied_spec}
            before.update({k: v for k, v in current.observed.items() if k in before})
            self._plan_existing(ctx, address, current, before, after, adopt=False)
            return
        ctx.add(
            Change(
                address=address,
                kind=self.name,  # type: ignore[arg-type]
                action=Action.CREATE,
                resource_id=found.id,
                adopt=True,
                after=after,
                reasons=(
                    reason(
                        ReasonCode.ADOPTED_ORPHAN,
                        f"adopted {found.id}: an interrupted run created it to replace "
                        f"{current.id}",
                    ),
                ),
                hourly_cents_after=self.hourly_cents(ctx, after),
            )
        )
        ctx.add(
            Change(
                address=address,
                kind=self.name,  # type: ignore[arg-type]
                action=Action.DELETE,
                resource_id=current.id,
                before=dict(current.observed),
                destroys_data=self.destroys_data,
                reasons=(
                    reason(ReasonCode.FORCES_REPLACEMENT, f"replaced by {found.id}"),
                    *((self._data_reason(current.id, "deleting"),) if self.destroys_data else ()),
                ),
                hourly_cents_before=self.hourly_cents(ctx, dict(current.observed)),
            )
        )

    def _plan_existing(
        self,
        ctx: PlanContext,
        address: str,
        current: LiveResource,
        before: dict[str, Any],
        after: dict[str, Any],
        *,
        adopt: bool,
    ) -> None:
        field_changes = diff_specs(before, after, updatable=frozenset())
        adopted = (
            (
                reason(
                    ReasonCode.ADOPTED_ORPHAN,
                    f"adopted {current.id}, created by an interrupted run",
                ),
            )
            if adopt
            else ()
        )
        why: tuple[Reason, ...]
        if address_selected(address, ctx.options.replace):
            action = Action.REPLACE
            why = (reason(ReasonCode.REPLACE_REQUESTED, "replacement requested (--replace)"),)
        elif field_changes:
            action = Action.REPLACE
            why = tuple(
                reason(
                    ReasonCode.FORCES_REPLACEMENT,
                    f"{c.path} changed (forces replacement: a {self.noun} has no update)",
                )
                for c in field_changes
            )
        else:
            action = Action.NOOP
            why = () if adopt else (reason(ReasonCode.UNCHANGED, "up to date"),)
        # An adopted one was never recorded, so nothing was ever created with it: no data.
        loses_data = self.destroys_data and action is Action.REPLACE and not adopt
        if loses_data:
            why = (*why, self._data_reason(current.id, "replacing"))
        if action is Action.REPLACE:
            self._warn_if_used_outside(ctx, address, current)
        ctx.add(
            Change(
                address=address,
                kind=self.name,  # type: ignore[arg-type]
                action=action,
                resource_id=current.id,
                adopt=adopt,
                before=before,
                after=after,
                field_changes=field_changes,
                create_before_destroy=self.replace_creates_first and action is Action.REPLACE,
                destroys_data=loses_data,
                reasons=(*adopted, *why),
                hourly_cents_before=self.hourly_cents(ctx, before),
                hourly_cents_after=self.hourly_cents(ctx, after),
            )
        )

    def _plan_undesired(
        self,
        ctx: PlanContext,
        address: str,
        recorded: Recorded | None,
        current: LiveResource | None,
        found: LiveResource | None,
    ) -> None:
        why = "destroy requested" if ctx.options.destroy else "removed from the manifest"
        if recorded is not None and current is None:
            ctx.add(
                Change(
                    address=address,
                    kind=self.name,  # type: ignore[arg-type]
                    action=Action.FORGET,
                    resource_id=recorded.resource_id,
                    before=recorded.applied_spec,
                    reasons=(reason(ReasonCode.DELETED_OUTSIDE, f"{self.noun} is already gone"),),
                )
            )
        elif recorded is not None and current is not None:
            if ctx.options.destroy and self.destroys_data and not ctx.options.allow_data_loss:
                ctx.kept.append(
                    Kept(
                        address=address,
                        kind=self.name,  # type: ignore[arg-type]
                        resource_id=current.id,
                        message=(
                            f"{self.noun} {current.id} "
                            f"({self.describe(recorded.applied_spec)}) and its data "
                            "(--allow-data-loss deletes it)"
                        ),
                    )
                )
                self.count_untouched(ctx, address)  # it goes on costing what it costs
                return
            self._warn_if_used_outside(ctx, address, current)
            before = {**recorded.applied_spec}
            ctx.add(
                Change(
                    address=address,
                    kind=self.name,  # type: ignore[arg-type]
                    action=Action.DELETE,
                    resource_id=current.id,
                    before=before,
                    destroys_data=self.destroys_data,
                    reasons=(
                        reason(ReasonCode.REMOVED_FROM_MANIFEST, why),
                        *(
                            (self._data_reason(current.id, "deleting"),)
                            if self.destroys_data
                            else ()
                        ),
                    ),
                    hourly_cents_before=self.hourly_cents(ctx, before),
                )
            )
        if found is not None:
            ctx.add(
                Change(
                    address=address,
                    kind=self.name,  # type: ignore[arg-type]
                    action=Action.DELETE,
                    resource_id=found.id,
                    before=dict(found.observed),
                    reasons=(
                        reason(
                            ReasonCode.ADOPTED_ORPHAN,
                            f"{found.id} was created by an interrupted run and never used",
                        ),
                        reason(ReasonCode.REMOVED_FROM_MANIFEST, why),
                    ),
                    hourly_cents_before=self.hourly_cents(ctx, dict(found.observed)),
                )
            )

    def _plan_retiring(self, ctx: PlanContext, address: str) -> None:
        """Predecessors a create-first replacement left to delete (its run stopped there)."""
        record = ctx.state.resources.get(address)
        for old_id in record.retiring if record is not None else ():
            live = ctx.live.resources.get(old_id)
            ctx.add(
                Change(
                    address=address,
                    kind=self.name,  # type: ignore[arg-type]
                    action=Action.DELETE if live is not None else Action.FORGET,
                    resource_id=old_id,
                    before=dict(live.observed) if live is not None else None,
                    reasons=(
                        reason(
                            ReasonCode.DUPLICATE_ORPHAN,
                            f"{old_id} was replaced by {record.resource_id}"  # type: ignore[union-attr]
                            + ("" if live is not None else " and is already gone"),
                        ),
                    ),
                )
            )

    def _warn_if_used_outside(self, ctx: PlanContext, address: str, current: LiveResource) -> None:
        ours = {r.instance_id for r in ctx.state.instances.values()}
        outside = [i for i in current.in_use_by if i not in ours]
        if outside:
            ctx.warnings.append(
                f"{address}: {self.noun} {current.id} is used by instance {outside[0]}, which "
                "this fleet does not manage; Shadeform refuses to delete it until that "
                "instance is gone"
            )

    def _data_reason(self, resource_id: str, doing: str) -> Reason:
        return reason(
            ReasonCode.DESTROYS_DATA,
            f"{doing} {self.noun} {resource_id} destroys the data on it "
            "(apply needs --allow-data-loss)",
        )

    def count_untouched(self, ctx: PlanContext, address: str) -> None:
        recorded = self.records(ctx.state).get(address)
        if recorded is None or recorded.resource_id not in ctx.live.resources:
            return
        price = self.hourly_cents(ctx, recorded.applied_spec)
        if price is None:
            ctx.untouched = ctx.untouched + CostSummary(unknown_prices=1)
        else:
            ctx.untouched = ctx.untouched + CostSummary(
                hourly_cents_before=price, hourly_cents_after=price
            )

    # -- apply ------------------------------------------------------------------------------------

    def executor(self, run: ApplyRun) -> KindExecutor:
        return AnchoredExecutor(run, self)

    def intent(self, change: Change, spec: Any, *, intent_id: str, now: str) -> CreateIntent:
        return CreateIntent(
            intent_id=intent_id,
            address=change.address,
            kind=self.name,
            anchor=self.anchor(spec),
            created_at=now,
        )


class AnchoredExecutor(KindExecutor):
    def __init__(self, run: ApplyRun, kind: AnchoredKind) -> None:
        self.run_ = run
        self.kind = kind

    async def run(self, job: Job) -> tuple[str, str | None]:
        change, recorder, gate = job.change, job.recorder, job.gate
        noun = self.kind.noun
        if change.action is Action.FORGET:
            await recorder.update(lambda d: self.kind.forget(d, change.address, change.resource_id))
            return f"removed from state ({noun} already gone)", change.resource_id
        if change.action is Action.DELETE:
            assert change.resource_id
            await gate.before_destroy()
            await self._delete(change.resource_id)
            await recorder.update(lambda d: self.kind.forget(d, change.address, change.resource_id))
            gate.destroyed()
            return f"deleted {change.resource_id}", change.resource_id
        spec = job.spec
        if spec is None:
            raise ActionFailed(f"{change.address} is not in the manifests any more; plan again")
        if change.action is Action.CREATE:
            await gate.before_create()
            if change.adopt and change.resource_id:  # created by an interrupted run
                previous = recorder.state.resources.get(change.address)
                await self._record(
                    job,
                    spec,
                    change.resource_id,
                    retiring=previous.resource_id
                    if previous is not None and previous.resource_id != change.resource_id
                    else None,
                )
                gate.created()
                return f"adopted {change.resource_id}", change.resource_id
            new_id = await self._create(job, spec)
            gate.created()
            return f"created {new_id}", new_id
        assert change.resource_id
        old_id = change.resource_id
        if change.action is Action.NOOP:  # adopt what an interrupted run created
            await self._record(job, spec, old_id)
            return f"adopted {old_id}", old_id
        if change.action is Action.REPLACE:
            if change.adopt:
                await self._record(job, spec, old_id)
            if change.create_before_destroy:
                await gate.before_create()
                new_id = await self._create(job, spec, retiring=old_id)
                gate.created()
                await gate.before_destroy()
                await self._delete(old_id)
                await recorder.update(lambda d: self.kind.forget(d, change.address, old_id))
                gate.destroyed()
            else:
                await gate.before_destroy()
                await self._delete(old_id)
                await recorder.update(lambda d: self.kind.forget(d, change.address, old_id))
                gate.destroyed()
                await gate.before_create()
                new_id = await self._create(job, spec)
                gate.created()
            return f"replaced {old_id} with {new_id}", new_id
        raise ActionFailed(f"a {noun} cannot be {change.action.value}d in place")

    async def _delete(self, resource_id: str) -> None:
        """Delete, then wait until it is gone: its name (the anchor) is free only then."""
        run, kind = self.run_, self.kind
        if await kind.get_live(run.client, resource_id) is not None:
            run.failpoints.hit("delete_sent", kind.name)
            try:
                await kind.send_delete(run.client, resource_id)
            except NotFoundError:
                pass
        loop = asyncio.get_running_loop()
        started = loop.time()
        while await kind.get_live(run.client, resource_id) is not None:
            if loop.time() - started > run.options.gone_timeout:
                raise ActionFailed(f"{kind.noun} {resource_id} is still there after deleting it")
            await run.pause(run.options.poll_interval)
        run.failpoints.hit("gone_confirmed", kind.name)

    async def _unowned_same_name(self, job: Job, spec: Any) -> list[LiveResource]:
        owned = {
            i for r in job.recorder.state.resources.values() for i in (r.resource_id, *r.retiring)
        }
        return [
            r
            for r in await self.kind.list_live(self.run_.client)
            if r.name == spec.name and r.id not in owned
        ]

    async def _create(self, job: Job, spec: Any, *, retiring: str | None = None) -> str:
        run, kind, recorder = self.run_, self.kind, job.recorder
        # The anchor finds this create again after a failure only if nothing else has its
        # name: check just before sending (the plan checked too, but it may be hours old).
        clash = await self._unowned_same_name(job, spec)
        if clash:
            raise ActionFailed(
                f"a {kind.noun} named {spec.name!r} appeared since the plan was made "
                f"({clash[0].id}) and this fleet does not own it; import it or rename this "
                f"{kind.noun} (`reconciler import {job.address} {clash[0].id}`)"
            )
        intent = kind.intent(job.change, spec, intent_id=uuid.uuid4().hex, now=run.now_iso())
        await recorder.update(lambda d: d.intents.__setitem__(intent.intent_id, intent))
        run.failpoints.hit("intent_recorded", kind.name)
        run.failpoints.hit("create_sent", kind.name)
        try:
            new_id = await kind.send_create(run.client, spec)
        except AmbiguousCreateError as exc:
            found = await self._find_by_anchor(job, intent)
            if found is None:
                raise ActionFailed(
                    f"the create may or may not have happened ({exc}); its intent "
                    f"{intent.intent_id} stays in the state, so the next run adopts the "
                    f"{kind.noun} named {spec.name!r} if it appears, or releases the intent "
                    "after the grace period"
                ) from exc
            new_id = found
        except ApiError as exc:

            def release(draft: FleetState) -> None:
                draft.intents.pop(intent.intent_id, None)

            await recorder.update(release)
            raise ActionFailed(f"create failed: {exc}") from exc
        run.failpoints.hit("create_returned", kind.name)
        claim_id(run, new_id, job.address, recorder.state, intent.intent_id)
        await self._record(job, spec, new_id, intent_id=intent.intent_id, retiring=retiring)
        run.failpoints.hit("id_recorded", kind.name)
        return new_id

    async def _find_by_anchor(self, job: Job, intent: CreateIntent) -> str | None:
        run = self.run_
        for attempt in range(run.options.ambiguous_lookups):
            if attempt:
                await run.sleep(run.options.ambiguous_lookup_delay)
            try:
                listed = await self.kind.list_live(run.client)
            except ApiError:
                continue
            owned = {r.resource_id for r in job.recorder.state.resources.values()}
            matches = [r.id for r in listed if r.id not in owned and r.matches(intent.anchor)]
            if len(matches) == 1:
                return matches[0]
            if len(matches) > 1:
                raise ActionFailed(
                    f"more than one {self.kind.noun} matches intent {intent.intent_id} "
                    f"({', '.join(matches)}); delete the extra ones by hand"
                )
        return None

    async def _record(
        self,
        job: Job,
        spec: Any,
        resource_id: str,
        *,
        intent_id: str | None = None,
        retiring: str | None = None,
    ) -> None:
        now = self.run_.now_iso()
        kind = self.kind

        def record(draft: FleetState) -> None:
            previous = draft.resources.get(job.address)
            kept = previous.retiring if previous is not None else ()
            draft.resources[job.address] = ResourceRecord(
                address=job.address,
                kind=kind.name,
                resource_id=resource_id,
                applied_spec=kind.comparable(spec, draft.fingerprint_key),
                retiring=(*kept, retiring) if retiring else kept,
                created_at=now,
                updated_at=now,
            )
            if intent_id is not None:
                draft.intents.pop(intent_id, None)

        await job.recorder.update(record)
