"""Two applies of one fleet at once: one proceeds, the other waits its lock timeout and fails
naming the holder; a third with a longer timeout waits its turn; the state stays sound."""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path

import pytest

from reconciler.emulator.process import emulator_process

from .driver import CrashWorld


@pytest.fixture(scope="module")
def slow_boot_url():  # type: ignore[no-untyped-def]
    with emulator_process("--boot-seconds", "3", "--delete-seconds", "0") as url:
        yield url


def test_second_apply_waits_then_fails_naming_the_holder(
    slow_boot_url: str, tmp_path: Path
) -> None:
    world = CrashWorld(slow_boot_url, tmp_path)
    first = subprocess.Popen(
        world.apply_args(),
        env=world.env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    time.sleep(1.5)  # the first run now holds the lock and waits for its instances to boot
    started = time.monotonic()
    second_args = [a if a != "30s" else "1s" for a in world.apply_args()]
    second = world.run(second_args)
    waited = time.monotonic() - started
    third = subprocess.Popen(
        world.apply_args(),
        env=world.env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    first_out, _ = first.communicate(timeout=120)
    third_out, _ = third.communicate(timeout=120)

    assert first.returncode == 0, first_out
    assert second.returncode == 5, second.stdout + second.stderr
    message = second.stdout + second.stderr
    assert "held by" in message and "reconciler apply" in message
    assert waited >= 1.0
    assert third.returncode == 0, third_out  # waited for the first, then found nothing to do
    state = json.loads((tmp_path / "state" / "crash.json").read_text())
    assert len(state["instances"]) == 4 and state["intents"] == {}
    world.check_invariants()
