"""File locks: refusals name the holder, waiting, kernel release on SIGKILL, stale, force-unlock."""

from __future__ import annotations

import json
import os
import signal
import stat
import threading
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager, suppress
from datetime import UTC, datetime
from pathlib import Path

import pytest

from reconciler.errors import LockError
from reconciler.state import FileStateStore
from reconciler.state.holder import make_lock_info

from .conftest import FakeClock, make_state, with_generation

FLEET = "inference"


@pytest.fixture
def state_dir(tmp_path: Path) -> Path:
    return tmp_path / "state"


@contextmanager
def lock_held_by_child(state_dir: Path, *, orphan: bool = False) -> Iterator[tuple[int, int]]:
    """Fork a process that takes the lock and sleeps; yields (holder pid, pid to kill).

    With ``orphan``, the holder forks a grandchild that inherits the locked descriptor and
    exits without releasing: the recorded pid is gone while the flock stays held.
    """
    ready_read, ready_write = os.pipe()
    pid = os.fork()
    if pid == 0:
        try:
            os.close(ready_read)
            store = FileStateStore(state_dir)
            with store.lock(FLEET, command="reconciler apply (child)"):
                if orphan:
                    grandchild = os.fork()
                    if grandchild == 0:
                        time.sleep(60)
                        os._exit(0)
                    os.write(ready_write, f"{grandchild}\n".encode())
                    os._exit(0)  # leaves without releasing; the grandchild keeps the flock
                os.write(ready_write, f"{os.getpid()}\n".encode())
                time.sleep(60)
        finally:
            os._exit(1)
    os.close(ready_write)
    with os.fdopen(ready_read) as ready:
        line = ready.readline()
    assert line, "the child failed to take the lock"
    sleeper = int(line)
    try:
        if orphan:
            os.waitpid(pid, 0)  # the recorded holder is now gone
        yield pid, sleeper
    finally:
        for victim in {pid, sleeper}:
            try:
                os.kill(victim, signal.SIGKILL)
            except ProcessLookupError:
                pass
        if not orphan:
            with suppress(ChildProcessError):  # the test may have reaped it already
                os.waitpid(pid, 0)


def test_second_locker_fails_at_once_naming_the_holder(state_dir: Path) -> None:
    first, second = FileStateStore(state_dir), FileStateStore(state_dir)
    environ = {
        "GITHUB_SERVER_URL": "https://github.com",
        "GITHUB_REPOSITORY": "acme/gpu",
        "GITHUB_RUN_ID": "42",
    }
    ci = FileStateStore(state_dir, environ=environ)
    with ci.lock(FLEET, command="reconciler apply fleets/") as info:
        with pytest.raises(LockError) as caught:
            with second.lock(FLEET, command="reconciler plan"):
                pass
    message = str(caught.value)
    assert info.id in message and "reconciler apply fleets/" in message
    assert f"pid {os.getpid()}" in message
    assert "https://github.com/acme/gpu/actions/runs/42" in message
    assert "stale" not in message and "after waiting" not in message
    with first.lock(FLEET, command="after release"):
        pass


def test_lock_file_records_the_holder_and_is_cleared_on_release(state_dir: Path) -> None:
    store = FileStateStore(state_dir)
    lock_file = state_dir / f"{FLEET}.lock"
    with store.lock(FLEET, command="reconciler apply") as info:
        assert json.loads(lock_file.read_text())["id"] == info.id
        assert stat.S_IMODE(lock_file.stat().st_mode) == 0o600
        assert store.lock_holder(FLEET) == info
    assert lock_file.exists() and lock_file.read_text() == ""
    assert store.lock_holder(FLEET) is None


def test_lock_survives_the_state_files_atomic_renames(state_dir: Path) -> None:
    holder, other = FileStateStore(state_dir), FileStateStore(state_dir)
    with holder.lock(FLEET, command="reconciler apply"):
        state = holder.write(make_state())
        for generation in range(3):
            state = holder.write(with_generation(state, generation + 1))
        with pytest.raises(LockError):
            with other.lock(FLEET, command="reconciler plan"):
                pass


def test_timeout_polls_then_fails(state_dir: Path) -> None:
    clock = FakeClock()
    waiter = FileStateStore(state_dir, clock=clock.monotonic, sleep=clock.sleep)
    with FileStateStore(state_dir).lock(FLEET, command="long apply"):
        with pytest.raises(LockError, match="after waiting 5s") as caught:
            with waiter.lock(FLEET, timeout=5, command="reconciler plan"):
                pass
    assert "long apply" in str(caught.value)
    assert sum(clock.sleeps) == pytest.approx(5.0)
    assert len(clock.sleeps) >= 50 and max(clock.sleeps) <= 0.1 + 1e-9


