"""The executor against the emulator: every action, crash-safety paths, preconditions."""

from __future__ import annotations

import asyncio
import json

import httpx
import pytest

from reconciler.api import ShadeformClient
from reconciler.emulator import SANDBOX_API_KEY
from reconciler.emulator.config import EndpointFaults
from reconciler.engine.cancel import CancelToken
from reconciler.engine.events import ActionEvent, Phase
from reconciler.engine.executor import Executor, ExecutorOptions
from reconciler.engine.planner import PlanOptions
from reconciler.engine.recorder import StateRecorder
from reconciler.errors import StateError
from reconciler.models.plan import Action
from reconciler.models.spec import Lifecycle
from reconciler.state import MemoryStateStore

from .factories import fleet, spec
from .harness import Loop, make_emulator


def run(coro):
    return asyncio.run(coro)


def actions(plan):
    return sorted((c.address, c.action.value) for f in plan.fleets for c in f.changes)


@pytest.fixture
def loop() -> Loop:
    return Loop(make_emulator())


def test_create_then_noop(loop):
    f = fleet(spec("a"), spec("b"))
    report = run(loop.apply(f))
    assert not report.failed and len(report.succeeded) == 2
    state = loop.store.read("inference")
    assert set(state.instances) == {"inference/a", "inference/b"}
    assert state.intents == {}
    for address in state.instances:
        (inst,) = loop.live_for(address)
        assert "reconciler:fleet=inference" in inst["tags"]
        assert inst["status"] == "active"
    assert not run(loop.plan(f)).has_changes


def test_update_in_place_keeps_instance(loop):
    run(loop.apply(fleet(spec("a"))))
    before = loop.store.read("inference").instances["inference/a"].instance_id
    changed = fleet(spec("a", tags=("team-ml", "prod")))
    plan = run(loop.plan(changed))
    assert actions(plan) == [("inference/a", "update")]
    assert not run(loop.apply(changed, plan)).failed
    (inst,) = loop.live_for("inference/a")
    assert inst["id"] == before
    assert "prod" in inst["tags"]
    assert not run(loop.plan(changed)).has_changes


def test_replace_deletes_old_and_creates_new(loop):
    run(loop.apply(fleet(spec("a"))))
    old = loop.store.read("inference").instances["inference/a"].instance_id
    changed = fleet(spec("a", shade_instance_type="H100"))
    report = run(loop.apply(changed))
    assert not report.failed
    (inst,) = loop.live_for("inference/a")
    assert inst["id"] != old and inst["shade_instance_type"] == "H100"
    assert loop.store.read("inference").instances["inference/a"].instance_id == inst["id"]
    assert not run(loop.plan(changed)).has_changes


def test_create_before_destroy_replacement(loop):
    cbd = Lifecycle(create_before_destroy=True)
    run(loop.apply(fleet(spec("a", lifecycle=cbd))))
    old = loop.store.read("inference").instances["inference/a"].instance_id
    changed = fleet(spec("a", region="us-1", shade_instance_type="A100_80G", lifecycle=cbd))
    report = run(loop.apply(changed))
    assert not report.failed, report.failed
    (inst,) = loop.live_for("inference/a")
    assert inst["id"] != old
    assert not run(loop.plan(changed)).has_changes


def test_delete_removed_instance(loop):
    run(loop.apply(fleet(spec("a"), spec("b"))))
    report = run(loop.apply(fleet(spec("a"))))
    assert [(r.address, r.action) for r in report.succeeded] == [("inference/b", Action.DELETE)]
    assert loop.live_for("inference/b") == []
    assert set(loop.store.read("inference").instances) == {"inference/a"}


def test_out_of_band_delete_is_recreated(loop):
    f = fleet(spec("a"))
    run(loop.apply(f))
    old = loop.store.read("inference").instances["inference/a"].instance_id
    loop.emulator.delete_instance_out_of_band(old)
    plan = run(loop.plan(f))
    assert actions(plan) == [("inference/a", "create")]
    run(loop.apply(f, plan))
    assert len(loop.live_for("inference/a")) == 1


def test_lost_create_response_is_resolved_by_intent_tag_without_duplicate(loop):
    loop.emulator.faults.lost_create_rate = 1.0
    f = fleet(spec("a"), spec("b"), spec("c"))
    report = run(loop.apply(f))
    assert not report.failed, report.failed
    loop.emulator.faults.lost_create_rate = 0.0
    for address in ("inference/a", "inference/b", "inference/c"):
        assert len(loop.live_for(address)) == 1
        assert loop.emulator.create_count(address.split("/")[1]) == 1
    assert loop.store.read("inference").intents == {}
    assert not run(loop.plan(f)).has_changes


