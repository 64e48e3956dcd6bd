"""The watch loop against the emulator: heals within an interval, reports what it leaves,
respects budgets and locks, backs off, and stops cleanly."""

from __future__ import annotations

import asyncio
import io
import json
import time

from reconciler.controller.events import EventLog
from reconciler.controller.metrics import WatchMetrics
from reconciler.controller.watcher import Watcher, WatchOptions
from reconciler.engine.cancel import CancelToken
from reconciler.models.live import ADDRESS_TAG
from reconciler.models.spec import Budget, Fleet
from tests.engine.factories import fleet, spec
from tests.engine.harness import Loop, make_client, make_emulator

INTERVAL = 0.5


def ids_of(loop: Loop, address: str) -> list[str]:
    return [
        i["id"]
        for i in loop.emulator.live_instances()
        if f"{ADDRESS_TAG}{address}" in i["tags"] and i["status"] != "deleting"
    ]


class Running:
    """A watcher running in the background of a test's event loop."""

    def __init__(self, loop: Loop, desired: Fleet, **options: object) -> None:
        self.loop = loop
        self.desired = desired
        self.stream = io.StringIO()
        self.events = EventLog(self.stream, "json")
        self.metrics = WatchMetrics()
        self.stop = CancelToken()
        self.options = WatchOptions(interval=INTERVAL, **options)  # type: ignore[arg-type]

    def lines(self) -> list[dict]:
        return [json.loads(line) for line in self.stream.getvalue().splitlines()]

    def named(self, event: str) -> list[dict]:
        return [e for e in self.lines() if e["event"] == event]

    def make(self, client, **kw) -> Watcher:  # type: ignore[no-untyped-def]
        """A watcher of this test's fleet, its events, metrics and stop token."""
        return Watcher(
            client,
            load_fleets=lambda: [self.desired],
            stores_for=lambda fleets: {f.name: self.loop.store for f in fleets},
            options=self.options,
            events=self.events,
            metrics=self.metrics,
            stop=self.stop,
            **kw,
        )

    async def run_until(self, done, *, timeout: float = 10.0) -> float:  # type: ignore[no-untyped-def]
        """Run the watcher until ``done()`` holds; seconds it took. Stops it either way."""
        async with make_client(self.loop.emulator) as client:
            watcher = self.make(client)
            self.watcher = watcher
            task = asyncio.create_task(watcher.run())
            started = time.monotonic()
            try:
                while not done():
                    if time.monotonic() - started > timeout:
                        raise AssertionError(f"not done after {timeout}s: {self.lines()}")
                    if task.done():
                        task.result()
                        raise AssertionError("the watcher stopped by itself")
                    await asyncio.sleep(0.02)
                return time.monotonic() - started
            finally:
                self.stop.cancel("test over")
                await asyncio.wait_for(task, 10)


def applied(*specs, **fleet_kw) -> tuple[Loop, Fleet]:  # type: ignore[no-untyped-def]
    loop = Loop(make_emulator())
    desired = fleet(*specs, **fleet_kw)
    assert not asyncio.run(loop.apply(desired)).failed
    return loop, desired


def test_a_preempted_spot_instance_is_replaced_within_an_interval_and_two_seconds():
    loop, desired = applied(spec("batch-0", rental_type="spot"), spec("web"))
    (old,) = ids_of(loop, "inference/batch-0")
    running = Running(loop, desired)

    async def scenario() -> float:
        async def preempt_soon() -> None:
            await asyncio.sleep(0.3)  # the watcher is running
            loop.emulator.preempt_instance(old)

        asyncio.create_task(preempt_soon())
        return await running.run_until(
            lambda: any(i != old for i in ids_of(loop, "inference/batch-0"))
        )

    took = asyncio.run(scenario())
    assert took - 0.3 < INTERVAL + 2, took
    (healed,) = running.named("healed")
    assert healed["address"] == "inference/batch-0"
    assert loop.emulator.create_count("batch-0") == 2 and loop.emulator.create_count("web") == 1
    assert loop.state(desired).instances["inference/batch-0"].instance_id != old
    text = running.metrics.exposition().decode()
    assert (
        'reconciler_watch_actions_total{action="create",fleet="inference",kind="instance",result="ok"} 1.0'
        in text
    )
    assert "reconciler_watch_heal_latency_seconds_count 1.0" in text


def test_an_instance_deleted_out_of_band_or_broken_is_healed():
    loop, desired = applied(spec("a"), spec("b"))
    (a,) = ids_of(loop, "inference/a")
    (b,) = ids_of(loop, "inference/b")
    loop.emulator.delete_instance_out_of_band(a, immediate=True)
    loop.emulator.fail_instance(b, "GPU fell off the bus")
    running = Running(loop, desired)
    asyncio.run(
        running.run_until(
            lambda: ids_of(loop, "inference/a") != [] and b not in ids_of(loop, "inference/b")
        )
    )
    assert {e["address"] for e in running.named("heal")} == {"inference/a", "inference/b"}


def test_manifest_changes_are_reported_not_applied_unless_sync():
    loop, desired = applied(spec("a"))
    changed = fleet(spec("a", tags=("new",)), spec("extra"))
    running = Running(loop, changed)
    asyncio.run(running.run_until(lambda: bool(running.named("drift")), timeout=5))
    (drift,) = running.named("drift")
    assert "2 change(s) left for a reviewed apply" in drift["message"]
    text = running.metrics.exposition().decode()
    assert 'reconciler_fleet_unapplied_changes{fleet="inference"} 2.0' in text
    assert ids_of(loop, "inference/extra") == []
    synced = Running(loop, changed, sync=True)
    asyncio.run(synced.run_until(lambda: ids_of(loop, "inference/extra") != []))
    state = loop.state(changed)
    assert state.instances["inference/a"].applied_spec["tags"] == ["new"]


