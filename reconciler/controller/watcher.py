"""The watch loop: every interval, refresh every fleet (one list call for all), plan, decide
what may be done without a review, and do it under the fleet's lock.

One cycle:

1. read the manifests again (a sidecar pulling the repository is enough to change them) and
   every fleet's state, without locks;
2. refresh all fleets at once and read the catalog; plan each fleet purely (a fleet whose plan
   fails, say over budget or ``prevent_destroy``, is reported and left alone);
3. decide (:mod:`.policy`): heals only, or everything with ``sync``; addresses backing off
   after a failed heal wait (:mod:`.backoff`);
4. for a fleet with something to do, take its lock *without waiting* (a CI apply holding it
   wins; the fleet is skipped this cycle and reported), read its state again, refresh it again
   and plan again under the lock: two watchers that saw the same preemption cannot both
   replace it, because the second one plans from the state the first one wrote; only what
   is still a heal is carried out, within the budget (``max_hourly`` with the whole fleet,
   ``max_creates_per_apply`` per cycle), never destroying data;
5. release the lock; sleep until the next interval.

Stopping (the ``stop`` token: SIGTERM or SIGINT) wakes the sleep, makes a running apply start
nothing new and abandon what is in flight after its grace (the intent rules hold), and the
loop returns; the locks were released by their ``with`` blocks.
"""

from __future__ import annotations

import asyncio
import gc
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

from reconciler.api import ShadeformClient
from reconciler.controller.backoff import Backoff
from reconciler.controller.events import EventLog
from reconciler.controller.metrics import WatchMetrics
from reconciler.controller.policy import decide
from reconciler.engine.cancel import CancelToken
from reconciler.engine.events import ActionEvent
from reconciler.engine.executor import Executor, ExecutorOptions
from reconciler.engine.kinds.instance_apply import waits_until_serving
from reconciler.engine.planner import PlanOptions, plan_fleet
from reconciler.engine.recorder import StateRecorder
from reconciler.engine.refresh import RefreshOptions, refresh_fleets
from reconciler.engine.workflow import refresh_with_catalog
from reconciler.errors import (
    ApiError,
    CapacityError,
    LockError,
    ManifestError,
    PolicyError,
    RateLimitedError,
    ReconcilerError,
    StateError,
)
from reconciler.models.catalog import Catalog, format_cents
from reconciler.models.live import Health, LiveSnapshot
from reconciler.models.plan import Action, FleetPlan, Plan
from reconciler.models.spec import Fleet
from reconciler.models.state import FleetState
from reconciler.readiness import ReadinessProbe
from reconciler.redaction import scrub
from reconciler.state import StateStore, new_state

DEFAULT_INTERVAL = 60.0
BACKOFF_CAP = 15 * 60.0


@dataclass(frozen=True)
class WatchOptions:
    interval: float = DEFAULT_INTERVAL
    sync: bool = False
    """Apply every plan (an auto-syncing GitOps controller), not only heals."""
    parallelism: int = 10
    intent_grace: float = 60.0
    command: str = "reconciler watch"
    """Who holds a fleet's lock while this watcher acts (shown to a blocked CI apply)."""
    readiness: ReadinessProbe | None = None
    """Readiness commands may run (``--allow-readiness-commands``) through this probe."""
    backoff_cap: float = BACKOFF_CAP
    cancel_grace: float = 5.0


@dataclass
class InstanceStatus:
    address: str
    instance_id: str | None
    status: str
    hourly_cents: float | None


@dataclass
class FleetStatus:
    """What the status page shows of one fleet, as of the last cycle."""

    fleet: str
    desired: int
    instances: list[InstanceStatus] = field(default_factory=list)
    burn_cents: float = 0.0
    pending_changes: int = 0
    blocked: int = 0
    note: str = ""