def test_precondition_gone_instance_fails_update_without_creating(loop):
    run(loop.apply(fleet(spec("a"))))
    changed = fleet(spec("a", tags=("x",)))
    plan = run(loop.plan(changed))
    loop.emulator.delete_instance_out_of_band(
        loop.store.read("inference").instances["inference/a"].instance_id
    )
    report = run(loop.apply(changed, plan))
    assert [r.ok for r in report.results] == [False]
    assert "gone since the plan" in report.results[0].message


def test_instance_losing_fleet_tag_is_not_deleted(loop):
    run(loop.apply(fleet(spec("a"))))
    instance_id = loop.store.read("inference").instances["inference/a"].instance_id
    plan = run(loop.plan(fleet()))
    loop.emulator.retag_instance(instance_id, ["someone-else"])
    report = run(loop.apply(fleet(), plan))
    assert report.failed and "does not touch" in report.failed[0].message
    assert any(i["id"] == instance_id for i in loop.emulator.live_instances())


def test_capacity_gone_between_plan_and_apply_fails_and_releases_intent(loop):
    f = fleet(spec("a"))
    plan = run(loop.plan(f))
    loop.emulator.set_capacity("hyperstack", "canada-1", "A6000", available=False)
    report = run(loop.apply(f, plan))
    assert report.failed and "no capacity in any approved offer" in report.failed[0].message
    assert loop.store.read("inference").intents == {}
    assert loop.emulator.live_instances() == []


def test_no_capacity_at_plan_time_is_reported_per_instance(loop):
    loop.emulator.set_capacity("hyperstack", "canada-1", "A6000", available=False)
    plan = run(loop.plan(fleet(spec("a"))))
    assert plan.fleets[0].changes == ()
    (missing,) = plan.no_capacity
    assert missing.address == "inference/a" and "A6000 in hyperstack/canada-1" in missing.message


def test_boot_failure_is_reported_with_status(loop):
    loop.emulator.faults.boot_failure_rate = 1.0
    report = run(loop.apply(fleet(spec("a"))))
    assert report.failed and "error" in report.failed[0].message


def test_fail_fast_skips_remaining_actions():
    loop = Loop(
        make_emulator(), options=ExecutorOptions(parallelism=1, fail_fast=True, poll_interval=0.01)
    )
    f = fleet(spec("a"), spec("b"), spec("c"))
    plan = run(loop.plan(f))
    loop.emulator.set_capacity("hyperstack", "canada-1", "A6000", available=False)
    report = run(loop.apply(f, plan))
    assert len(report.failed) == 1 and "no capacity" in report.failed[0].message
    skipped = [r.message for r in report.not_started]
    assert skipped == ["not started (--fail-fast)"] * 2


class BrokenStore(MemoryStateStore):
    def __init__(self) -> None:
        super().__init__()
        self.writes_left = 1
        self.emergency = []

    def write(self, state):
        if self.writes_left == 0:
            raise OSError(28, "No space left on device")
        self.writes_left -= 1
        return super().write(state)

    def write_emergency_copy(self, state):
        self.emergency.append(state)
        return "/tmp/emergency.json"


def test_state_write_failure_stops_loudly_with_emergency_copy():
    store = BrokenStore()
    loop = Loop(make_emulator(), store=store)
    with pytest.raises(StateError, match="emergency copy"):
        run(loop.apply(fleet(spec("a"))))
    # The intent was saved (first write); the record write failed and went to the copy.
    assert store.emergency and "inference/a" in store.emergency[-1].instances


def test_orphan_from_interrupted_apply_is_adopted(loop):
    f = fleet(spec("a"))
    run(loop.apply(f))
    # Simulate a crash after the create was sent but before the id was recorded.
    loop.store.write(loop.store.read("inference").model_copy(update={"instances": {}}))
    plan = run(loop.plan(f))
    (change,) = plan.fleets[0].changes
    assert change.adopt and change.action is Action.NOOP
    run(loop.apply(f, plan))
    assert len(loop.live_for("inference/a")) == 1
    assert not run(loop.plan(f)).has_changes


def test_target_limits_apply(loop):
    f = fleet(spec("a"), spec("b"))
    plan = run(loop.plan(f, PlanOptions(targets=("inference/a",))))
    run(loop.apply(f, plan))
    assert loop.live_for("inference/a") and not loop.live_for("inference/b")


class _SameIdForEveryCreate(httpx.AsyncBaseTransport):
    """The emulator, except that every create answers with the id of the first one."""

    def __init__(self, inner: httpx.AsyncBaseTransport) -> None:
        self.inner = inner
        self.first_id: str | None = None

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        response = await self.inner.handle_async_request(request)
        if not request.url.path.endswith("/instances/create") or response.status_code != 200:
            return response
        body = json.loads(await response.aread())
        self.first_id = self.first_id or body["id"]
        return httpx.Response(200, json={"id": self.first_id}, request=request)


