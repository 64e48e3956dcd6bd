"""Carrying out instance changes: tagged creates on approved offers, updates, deletes, boots.

Crash safety (never bill a GPU twice): before a create is sent, an intent (address, fresh id,
time) is saved in the state and its id rides on the request as a ``reconciler:intent=`` tag;
the returned instance id is saved the moment it arrives. An ambiguous create is resolved by
looking for the intent's tag before anything else happens; a create is never retried blindly.
Every action rechecks its precondition (the instance still exists and is ours) just before it
runs. The ids of the volume and SSH key an instance uses are read from the state when its
create is sent: the executor core has made sure they were created (and recorded) before.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from reconciler.engine.apply_context import (
    DEFAULT_WAIT_TIMEOUT,
    ActionFailed,
    ApplyRun,
    Job,
    NoCapacity,
)
from reconciler.engine.comparable import comparable_spec
from reconciler.engine.events import ActionEvent, InstanceWait, Phase
from reconciler.engine.kinds.base import KindExecutor
from reconciler.engine.kinds.references import instance_references
from reconciler.engine.placement import apply_offer, with_placement_of
from reconciler.engine.recorder import StateRecorder
from reconciler.errors import (
    AmbiguousCreateError,
    ApiError,
    CapacityRefusedError,
    NotFoundError,
)
from reconciler.models.api import CreateRequest, Instance, Thresholds, UpdateRequest
from reconciler.models.apply import ActionResult, ApplyReport
from reconciler.models.catalog import Offer
from reconciler.models.live import FLEET_TAG, INTENT_TAG, ownership_tags
from reconciler.models.plan import Action, Change
from reconciler.models.spec import InstanceSpec, ssh_key_address, volume_address
from reconciler.models.state import FleetState, InstanceRecord
from reconciler.readiness import ProbeTarget

if TYPE_CHECKING:
    from reconciler.engine.kinds.instance import InstanceKind

_FAILED_STATUSES = ("error", "deleting", "deleted")


_ATTEMPT_SECONDS = 60.0
"""The longest one run of a readiness command may take."""


@dataclass(frozen=True)
class _NotServing:
    """Why a new instance does not serve."""

    message: str
    status: str
    cancelled: bool = False


@dataclass
class _Pending:
    """A created instance to wait for."""

    fleet: str
    address: str
    instance_id: str
    action: Action
    boot_seconds_max: int | None = None  # the catalog's expectation for the offer used
    created_at: float = field(default_factory=time.monotonic)


class InstanceExecutor(KindExecutor):
    def __init__(self, run: ApplyRun, kind: InstanceKind) -> None:
        self.run_ = run
        self.kind = kind
        self.pending: list[_Pending] = []

    # -- one change ------------------------------------------------------------------------------

    async def run(self, job: Job) -> tuple[str, str | None]:
        change, fleet, recorder, gate = job.change, job.fleet, job.recorder, job.gate
        action = change.action
        if action is Action.FORGET:
            await recorder.update(lambda d: self.kind.forget(d, change.address, change.resource_id))
            return "removed from state (instance already gone)", change.resource_id
        if change.serving_first is not None and action in (Action.NOOP, Action.DELETE):
            return await self._settle(job)
        if action is Action.DELETE:
            assert change.resource_id
            await gate.before_destroy()
            # In a rollout (a leftover of an earlier run, in wave 0) it is gone before the
            # waves go on: the group never runs more than its max_surge allows.
            until_gone = gate.destroy_awaited or change.rollout is not None
            await self._delete(fleet, change, change.resource_id, until_gone=until_gone)
            await recorder.update(lambda d: self.kind.forget(d, change.address, change.resource_id))
            gate.destroyed()
            return f"deleted {change.resource_id}", change.resource_id

        spec = job.spec
        if not isinstance(spec, InstanceSpec):
            raise ActionFailed(f"{change.address} is not in the manifests any more; plan again")
        if action is Action.CREATE:
            self._note(change, "creating")
            await gate.before_create()
            new_id = await self._create_placed(job, spec)
            gate.created()
            if change.rollout is not None:  # a repair before the group rolls: serving first
                await self._serve_or_fail(job, new_id)
                return f"created {new_id}, serving", new_id
            self.pending.append(_Pending(fleet, change.address, new_id, action, _boot_of(change)))
            return f"created {new_id}", new_id
        assert change.resource_id
        if action is Action.UPDATE or action is Action.NOOP:
            await self._update(fleet, change, spec, recorder)
            verb = "adopted" if action is Action.NOOP else "updated"
            return f"{verb} {change.resource_id}", change.resource_id
        if action is Action.REPLACE:
            return await self._replace(job, spec, change.resource_id)
        raise ActionFailed(f"unknown action {action}")

    async def _replace(self, job: Job, spec: InstanceSpec, old_id: str) -> tuple[str, str]:
        change, fleet, recorder, gate = job.change, job.fleet, job.recorder, job.gate
        # In a rollout every delete waits until the old replica is gone: the group never runs
        # more machines than its max_surge allows, deleting ones included.
        rolling = change.rollout is not None
        if change.create_before_destroy:
            self._note(change, f"replacing {old_id}, the new replica first")
            await self._check_owned(fleet, old_id)
            previous = recorder.state.instances.get(change.address)
            old_uses = previous.uses if previous and previous.instance_id == old_id else {}
            await gate.before_create()
            new_id = await self._create_placed(job, spec)
            gate.created()
            if waits_until_serving(change, wait=self.run_.options.wait):
                await self._wait_one(job, new_id, old_id, old_uses)
            await gate.before_destroy()
            await self._delete(fleet, change, old_id, until_gone=gate.destroy_awaited or rolling)
            gate.destroyed()
            self._note(change, f"{new_id} serves; deleted {old_id}")
        else:
            self._note(change, f"replacing {old_id}, the old replica first")
            await gate.before_destroy()
            # A volume mounts on one machine: the new instance may mount it only once the
            # old one is gone (not just deleting).
            mounts = bool(spec.volumes or spec.volume_ids)
            await self._delete(
                fleet, change, old_id, until_gone=gate.destroy_awaited or mounts or rolling
            )
            await recorder.update(lambda d: self.kind.forget(d, change.address, old_id))
            gate.destroyed()
            self._count_serving(change, -1)
            self._note(change, f"deleted {old_id}; creating its successor")
            await gate.before_create()
            new_id = await self._create_placed(job, spec)
            gate.created()
            if rolling:
                await self._serve_or_fail(job, new_id)
            else:
                self.pending.append(
                    _Pending(fleet, change.address, new_id, change.action, _boot_of(change))
                )
        return f"replaced {old_id} with {new_id}", new_id

    # -- rollouts: serving, not just created ---------------------------------------------------

    def _note(self, change: Change, what: str) -> None:
        """A progress line for a rollout's change: the wave, what it does, how many serve."""
        rollout = self.run_.rollouts.get(change.rollout or "")
        if rollout is not None:
            self.run_.emit(change, Phase.PROGRESS, f"{rollout.where(change.wave)}: {what}")

    def _count_serving(self, change: Change, delta: int) -> None:
        rollout = self.run_.rollouts.get(change.rollout or "")
        if rollout is not None:
            rollout.serving += delta

    async def _serve_or_fail(self, job: Job, instance_id: str) -> None:
        """Wait until a new replica serves; its record stays either way (a later run waits
        for it or repairs it), and the rollout stops here if it does not."""
        failure = await self._wait_serving(job, instance_id)
        if failure is not None:
            raise ActionFailed(
                f"new instance {instance_id} {failure.message}; the replicas not yet replaced "
                "keep serving, and the next apply goes on from here"
            )
        self._count_serving(job.change, +1)
        self._note(job.change, f"{instance_id} serves")

    async def _settle(self, job: Job) -> tuple[str, str | None]:
        """What an earlier run left: wait until ``serving_first`` serves; then, for a delete,
        retire its predecessor (which kept serving meanwhile)."""
        change, gate = job.change, job.gate
        successor = change.serving_first
        assert successor is not None
        if change.adopt and isinstance(job.spec, InstanceSpec):
            await self._update(job.fleet, change, job.spec, job.recorder)
        self._note(change, f"waiting for {successor} to serve")
        failure = await self._wait_serving(job, successor)
        if change.action is Action.NOOP:
            if failure is not None:
                raise ActionFailed(f"instance {successor} {failure.message}")
            self._count_serving(change, +1)
            return f"{successor} serves", successor
        assert change.resource_id is not None
        if failure is not None:
            raise ActionFailed(
                f"kept {change.resource_id}, which still serves: its successor {successor} "
                f"{failure.message}"
            )
        await gate.before_destroy()
        await self._delete(job.fleet, change, change.resource_id, until_gone=True)
        await job.recorder.update(lambda d: self.kind.forget(d, change.address, change.resource_id))
        gate.destroyed()
        return f"{successor} serves; deleted its predecessor {change.resource_id}", (
            change.resource_id
        )

    async def _wait_serving(self, job: Job, instance_id: str) -> _NotServing | None:
        """Poll until the instance is active and its readiness command (if any) passes.
        None when it serves; else why not (failed, late, or the run was cancelled)."""
        run, change = self.run_, job.change
        loop = asyncio.get_running_loop()
        started = loop.time()
        while True:
            try:
                current: Instance | None = await run.client.get_instance(instance_id)
            except NotFoundError:
                current = None
            status = current.status if current else "deleted"
            if status == "active":
                run.emit(change, Phase.PROGRESS, f"{instance_id} is active", boot_finished=True)
                break
            if status in _FAILED_STATUSES or loop.time() - started > self._deadline(current):
                detail = (
                    f" ({current.status_details})" if current and current.status_details else ""
                )
                return _NotServing(
                    f"did not become active (status {status}{detail})", status=str(status)
                )
            if run.cancel.requested:
                return _NotServing(
                    f"was still {status} when the run was cancelled ({run.cancel.reason})",
                    status=str(status),
                    cancelled=True,
                )
            wait = InstanceWait(
                address=change.address,
                instance_id=instance_id,
                status=status,
                waited_seconds=loop.time() - started,
                boot_seconds_max=(
                    current.boot_time.max_boot_in_sec
                    if current and current.boot_time
                    else _boot_of(change)
                ),
            )
            run.emit(change, Phase.PROGRESS, f"waiting for {instance_id}: {status}", (wait,))
            await run.pause(run.options.poll_interval)
        spec = job.spec if isinstance(job.spec, InstanceSpec) else None
        if spec is None or spec.readiness is None:
            return None
        return await self._wait_ready(job, spec, current)

    async def _mark_ready(self, job: Job, instance_id: str) -> None:
        """It serves: recorded, so a later run counts it as serving."""
        address = job.change.address

        def ready(draft: FleetState) -> None:
            record = draft.instances.get(address)
            if record is not None and record.instance_id == instance_id:
                draft.instances[address] = record.model_copy(update={"awaiting_readiness": False})

        if job.recorder.state.instances.get(address) is not None:
            await job.recorder.update(ready)

    async def _wait_ready(
        self, job: Job, spec: InstanceSpec, instance: Instance | None
    ) -> _NotServing | None:
        run, change = self.run_, job.change
        readiness = spec.readiness
        assert readiness is not None and instance is not None
        program = readiness.command[0]
        if run.readiness is None:
            return _NotServing(
                f"is active, but its readiness command ({program}) may not run: apply with "
                "--allow-readiness-commands",
                status="active",
            )
        manifest_dir = Path(spec.source.file).parent if spec.source else Path(".")
        target = ProbeTarget(
            address=change.address,
            instance_id=instance.id,
            ip=instance.ip,
            ssh_user=instance.ssh_user,
            ssh_port=instance.ssh_port,
        )
        loop = asyncio.get_running_loop()
        started = loop.time()
        attempts = 0
        while True:
            left = readiness.timeout_seconds - (loop.time() - started)
            attempts += 1
            result = await run.readiness(
                readiness, manifest_dir, target, max(1.0, min(left, _ATTEMPT_SECONDS))
            )
            if result.ok:
                run.emit(change, Phase.PROGRESS, f"{instance.id} passed its readiness check")
                await self._mark_ready(job, instance.id)
                return None
            if loop.time() - started >= readiness.timeout_seconds:
                return _NotServing(
                    f"is active but did not pass its readiness check within "
                    f"{readiness.timeout_seconds:g}s ({attempts} tries; last: {result.detail})",
                    status="active",
                )
            if run.cancel.requested:
                return _NotServing(
                    f"was not ready yet when the run was cancelled ({run.cancel.reason})",
                    status="active",
                    cancelled=True,
                )
            run.emit(
                change, Phase.PROGRESS, f"{instance.id} is active, not ready yet: {result.detail}"
            )
            await run.pause(min(readiness.interval_seconds, max(0.0, left)))

    # -- the steps ---------------------------------------------------------------------------------

    async def _create_placed(self, job: Job, spec: InstanceSpec) -> str:
        """Create on the planned offer, falling back down the approved list on capacity only."""
        change = job.change
        if change.placement is None:
            return await self._create(job, spec)
        offers = (change.placement.chosen, *change.placement.fallbacks)
        tried: list[str] = []
        for offer in offers:
            try:
                return await self._create(
                    job, apply_offer(spec, offer), offer=offer, tried=tuple(tried)
                )
            except NoCapacity as exc:
                tried.append(offer.describe())
                self.run_.emit(change, Phase.PROGRESS, f"{exc}; trying the next approved offer")
        raise ActionFailed(
            "no capacity in any approved offer (tried, in order: " + "; ".join(tried) + ")"
        )

    async def _create(
        self,
        job: Job,
        spec: InstanceSpec,
        *,
        offer: Offer | None = None,
        tried: tuple[str, ...] = (),
    ) -> str:
        run, recorder, fleet = self.run_, job.recorder, job.fleet
        intent = self.kind.intent(job.change, spec, intent_id=uuid.uuid4().hex, now=run.now_iso())
        await recorder.update(lambda d: d.intents.__setitem__(intent.intent_id, intent))
        run.failpoints.hit("intent_recorded", self.kind.name)
        uses = _references_in(spec, recorder.state)
        request = CreateRequest.from_spec(
            _with_resolved_references(spec, uses),
            extra_tags=(*ownership_tags(fleet, spec.address), f"{INTENT_TAG}{intent.intent_id}"),
        )
        run.failpoints.hit("create_sent", self.kind.name)
        try:
            instance_id = await run.client.create_instance(request)
        except AmbiguousCreateError as exc:
            found = await self._find_by_intent(intent.intent_id)
            if found is None:
                raise ActionFailed(
                    f"the create may or may not have happened ({exc}); its intent "
                    f"{intent.intent_id} stays in the state, so the next run adopts the instance "
                    "if it appears, or releases the intent after the grace period"
                ) from exc
            instance_id = found
        except ApiError as exc:
            # Shadeform refused the request: nothing was created, so the intent can go.
            def release(draft: FleetState) -> None:
                draft.intents.pop(intent.intent_id, None)

            await recorder.update(release)
            if isinstance(exc, CapacityRefusedError):
                raise NoCapacity(
                    f"no capacity for {spec.shade_instance_type} in {spec.cloud}/{spec.region}: {exc}"
                ) from exc
            raise ActionFailed(f"create failed: {exc}") from exc
        run.failpoints.hit("create_returned", self.kind.name)
        claim_id(run, instance_id, spec.address, recorder.state, intent.intent_id)
        now = run.now_iso()

        awaiting = spec.readiness is not None and waits_until_serving(
            job.change, wait=run.options.wait
        )

        def record(draft: FleetState) -> None:
            draft.instances[spec.address] = InstanceRecord(
                address=spec.address,
                instance_id=instance_id,
                applied_spec=comparable_spec(spec, draft.fingerprint_key),
                placement=(
                    {"offer": offer.model_dump(mode="json"), "tried": list(tried)}
                    if offer
                    else None
                ),
                uses=uses,
                created_at=now,
                updated_at=now,
                awaiting_readiness=awaiting,
            )
            draft.intents.pop(intent.intent_id, None)

        await recorder.update(record)
        run.failpoints.hit("id_recorded", self.kind.name)
        return instance_id

    async def _find_by_intent(self, intent_id: str) -> str | None:
        run = self.run_
        tag = f"{INTENT_TAG}{intent_id}"
        for attempt in range(run.options.ambiguous_lookups):
            if attempt:
                await run.sleep(run.options.ambiguous_lookup_delay)
            try:
                listed = await run.client.list_instances()
            except ApiError:
                continue
            matches = [i.id for i in listed if tag in i.tags and i.status != "deleted"]
            if len(matches) == 1:
                return matches[0]
            if len(matches) > 1:
                raise ActionFailed(
                    f"more than one instance carries intent {intent_id} ({', '.join(matches)}); "
                    "delete the extra ones by hand"
                )
        return None

    async def _check_owned(self, fleet: str, instance_id: str) -> Instance | None:
        """The precondition of every action on an existing instance. None = already gone."""
        try:
            current = await self.run_.client.get_instance(instance_id)
        except NotFoundError:
            return None
        if current.status in ("deleting", "deleted"):
            return None
        if f"{FLEET_TAG}{fleet}" not in current.tags:
            raise ActionFailed(
                f"instance {instance_id} no longer carries the tag {FLEET_TAG}{fleet}; "
                "the reconciler does not touch instances it does not own"
            )
        return current

    async def _delete(
        self, fleet: str, change: Change, instance_id: str, *, until_gone: bool
    ) -> None:
        run = self.run_
        if await self._check_owned(fleet, instance_id) is not None:
            run.failpoints.hit("delete_sent", self.kind.name)
            try:
                await run.client.delete_instance(instance_id)
            except NotFoundError:
                return
        if until_gone:
            await self._wait_gone(change, instance_id)

    async def _wait_gone(self, change: Change, instance_id: str) -> None:
        """Poll until the instance is gone (not just ``deleting``): what uses the same volume
        or key may go on only then."""
        run = self.run_
        loop = asyncio.get_running_loop()
        started = loop.time()
        while True:
            try:
                current = await run.client.get_instance(instance_id)
            except NotFoundError:
                break
            if current.status == "deleted":
                break
            if loop.time() - started > run.options.gone_timeout:
                raise ActionFailed(
                    f"instance {instance_id} is still {current.status} after "
                    f"{run.options.gone_timeout:g}s; what it used is left alone until it is gone"
                )
            if run.cancel.requested:
                raise ActionFailed(
                    f"cancelled ({run.cancel.reason}) while {instance_id} was being deleted; "
                    "the next run goes on from there"
                )
            run.emit(
                change, Phase.PROGRESS, f"waiting for {instance_id} to be gone ({current.status})"
            )
            await run.pause(run.options.poll_interval)
        run.failpoints.hit("gone_confirmed", self.kind.name)

    async def _update(
        self, fleet: str, change: Change, spec: InstanceSpec, recorder: StateRecorder
    ) -> None:
        assert change.resource_id
        run = self.run_
        current = await self._check_owned(fleet, change.resource_id)
        if current is None:
            raise ActionFailed(
                f"instance {change.resource_id} is gone since the plan was made; plan again"
            )
        fields = {c.path.split(".")[0] for c in change.field_changes} & set(
            UpdateRequest.model_fields
        )
        if fields:
            run.failpoints.hit("update_sent", self.kind.name)
            await run.client.update_instance(change.resource_id, update_request(spec, fields))
        now = run.now_iso()
        instance_id = change.resource_id

        def record(draft: FleetState) -> None:
            previous = draft.instances.get(spec.address)
            applied = comparable_spec(spec, draft.fingerprint_key)
            draft.instances[spec.address] = InstanceRecord(
                address=spec.address,
                instance_id=instance_id,
                # A placement envelope leaves cloud/region/type open: keep where it runs.
                applied_spec=with_placement_of(applied, change.after),
                placement=previous.placement if previous else None,
                uses=previous.uses if previous else {},
                created_at=previous.created_at if previous else now,
                updated_at=now,
            )

        await recorder.update(record)

    # -- waiting -----------------------------------------------------------------------------------

    def _deadline(self, instance: Instance | None) -> float:
        if self.run_.options.wait_timeout is not None:
            return self.run_.options.wait_timeout
        boot = instance.boot_time.max_boot_in_sec if instance and instance.boot_time else None
        return boot * 2 + 120 if boot else DEFAULT_WAIT_TIMEOUT

    async def _wait_one(self, job: Job, new_id: str, old_id: str, old_uses: dict[str, str]) -> None:
        """create_before_destroy: the new instance must serve before the old one goes."""
        change, recorder = job.change, job.recorder
        failure = await self._wait_serving(job, new_id)
        if failure is None:
            return
        # Keep the old, working instance as the address's record; drop the new one. (On a
        # cancel too: the next run starts the replacement afresh instead of deleting the
        # serving instance as a "duplicate".)
        await self._restore(recorder, change, old_id, old_uses)
        if failure.status not in ("deleting", "deleted"):
            await self._delete(job.fleet, change, new_id, until_gone=False)
        if failure.cancelled:
            raise ActionFailed(
                f"cancelled ({self.run_.cancel.reason}) while waiting for {new_id} to serve; "
                f"kept {old_id}, which still serves, and deleted {new_id}; the next run "
                "replaces it again"
            )
        raise ActionFailed(f"new instance {new_id} {failure.message}; kept {old_id}")

    async def _restore(
        self, recorder: StateRecorder, change: Change, old_id: str, old_uses: dict[str, str]
    ) -> None:
        previous_spec = change.before or {}
        now = self.run_.now_iso()

        def restore(draft: FleetState) -> None:
            draft.instances[change.address] = InstanceRecord(
                address=change.address,
                instance_id=old_id,
                applied_spec=previous_spec,
                uses=old_uses,
                created_at=now,
                updated_at=now,
            )

        await recorder.update(restore)

    async def finish(self) -> None:
        """Poll the list endpoint until every new instance is active, in error, or late.

        An instance that does not become active turns its (so far successful) result into a
        failure carrying the status and Shadeform's status details.
        """
        run = self.run_
        if not run.options.wait or not self.pending:
            return
        report = run.report
        loop = asyncio.get_running_loop()
        started = loop.time()
        waiting = {p.instance_id: p for p in self.pending}
        while waiting and not run.cancel.requested:
            try:
                listed: dict[str, Instance] | None = {
                    i.id: i for i in await run.client.list_instances()
                }
            except ApiError:
                listed = None  # try again next round; the deadline still applies
            statuses: dict[str, str] = {}
            boots: dict[str, int | None] = {}
            for instance_id, item in list(waiting.items()):
                if listed is None:
                    current, status = None, "unknown"
                else:
                    current = listed.get(instance_id)
                    status = current.status if current else "deleted"  # gone from the list
                statuses[instance_id] = status
                boots[instance_id] = (
                    current.boot_time.max_boot_in_sec if current and current.boot_time else None
                )
                late = loop.time() - started > self._deadline(current)
                if status == "active":
                    del waiting[instance_id]
                    run.progress(
                        ActionEvent(
                            item.address,
                            item.action.value,
                            Phase.PROGRESS,
                            f"{instance_id} is active",
                            boot_finished=True,
                        )
                    )
                elif status in _FAILED_STATUSES or late:
                    del waiting[instance_id]
                    self._fail_after_wait(
                        report, item, _wait_failure(instance_id, status, current, late)
                    )
            if waiting:
                now = time.monotonic()
                waits = tuple(
                    InstanceWait(
                        address=item.address,
                        instance_id=instance_id,
                        status=statuses.get(instance_id, "unknown"),
                        waited_seconds=now - item.created_at,
                        boot_seconds_max=boots.get(instance_id) or item.boot_seconds_max,
                    )
                    for instance_id, item in sorted(waiting.items(), key=lambda kv: kv[1].address)
                )
                run.progress(
                    ActionEvent(
                        "",
                        "wait",
                        Phase.PROGRESS,
                        f"waiting for {len(waiting)} instance(s) to become active",
                        waits=waits,
                    )
                )
                await run.pause(run.options.poll_interval)
        if waiting:  # cancelled while they boot: they are created and recorded, not verified
            report.not_waited_for = sorted(p.address for p in waiting.values())

    def _fail_after_wait(self, report: ApplyReport, item: _Pending, message: str) -> None:
        self.run_.progress(
            ActionEvent(item.address, item.action.value, Phase.FAILED, message, boot_finished=True)
        )
        for index, result in enumerate(report.results):
            if (
                result.address == item.address
                and result.resource_id == item.instance_id
                and result.ok
            ):
                report.results[index] = ActionResult(
                    result.fleet,
                    result.address,
                    result.action,
                    False,
                    message,
                    item.instance_id,
                    kind=result.kind,
                )


