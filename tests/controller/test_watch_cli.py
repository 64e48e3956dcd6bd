"""``reconciler watch`` as a real process: its log formats, and SIGTERM/SIGINT, idle or in
the middle of a heal, exit 0 within 10 s with the fleet's lock released and the intent rules
holding (no address gets a second instance)."""

from __future__ import annotations

import json
import re
import signal
import socket
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from reconciler.emulator import SANDBOX_API_KEY
from reconciler.emulator.process import emulator_process
from reconciler.models.live import ADDRESS_TAG
from reconciler.state.file import FileStateStore
from tests.controller.watch_process import (
    WatchProcess,
    addresses,
    environment,
    manifest,
    reconciler,
)

FLEET = "web"
REPLICAS = {"api": 2, "cache": 1}
STOP_WITHIN = 10.0
TEXT_LINE = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ [a-z_]+( \S+)?: \S.*$")


def write_fleet(root: Path, replicas: dict[str, int] = REPLICAS) -> Path:
    fleets = root / "fleets"
    fleets.mkdir(exist_ok=True)
    (fleets / f"{FLEET}.yaml").write_text(manifest(FLEET, replicas))
    return fleets


def assert_lock_released(state: Path, watcher_pid: int) -> None:
    """No holder left in the lock file (an orderly release, not just a dead holder's flock),
    and the lock can be taken at once."""
    store = FileStateStore(state)
    assert store.lock_holder(FLEET) is None, store.lock_holder(FLEET)
    with store.lock(FLEET, timeout=0, command="the test, right after the watcher") as info:
        assert info.pid != watcher_pid


# -- log formats -------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def sandbox_fleet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, Path]]:
    """The fleet applied in the sandbox, then a manifest that wants one more instance (so a
    cycle has something to report): (fleets directory, state directory)."""
    root = tmp_path_factory.mktemp("sandbox")
    fleets = write_fleet(root)
    state = root / "state"
    applied = reconciler(
        "apply", str(fleets), "--sandbox", "--auto-approve", "--state-dir", str(state),
        env=environment(),
    )  # fmt: skip
    assert applied.returncode == 0, applied.stderr
    write_fleet(root, {**REPLICAS, "extra": 1})
    yield fleets, state


def test_json_log_format_writes_one_json_object_per_event_line(
    sandbox_fleet: tuple[Path, Path],
) -> None:
    fleets, state = sandbox_fleet
    args = [str(fleets), "--sandbox", "--state-dir", str(state), "--interval", "1s"]
    with WatchProcess(
        [*args, "--log-format", "json", "--listen", "127.0.0.1:0"], env=environment()
    ) as watch:
        url = watch.url()
        watch.event("drift")
        code, _ = watch.stop(signal.SIGTERM)
    assert code == 0, watch.describe()
    events: list[dict[str, Any]] = []
    for line in watch.lines:
        parsed = json.loads(line)  # every line on stderr is one JSON object
        assert isinstance(parsed, dict), line
        assert {"event", "message", "at"} <= parsed.keys(), parsed
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", parsed["at"]), parsed
        events.append(parsed)
    names = [e["event"] for e in events]
    assert {"start", "listen", "drift"} <= set(names) and names[-1] == "stop", names
    (drift,) = (e for e in events if e["event"] == "drift")
    assert drift["fleet"] == FLEET and f"{FLEET}/extra (create" in drift["message"]
    assert "address" not in drift and "details" not in drift  # empty fields are left out
    (listen,) = (e for e in events if e["event"] == "listen")
    assert listen["message"] == f"serving /metrics, /healthz and / on {url}", listen
    assert events[-1]["message"] == "stopped (SIGTERM); every lock released", events


def test_the_default_log_format_is_readable_lines(sandbox_fleet: tuple[Path, Path]) -> None:
    fleets, state = sandbox_fleet
    args = [str(fleets), "--sandbox", "--state-dir", str(state), "--cycles", "1"]
    with WatchProcess(args, env=environment()) as watch:
        code = watch.wait(timeout=60)
    lines = watch.lines
    assert code == 0, lines
    for line in lines:
        assert TEXT_LINE.match(line), line
        with pytest.raises(ValueError):
            json.loads(line)
    names = [line.split(" ", 2)[1].split(":")[0] for line in lines]
    assert names[0] == "start" and names[-1] == "stop" and "drift" in names, lines
    (drift,) = (line for line in lines if " drift " in line)
    assert f" drift {FLEET}: 1 change(s) left for a reviewed apply: {FLEET}/extra" in drift
    assert lines[-1].endswith("stop: stopped (done); every lock released"), lines


