"""What the memory backend adds beyond the shared rules (those run in test_store.py)."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from reconciler.errors import LockError, StateError
from reconciler.state import MemoryStateStore, StateStore

from .conftest import make_state, with_generation


def test_is_a_state_store() -> None:
    assert isinstance(MemoryStateStore(), StateStore)


def test_callers_never_share_objects_with_the_store() -> None:
    store = MemoryStateStore()
    state = make_state()
    saved = store.write(state)
    saved.instances.clear()
    state.instances.clear()
    read = store.read("inference")
    assert read is not None and len(read.instances) == 3
    read.instances.clear()
    again = store.read("inference")
    assert again is not None and len(again.instances) == 3


def test_fail_writes_with_makes_writes_fail_until_cleared(tmp_path: Path) -> None:
    store = MemoryStateStore(emergency_dir=tmp_path)
    saved = store.write(make_state())
    store.fail_writes_with(StateError("disk full"))
    with pytest.raises(StateError, match="disk full"):
        store.write(with_generation(saved, 1))
    copy_path = store.write_emergency_copy(with_generation(saved, 1))
    assert copy_path.parent == tmp_path and store.emergency_copies[0].serial == 1
    store.fail_writes_with(None)
    assert store.write(with_generation(saved, 1)).serial == 2


def test_timeout_gives_up_with_the_holder_named() -> None:
    store = MemoryStateStore()
    with store.lock("inference", command="long apply"):
        with pytest.raises(LockError, match="long apply"):
            with store.lock("inference", timeout=0.01, command="second"):
                pass


def test_waiter_in_another_thread_gets_the_lock_after_release() -> None:
    store = MemoryStateStore()
    taken = threading.Event()
    release = threading.Event()
    results: list[str] = []

    def first() -> None:
        with store.lock("inference", command="first"):
            taken.set()
            release.wait()

    thread = threading.Thread(target=first)
    thread.start()
    taken.wait()
    timer = threading.Timer(0.2, release.set)
    timer.start()
    with store.lock("inference", timeout=30, command="second") as info:
        results.append(info.command)
    thread.join()
    timer.join()
    assert results == ["second"]


def test_broken_lock_only_blocks_the_thread_that_held_it() -> None:
    store = MemoryStateStore()
    saved = store.write(make_state())
    entered, proceed = threading.Event(), threading.Event()
    outcome: list[str] = []

    def hung_holder() -> None:
        with store.lock("inference", command="hung") as info:
            outcome.append(info.id)
            entered.set()
            proceed.wait()
            try:
                store.write(with_generation(saved, 1))
            except LockError:
                outcome.append("refused")

    thread = threading.Thread(target=hung_holder)
    thread.start()
    entered.wait()
    store.force_unlock("inference", outcome[0])
    with store.lock("inference", command="next"):
        proceed.set()
        thread.join()
        assert store.write(with_generation(saved, 2)).serial == 2
    assert outcome[1:] == ["refused"]
