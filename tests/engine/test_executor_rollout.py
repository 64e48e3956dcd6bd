"""Rolling replacement against the emulator with a boot time: the emulator's own timeline of
what was active and running proves the strategy's floor and ceiling held."""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx

from reconciler.emulator.timeline import extremes
from reconciler.models.live import ADDRESS_TAG
from reconciler.models.spec import (
    DockerConfiguration,
    LaunchConfiguration,
    Readiness,
    UpdateStrategy,
)
from reconciler.readiness import ProbeResult, ProbeTarget

from .factories import fleet, spec
from .harness import Loop, make_emulator

GROUP = "inference/mistral"
BOOT = 0.3


def mistral(image: str, strategy: UpdateStrategy | None, n: int = 4, **extra):
    launch = LaunchConfiguration(
        type="docker", docker_configuration=DockerConfiguration(image=image)
    )
    return [
        spec(
            f"mistral-{i}",
            group=GROUP,
            update_strategy=strategy,
            launch_configuration=launch,
            **extra,
        )
        for i in range(n)
    ]


def in_group(period) -> bool:
    return any(t.startswith(f"{ADDRESS_TAG}{GROUP}-") for t in period.tags)


def images(loop: Loop) -> list[str]:
    return sorted(
        i["launch_configuration"]["docker_configuration"]["image"]
        for i in loop.emulator.live_instances()
        if any(t.startswith(f"{ADDRESS_TAG}{GROUP}-") for t in i["tags"])
    )


def rolled(strategy: UpdateStrategy | None, **apply_kw):
    """Apply v1, then v2 under ``strategy``; the loop, the report and the window's extremes."""
    loop = Loop(make_emulator(boot_seconds=BOOT, delete_seconds=0.05))
    first = asyncio.run(loop.apply(fleet(*mistral("vllm:1", strategy))))
    assert not first.failed, first.results
    start = loop.emulator.now()
    report = asyncio.run(loop.apply(fleet(*mistral("vllm:2", strategy)), **apply_kw))
    seen = extremes(
        loop.emulator.timeline(), since=start, until=loop.emulator.now(), chosen=in_group
    )
    return loop, report, seen


def test_one_surge_one_unavailable_never_below_three_active_nor_above_five_running():
    loop, report, seen = rolled(UpdateStrategy(max_unavailable=1, max_surge=1))
    assert not report.failed, report.results
    assert seen.fewest_active >= 3, seen
    assert seen.most_running <= 5, seen
    assert images(loop) == ["vllm:2"] * 4
    assert {i["status"] for i in loop.emulator.live_instances()} == {"active"}
    plan = asyncio.run(loop.plan(fleet(*mistral("vllm:2", None))))
    assert not plan.has_changes


def test_no_surge_never_below_three_active_nor_above_four_running():
    loop, report, seen = rolled(UpdateStrategy(max_unavailable=1, max_surge=0))
    assert not report.failed, report.results
    assert seen.fewest_active >= 3 and seen.most_running <= 4, seen
    assert images(loop) == ["vllm:2"] * 4


def test_without_a_strategy_the_group_goes_down_at_once():
    """What the strategy prevents, measured the same way (so the measure can fail)."""
    _, report, seen = rolled(None)
    assert not report.failed
    assert seen.fewest_active == 0


def test_a_rollout_failing_in_wave_two_stops_there_and_leaves_three_serving():
    loop = Loop(make_emulator(boot_seconds=BOOT, delete_seconds=0.05))
    strategy = UpdateStrategy(max_unavailable=1, max_surge=1)
    other = spec("other", tags=("a",))
    assert not asyncio.run(loop.apply(fleet(*mistral("vllm:1", strategy), other))).failed
    creates = []

    def exhaust_capacity_at_wave_two(request: httpx.Request) -> None:
        if request.method == "POST" and request.url.path.endswith("/instances/create"):
            creates.append(request)
            if len(creates) == 3:  # wave 1 created two replicas
                loop.emulator.set_capacity("hyperstack", "canada-1", "A6000", False)

    loop.watch = exhaust_capacity_at_wave_two
    changed_other = spec("other", tags=("b",))
    report = asyncio.run(loop.apply(fleet(*mistral("vllm:2", strategy), changed_other)))
    failed = {r.address: r.message for r in report.results if not r.ok}
    assert set(failed) == {f"{GROUP}-2", f"{GROUP}-3"}, failed
    assert "no capacity" in failed[f"{GROUP}-2"]
    assert [r.ok for r in report.results if r.address == "inference/other"] == [True]
    active = [
        i
        for i in loop.emulator.live_instances()
        if i["status"] == "active"
        and any(t.startswith(f"{ADDRESS_TAG}{GROUP}-") for t in i["tags"])
    ]
    assert len(active) >= 3
    assert images(loop) == ["vllm:1", "vllm:2", "vllm:2"], "wave 2's create-first kept its old one"

    loop.emulator.set_capacity("hyperstack", "canada-1", "A6000", True)
    loop.watch = None
    resumed = asyncio.run(loop.apply(fleet(*mistral("vllm:2", strategy), changed_other)))
    assert not resumed.failed, resumed.results
    assert images(loop) == ["vllm:2"] * 4