def test_a_listen_address_in_use_is_a_clear_usage_error(
    sandbox_fleet: tuple[Path, Path],
) -> None:
    """Not a traceback and exit 3 (uvicorn's ``sys.exit``), nor a watcher that runs on without
    the /healthz its liveness probe needs: exit 64 with what to do, before watching."""
    fleets, state = sandbox_fleet
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        args = [str(fleets), "--sandbox", "--state-dir", str(state), "--interval", "1s"]
        with WatchProcess(
            [*args, "--cycles", "3", "--listen", f"127.0.0.1:{port}"], env=environment()
        ) as watch:
            code = watch.wait(timeout=60)
    text = "\n".join(watch.lines)
    assert "Traceback" not in text, text
    assert f"--listen 127.0.0.1:{port}: cannot listen there (Address already in use)" in text, (
        watch.describe()
    )
    assert code == 64, watch.describe()


# -- stopping while idle -------------------------------------------------------------------------


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_a_signal_while_watching_exits_0_within_10s_with_the_lock_free(
    tmp_path: Path, signum: int
) -> None:
    fleets = write_fleet(tmp_path)
    state = tmp_path / "state"
    env = environment()
    applied = reconciler(
        "apply", str(fleets), "--sandbox", "--auto-approve", "--state-dir", str(state), env=env
    )
    assert applied.returncode == 0, applied.stderr
    args = [str(fleets), "--sandbox", "--state-dir", str(state), "--interval", "1s"]
    with WatchProcess([*args, "--listen", "127.0.0.1:0"], env=env) as watch:
        watch.status(until=lambda body: body["cycles"] >= 1 and body["last_success_at"])
        code, took = watch.stop(signum)
    assert code == 0, watch.describe()
    assert took < STOP_WITHIN, took
    name = signal.Signals(signum).name
    assert watch.lines[-1].endswith(f"stop: stopped ({name}); every lock released"), watch.lines
    assert_lock_released(state, watch.pid)
    # A CI apply that will not wait for the lock gets it.
    after = reconciler(
        "apply", str(fleets), "--sandbox", "--auto-approve", "--state-dir", str(state),
        "--lock-timeout", "0", env=env,
    )  # fmt: skip
    assert after.returncode == 0, after.stderr
    assert "No changes. Your fleets match the manifests." in after.stdout, after.stdout


# -- stopping in the middle of a heal ------------------------------------------------------------


class Admin:
    """The standalone emulator's ``/_admin`` routes."""

    def __init__(self, base_url: str) -> None:
        self.http = httpx.Client(
            base_url=base_url.removesuffix("/v1"),
            headers={"X-API-KEY": SANDBOX_API_KEY},
            timeout=30,
        )

    def __enter__(self) -> Admin:
        return self

    def __exit__(self, *exc: object) -> None:
        self.http.close()

    def instances(self) -> list[dict[str, Any]]:
        answer = self.http.get("/_admin/instances")
        answer.raise_for_status()
        return answer.json()["instances"]  # type: ignore[no-any-return]

    def ids_by_address(self) -> dict[str, list[str]]:
        """Every address's instances that are not being deleted."""
        found: dict[str, list[str]] = {}
        for instance in self.instances():
            if instance["status"] in ("deleting", "deleted"):
                continue
            for tag in instance["tags"]:
                if tag.startswith(ADDRESS_TAG):
                    found.setdefault(tag.removeprefix(ADDRESS_TAG), []).append(instance["id"])
        return found

    def delete_out_of_band(self, instance_id: str) -> None:
        answer = self.http.post(f"/_admin/instances/{instance_id}/delete", json={"immediate": True})
        answer.raise_for_status()

    def faults(self, config: dict[str, Any]) -> None:
        self.http.put("/_admin/faults", json=config).raise_for_status()

    def create_counts(self) -> Counter[str]:
        answer = self.http.get("/_admin/create-counts")
        answer.raise_for_status()
        return Counter(answer.json()["create_counts"])


