"""Two ``reconciler watch`` processes on one PostgreSQL backend act as one (real processes,
a real emulator process, a real database):

* one preemption, two watchers: exactly one replacement create, recorded in the state; both
  watchers exit 0 on SIGTERM;
* the acting watcher is SIGKILLed while it holds the fleet's lease, its create sent and the
  answer not yet back: the create is not made twice, and the other watcher finishes the heal
  within the lease time, an interval and a margin.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from reconciler.emulator import SANDBOX_API_KEY
from reconciler.emulator.process import emulator_process
from reconciler.models.live import ADDRESS_TAG
from reconciler.models.state import FleetState
from reconciler.state.backend_url import MIN_LEASE_TTL

from ..state.postgres_server import fresh_schema, open_postgres

FLEET = "spotwatch"
SPOT = f"{FLEET}/batch"
INTERVAL = 1.0
MARGIN = 3.0
MANIFEST = f"""\
fleet: {FLEET}
defaults:
  cloud: hyperstack
  region: canada-1
  shade_instance_type: A6000
  shade_cloud: true
instances:
  - name: batch
    rental_type: spot
  - name: web
"""


class Cloud:
    """The emulator process, seen through its admin API."""

    def __init__(self, base_url: str) -> None:
        self.base_url = base_url
        self._admin = httpx.Client(
            base_url=base_url.removesuffix("/v1") + "/_admin",
            headers={"X-API-KEY": SANDBOX_API_KEY},
            timeout=10,
        )

    def close(self) -> None:
        self._admin.close()

    def instances_at(self, address: str) -> list[str]:
        listed = self._admin.get("/instances").raise_for_status().json()["instances"]
        return [
            i["id"]
            for i in listed
            if f"{ADDRESS_TAG}{address}" in i["tags"] and i["status"] not in ("deleting", "deleted")
        ]

    def create_count(self, name: str) -> int:
        return int(self._admin.get(f"/create-counts/{name}").raise_for_status().json()["count"])

    def preempt(self, instance_id: str) -> None:
        self._admin.post(f"/instances/{instance_id}/preempt").raise_for_status()

    def set_faults(self, faults: dict[str, object]) -> None:
        self._admin.put("/faults", json=faults).raise_for_status()


class WatchProcess:
    """``reconciler watch --log-format json`` in the background; its events as they come."""

    def __init__(self, args: list[str], env: dict[str, str]) -> None:
        self.proc = subprocess.Popen(
            args, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
        )
        self.lines: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            self.lines.append(line.rstrip("\n"))

    def events(self, name: str | None = None) -> list[dict]:
        parsed = []
        for line in list(self.lines):
            try:
                event = json.loads(line)
            except json.JSONDecodeError:
                continue  # a traceback, say: shown by output() in a failure
            if name is None or event.get("event") == name:
                parsed.append(event)
        return parsed

    def output(self) -> str:
        return "\n".join(self.lines[-40:])

    def stop(self) -> int:
        """SIGTERM, and its exit code."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        code = self.proc.wait(timeout=15)
        self._reader.join(timeout=5)
        return code

    def kill(self) -> None:
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=10)


class World:
    def __init__(self, root: Path, cloud: Cloud, backend: str) -> None:
        self.root = root
        self.cloud = cloud
        self.backend = backend
        (root / "fleets").mkdir(parents=True)
        (root / "fleets" / "spot.yaml").write_text(MANIFEST)
        self.env = dict(
            os.environ,
            SHADEFORM_API_URL=cloud.base_url,
            SHADEFORM_API_KEY=SANDBOX_API_KEY,
            RECONCILER_BACKEND=backend,
            NO_COLOR="1",
            PYTHONUNBUFFERED="1",
        )
        self.env.pop("RECONCILER_FAILPOINT", None)
        self.watchers: list[WatchProcess] = []

    def command(self, name: str, *extra: str) -> list[str]:
        fleets, state_dir = str(self.root / "fleets"), str(self.root / "state")
        return [sys.executable, "-m", "reconciler", name, fleets, "--state-dir", state_dir, *extra]

    def apply(self) -> None:
        done = subprocess.run(
            self.command("apply", "--auto-approve"),
            env=self.env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]

    def watch(self) -> WatchProcess:
        args = self.command("watch", "--interval", f"{INTERVAL:g}s", "--log-format", "json")
        watcher = WatchProcess(args, self.env)
        self.watchers.append(watcher)
        return watcher

    def state(self) -> FleetState:
        store = open_postgres(self.backend)
        try:
            state = store.read(FLEET)
        finally:
            store.close()
        assert state is not None
        return state

    def wait_until_watching(self, *watchers: WatchProcess) -> None:
        """Until every watcher has said it started (so each runs its cycles from now)."""
        wait_for(lambda: all(w.events("start") for w in watchers), 20, "the watchers start")

    def recorded(self, address: str) -> str | None:
        """The instance id the state records for ``address`` once it matches the one live
        instance there and no create is pending; else None."""
        live = self.cloud.instances_at(address)
        state = self.state()
        record = state.instances.get(address)
        if len(live) == 1 and record is not None and record.instance_id == live[0]:
            if not state.intents:
                return live[0]
        return None