def test_a_heal_over_budget_is_refused_reported_and_backed_off():
    loop, desired = applied(spec("a"), spec("b"))
    (a,) = ids_of(loop, "inference/a")
    loop.emulator.delete_instance_out_of_band(a, immediate=True)
    # The budget now allows only one machine: recreating a would break it.
    price = asyncio.run(loop.plan(desired)).fleets[0].cost.hourly_cents_before
    tight = desired.model_copy(update={"budget": Budget(max_hourly=f"{price / 100:.2f}")})
    running = Running(loop, tight)
    asyncio.run(running.run_until(lambda: running.watcher.status.cycles >= 7, timeout=10))
    refusals = running.named("heal_refused")
    assert {r["address"] for r in refusals} == {"inference/a"}
    assert "over max_hourly" in refusals[0]["message"]
    assert ids_of(loop, "inference/a") == []
    # Backing off: retried after 2 intervals, then 4 (not every cycle).
    assert 2 <= len(refusals) <= 3, [r["message"] for r in refusals]
    waits = [float(r["message"].rsplit("next try in ", 1)[1].rstrip("s")) for r in refusals]
    assert waits == sorted(waits) and waits[0] < waits[-1], waits


def test_a_fleet_locked_by_someone_else_is_skipped_and_reported():
    loop, desired = applied(spec("a"))
    (a,) = ids_of(loop, "inference/a")
    loop.emulator.delete_instance_out_of_band(a, immediate=True)
    running = Running(loop, desired)
    with loop.store.lock("inference", command="reconciler apply (CI)"):
        asyncio.run(running.run_until(lambda: bool(running.named("locked")), timeout=5))
    (locked,) = running.named("locked")
    assert (
        "skipped this cycle" in locked["message"] and "reconciler apply (CI)" in locked["message"]
    )
    assert ids_of(loop, "inference/a") == []
    again = Running(loop, desired)
    asyncio.run(again.run_until(lambda: ids_of(loop, "inference/a") != []))


def test_a_heal_without_capacity_backs_off_exponentially():
    loop, desired = applied(spec("a"))
    (a,) = ids_of(loop, "inference/a")
    loop.emulator.delete_instance_out_of_band(a, immediate=True)
    loop.emulator.set_capacity("hyperstack", "canada-1", "A6000", False)
    running = Running(loop, desired)
    asyncio.run(running.run_until(lambda: running.watcher.status.cycles >= 4, timeout=10))
    # No capacity at plan time: the plan reports it; nothing is created, nothing hammered.
    assert ids_of(loop, "inference/a") == []
    creates = loop.emulator.create_count("a")
    assert creates == 1, "never sent a create into no capacity"
    (blocked,) = running.named("blocked")
    assert blocked["address"] == "inference/a" and "no" in blocked["message"]


def test_the_status_and_metrics_describe_each_fleet():
    loop, desired = applied(spec("a"), spec("b"))
    running = Running(loop, desired)
    asyncio.run(running.run_until(lambda: running.watcher.status.last_success_at is not None))
    status = running.watcher.status.fleets["inference"]
    assert status.desired == 2 and {i.status for i in status.instances} == {"active"}
    text = running.metrics.exposition().decode()
    assert 'reconciler_fleet_desired_instances{fleet="inference"} 2.0' in text
    assert 'reconciler_fleet_live_instances{fleet="inference"} 2.0' in text
    assert "reconciler_watch_last_successful_cycle_timestamp_seconds" in text
    assert 'reconciler_fleet_burn_dollars_per_hour{fleet="inference"}' in text


def test_a_cycle_given_up_on_a_429_waits_as_long_as_shadeform_asked():
    from reconciler.api import RetryPolicy
    from reconciler.emulator import FaultConfig

    loop, desired = applied(spec("a"))
    # One request every 4 seconds: a cycle's second call is refused with Retry-After.
    loop.emulator.faults = FaultConfig(rate_limit_rps=0.25, rate_limit_burst=1)
    running = Running(loop, desired)
    pauses: list[float] = []

    async def scenario() -> None:
        async with make_client(loop.emulator, retry=RetryPolicy(max_attempts=1)) as client:

            async def record_sleep(seconds: float) -> None:
                pauses.append(seconds)
                running.stop.cancel("test over")

            await running.make(client, sleep=record_sleep).run()

    asyncio.run(scenario())
    (backoff,) = running.named("backoff")
    assert backoff["message"].startswith("rate limited: next cycle in")
    assert pauses and pauses[0] >= 3, pauses
    assert any(
        "429" in e["message"] or "rate limit" in e["message"] for e in running.named("error")
    )


def test_a_quiet_cycle_costs_one_list_call_and_no_call_per_instance():
    from tests.engine.harness import SeenRequest

    loop, desired = applied(*(spec(f"w-{i}") for i in range(5)))
    seen: list[SeenRequest] = []
    running = Running(loop, desired)

    async def one_cycle() -> None:
        async with make_client(loop.emulator, seen=seen) as client:
            assert await running.make(client).cycle()

    asyncio.run(one_cycle())
    paths = sorted(f"{r.method} {r.path}" for r in seen)
    assert paths == ["GET /instances", "GET /instances/types"], paths
