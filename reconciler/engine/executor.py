"""The executor: carry out a plan's changes against Shadeform, recording each result at once.

The core knows no kind of resource by name. Each change becomes a :class:`Job` run by its
kind's executor (``reconciler.engine.kinds``); the core wires the jobs into a graph from the
plan's ``depends_on`` edges and runs them all at once, bounded by ``--parallelism``:

* a job that creates waits at its gate until what its new spec uses is created (and
  recorded), so a volume's and a key's ids are in the state when the instance create is sent;
* a job that destroys waits until what uses it is gone (not just ``deleting``);
* a failed job fails the milestones others wait for: only its dependents stop, with its reason.

Crash safety is each kind's: every create is recorded as an intent before it is sent and found
again after any failure, and the state is persisted after every action.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping
from datetime import UTC, datetime
from typing import Any

from reconciler.api import ShadeformClient
from reconciler.engine.apply_context import (
    DEFAULT_PARALLELISM,
    DEFAULT_WAIT_TIMEOUT,
    ActionFailed,
    ApplyRun,
    DependencyFailed,
    ExecutorOptions,
    Gate,
    Job,
    NoCapacity,
    RolloutProgress,
    job_steps,
)
from reconciler.engine.cancel import CancelToken
from reconciler.engine.events import Phase, ProgressSink, ignore_progress
from reconciler.engine.failpoints import FailPoints
from reconciler.engine.kinds import KINDS, KindExecutor
from reconciler.engine.kinds.instance_apply import update_request
from reconciler.engine.recorder import StateRecorder
from reconciler.errors import ApiError, ApplyError, StateError
from reconciler.models.apply import ActionResult, ApplyReport
from reconciler.models.plan import Action, FleetPlan, Plan
from reconciler.models.spec import Fleet
from reconciler.models.state import FleetState
from reconciler.readiness import ReadinessProbe

__all__ = [
    "DEFAULT_PARALLELISM",
    "DEFAULT_WAIT_TIMEOUT",
    "ActionFailed",
    "ActionResult",
    "ApplyReport",
    "Executor",
    "ExecutorOptions",
    "NoCapacity",
    "update_request",
]


def _now() -> datetime:
    return datetime.now(UTC)


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
        readiness: ReadinessProbe | None = None,
    ) -> None:
        self.client = client
        self.readiness = readiness
        self.options = options
        self.progress = progress
        self.failpoints = failpoints or FailPoints()
        self.clock = clock
        self.sleep = sleep
        self.cancel = cancel or CancelToken()
        self._stop = False

    # -- entry point -----------------------------------------------------------------------------

    async def apply(
        self,
        plan: Plan,
        *,
        fleets: Mapping[str, Fleet],
        recorders: Mapping[str, StateRecorder],
    ) -> ApplyReport:
        report = ApplyReport()
        run = ApplyRun(
            client=self.client,
            options=self.options,
            progress=self.progress,
            failpoints=self.failpoints,
            clock=self.clock,
            sleep=self.sleep,
            cancel=self.cancel,
            report=report,
            readiness=self.readiness,
            rollouts={
                r.group: RolloutProgress(
                    group=r.group,
                    replicas=r.replicas,
                    waves=sum(1 for w in r.waves if w.number > 0),
                    serving=r.serving,
                )
                for fleet_plan in plan.fleets
                for r in fleet_plan.rollouts
            },
        )
        executors = {kind.name: kind.executor(run) for kind in KINDS}
        slot = asyncio.Semaphore(max(1, self.options.parallelism))
        for fleet_plan in plan.fleets:
            await self._release_intents(recorders[fleet_plan.fleet], fleet_plan)
            report.blocked.extend(f"{b.address}: {b.message}" for b in fleet_plan.blocked)
        jobs = self._jobs(plan, fleets, recorders, slot, run)
        _wire(jobs)
        tasks = {
            asyncio.create_task(self._run(job, executors[job.change.kind], run)): job
            for job in jobs
        }
        await self._run_until_done_or_cancelled(tasks, report)
        for task in tasks:
            outcome = task.exception() if not task.cancelled() else None
            if outcome is not None:
                raise outcome  # a StateError above all: the state could not be saved
        for executor in executors.values():
            await executor.finish()
        report.cancelled = self.cancel.reason
        report.results.sort(key=lambda r: (r.fleet, r.address, r.action.value))
        return report

    def _jobs(
        self,
        plan: Plan,
        fleets: Mapping[str, Fleet],
        recorders: Mapping[str, StateRecorder],
        slot: asyncio.Semaphore,
        run: ApplyRun,
    ) -> list[Job]:
        jobs = []
        for fleet_plan in plan.fleets:
            fleet = fleets[fleet_plan.fleet]
            specs: dict[str, Any] = {s.address: s for kind in KINDS for s in kind.specs(fleet)}
            for change in fleet_plan.changes:
                if change.action is Action.NOOP and not (change.adopt or change.serving_first):
                    continue
                gate = Gate(change.address, slot)
                gate.progress = lambda message, change=change: run.emit(  # type: ignore[misc]
                    change, Phase.PROGRESS, message
                )
                jobs.append(
                    Job(
                        fleet=fleet_plan.fleet,
                        change=change,
                        spec=specs.get(change.address),
                        recorder=recorders[fleet_plan.fleet],
                        gate=gate,
                        specs=specs,
                    )
                )
        return jobs

    async def _run_until_done_or_cancelled(
        self, tasks: dict[asyncio.Task[None], Job], report: ApplyReport
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
                for task, job in tasks.items():
                    if not task.done():
                        task.cancel()
                        report.results.append(
                            ActionResult(
                                job.fleet,
                                job.address,
                                job.action,
                                False,
                                f"abandoned in flight ({self.cancel.reason}); what it did is "
                                "found again by the next run",
                                job.change.resource_id,
                                kind=job.change.kind,
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

    async def _run(self, job: Job, executor: KindExecutor, run: ApplyRun) -> None:
        change, report = job.change, run.report
        async with job.gate.slot:
            try:
                if self._not_starting(job, report):
                    return
                try:
                    if job.gate.starts_after:
                        await job.gate.before_start(change.wave)
                        if self._not_starting(job, report):  # stopped while it waited
                            return
                    run.emit(change, Phase.STARTED, "")
                    message, resource_id = await executor.run(job)
                except StateError:
                    raise
                except DependencyFailed as exc:
                    run.emit(change, Phase.FAILED, str(exc))
                    text = str(exc) if exc.started else f"not started: {exc}"
                    self._record(job, report, ok=False, message=text, started=exc.started)
                    return
                except (ActionFailed, ApiError) as exc:
                    run.emit(change, Phase.FAILED, str(exc))
                    self._record(job, report, ok=False, message=str(exc))
                    if self.options.fail_fast:
                        self._stop = True
                    return
                self.failpoints.hit("action_saved", change.kind)
                run.emit(change, Phase.SUCCEEDED, message)
                self._record(job, report, ok=True, message=message, resource_id=resource_id)
                job.gate.finished.reach()
            finally:
                # What others wait for and did not happen: they stop, with this reason.
                why = _why_not(report, job)
                job.gate.create.fail(why)
                job.gate.destroy.fail(why)
                job.gate.finished.fail(why)

    def _not_starting(self, job: Job, report: ApplyReport) -> bool:
        """Whether the run stopped (cancel, --fail-fast) before this job began; recorded."""
        if not (self._stop or self.cancel.requested):
            return False
        why = f"cancelled ({self.cancel.reason})" if self.cancel.requested else "--fail-fast"
        self._record(job, report, ok=False, message=f"not started ({why})", started=False)
        return True

    def _record(
        self,
        job: Job,
        report: ApplyReport,
        *,
        ok: bool,
        message: str,
        started: bool = True,
        resource_id: str | None = None,
    ) -> None:
        report.results.append(
            ActionResult(
                job.fleet,
                job.address,
                job.action,
                ok,
                message,
                resource_id if ok else job.change.resource_id,
                started=started,
                kind=job.change.kind,
            )
        )


def _why_not(report: ApplyReport, job: Job) -> str:
    for result in reversed(report.results):
        if result.address == job.address and not result.ok:
            return result.message
    return "it was not carried out"


def _wire(jobs: list[Job]) -> None:
    """Connect the jobs' gates along the plan's edges (``X.depends_on`` holds ``D``):
    X's create waits for D's create; D's destroy waits for X's destroy (X gone)."""
    by_address: dict[str, list[Job]] = {}
    waves: dict[str, dict[int, list[Job]]] = {}
    for job in jobs:
        by_address.setdefault(job.address, []).append(job)
        if job.change.rollout is not None and job.change.wave is not None:
            waves.setdefault(job.change.rollout, {}).setdefault(job.change.wave, []).append(job)
    for numbered in waves.values():
        # A wave starts once every job of the rollout's earlier waves has finished.
        earlier: list[Job] = []
        for number in sorted(numbered):
            for job in numbered[number]:
                job.gate.starts_after.extend(j.gate.finished for j in earlier)
            earlier.extend(numbered[number])
    for job in jobs:
        for ref in job.change.depends_on:
            for dependency in by_address.get(ref, ()):
                if job.has_step("create") and dependency.has_step("create"):
                    job.gate.creates_needed.append(dependency.gate.create)
                if job.has_step("destroy") and dependency.has_step("destroy"):
                    dependency.gate.destroys_needed.append(job.gate.destroy)
                    job.gate.destroy_awaited = True
    _refuse_cycles(jobs)


def _refuse_cycles(jobs: list[Job]) -> None:
    """A cycle would leave jobs waiting for each other forever; the planner never makes one
    (a volume is not replaced create-first), and this makes sure before anything starts."""
    after: dict[int, list[int]] = {}  # milestone -> the milestones it must follow
    for job in jobs:
        steps = [getattr(job.gate, step) for step in job_steps(job.change)]
        for earlier, later in zip(steps, steps[1:], strict=False):
            after.setdefault(id(later), []).append(id(earlier))
        after.setdefault(id(job.gate.create), []).extend(id(m) for m in job.gate.creates_needed)
        after.setdefault(id(job.gate.destroy), []).extend(id(m) for m in job.gate.destroys_needed)
    names = {
        id(getattr(job.gate, step)): f"{job.address} ({step})"
        for job in jobs
        for step in ("create", "destroy")
    }
    state: dict[int, int] = {}  # 1: on the path, 2: done

    def visit(node: int, path: list[int]) -> None:
        state[node] = 1
        for previous in after.get(node, ()):
            if state.get(previous) == 1:
                cycle = [*path[path.index(previous) :], node] if previous in path else [node]
                raise ApplyError(
                    "Internal error: the plan's changes wait for each other in a circle ("
                    + " -> ".join(names.get(n, "?") for n in cycle)
                    + "); nothing was changed. Please report this."
                )
            if state.get(previous) is None:
                visit(previous, [*path, node])
        state[node] = 2

    for node in list(after):
        if state.get(node) is None:
            visit(node, [])