def test_a_later_wave_does_not_start_when_an_earlier_one_failed():
    loop = Loop(make_emulator(boot_seconds=BOOT, delete_seconds=0.05))
    strategy = UpdateStrategy(max_unavailable=0, max_surge=1)
    assert not asyncio.run(loop.apply(fleet(*mistral("vllm:1", strategy, n=3)))).failed

    def exhaust(request: httpx.Request) -> None:  # after the plan, before the first create
        if request.method == "POST" and request.url.path.endswith("/instances/create"):
            loop.emulator.set_capacity("hyperstack", "canada-1", "A6000", False)

    loop.watch = exhaust
    report = asyncio.run(loop.apply(fleet(*mistral("vllm:2", strategy, n=3))))
    by_address = {r.address: r for r in report.results}
    assert not by_address[f"{GROUP}-0"].ok and by_address[f"{GROUP}-0"].started
    for later in (f"{GROUP}-1", f"{GROUP}-2"):
        assert not by_address[later].started
        assert "the rollout stopped before wave" in by_address[later].message
    assert images(loop) == ["vllm:1"] * 3


class ScriptedProbe:
    """Readiness that fails ``failures`` times per instance, then passes; records calls."""

    def __init__(self, failures: int) -> None:
        self.failures = failures
        self.calls: list[ProbeTarget] = []

    async def __call__(
        self, readiness: Readiness, manifest_dir: Path, target: ProbeTarget, timeout: float
    ) -> ProbeResult:
        self.calls.append(target)
        tries = sum(1 for c in self.calls if c.instance_id == target.instance_id)
        if tries <= self.failures:
            return ProbeResult(False, "HTTP 503 from /health")
        return ProbeResult(True, "ok")


READY = Readiness(command=("ready.sh",), timeout_seconds=5, interval_seconds=0.01)


def test_an_old_replica_goes_only_once_its_successor_passes_readiness():
    loop = Loop(make_emulator(boot_seconds=0.1, delete_seconds=0.0))
    strategy = UpdateStrategy(max_unavailable=0, max_surge=1)
    assert not asyncio.run(
        loop.apply(fleet(*mistral("vllm:1", strategy, n=2, readiness=READY)))
    ).failed
    probe = ScriptedProbe(failures=3)
    deleted_while_unready = []

    def check_delete(request: httpx.Request) -> None:
        if request.method == "POST" and request.url.path.endswith("/delete"):
            passed = {
                c.instance_id
                for c in probe.calls
                if sum(1 for d in probe.calls if d.instance_id == c.instance_id) > probe.failures
            }
            ready_new = [i for i in loop.emulator.live_instances() if i["id"] in passed]
            if not ready_new:
                deleted_while_unready.append(request.url.path)

    loop.watch = check_delete
    report = asyncio.run(
        loop.apply(fleet(*mistral("vllm:2", strategy, n=2, readiness=READY)), readiness=probe)
    )
    assert not report.failed, report.results
    assert deleted_while_unready == []
    assert len({c.instance_id for c in probe.calls}) == 2, "each new replica was checked"
    recorded = loop.state(fleet(*mistral("vllm:2", strategy, n=2, readiness=READY)))
    assert not any(r.awaiting_readiness for r in recorded.instances.values()), "passed: serving"
    first = probe.calls[0]
    assert first.address == f"{GROUP}-0" and first.ip and first.ssh_user and first.ssh_port
    assert images(loop) == ["vllm:2", "vllm:2"]


def test_a_replica_that_never_gets_ready_stops_the_rollout_and_keeps_the_old_one():
    loop = Loop(make_emulator(boot_seconds=0.1, delete_seconds=0.0))
    strategy = UpdateStrategy(max_unavailable=0, max_surge=1)
    never = Readiness(command=("ready.sh",), timeout_seconds=0.2, interval_seconds=0.02)
    assert not asyncio.run(
        loop.apply(fleet(*mistral("vllm:1", strategy, n=2, readiness=never)))
    ).failed
    report = asyncio.run(
        loop.apply(
            fleet(*mistral("vllm:2", strategy, n=2, readiness=never)),
            readiness=ScriptedProbe(failures=10**6),
        )
    )
    failed = {r.address: r.message for r in report.results if not r.ok}
    assert "did not pass its readiness check within 0.2s" in failed[f"{GROUP}-0"]
    assert "HTTP 503 from /health" in failed[f"{GROUP}-0"]
    assert "kept" in failed[f"{GROUP}-0"]
    assert "the rollout stopped before wave 2" in failed[f"{GROUP}-1"]
    assert images(loop) == ["vllm:1", "vllm:1"]


def test_without_a_probe_a_readiness_command_never_runs_and_the_old_replica_stays():
    loop = Loop(make_emulator(boot_seconds=0.05, delete_seconds=0.0))
    strategy = UpdateStrategy(max_unavailable=0, max_surge=1)
    assert not asyncio.run(
        loop.apply(fleet(*mistral("vllm:1", strategy, n=1, readiness=READY)))
    ).failed
    report = asyncio.run(loop.apply(fleet(*mistral("vllm:2", strategy, n=1, readiness=READY))))
    (failed,) = [r for r in report.results if not r.ok]
    assert "--allow-readiness-commands" in failed.message
    assert images(loop) == ["vllm:1"]


def test_progress_names_the_wave_and_how_many_serve():
    events = []
    _, report, _ = rolled(UpdateStrategy(max_unavailable=1, max_surge=1), progress=events.append)
    assert not report.failed
    lines = [e.message for e in events if e.address.startswith(GROUP)]
    assert any(m.startswith("wave 1 of 2; 4 of 4 serving: replacing") for m in lines), lines
    assert any(m.startswith("wave 2 of 2;") and "serving" in m for m in lines), lines
    assert any("3 of 4 serving" in m for m in lines), "a destroy-first slot takes one down"