def test_waiter_gets_the_lock_once_the_first_releases(state_dir: Path) -> None:
    clock = FakeClock()
    waiter = FileStateStore(state_dir, clock=clock.monotonic, sleep=clock.sleep)
    first = ExitStack()
    first.enter_context(FileStateStore(state_dir).lock(FLEET, command="first"))
    clock.on_sleep.append(lambda count: first.close() if count == 3 else None)
    with waiter.lock(FLEET, timeout=60, command="second") as info:
        assert info.command == "second"
    assert len(clock.sleeps) == 3


def test_waiting_with_the_real_clock(state_dir: Path) -> None:
    first = ExitStack()
    first.enter_context(FileStateStore(state_dir).lock(FLEET, command="first"))
    releaser = threading.Timer(0.3, first.close)
    releaser.start()
    try:
        with FileStateStore(state_dir).lock(FLEET, timeout=30, command="second") as info:
            assert info.command == "second"
    finally:
        releaser.join()


def test_holder_killed_with_sigkill_frees_the_lock(state_dir: Path) -> None:
    store = FileStateStore(state_dir)
    with lock_held_by_child(state_dir) as (holder_pid, _):
        with pytest.raises(LockError, match=f"pid {holder_pid}"):
            with store.lock(FLEET, command="refused"):
                pass
        os.kill(holder_pid, signal.SIGKILL)
        os.waitpid(holder_pid, 0)
        leftover = store.lock_holder(FLEET)
        assert leftover is not None and leftover.pid == holder_pid, "its record stays behind"
        with store.lock(FLEET, command="next run") as info:  # ...but the kernel freed the lock
            assert store.lock_holder(FLEET) == info


def test_held_lock_whose_holder_is_gone_is_reported_stale_and_can_be_forced(
    state_dir: Path,
) -> None:
    store = FileStateStore(state_dir)
    with lock_held_by_child(state_dir, orphan=True) as (holder_pid, _):
        with pytest.raises(LockError) as caught:
            with store.lock(FLEET, command="refused"):
                pass
        recorded = store.lock_holder(FLEET)
        assert recorded is not None and recorded.pid == holder_pid
        message = str(caught.value)
        assert "stale: the process that took it is gone" in message
        assert f"reconciler force-unlock {FLEET} {recorded.id}" in message
        store.force_unlock(FLEET, recorded.id)
        with store.lock(FLEET, command="after force-unlock") as info:
            assert store.lock_holder(FLEET) == info


def test_force_unlock_clears_a_record_left_by_a_dead_holder(state_dir: Path) -> None:
    store = FileStateStore(state_dir)
    state_dir.mkdir()
    dead = make_lock_info(FLEET, command="crashed", environ={}, now=datetime.now(UTC))
    (state_dir / f"{FLEET}.lock").write_text(json.dumps(dead.model_dump()))
    with pytest.raises(LockError, match="does not match"):
        store.force_unlock(FLEET, "another-id")
    store.force_unlock(FLEET, dead.id)
    assert store.lock_holder(FLEET) is None


def test_force_unlock_detaches_a_hung_holder(state_dir: Path) -> None:
    hung, operator, next_run = (FileStateStore(state_dir) for _ in range(3))
    state = hung.write(make_state())
    with hung.lock(FLEET, command="hung apply") as hung_info:
        operator.force_unlock(FLEET, hung_info.id)
        with next_run.lock(FLEET, command="next apply"):
            with pytest.raises(LockError, match="force-unlocked while this run held it"):
                hung.write(with_generation(state, 1))
            with pytest.raises(LockError, match="does not match"):
                operator.force_unlock(FLEET, hung_info.id)
            assert next_run.write(with_generation(state, 2)).serial == 2
    saved = operator.read(FLEET)
    assert saved is not None and saved.instances[f"{FLEET}/worker-0"].live == {
        "status": "active",
        "generation": 2,
    }


def test_hung_holder_leaving_does_not_clear_the_new_holders_record(state_dir: Path) -> None:
    hung, operator, next_run = (FileStateStore(state_dir) for _ in range(3))
    hung_lock = ExitStack()
    hung_info = hung_lock.enter_context(hung.lock(FLEET, command="hung apply"))
    operator.force_unlock(FLEET, hung_info.id)
    with next_run.lock(FLEET, command="next apply") as next_info:
        hung_lock.close()
        assert operator.lock_holder(FLEET) == next_info
        with pytest.raises(LockError, match="next apply"):
            with operator.lock(FLEET, command="third"):
                pass