def wait_for(done: Callable[[], object], timeout: float, what: str) -> float:
    """Poll ``done()`` until it is true; the seconds it took."""
    started = time.monotonic()
    while not done():
        if time.monotonic() - started > timeout:
            raise AssertionError(f"not done after {timeout:g}s: {what}")
        time.sleep(0.05)
    return time.monotonic() - started


@pytest.fixture
def cloud() -> Iterator[Cloud]:
    with emulator_process("--boot-seconds", "0.3", "--delete-seconds", "0") as base_url:
        cloud = Cloud(base_url)
        yield cloud
        cloud.close()


@pytest.fixture
def world(cloud: Cloud, tmp_path: Path) -> Iterator[World]:
    with fresh_schema(lease_ttl=f"{MIN_LEASE_TTL:g}") as backend:
        world = World(tmp_path, cloud, backend)
        try:
            yield world
        finally:
            for watcher in world.watchers:
                if watcher.proc.poll() is None:
                    watcher.kill()


def test_two_watchers_replace_one_preempted_instance_once(world: World) -> None:
    world.apply()
    (old,) = world.cloud.instances_at(SPOT)
    first, second = world.watch(), world.watch()
    world.wait_until_watching(first, second)
    time.sleep(INTERVAL)  # both have cycled at least once on the whole fleet

    world.cloud.preempt(old)
    wait_for(lambda: world.recorded(SPOT) not in (None, old), 4 * INTERVAL + MARGIN, "the heal")
    time.sleep(2 * INTERVAL)  # a second replacement would come now, if ever

    assert world.cloud.create_count("batch") == 2, "exactly one replacement create"
    assert world.cloud.create_count("web") == 1
    (new,) = world.cloud.instances_at(SPOT)
    assert new != old and world.recorded(SPOT) == new
    healed = [e for w in (first, second) for e in w.events("healed")]
    assert [e["address"] for e in healed] == [SPOT], healed
    for watcher in (first, second):
        assert watcher.stop() == 0, watcher.output()
        assert watcher.events("stop"), watcher.output()


def test_a_watcher_killed_mid_heal_hands_over_within_the_lease_time(world: World) -> None:
    world.apply()
    (old,) = world.cloud.instances_at(SPOT)
    watchers = [world.watch(), world.watch()]
    world.wait_until_watching(*watchers)
    # The create takes effect but its answer is held back: whoever acts holds the lease
    # with a create sent and its id not yet in the state.
    world.cloud.set_faults(
        {"endpoints": {"InstancesCreate": {"hang_rate": 1.0, "hang_seconds": 60}}}
    )
    world.cloud.preempt(old)
    wait_for(lambda: world.cloud.create_count("batch") == 2, 4 * INTERVAL + MARGIN, "a create")
    wait_for(lambda: any(w.events("heal") for w in watchers), 5, "the heal event")
    (acting,) = [w for w in watchers if w.events("heal")]
    (other,) = [w for w in watchers if w is not acting]
    acting.kill()
    killed_at = time.monotonic()
    world.cloud.set_faults({})
    (sent,) = world.cloud.instances_at(SPOT)  # the create the killed watcher made
    assert world.state().intents, "the create's intent was recorded before it was sent"

    deadline = MIN_LEASE_TTL + INTERVAL + MARGIN
    try:
        wait_for(lambda: world.recorded(SPOT) == sent, deadline, "the hand-over")
    except AssertionError as exc:
        raise AssertionError(f"{exc}; the other watcher said:\n{other.output()}") from None
    took = time.monotonic() - killed_at

    assert took <= deadline, took
    assert world.cloud.create_count("batch") == 2, "the create sent was found, not made again"
    assert world.cloud.instances_at(SPOT) == [sent]
    assert [e["address"] for e in other.events("healed")] == [SPOT], other.output()
    assert other.stop() == 0, other.output()
