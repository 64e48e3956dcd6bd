"""Many CLI processes on one fleet through the PostgreSQL backend, against one emulator.

* Eight applies start at once, each with its own version of the same fleet; half wait for the
  lease, half give up at once. Every apply completes or is refused naming the holder; the
  final state holds every live instance exactly once; no write was lost (the history's
  serials are contiguous).
* A holder killed with SIGKILL stops blocking others within the lease time.
"""

from __future__ import annotations

import signal
import subprocess
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

from reconciler.emulator.process import emulator_process
from reconciler.errors import LockError
from reconciler.models.state import FleetState
from reconciler.state.postgres import PostgresStateStore

from ..state.postgres_server import fresh_schema, open_postgres
from .driver import FLEET, VERSIONS, CrashWorld

APPLIES = 8
LEASE_TTL = 3.0


@pytest.fixture
def base_url() -> Iterator[str]:
    """A fresh emulator per test: both tests use the crash driver's one fleet name."""
    with emulator_process("--boot-seconds", "0.3", "--delete-seconds", "0") as url:
        yield url


def addresses(version: dict[str, object]) -> set[str]:
    """The addresses a manifest version declares (one replica: no index suffix)."""
    found: set[str] = set()
    for name, replicas in version.items():
        if name != "tag":
            count = int(str(replicas))
            found |= (
                {f"{FLEET}/{name}"} if count == 1 else {f"{FLEET}/{name}-{i}" for i in range(count)}
            )
    return found


def apply_process(world: CrashWorld, backend: str, *, lock_timeout: str) -> subprocess.Popen[str]:
    args = [lock_timeout if a == "30s" else a for a in world.apply_args()]
    return subprocess.Popen(
        args,
        env=dict(world.env, RECONCILER_BACKEND=backend),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def check_state_matches_the_cloud(world: CrashWorld, state: FleetState) -> None:
    owned = [i for i in world.live() if f"reconciler:fleet={FLEET}" in i.get("tags", [])]
    per_address = Counter(
        t for i in owned for t in i["tags"] if t.startswith("reconciler:address=")
    )
    assert all(n == 1 for n in per_address.values()), f"duplicate live instances: {per_address}"
    recorded = [r.instance_id for r in state.instances.values()]
    assert len(recorded) == len(set(recorded)), "an instance is recorded twice"
    assert sorted(recorded) == sorted(i["id"] for i in owned), "state and cloud differ"
    assert state.intents == {}


def test_eight_concurrent_applies_lose_nothing(base_url: str, tmp_path: Path) -> None:
    with fresh_schema() as backend:
        worlds = [CrashWorld(base_url, tmp_path / f"run-{n}") for n in range(APPLIES)]
        for n, world in enumerate(worlds):
            world.write_version(n)
        procs = [
            apply_process(world, backend, lock_timeout="0" if n % 2 else "120s")
            for n, world in enumerate(worlds)
        ]
        outcomes = [(proc.wait(timeout=300), proc.communicate()[0]) for proc in procs]

        completed = [n for n, (code, _) in enumerate(outcomes) if code == 0]
        for code, output in outcomes:
            assert code in (0, 5), output[-3000:]
            if code == 5:
                assert "held by" in output and "reconciler apply" in output, output[-2000:]
        assert set(range(0, APPLIES, 2)) <= set(completed), "every waiting apply completed"

        store = open_postgres(backend)
        state = store.read(FLEET)
        assert state is not None
        check_state_matches_the_cloud(worlds[0], state)
        assert set(state.instances) in [addresses(v) for v in VERSIONS]
        history = store.history(FLEET)
        assert {v.lineage for v in history} == {state.lineage}
        assert sorted(v.serial for v in history) == list(range(1, state.serial + 1))
        writers = {v.lock_id for v in history}
        assert None not in writers and len(writers) >= 2, "several runs wrote, each under its lease"


def test_a_killed_holder_stops_blocking_within_the_lease_time(
    base_url: str, tmp_path: Path
) -> None:
    with fresh_schema(lease_ttl=f"{LEASE_TTL:g}") as backend:
        world = CrashWorld(base_url, tmp_path)
        env = dict(world.env, RECONCILER_BACKEND=backend, RECONCILER_FAILPOINT="create_returned:2")
        killed = subprocess.run(world.apply_args(), env=env, capture_output=True, text=True)
        assert killed.returncode == -signal.SIGKILL, killed.stdout + killed.stderr
        store: PostgresStateStore = open_postgres(backend)

        holder = store.lock_holder(FLEET)
        assert holder is not None and "reconciler apply" in holder.command
        with pytest.raises(LockError, match="held by"):
            with store.lock(FLEET, timeout=0, command="impatient"):
                pass
        started = time.monotonic()
        with store.lock(FLEET, timeout=LEASE_TTL + 2, command="next run") as taken:
            waited = time.monotonic() - started
            assert store.lock_holder(FLEET) == taken
        assert waited <= LEASE_TTL + 2

        converged = subprocess.run(
            world.apply_args(), env=dict(world.env, RECONCILER_BACKEND=backend),
            capture_output=True, text=True, timeout=120,
        )  # fmt: skip
        assert converged.returncode == 0, converged.stdout[-3000:] + converged.stderr[-2000:]
        state = store.read(FLEET)
        assert state is not None
        check_state_matches_the_cloud(world, state)
        assert set(state.instances) == addresses(VERSIONS[0])
