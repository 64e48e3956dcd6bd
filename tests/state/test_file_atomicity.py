"""Kill a writer with SIGKILL at random moments: the state must always be old or new.

A forked child rewrites a 200-instance state as fast as it can; every version it writes has
all records carrying ``generation == serial``, so a torn or mixed file cannot pass for a
valid one. The parent kills it at a random moment, then checks the state file and its
backup. Forking (rather than spawning a fresh interpreter) keeps 30 trials to a few seconds.
"""

from __future__ import annotations

import os
import random
import signal
import time
from pathlib import Path

from reconciler.models.state import FleetState
from reconciler.state import FileStateStore

from .conftest import make_state, with_generation

TRIALS = 30


def write_forever(state_dir: Path, ready_fd: int) -> None:
    """Rewrite the state in a loop; signal ``ready_fd`` once the first write is done."""
    store = FileStateStore(state_dir)
    state = store.read("inference")
    assert state is not None
    state = store.write(with_generation(state, state.serial + 1))
    os.write(ready_fd, b"!")
    while True:
        state = store.write(with_generation(state, state.serial + 1))


def assert_consistent(state: FleetState) -> None:
    generations = {record.live["generation"] for record in state.instances.values() if record.live}
    assert generations == {state.serial}, f"mixed content at serial {state.serial}"


def test_sigkill_during_writes_leaves_old_or_new_state(tmp_path: Path) -> None:
    state_dir = tmp_path / "state"
    store = FileStateStore(state_dir)
    first = store.write(with_generation(make_state(instances=200), 1))
    store.write(with_generation(first, 2))  # so that a backup exists from the start
    rng = random.Random(4)
    last_serial = 2
    advanced = 0
    torn = 0
    for _ in range(TRIALS):
        ready_read, ready_write = os.pipe()
        pid = os.fork()
        if pid == 0:  # child: never return into pytest
            try:
                write_forever(state_dir, ready_write)
            finally:
                os._exit(1)
        os.close(ready_write)
        assert os.read(ready_read, 1) == b"!", "the writer died before its first write"
        os.close(ready_read)
        time.sleep(rng.uniform(0.0, 0.03))  # somewhere inside one of the following writes
        os.kill(pid, signal.SIGKILL)
        _, status = os.waitpid(pid, 0)
        assert os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGKILL

        state = store.read("inference")  # raises if the file does not parse or validate
        assert state is not None
        assert_consistent(state)
        assert state.serial >= last_serial, "never goes back to an older version"
        advanced += state.serial > last_serial
        torn += any(".tmp-" in path.name for path in state_dir.iterdir())
        last_serial = state.serial

        backup = FleetState.model_validate_json((state_dir / "inference.json.backup").read_text())
        assert_consistent(backup)
        assert backup.serial in (state.serial - 1, state.serial)

    assert advanced == TRIALS, "each trial's writer completed at least its first write"
    assert torn > 0, "some kills should have landed in the middle of a write"
    # A fresh writer carries on from whatever survived and clears the crashed temp files.
    fresh = FileStateStore(state_dir)
    assert fresh.write(with_generation(state, state.serial + 1)).serial == state.serial + 1
    assert [p.name for p in state_dir.iterdir() if ".tmp-" in p.name] == []