# The heal's create reaches the emulator at once, and its answer is held back: for less than
# the watcher's 5 s cancel grace (the create finishes and is recorded), or for longer (it is
# abandoned after the grace; the intent, recorded before the request, stays, and the next apply
# adopts the instance by its intent tag instead of creating another).
SLOW_CREATES = {
    "finishes": {"endpoints": {"InstancesCreate": {"hang_rate": 1.0, "hang_seconds": 2}}},
    "abandons": {"endpoints": {"InstancesCreate": {"hang_rate": 1.0, "hang_seconds": 60}}},
}


def wait_until(condition: Callable[[], bool], *, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"not after {timeout}s: {what}")
        time.sleep(0.02)


@pytest.mark.parametrize("slow_create", sorted(SLOW_CREATES))
def test_sigterm_during_a_heal_exits_0_within_10s_releases_the_lock_and_heals_once(
    tmp_path: Path, slow_create: str
) -> None:
    fleets = write_fleet(tmp_path)
    state = tmp_path / "state"
    emulator = emulator_process("--boot-seconds", "0.5", "--delete-seconds", "0")
    with emulator as base_url, Admin(base_url) as admin:
        env = environment(SHADEFORM_API_URL=base_url, SHADEFORM_API_KEY=SANDBOX_API_KEY)
        common = [str(fleets), "--state-dir", str(state)]
        applied = reconciler("apply", *common, "--auto-approve", env=env)
        assert applied.returncode == 0, applied.stderr
        before = admin.ids_by_address()
        assert sorted(before) == addresses(FLEET, REPLICAS), before
        victim = f"{FLEET}/api-1"
        (gone,) = before[victim]

        admin.faults(SLOW_CREATES[slow_create])
        args = [*common, "--interval", "1s", "--log-format", "json"]
        with WatchProcess(args, env=env) as watch:
            watch.event("start")
            admin.delete_out_of_band(gone)
            heal = watch.event("heal", timeout=20)
            assert heal["address"] == victim, heal
            # Signalled while the create is in flight (sent, its answer not yet back), not
            # before the executor started it.
            wait_until(
                lambda: admin.create_counts().total() > len(before),
                timeout=10,
                what=f"the heal's create reached the emulator\n{watch.describe()}",
            )
            holder = FileStateStore(state).lock_holder(FLEET)
            assert holder is not None and holder.pid == watch.pid, holder  # acting, locked
            code, took = watch.stop(signal.SIGTERM)
        assert code == 0, watch.describe()
        assert took < STOP_WITHIN, (took, watch.describe())
        assert watch.lines and json.loads(watch.lines[-1])["message"] == (
            "stopped (SIGTERM); every lock released"
        ), watch.describe()
        assert_lock_released(state, watch.pid)
        outcome = {"finishes": "healed", "abandons": "heal_failed"}[slow_create]
        results = [e for e in map(json.loads, watch.lines) if e["event"] == outcome]
        assert len(results) == 1, watch.describe()
        result = results[0]
        assert result["address"] == victim, result
        left = FileStateStore(state).read(FLEET)
        assert left is not None
        if slow_create == "abandons":
            assert result["message"].startswith("abandoned in flight (SIGTERM)"), result
            # The create intent was recorded before the request and stays for the next run.
            assert [i.address for i in left.intents.values()] == [victim], left.intents
        else:
            assert not left.intents and left.instances[victim].instance_id != gone

        # The heal's create reached the emulator exactly once, whatever became of its answer.
        admin.faults({})
        assert admin.create_counts().total() == len(before) + 1, admin.create_counts()
        # A later apply (not waiting for the lock) adopts or keeps that instance: it creates
        # no second one for the address.
        after = reconciler("apply", *common, "--auto-approve", "--lock-timeout", "0", env=env)
        assert after.returncode == 0, after.stdout + after.stderr
        live = admin.ids_by_address()
        assert sorted(live) == addresses(FLEET, REPLICAS), live
        assert all(len(ids) == 1 for ids in live.values()), live
        assert gone not in live[victim]
        assert admin.create_counts().total() == len(before) + 1, admin.create_counts()
        recorded = {r.address: r.instance_id for r in _records(state)}
        assert recorded == {address: ids[0] for address, ids in live.items()}, recorded
        plan = reconciler("plan", *common, "--detailed-exitcode", env=env)
        assert plan.returncode == 0, plan.stdout + plan.stderr


def _records(state: Path) -> list[Any]:
    recorded = FileStateStore(state).read(FLEET)
    assert recorded is not None
    assert not recorded.intents, recorded.intents  # every intent resolved
    return list(recorded.instances.values())