def waits_until_serving(change: Change, *, wait: bool) -> bool:
    """Whether carrying out ``change`` waits until a new instance serves (active, then its
    readiness command): a rollout's changes, what finishes an earlier run's replacement, and
    a create-first replacement unless ``--no-wait``. Where a readiness command may run."""
    return (
        change.rollout is not None
        or change.serving_first is not None
        or (wait and change.action is Action.REPLACE and change.create_before_destroy)
    )


def claim_id(
    run: ApplyRun, resource_id: str, address: str, state: FleetState, intent_id: str
) -> None:
    """Refuse an id Shadeform already gave another address (in this apply or the state):
    one resource is never recorded for two addresses. The intent stays in the state, so
    the next run finds each address's resource by its intent."""
    owner = run.claimed_ids.get(resource_id)
    if owner is None:
        owner = next(
            (r.address for r in state.instances.values() if r.instance_id == resource_id), None
        ) or next(
            (r.address for r in state.resources.values() if r.resource_id == resource_id), None
        )
    if owner is not None and owner != address:
        raise ActionFailed(
            f"Shadeform answered this create with id {resource_id}, the id it already gave "
            f"{owner}; not recording one resource for two addresses. Intent {intent_id} "
            "stays in the state: the next run adopts what carries it, if anything. Report "
            "this to Shadeform support"
        )
    run.claimed_ids[resource_id] = address