def test_two_creates_answered_with_one_id_are_never_recorded_for_two_addresses(loop):
    f = fleet(spec("a"), spec("b"))
    plan = run(loop.plan(f))
    transport = _SameIdForEveryCreate(httpx.ASGITransport(app=loop.emulator.app))
    recorder = StateRecorder(loop.store, loop.state(f))

    async def apply():
        client = ShadeformClient(SANDBOX_API_KEY, "http://127.0.0.1/v1", transport=transport)
        async with client:
            executor = Executor(client, options=loop.options)
            return await executor.apply(plan, fleets={f.name: f}, recorders={f.name: recorder})

    report = run(apply())
    (failed,) = report.failed
    assert f"the id it already gave {report.succeeded[0].address}" in failed.message
    state = loop.store.read("inference")
    ids = [r.instance_id for r in state.instances.values()]
    assert ids == [transport.first_id]  # recorded once, for one address
    (intent,) = state.intents.values()  # the other create's intent stays, to be resolved
    assert intent.address == failed.address
    # The next run finds the other address's instance by its intent tag: no duplicate, no loss.
    loop.intent_grace = 60
    assert not run(loop.apply(f)).failed
    state = loop.store.read("inference")
    assert len({r.instance_id for r in state.instances.values()}) == 2
    for address in ("inference/a", "inference/b"):
        assert len(loop.live_for(address)) == 1


# -- cancels ----------------------------------------------------------------------------------


def test_a_cancel_before_apply_starts_nothing(loop):
    token = CancelToken()
    token.cancel("SIGTERM")
    f = fleet(spec("a"), spec("b"))
    report = run(loop.apply(f, cancel=token))
    assert report.cancelled == "SIGTERM"
    assert [r.message for r in report.not_started] == ["not started (cancelled (SIGTERM))"] * 2
    assert report.failed == [] and loop.emulator.live_instances() == []


def test_a_cancel_lets_the_action_in_flight_finish_and_starts_no_other():
    loop = Loop(
        make_emulator(),
        options=ExecutorOptions(parallelism=1, poll_interval=0.01, ambiguous_lookup_delay=0.01),
    )
    token = CancelToken()

    def cancel_on_first_start(event: ActionEvent) -> None:
        if event.phase is Phase.STARTED:
            token.cancel("SIGINT")

    f = fleet(spec("a"), spec("b"), spec("c"))
    report = run(loop.apply(f, cancel=token, progress=cancel_on_first_start))
    assert report.cancelled == "SIGINT"
    (done,) = report.succeeded
    assert len(report.not_started) == 2
    state = loop.store.read("inference")
    assert set(state.instances) == {done.address} and state.intents == {}


def test_an_action_still_in_flight_after_the_grace_is_abandoned_safely():
    emulator = make_emulator()
    emulator.faults.endpoints["InstancesCreate"] = EndpointFaults(hang_rate=1.0, hang_seconds=30)
    loop = Loop(
        emulator,
        options=ExecutorOptions(poll_interval=0.01, cancel_grace=0.2, ambiguous_lookup_delay=0.01),
    )
    token = CancelToken()

    def cancel_on_start(event: ActionEvent) -> None:
        if event.phase is Phase.STARTED:
            token.cancel("SIGTERM")

    f = fleet(spec("a"))
    report = run(loop.apply(f, cancel=token, progress=cancel_on_start))
    (abandoned,) = report.failed
    assert "abandoned in flight (SIGTERM)" in abandoned.message
    state = loop.store.read("inference")
    (intent,) = state.intents.values()  # the create may have happened: its intent stays
    assert intent.address == "inference/a"
    emulator.faults.endpoints.clear()
    loop.intent_grace = 60
    assert not run(loop.apply(f)).failed  # adopted by its tag: no duplicate
    assert len(loop.live_for("inference/a")) == 1


def test_a_cancel_while_a_create_before_destroy_waits_keeps_the_serving_instance():
    now = [1_000_000.0]
    emulator = make_emulator(boot_seconds=600, clock=lambda: now[0])
    loop = Loop(emulator, options=ExecutorOptions(wait=False, poll_interval=0.01))
    cbd = Lifecycle(create_before_destroy=True)
    run(loop.apply(fleet(spec("a", lifecycle=cbd))))
    now[0] += 700  # booted
    old = loop.store.read("inference").instances["inference/a"].instance_id
    changed = fleet(spec("a", region="us-1", shade_instance_type="A100_80G", lifecycle=cbd))
    plan = run(loop.plan(changed))
    loop.options = ExecutorOptions(poll_interval=0.01)
    token = CancelToken()

    def cancel_while_waiting(event: ActionEvent) -> None:
        if event.phase is Phase.PROGRESS and event.message.startswith("waiting for"):
            token.cancel("SIGTERM")

    report = run(loop.apply(changed, plan, cancel=token, progress=cancel_while_waiting))
    (failed,) = report.failed
    assert f"kept {old}, which still serves" in failed.message
    assert loop.store.read("inference").instances["inference/a"].instance_id == old
    (serving,) = loop.live_for("inference/a")
    assert serving["id"] == old and serving["status"] == "active"