@dataclass
class WatchStatus:
    started_at: float
    cycles: int = 0
    last_cycle_at: float | None = None
    last_success_at: float | None = None
    last_error: str | None = None
    last_progress_at: float | None = None
    """The last progress of an action under way (a long wait keeps the watcher alive)."""
    fleets: dict[str, FleetStatus] = field(default_factory=dict)


Clock = Callable[[], float]


class Watcher:
    def __init__(
        self,
        client: ShadeformClient,
        *,
        load_fleets: Callable[[], Sequence[Fleet]],
        stores_for: Callable[[Sequence[Fleet]], dict[str, StateStore]],
        options: WatchOptions = WatchOptions(),
        events: EventLog | None = None,
        metrics: WatchMetrics | None = None,
        stop: CancelToken | None = None,
        clock: Clock = time.time,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self.client = client
        self.load_fleets = load_fleets
        self.stores_for = stores_for
        self.options = options
        self.events = events or EventLog()
        self.metrics = metrics or WatchMetrics()
        self.stop = stop or CancelToken()
        self.clock = clock
        self.sleep = sleep
        # A failed heal waits two intervals, then four, ... up to the cap.
        self.backoff = Backoff(
            base=2 * options.interval, cap=max(2 * options.interval, options.backoff_cap)
        )
        self.status = WatchStatus(started_at=clock())
        self.detected: dict[tuple[str, str], float] = {}
        """(fleet, address) -> when it was first seen needing a heal (for the heal latency)."""
        self.rate_limited_for: float | None = None
        """Set when a cycle gave up on a 429: how long Shadeform asked to wait."""
        self._reported: dict[str, frozenset[str]] = {}
        self._waiting: dict[str, frozenset[str]] = {}
        self._skipped: dict[str, str] = {}

    # -- the loop ----------------------------------------------------------------------------

    async def run(self, *, cycles: int | None = None) -> None:
        """Cycle every ``interval`` until stopped (or ``cycles`` cycles, for tests)."""
        mode = "applies every plan (--sync)" if self.options.sync else "heals only"
        self.events("start", f"watching every {self.options.interval:g}s; {mode}")
        done = 0
        while not self.stop.requested:
            began = time.monotonic()
            await self.cycle()
            done += 1
            if cycles is not None and done >= cycles:
                break
            wait = self.options.interval - (time.monotonic() - began)
            if self.rate_limited_for:
                # Shadeform said how long to stay away: the next cycle waits at least that.
                wait = max(wait, self.rate_limited_for)
                self.events("backoff", f"rate limited: next cycle in {wait:.0f}s")
                self.rate_limited_for = None
            await self._pause(wait)
        reason = self.stop.reason or "done"
        self.events("stop", f"stopped ({reason}); every lock released")

    async def _pause(self, seconds: float) -> None:
        if seconds <= 0 or self.stop.requested:
            return
        sleeping = asyncio.ensure_future(self.sleep(seconds))
        stopped = asyncio.ensure_future(self.stop.wait())
        try:
            await asyncio.wait({sleeping, stopped}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for waiter in (sleeping, stopped):
                waiter.cancel()
            await asyncio.gather(sleeping, stopped, return_exceptions=True)

    async def cycle(self) -> bool:
        """One cycle; whether it succeeded (every fleet refreshed and planned)."""
        began = time.monotonic()
        now = self.clock()
        self.status.cycles += 1
        self.status.last_cycle_at = now
        ok = False
        try:
            ok = await self._cycle(now)
        except RateLimitedError as exc:
            self.status.last_error = scrub(str(exc))
            self.rate_limited_for = exc.retry_after or self.options.interval
            self.events("error", f"cycle failed: {exc}")
        except ReconcilerError as exc:
            self.status.last_error = scrub(str(exc))
            self.events("error", f"cycle failed: {exc}")
        finally:
            self.metrics.cycle_seconds.observe(time.monotonic() - began)
            self.metrics.cycles.labels(result="ok" if ok else "failed").inc()
        if self.status.cycles == 1:
            # What start-up and the first cycle built (modules, the catalog, caches) lives as
            # long as the process: out of the collector's way, so each later cycle only pays
            # for the garbage it makes.
            gc.freeze()
        if ok:
            self.status.last_success_at = now
            self.status.last_error = None
            self.metrics.last_success.set(now)
        return ok

    async def _cycle(self, now: float) -> bool:
        fleets = list(self.load_fleets())
        stores = self.stores_for(fleets)
        states: dict[str, FleetState] = {}
        unreadable = False
        for f in fleets:
            try:
                states[f.name] = stores[f.name].read(f.name) or new_state(f.name)
            except StateError as exc:  # this fleet is left alone; the others are watched
                unreadable = True
                self.events("error", f"cannot read the state: {exc}", fleet=f.name)
        fleets = [f for f in fleets if f.name in states]
        moment = datetime.fromtimestamp(now, UTC)
        snapshots, catalog = await self._observe(fleets, states, moment)
        healthy = not unreadable
        for fleet in fleets:
            if self.stop.requested:
                break
            try:
                plan = plan_fleet(
                    fleet,
                    states[fleet.name],
                    snapshots[fleet.name],
                    PlanOptions(allow_over_budget=True, now=moment),
                    catalog,
                )
            except ReconcilerError as exc:  # this fleet only: the others are still watched
                healthy = False
                self.events("error", f"cannot plan: {exc}", fleet=fleet.name)
                continue
            self._observed(fleet, states[fleet.name], snapshots[fleet.name], plan)
            try:
                await self._consider(fleet, stores[fleet.name], plan, catalog, now)
            except (StateError, ApiError) as exc:
                if isinstance(exc, RateLimitedError):
                    raise  # the whole cycle waits as Shadeform asked
                healthy = False
                self.events("error", f"could not act: {exc}", fleet=fleet.name)
        return healthy

    async def _observe(
        self, fleets: Sequence[Fleet], states: dict[str, FleetState], moment: datetime
    ) -> tuple[dict[str, LiveSnapshot], Catalog]:
        # One list call for every fleet, never one call per instance: what a heal needs
        # (status, status details) is in the list. Under the lock, before acting, small
        # fleets get their info calls too (see _act_locked).
        refresh = RefreshOptions(info_threshold=0, intent_grace_seconds=self.options.intent_grace)
        return await refresh_with_catalog(
            self.client, fleets, states, now=moment, refresh_options=refresh
        )

    # -- deciding ------------------------------------------------------------------------------

    async def _consider(
        self, fleet: Fleet, store: StateStore, plan: FleetPlan, catalog: Catalog, now: float
    ) -> None:
        decision = decide(plan, sync=self.options.sync)
        self.metrics.unapplied.labels(fleet=fleet.name).set(len(decision.reported))
        waiting = {b.address: b.message for b in (*plan.no_capacity, *plan.blocked)}
        if frozenset(waiting) != self._waiting.get(fleet.name, frozenset()):
            self._waiting[fleet.name] = frozenset(waiting)
            for address, message in sorted(waiting.items()):
                self.events("blocked", f"left alone this cycle: {message}", fleet=fleet.name,
                            address=address)  # fmt: skip
        reported = frozenset(c.address for c in decision.reported)
        if reported != self._reported.get(fleet.name, frozenset()):
            self._reported[fleet.name] = reported
            if reported:
                listed = ", ".join(
                    f"{c.address} ({c.action.value}: "
                    + "; ".join(r.message for r in c.reasons[:2])
                    + ")"
                    for c in decision.reported[:10]
                )
                self.events(
                    "drift",
                    f"{len(decision.reported)} change(s) left for a reviewed apply: {listed}",
                    fleet=fleet.name,
                )
        for address in decision.act_on:
            self.detected.setdefault((fleet.name, address), now)
        for key in [k for k in self.detected if k[0] == fleet.name]:
            if key[1] not in decision.act_on:
                del self.detected[key]  # healed, or no longer a heal
        due = [a for a in decision.act_on if not self.backoff.waiting(f"{fleet.name}/{a}", now)]
        if due:
            await self._act(fleet, store, due, catalog)

    # -- acting ----------------------------------------------------------------------------------

    async def _act(
        self, fleet: Fleet, store: StateStore, addresses: list[str], catalog: Catalog
    ) -> None:
        name = fleet.name
        # The action stops when the watcher stops, or when its lease is lost (a PostgreSQL
        # lease not renewed in time, or taken over): another watcher may be acting by then.
        acting = CancelToken()
        relay = asyncio.create_task(self._relay_stop(acting))
        try:
            with store.lock(
                name,
                timeout=0,
                command=self.options.command,
                on_lost=lambda why: acting.cancel(f"lease lost: {why}"),
            ):
                self._skipped.pop(name, None)
                await self._act_locked(fleet, store, addresses, catalog, acting)
            if acting.reason and acting.reason.startswith("lease lost"):
                self.events("lease_lost", f"stopped acting: {acting.reason}", fleet=name)
        except LockError as exc:
            holder = str(exc)
            if self._skipped.get(name) != holder:
                self._skipped[name] = holder
                self.events("locked", f"skipped this cycle: {exc}", fleet=name)
            self.metrics.skipped.labels(fleet=name).inc()
        finally:
            relay.cancel()
            await asyncio.gather(relay, return_exceptions=True)

    async def _relay_stop(self, acting: CancelToken) -> None:
        await self.stop.wait()
        acting.cancel(self.stop.reason or "stopped")

    async def _act_locked(
        self,
        fleet: Fleet,
        store: StateStore,
        addresses: list[str],
        catalog: Catalog,
        cancel: CancelToken,
    ) -> None:
        name, now = fleet.name, self.clock()
        moment = datetime.fromtimestamp(now, UTC)
        # Under the lock, from the state as it is now: what another watcher or a CI apply
        # did meanwhile is seen, so nothing is healed twice.
        state = store.read(name) or new_state(name)
        refresh = RefreshOptions(intent_grace_seconds=self.options.intent_grace)
        snapshots = await refresh_fleets(
            self.client, {name: state}, now=moment, options=refresh, fleets=[fleet]
        )
        # Only the addresses due now (not backing off) are planned, with --sync too: the
        # budget and a rollout's waves are worked out for exactly what will run, and what is
        # left out counts as untouched (a replica left down uses up max_unavailable).
        options = PlanOptions(targets=tuple(addresses), now=moment)
        try:
            plan = plan_fleet(fleet, state, snapshots[name], options, catalog)
        except (PolicyError, ManifestError, CapacityError) as exc:  # the budget included
            self._refused(fleet, addresses, str(exc))
            return
        decision = decide(plan, sync=self.options.sync)
        chosen = set(decision.act_on) & set(addresses)
        if not chosen:
            return  # healed meanwhile (another watcher, a CI apply)
        changes = tuple(c for c in plan.changes if c.address in chosen or not c.is_change)
        plan = plan.model_copy(update={"changes": changes})
        if plan.data_loss:
            self._refused(fleet, sorted(chosen), "it would destroy a volume's data")
            return
        if self.options.readiness is None and _needs_readiness(plan, fleet):
            self._refused(
                fleet,
                sorted(chosen),
                "it waits for a readiness command, and the watcher was not started with "
                "--allow-readiness-commands",
            )
            return
        for address in sorted(chosen):
            verb = "applying" if self.options.sync else "healing"
            why = "; ".join(
                r.message for c in plan.changes if c.address == address for r in c.reasons
            )
            self.events("heal", f"{verb}: {why}", fleet=name, address=address)
        executor = Executor(
            self.client,
            options=ExecutorOptions(
                parallelism=self.options.parallelism,
                wait=False,
                cancel_grace=self.options.cancel_grace,
                run_readiness=self.options.readiness is not None,
            ),
            cancel=cancel,
            readiness=self.options.readiness,
            progress=self._progressed,
        )
        report = await executor.apply(
            Plan(fleets=(plan,), created_at=moment.isoformat().replace("+00:00", "Z")),
            fleets={name: fleet},
            recorders={name: StateRecorder(store, state)},
        )
        done = self.clock()
        for result in report.results:
            key = f"{name}/{result.address}"
            self.metrics.actions.labels(
                fleet=name, kind=result.kind, action=result.action.value,
                result="ok" if result.ok else "failed",
            ).inc()  # fmt: skip
            if result.ok:
                self.backoff.succeeded(key)
                detected = self.detected.pop((name, result.address), None)
                if detected is not None and result.action in (Action.CREATE, Action.REPLACE):
                    self.metrics.heal_seconds.observe(max(0.0, done - detected))
                self.events(
                    "healed", result.message, fleet=name, address=result.address,
                    details={"seconds_since_detected": round(done - detected, 3)}
                    if detected is not None else {},
                )  # fmt: skip
            else:
                delay = self.backoff.failed(key, done)
                self.events(
                    "heal_failed",
                    f"{result.message}; next try in {delay:.0f}s",
                    fleet=name,
                    address=result.address,
                )
        if report.cancelled:
            self.events("stop", f"apply cancelled ({report.cancelled})", fleet=name)

    def _progressed(self, event: ActionEvent) -> None:
        self.status.last_progress_at = self.clock()

    def _refused(self, fleet: Fleet, addresses: Sequence[str], why: str) -> None:
        now = self.clock()
        for address in addresses:
            delay = self.backoff.failed(f"{fleet.name}/{address}", now)
            self.metrics.actions.labels(
                fleet=fleet.name, kind="instance", action="heal", result="refused"
            ).inc()
            self.events(
                "heal_refused",
                f"not healed: {why}; next try in {delay:.0f}s",
                fleet=fleet.name,
                address=address,
            )

    # -- what the metrics and the status page show -------------------------------------------

    def _observed(
        self, fleet: Fleet, state: FleetState, live: LiveSnapshot, plan: FleetPlan
    ) -> None:
        instances = []
        healthy = pending = 0
        for address in sorted({*state.instances, *(s.address for s in fleet.instances)}):
            record = state.instances.get(address)
            current = live.by_id.get(record.instance_id) if record else None
            if current is None:
                instances.append(InstanceStatus(address, None, "missing", None))
                continue
            healthy += current.health is Health.HEALTHY
            pending += current.health is Health.IN_PROGRESS
            instances.append(
                InstanceStatus(address, current.id, current.status, current.hourly_price)
            )
        burn = float(plan.cost.hourly_cents_before)
        blocked = len(plan.blocked) + len(plan.no_capacity)
        self.status.fleets[fleet.name] = FleetStatus(
            fleet=fleet.name,
            desired=len(fleet.instances),
            instances=instances,
            burn_cents=burn,
            pending_changes=sum(1 for c in plan.changes if c.is_change),
            blocked=blocked,
            note=f"burn {format_cents(plan.cost.hourly_cents_before)}/h",
        )
        m = self.metrics
        m.desired.labels(fleet=fleet.name).set(len(fleet.instances))
        m.live.labels(fleet=fleet.name).set(healthy)
        m.pending.labels(fleet=fleet.name).set(pending)
        m.blocked.labels(fleet=fleet.name).set(blocked)
        m.burn.labels(fleet=fleet.name).set(burn / 100)


def _needs_readiness(plan: FleetPlan, fleet: Fleet) -> bool:
    specs = {s.address: s for s in fleet.instances}
    return any(
        specs[c.address].readiness is not None and waits_until_serving(c, wait=False)
        for c in plan.changes
        if c.address in specs and c.is_change
    )