def _references_in(spec: InstanceSpec, state: FleetState) -> dict[str, str]:
    """The ids the state holds for the managed volumes and key ``spec`` uses, by address."""
    uses = {}
    for address in instance_references(spec):
        record = state.resources.get(address)
        if record is None:
            raise ActionFailed(f"{address}, which it uses, is not created (not in the state)")
        uses[address] = record.resource_id
    return uses


def _with_resolved_references(spec: InstanceSpec, uses: dict[str, str]) -> InstanceSpec:
    """``spec`` with its managed volume and key names turned into their ids."""
    if not uses:
        return spec
    volume_ids = (*spec.volume_ids, *(uses[volume_address(spec.fleet, v)] for v in spec.volumes))
    ssh_key_id = (
        uses[ssh_key_address(spec.fleet, spec.ssh_key)] if spec.ssh_key else spec.ssh_key_id
    )
    return spec.model_copy(update={"volume_ids": volume_ids, "ssh_key_id": ssh_key_id})


def _boot_of(change: Change) -> int | None:
    return change.placement.chosen.boot_seconds_max if change.placement else None


def _wait_failure(instance_id: str, status: str, current: Instance | None, late: bool) -> str:
    detail = f": {current.status_details}" if current and current.status_details else ""
    if late and status not in _FAILED_STATUSES:
        return f"instance {instance_id} is not active after waiting (status {status}{detail})"
    return f"instance {instance_id} went to {status}{detail}"


def update_request(spec: InstanceSpec, fields: set[str]) -> UpdateRequest:
    """The update body for ``fields`` (fields of :class:`UpdateRequest`, the same allow-list
    the diff uses); ``None`` deletes a threshold."""
    values: dict[str, object] = {}
    for name in sorted(fields & set(UpdateRequest.model_fields)):
        if name == "tags":
            values["tags"] = (*spec.tags, *ownership_tags(spec.fleet, spec.address))
        elif name in ("auto_delete", "alert"):
            value = getattr(spec, name)
            values[name] = (
                Thresholds.model_validate(value.model_dump(exclude_none=True)) if value else None
            )
        else:
            values[name] = getattr(spec, name)
    return UpdateRequest(**values)  # type: ignore[arg-type]
