"""State and locks never lose a history: a missing state with its backup, a full disk, a stuck
write lock, an unreadable holder record."""

from __future__ import annotations

import asyncio
import errno
import fcntl
import os
from pathlib import Path

import pytest

from reconciler.engine.recorder import StateRecorder
from reconciler.errors import LockError, StateError
from reconciler.models.state import InstanceRecord
from reconciler.state import FileStateStore, atomic, locking

from .conftest import FakeClock, make_state, with_generation

FLEET = "inference"


def test_a_deleted_state_with_its_backup_is_refused_naming_the_restore(tmp_path: Path) -> None:
    store = FileStateStore(tmp_path)
    saved = store.write(make_state())
    store.write(with_generation(saved, 1))
    (tmp_path / "inference.json").unlink()
    with pytest.raises(StateError) as caught:
        FileStateStore(tmp_path).read(FLEET)
    message = str(caught.value)
    assert caught.value.exit_code == 4
    backup, path = tmp_path / "inference.json.backup", tmp_path / "inference.json"
    assert f"cp {backup} {path}" in message
    assert f"lineage {saved.lineage}, serial 1" in message
    assert "--new-state" in message


def test_new_state_starts_anew_and_keeps_the_old_backup(tmp_path: Path) -> None:
    store = FileStateStore(tmp_path)
    saved = store.write(make_state())
    store.write(with_generation(saved, 1))
    (tmp_path / "inference.json").unlink()
    old_backup = (tmp_path / "inference.json.backup").read_bytes()
    fresh = FileStateStore(tmp_path, new_state_despite_backup=True)
    assert fresh.read(FLEET) is None
    first = fresh.write(make_state().model_copy(update={"lineage": "new-lineage"}))
    fresh.write(with_generation(first, 1))  # this write replaces inference.json.backup
    kept = list(tmp_path.glob("inference.json.backup.before-new-state-*"))
    assert len(kept) == 1 and kept[0].read_bytes() == old_backup


class _FullDisk:
    """A byte writer that runs out of space after ``room`` bytes."""

    def __init__(self, room: int) -> None:
        self.room = room

    def __call__(self, fd: int, data: memoryview) -> int:
        if self.room <= 0:
            raise OSError(errno.ENOSPC, "No space left on device")
        written = os.write(fd, data[: self.room])
        self.room -= written
        return written


def test_a_full_disk_never_leaves_a_torn_copy(tmp_path: Path) -> None:
    data = b"x" * 10244
    with pytest.raises(OSError):
        atomic.write_unique_file(
            tmp_path, "inference.emergency-1", ".json", data, write=_FullDisk(8192)
        )
    assert list(tmp_path.iterdir()) == []
    with pytest.raises(OSError):
        atomic.write_new_file(tmp_path / "x.json", data, write=_FullDisk(8192))
    assert list(tmp_path.iterdir()) == []
    path = atomic.write_unique_file(tmp_path, "inference.emergency-1", ".json", data)
    assert path.read_bytes() == data and [p.name for p in tmp_path.iterdir()] == [path.name]


class _FailingStore:
    """Every write fails as on a full disk; emergency copies land in ``directory``."""

    def __init__(self, directory: Path) -> None:
        self.inner = FileStateStore(directory)

    def write(self, state):  # type: ignore[no-untyped-def]
        raise StateError(
            "Could not write the state file x: No space left on device; the previous state is intact"
        )

    def write_emergency_copy(self, state):  # type: ignore[no-untyped-def]
        return self.inner.write_emergency_copy(state)


def _record(instance_id: str) -> InstanceRecord:
    return InstanceRecord(
        address=f"{FLEET}/a",
        instance_id=instance_id,
        applied_spec={},
        created_at="2026-01-01T00:00:00Z",
        updated_at="2026-01-01T00:00:00Z",
    )


def test_the_failed_write_message_reads_true(tmp_path: Path) -> None:
    recorder = StateRecorder(_FailingStore(tmp_path), make_state())  # type: ignore[arg-type]
    with pytest.raises(StateError) as forgot:
        asyncio.run(recorder.update(lambda draft: draft.intents.clear()))
    text = str(forgot.value)
    assert ".." not in text and "intact. An emergency copy" in text
    assert "may be created twice" not in text and "nothing can be created twice" in text
    with pytest.raises(StateError) as created:
        asyncio.run(
            recorder.update(lambda draft: draft.instances.__setitem__(f"{FLEET}/a", _record("i-9")))
        )
    assert "the instances this run created (i-9) may be created twice" in str(created.value)


def test_a_stuck_write_lock_fails_after_the_lock_timeout(tmp_path: Path) -> None:
    clock = FakeClock()
    store = FileStateStore(tmp_path, clock=clock.monotonic, sleep=clock.sleep)
    saved = store.write(make_state())
    stuck = os.open(tmp_path / ".inference.json.write-lock", os.O_RDWR)
    fcntl.flock(stuck, fcntl.LOCK_EX)  # another open file: as a stuck process would hold it
    try:
        with store.lock(FLEET, timeout=12, command="test"):
            with pytest.raises(LockError, match="held its write lock") as caught:
                store.write(with_generation(saved, 1))
    finally:
        os.close(stuck)
    assert sum(clock.sleeps) == pytest.approx(12)
    assert "Nothing was written" in str(caught.value)
    assert store.read(FLEET) == saved


def test_a_lock_with_an_unreadable_holder_record_can_be_force_unlocked(tmp_path: Path) -> None:
    store = FileStateStore(tmp_path)
    lock_path = tmp_path / "inference.lock"
    with store.lock(FLEET, command="hung holder"):
        lock_path.write_text("{garbage")  # the holder's record is damaged
        with pytest.raises(LockError) as refused:
            with FileStateStore(tmp_path).lock(FLEET, command="second"):
                pass
        token = locking.unreadable_lock_id(lock_path)
        assert token and f"reconciler force-unlock inference {token}" in str(refused.value)
        with pytest.raises(LockError, match="does not name its current lock file"):
            FileStateStore(tmp_path).force_unlock(FLEET, "unreadable-1")
        FileStateStore(tmp_path).force_unlock(FLEET, token)
        with FileStateStore(tmp_path).lock(FLEET, command="third") as taken:
            assert taken.command == "third"
