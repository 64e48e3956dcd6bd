"""What the executor core shares with the kind executors during one apply.

:class:`ApplyRun` carries the client, options, clock, cancel token and progress sink;
:class:`Job` is one change to carry out, with its :class:`Gate`: the dependency-ordered hand-off
between jobs (a volume is created before the instance that mounts it; the instance is gone
before the volume is deleted). Waiting at a gate gives the job's ``--parallelism`` slot back, so
a job waiting for another never keeps it from running.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from reconciler.api import ShadeformClient
from reconciler.engine.cancel import CancelToken
from reconciler.engine.events import ActionEvent, InstanceWait, Phase, ProgressSink
from reconciler.engine.failpoints import FailPoints
from reconciler.engine.recorder import StateRecorder
from reconciler.errors import ReconcilerError
from reconciler.models.apply import ApplyReport
from reconciler.models.plan import Action, Change
from reconciler.readiness import ReadinessProbe

DEFAULT_PARALLELISM = 10
DEFAULT_WAIT_TIMEOUT = 20 * 60.0


class ActionFailed(ReconcilerError):
    """One action failed; the others go on (unless --fail-fast)."""


class NoCapacity(ActionFailed):
    """Shadeform refused a create for lack of capacity: the next approved offer may work."""


class DependencyFailed(ActionFailed):
    """A resource this change waits for failed or was not done: the change does not start
    (or, past a destroy, stops there), with the dependency's reason."""

    def __init__(self, message: str, *, started: bool) -> None:
        super().__init__(message)
        self.started = started


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
    gone_timeout: float = 10 * 60.0
    """How long a delete that others wait for may take to be gone (not just ``deleting``)."""
    run_readiness: bool = False
    """Readiness commands from the manifests may run (``--allow-readiness-commands``)."""


@dataclass
class ApplyRun:
    """The shared services of one apply."""

    client: ShadeformClient
    options: ExecutorOptions
    progress: ProgressSink
    failpoints: FailPoints
    clock: Callable[[], datetime]
    sleep: Callable[[float], Awaitable[None]]
    cancel: CancelToken
    report: ApplyReport
    claimed_ids: dict[str, str] = field(default_factory=dict)
    """Resource id -> the address it was created for in this run (one id, one address)."""
    readiness: ReadinessProbe | None = None
    """Runs readiness commands; None when they may not run (no --allow-readiness-commands)."""
    rollouts: dict[str, RolloutProgress] = field(default_factory=dict)
    """Replica group -> how its rollout stands (for progress lines)."""

    def emit(
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

    def now_iso(self) -> str:
        return self.clock().isoformat().replace("+00:00", "Z")

    async def pause(self, seconds: float) -> None:
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


@dataclass
class RolloutProgress:
    """One replica group's rollout as the apply goes: for the live progress lines."""

    group: str
    replicas: int
    waves: int
    """Rolling waves (wave 0, what an earlier run left, not counted)."""
    serving: int

    def where(self, wave: int | None) -> str:
        step = "finishing what an earlier run left" if wave == 0 else f"wave {wave} of {self.waves}"
        return f"{step}; {self.serving} of {self.replicas} serving"


class Milestone:
    """A step of one job (its create, or its destroy) that other jobs may wait for."""

    def __init__(self, address: str, what: str) -> None:
        self.address = address
        self.what = what
        self._done = asyncio.Event()
        self.failure: str | None = None

    @property
    def settled(self) -> bool:
        return self._done.is_set()

    def reach(self) -> None:
        self._done.set()

    def fail(self, why: str) -> None:
        if not self._done.is_set():
            self.failure = why
            self._done.set()

    async def wait(self) -> None:
        await self._done.wait()


class Gate:
    """One job's dependency edges: the creates it waits for, the destroys that wait for it.

    ``slot`` is the job's ``--parallelism`` semaphore; while the job waits here the slot is
    given back and taken again afterwards.
    """

    def __init__(self, address: str, slot: asyncio.Semaphore) -> None:
        self.address = address
        self.slot = slot
        self.create = Milestone(address, "create")
        self.destroy = Milestone(address, "destroy")
        self.creates_needed: list[Milestone] = []
        """Creates of the resources this job's new spec uses."""
        self.destroys_needed: list[Milestone] = []
        """Destroys of the resources that use this one (they must be gone first)."""
        self.destroy_awaited = False
        """Whether another job waits for this job's destroy (then it must wait until gone)."""
        self.finished = Milestone(address, "wave")
        """The whole job is done (for a rollout: its new replica serves, the old one is gone)."""
        self.starts_after: list[Milestone] = []
        """The jobs of the rollout's earlier waves: this one starts once they all finished."""
        self.progress: Callable[[str], None] = lambda message: None

    async def before_start(self, wave: int | None) -> None:
        """Wait for the rollout's earlier waves; if one did not finish, stop here."""
        pending = [m for m in self.starts_after if not m.settled]
        if pending:
            self.progress(f"waiting for wave {wave}: {len(pending)} replacement(s) still going")
            self.slot.release()
            try:
                await asyncio.gather(*(m.wait() for m in pending))
            finally:
                await self.slot.acquire()
        failed = [m for m in self.starts_after if m.failure is not None]
        if failed:
            first = failed[0]
            raise DependencyFailed(
                f"the rollout stopped before wave {wave}: {first.address} did not finish "
                f"({first.failure}); the replicas not yet replaced keep serving",
                started=False,
            )

    async def before_create(self) -> None:
        await self._wait_for(self.creates_needed, "waits for", "to be created first")

    def created(self) -> None:
        self.create.reach()

    async def before_destroy(self) -> None:
        await self._wait_for(self.destroys_needed, "is still used by", "to be gone first")

    def destroyed(self) -> None:
        self.destroy.reach()

    async def _wait_for(self, milestones: list[Milestone], relation: str, until: str) -> None:
        pending = [m for m in milestones if not m.settled]
        if pending:
            self.progress(f"waiting for {', '.join(sorted({m.address for m in pending}))} {until}")
            self.slot.release()
            try:
                await asyncio.gather(*(m.wait() for m in pending))
            finally:
                await self.slot.acquire()
        failed = [m for m in milestones if m.failure is not None]
        if failed:
            first = failed[0]
            raise DependencyFailed(
                f"{relation} {first.address}, whose {first.what} did not happen ({first.failure})",
                started=self.create.settled or self.destroy.settled,
            )


@dataclass
class Job:
    """One change to carry out, with what a kind executor needs for it."""

    fleet: str
    change: Change
    spec: Any | None
    """The desired spec from the manifests (None for deletes and forgets)."""
    recorder: StateRecorder
    gate: Gate
    specs: Mapping[str, Any] = field(default_factory=dict)
    """Every desired spec of the fleet, by address (to resolve references)."""

    @property
    def address(self) -> str:
        return self.change.address

    @property
    def action(self) -> Action:
        return self.change.action

    def has_step(self, step: str) -> bool:
        return step in job_steps(self.change)


def job_steps(change: Change) -> tuple[str, ...]:
    """The steps of a change, in order: what its gate's milestones mark."""
    if change.action is Action.CREATE:
        return ("create",)
    if change.action is Action.DELETE:
        return ("destroy",)
    if change.action is Action.REPLACE:
        return ("create", "destroy") if change.create_before_destroy else ("destroy", "create")
    return ()
