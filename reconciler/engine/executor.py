"""The executor: carry out a plan's actions against Shadeform, recording each result at once.

Crash safety (never bill a GPU twice): before a create is sent, an intent (address, fresh id,
time) is saved in the state and its id rides on the request as a ``reconciler:intent=`` tag;
the returned instance id is saved the moment it arrives. An ambiguous create is resolved by
looking for the intent's tag before anything else happens; a create is never retried blindly.
Every action rechecks its precondition (the instance still exists and is ours) just before it
runs, and the state is persisted after every action.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from reconciler.api import ShadeformClient
from reconciler.engine.cancel import CancelToken
from reconciler.engine.comparable import comparable_spec
from reconciler.engine.diff import UPDATABLE_IN_PLACE
from reconciler.engine.events import (
    ActionEvent,
    InstanceWait,
    Phase,
    ProgressSink,
    ignore_progress,
)
from reconciler.engine.failpoints import FailPoints
from reconciler.engine.placement import apply_offer, with_placement_of
from reconciler.engine.recorder import StateRecorder
from reconciler.errors import (
    AmbiguousCreateError,
    ApiError,
    CapacityRefusedError,
    NotFoundError,
    ReconcilerError,
    StateError,
)
from reconciler.models.api import CreateRequest, Instance, Thresholds, UpdateRequest
from reconciler.models.catalog import Offer
from reconciler.models.live import FLEET_TAG, INTENT_TAG, ownership_tags
from reconciler.models.plan import Action, Change, FleetPlan, Plan
from reconciler.models.spec import Fleet, InstanceSpec
from reconciler.models.state import CreateIntent, FleetState, InstanceRecord

DEFAULT_PARALLELISM = 10
DEFAULT_WAIT_TIMEOUT = 20 * 60.0


class ActionFailed(ReconcilerError):
    """One action failed; the others go on (unless --fail-fast)."""


class NoCapacity(ActionFailed):
    """Shadeform refused a create for lack of capacity: the next approved offer may work."""


@dataclass(frozen=True)
class ExecutorOptions:
    parallelism: int = DEFAULT_PARALLELISM
    wait: bool = True
    wait_timeout: float | None = None
    """Seconds to wait for new instances; by default derived from their boot time."""
    poll_interval: float = 2.0
    fail_fast: bool = False
    ambiguous_lookups: int = 3
    ambiguous_lookup_delay: float = 1.0
    cancel_grace: float = 5.0
    """On cancel: how long actions already in flight may take to finish before being abandoned."""


@dataclass(frozen=True)
class ActionResult:
    fleet: str
    address: str
    action: Action
    ok: bool
    message: str = ""
    instance_id: str | None = None
    started: bool = True
    """False for an action never started (``--fail-fast`` or a cancel)."""


@dataclass
class ApplyReport:
    results: list[ActionResult] = field(default_factory=list)
    blocked: list[str] = field(default_factory=list)
    cancelled: str | None = None
    """Why the run was cancelled (``"SIGTERM"``), or None when it ran to its end."""
    not_waited_for: list[str] = field(default_factory=list)
    """New instances created and recorded, but not waited for (the run was cancelled)."""

    @property
    def failed(self) -> list[ActionResult]:
        return [r for r in self.results if not r.ok and r.started]

    @property
    def not_started(self) -> list[ActionResult]:
        return [r for r in self.results if not r.started]

    @property
    def succeeded(self) -> list[ActionResult]:
        return [r for r in self.results if r.ok]


def _now() -> datetime:
    return datetime.now(UTC)


def _iso(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


@dataclass
class _Pending:
    """A created instance to wait for."""

    fleet: str
    address: str
    instance_id: str
    action: Action
    boot_seconds_max: int | None = None  # the catalog's expectation for the offer used
    created_at: float = field(default_factory=time.monotonic)


class Executor:
    def __init__(
        self,
        client: ShadeformClient,
        *,
        options: ExecutorOptions = ExecutorOptions(),
        progress: ProgressSink = ignore_progress,
        failpoints: FailPoints | None = None,
        clock: Callable[[], datetime] = _now,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        cancel: CancelToken | None = None,
    ) -> None:
        self.client = client
        self.options = options
        self.progress = progress
        self.failpoints = failpoints or FailPoints()
        self.clock = clock
        self.sleep = sleep
        self.cancel = cancel or CancelToken()
        self._stop = False
        self._created: dict[str, str] = {}  # instance id -> the address it was created for

    # -- entry point -----------------------------------------------------------------------------

    async def apply(
        self,
        plan: Plan,
        *,
        fleets: Mapping[str, Fleet],
        recorders: Mapping[str, StateRecorder],
    ) -> ApplyReport:
        report = ApplyReport()
        semaphore = asyncio.Semaphore(max(1, self.options.parallelism))
        pending: list[_Pending] = []
        for fleet_plan in plan.fleets:
            await self._release_intents(recorders[fleet_plan.fleet], fleet_plan)
            report.blocked.extend(f"{b.address}: {b.message}" for b in fleet_plan.blocked)
        tasks: dict[asyncio.Task[None], tuple[str, Change]] = {}
        for fleet_plan in plan.fleets:
            recorder = recorders[fleet_plan.fleet]
            specs = {s.address: s for s in fleets[fleet_plan.fleet].instances}
            for change in fleet_plan.changes:
                if change.action is Action.NOOP and not change.adopt:
                    continue
                task = asyncio.create_task(
                    self._run(semaphore, fleet_plan.fleet, change, specs, recorder, report, pending)
                )
                tasks[task] = (fleet_plan.fleet, change)
        await self._run_until_done_or_cancelled(tasks, report)
        for task in tasks:
            outcome = task.exception() if not task.cancelled() else None
            if isinstance(outcome, StateError):
                raise outcome  # the state could not be saved: stop everything, loudly
            if outcome is not None:
                raise outcome
        if self.options.wait and pending:
            await self._wait_all(pending, report)
        report.cancelled = self.cancel.reason
        report.results.sort(key=lambda r: (r.fleet, r.address, r.action.value))
        return report

    async def _run_until_done_or_cancelled(
        self, tasks: dict[asyncio.Task[None], tuple[str, Change]], report: ApplyReport
    ) -> None:
        """Wait for every action; on cancel, give those in flight ``cancel_grace`` seconds,
        then abandon them. An abandoned create keeps its intent in the state (the next run
        adopts or releases it); nothing is left half-recorded because every record is one
        atomic state write."""
        if not tasks:
            return
        everything: asyncio.Future[Any] = asyncio.gather(*tasks, return_exceptions=True)
        cancelled: asyncio.Future[Any] = asyncio.create_task(self.cancel.wait())
        try:
            await asyncio.wait({everything, cancelled}, return_when=asyncio.FIRST_COMPLETED)
            if not everything.done():
                await asyncio.wait({everything}, timeout=self.options.cancel_grace)
            if not everything.done():
                for task, (fleet, change) in tasks.items():
                    if not task.done():
                        task.cancel()
                        report.results.append(
                            ActionResult(
                                fleet,
                                change.address,
                                change.action,
                                False,
                                f"abandoned in flight ({self.cancel.reason}); what it did is "
                                "found again by the next run",
                                change.instance_id,
                            )
                        )
                await asyncio.gather(everything, return_exceptions=True)
        finally:
            cancelled.cancel()
            await asyncio.gather(cancelled, return_exceptions=True)

    async def _release_intents(self, recorder: StateRecorder, fleet_plan: FleetPlan) -> None:
        released = [i for i in fleet_plan.released_intents if i in recorder.state.intents]
        if released:

            def drop(draft: FleetState) -> None:
                for intent_id in released:
                    draft.intents.pop(intent_id, None)

            await recorder.update(drop)

    async def _run(
        self,
        semaphore: asyncio.Semaphore,
        fleet: str,
        change: Change,
        specs: Mapping[str, InstanceSpec],
        recorder: StateRecorder,
        report: ApplyReport,
        pending: list[_Pending],
    ) -> None:
        async with semaphore:
            if self._stop or self.cancel.requested:
                why = (
                    f"cancelled ({self.cancel.reason})" if self.cancel.requested else "--fail-fast"
                )
                report.results.append(
                    ActionResult(
                        fleet,
                        change.address,
                        change.action,
                        False,
                        f"not started ({why})",
                        change.instance_id,
                        started=False,
                    )
                )
                return
            self._emit(change, Phase.STARTED, "")
            try:
                message, instance_id = await self._dispatch(fleet, change, specs, recorder, pending)
            except StateError:
                raise
            except (ActionFailed, ApiError) as exc:
                self._emit(change, Phase.FAILED, str(exc))
                report.results.append(
                    ActionResult(
                        fleet, change.address, change.action, False, str(exc), change.instance_id
                    )
                )
                if self.options.fail_fast:
                    self._stop = True
                return
            self.failpoints.hit("action_saved")
            self._emit(change, Phase.SUCCEEDED, message)
            report.results.append(
                ActionResult(fleet, change.address, change.action, True, message, instance_id)
            )

    async def _dispatch(
        self,
        fleet: str,
        change: Change,
        specs: Mapping[str, InstanceSpec],
        recorder: StateRecorder,
        pending: list[_Pending],
    ) -> tuple[str, str | None]:
        action = change.action
        if action is Action.FORGET:
            await self._forget(recorder, change.address, change.instance_id)
            return "removed from state (instance already gone)", change.instance_id
        if action is Action.DELETE:
            assert change.instance_id
            await self._delete(fleet, change.instance_id)
            await self._forget(recorder, change.address, change.instance_id)
            return f"deleted {change.instance_id}", change.instance_id

        spec = specs.get(change.address)
        if spec is None:
            raise ActionFailed(f"{change.address} is not in the manifests any more; plan again")
        if action is Action.CREATE:
            new_id = await self._create_placed(fleet, change, spec, recorder)
            pending.append(_Pending(fleet, change.address, new_id, action, _boot_of(change)))
            return f"created {new_id}", new_id
        assert change.instance_id
        if action is Action.UPDATE or action is Action.NOOP:
            await self._update(fleet, change, spec, recorder)
            verb = "adopted" if action is Action.NOOP else "updated"
            return f"{verb} {change.instance_id}", change.instance_id
        if action is Action.REPLACE:
            old_id = change.instance_id
            if change.create_before_destroy:
                await self._check_owned(fleet, old_id)
                new_id = await self._create_placed(fleet, change, spec, recorder)
                if self.options.wait:
                    await self._wait_one(fleet, change, new_id, recorder, old_id, spec)
                await self._delete(fleet, old_id)
            else:
                await self._delete(fleet, old_id)
                await self._forget(recorder, change.address, old_id)
                new_id = await self._create_placed(fleet, change, spec, recorder)
                pending.append(_Pending(fleet, change.address, new_id, action, _boot_of(change)))
            return f"replaced {old_id} with {new_id}", new_id
        raise ActionFailed(f"unknown action {action}")

    # -- the steps ---------------------------------------------------------------------------------

    async def _create_placed(
        self, fleet: str, change: Change, spec: InstanceSpec, recorder: StateRecorder
    ) -> str:
        """Create on the planned offer, falling back down the approved list on capacity only."""
        if change.placement is None:
            return await self._create(fleet, spec, recorder)
        offers = (change.placement.chosen, *change.placement.fallbacks)
        tried: list[str] = []
        for offer in offers:
            try:
                return await self._create(
                    fleet, apply_offer(spec, offer), recorder, offer=offer, tried=tuple(tried)
                )
            except NoCapacity as exc:
                tried.append(offer.describe())
                self._emit(change, Phase.PROGRESS, f"{exc}; trying the next approved offer")
        raise ActionFailed(
            "no capacity in any approved offer (tried, in order: " + "; ".join(tried) + ")"
        )

    async def _create(
        self,
        fleet: str,
        spec: InstanceSpec,
        recorder: StateRecorder,
        *,
        offer: Offer | None = None,
        tried: tuple[str, ...] = (),
    ) -> str:
        intent = CreateIntent(
            intent_id=uuid.uuid4().hex, address=spec.address, created_at=_iso(self.clock())
        )
        await recorder.update(lambda d: d.intents.__setitem__(intent.intent_id, intent))
        self.failpoints.hit("intent_recorded")
        request = CreateRequest.from_spec(
            spec,
            extra_tags=(*ownership_tags(fleet, spec.address), f"{INTENT_TAG}{intent.intent_id}"),
        )
        self.failpoints.hit("create_sent")
        try:
            instance_id = await self.client.create_instance(request)
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
        self.failpoints.hit("create_returned")
        self._claim_id(instance_id, spec.address, recorder.state, intent)
        now = _iso(self.clock())

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
                created_at=now,
                updated_at=now,
            )
            draft.intents.pop(intent.intent_id, None)

        await recorder.update(record)
        self.failpoints.hit("id_recorded")
        return instance_id

    def _claim_id(
        self, instance_id: str, address: str, state: FleetState, intent: CreateIntent
    ) -> None:
        """Refuse an id Shadeform already gave another address (in this apply or the state):
        one instance is never recorded for two addresses. The intent stays in the state, so
        the next run finds each address's instance by its intent tag."""
        owner = self._created.get(instance_id)
        if owner is None:
            owner = next(
                (r.address for r in state.instances.values() if r.instance_id == instance_id),
                None,
            )
        if owner is not None and owner != address:
            raise ActionFailed(
                f"Shadeform answered this create with instance id {instance_id}, the id it "
                f"already gave {owner}; not recording one instance for two addresses. Intent "
                f"{intent.intent_id} stays in the state: the next run adopts the instance that "
                "carries its tag, if any. Report this to Shadeform support"
            )
        self._created[instance_id] = address

    async def _find_by_intent(self, intent_id: str) -> str | None:
        tag = f"{INTENT_TAG}{intent_id}"
        for attempt in range(self.options.ambiguous_lookups):
            if attempt:
                await self.sleep(self.options.ambiguous_lookup_delay)
            try:
                listed = await self.client.list_instances()
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
            current = await self.client.get_instance(instance_id)
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

    async def _delete(self, fleet: str, instance_id: str) -> None:
        if await self._check_owned(fleet, instance_id) is None:
            return
        self.failpoints.hit("delete_sent")
        try:
            await self.client.delete_instance(instance_id)
        except NotFoundError:
            return

    async def _forget(self, recorder: StateRecorder, address: str, instance_id: str | None) -> None:
        def drop(draft: FleetState) -> None:
            record = draft.instances.get(address)
            if record is not None and record.instance_id == instance_id:
                del draft.instances[address]

        await recorder.update(drop)

    async def _update(
        self, fleet: str, change: Change, spec: InstanceSpec, recorder: StateRecorder
    ) -> None:
        assert change.instance_id
        current = await self._check_owned(fleet, change.instance_id)
        if current is None:
            raise ActionFailed(
                f"instance {change.instance_id} is gone since the plan was made; plan again"
            )
        fields = {c.path.split(".")[0] for c in change.field_changes} & UPDATABLE_IN_PLACE
        if fields:
            self.failpoints.hit("update_sent")
            await self.client.update_instance(change.instance_id, update_request(spec, fields))
        now = _iso(self.clock())
        instance_id = change.instance_id

        def record(draft: FleetState) -> None:
            previous = draft.instances.get(spec.address)
            applied = comparable_spec(spec, draft.fingerprint_key)
            draft.instances[spec.address] = InstanceRecord(
                address=spec.address,
                instance_id=instance_id,
                # A placement envelope leaves cloud/region/type open: keep where it runs.
                applied_spec=with_placement_of(applied, change.after),
                placement=previous.placement if previous else None,
                created_at=previous.created_at if previous else now,
                updated_at=now,
            )

        await recorder.update(record)

    # -- waiting -----------------------------------------------------------------------------------

    def _deadline(self, instance: Instance | None) -> float:
        if self.options.wait_timeout is not None:
            return self.options.wait_timeout
        boot = instance.boot_time.max_boot_in_sec if instance and instance.boot_time else None
        return boot * 2 + 120 if boot else DEFAULT_WAIT_TIMEOUT

    async def _wait_one(
        self,
        fleet: str,
        change: Change,
        new_id: str,
        recorder: StateRecorder,
        old_id: str,
        spec: InstanceSpec,
    ) -> None:
        """create_before_destroy: the new instance must be active before the old one goes."""
        loop = asyncio.get_running_loop()
        started = loop.time()
        while True:
            try:
                current: Instance | None = await self.client.get_instance(new_id)
            except NotFoundError:
                current = None
            status = current.status if current else "deleted"
            if status == "active":
                self._emit(change, Phase.PROGRESS, f"{new_id} is active", boot_finished=True)
                return
            if status in ("error", "deleting", "deleted") or loop.time() - started > self._deadline(
                current
            ):
                detail = (
                    f" ({current.status_details})" if current and current.status_details else ""
                )
                # Keep the old, working instance as the address's record; drop the new one.
                await self._restore(recorder, change, old_id)
                if status not in ("deleting", "deleted"):
                    await self._delete(fleet, new_id)
                raise ActionFailed(
                    f"new instance {new_id} did not become active (status {status}{detail}); "
                    f"kept {old_id}"
                )
            if self.cancel.requested:
                # The old instance still serves: keep it as the address's record and take the
                # unfinished replacement away, so the next run starts the replacement afresh
                # instead of deleting the serving instance as a "duplicate".
                await self._restore(recorder, change, old_id)
                await self._delete(fleet, new_id)
                raise ActionFailed(
                    f"cancelled ({self.cancel.reason}) while waiting for {new_id} to become "
                    f"active; kept {old_id}, which still serves, and deleted {new_id}; the next "
                    "run replaces it again"
                )
            wait = InstanceWait(
                address=change.address,
                instance_id=new_id,
                status=status,
                waited_seconds=loop.time() - started,
                boot_seconds_max=(
                    current.boot_time.max_boot_in_sec
                    if current and current.boot_time
                    else _boot_of(change)
                ),
            )
            self._emit(change, Phase.PROGRESS, f"waiting for {new_id}: {status}", (wait,))
            await self._pause(self.options.poll_interval)

    async def _restore(self, recorder: StateRecorder, change: Change, old_id: str) -> None:
        previous_spec = change.before or {}
        now = _iso(self.clock())

        def restore(draft: FleetState) -> None:
            draft.instances[change.address] = InstanceRecord(
                address=change.address,
                instance_id=old_id,
                applied_spec=previous_spec,
                created_at=now,
                updated_at=now,
            )

        await recorder.update(restore)

    async def _wait_all(self, pending: list[_Pending], report: ApplyReport) -> None:
        """Poll the list endpoint until every new instance is active, in error, or late.

        An instance that does not become active turns its (so far successful) result into a
        failure carrying the status and Shadeform's status details.
        """
        loop = asyncio.get_running_loop()
        started = loop.time()
        waiting = {p.instance_id: p for p in pending}
        while waiting and not self.cancel.requested:
            try:
                listed: dict[str, Instance] | None = {
                    i.id: i for i in await self.client.list_instances()
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
                    self.progress(
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
                self.progress(
                    ActionEvent(
                        "",
                        "wait",
                        Phase.PROGRESS,
                        f"waiting for {len(waiting)} instance(s) to become active",
                        waits=waits,
                    )
                )
                await self._pause(self.options.poll_interval)
        if waiting:  # cancelled while they boot: they are created and recorded, not verified
            report.not_waited_for = sorted(p.address for p in waiting.values())

    async def _pause(self, seconds: float) -> None:
        """Sleep ``seconds``, or less if the run is cancelled meanwhile."""
        if self.cancel.requested:
            return
        sleeping = asyncio.ensure_future(self.sleep(seconds))
        cancelled = asyncio.ensure_future(self.cancel.wait())
        try:
            await asyncio.wait({sleeping, cancelled}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for waiter in (sleeping, cancelled):
                waiter.cancel()
            await asyncio.gather(sleeping, cancelled, return_exceptions=True)

    def _fail_after_wait(self, report: ApplyReport, item: _Pending, message: str) -> None:
        self.progress(
            ActionEvent(item.address, item.action.value, Phase.FAILED, message, boot_finished=True)
        )
        for index, result in enumerate(report.results):
            if (
                result.address == item.address
                and result.instance_id == item.instance_id
                and result.ok
            ):
                report.results[index] = ActionResult(
                    result.fleet, result.address, result.action, False, message, item.instance_id
                )

    def _emit(
        self,
        change: Change,
        phase: Phase,
        message: str,
        waits: tuple[InstanceWait, ...] = (),
        *,
        boot_finished: bool = False,
    ) -> None:
        self.progress(
            ActionEvent(change.address, change.action.value, phase, message, waits, boot_finished)
        )


_FAILED_STATUSES = ("error", "deleting", "deleted")


def _boot_of(change: Change) -> int | None:
    return change.placement.chosen.boot_seconds_max if change.placement else None


def _wait_failure(instance_id: str, status: str, current: Instance | None, late: bool) -> str:
    detail = f": {current.status_details}" if current and current.status_details else ""
    if late and status not in _FAILED_STATUSES:
        return f"instance {instance_id} is not active after waiting (status {status}{detail})"
    return f"instance {instance_id} went to {status}{detail}"


def update_request(spec: InstanceSpec, fields: set[str]) -> UpdateRequest:
    """The update body for ``fields`` (a subset of UPDATABLE_IN_PLACE); ``None`` deletes."""
    values: dict[str, object] = {}
    if "name" in fields:
        values["name"] = spec.name
    if "tags" in fields:
        values["tags"] = (*spec.tags, *ownership_tags(spec.fleet, spec.address))
    for name in ("auto_delete", "alert"):
        if name in fields:
            value = getattr(spec, name)
            values[name] = (
                Thresholds.model_validate(value.model_dump(exclude_none=True)) if value else None
            )
    return UpdateRequest(**values)  # type: ignore[arg-type]
