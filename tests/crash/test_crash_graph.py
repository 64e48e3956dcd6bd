"""Crash tests for volumes and SSH keys: SIGKILL `reconciler apply` at every fail-point of
each kind (and at random moments) while a graph changes; zero duplicate volumes, keys or
instances, no lost record, and the next plan is clean."""

from __future__ import annotations

import random
import signal
import uuid
from pathlib import Path

import pytest

from reconciler.emulator.process import emulator_process
from reconciler.engine.failpoints import STEPS

from .driver import GraphWorld

RANDOM_TRIALS = 8
# Volumes and keys have no update: every other step is theirs too.
KIND_STEPS = [
    f"{kind}.{step}" for kind in ("volume", "ssh_key") for step in STEPS if step != "update_sent"
]


@pytest.fixture(scope="module")
def base_url():  # type: ignore[no-untyped-def]
    with emulator_process(
        "--boot-seconds", "0.2", "--delete-seconds", "0.3", "--latency-ms", "5"
    ) as url:
        yield url


@pytest.fixture
def world(base_url: str, tmp_path: Path) -> GraphWorld:
    world = GraphWorld(base_url, tmp_path, token=uuid.uuid4().hex[:8])
    world.write_version(0)
    world.converge()
    world.check_invariants()
    return world


@pytest.mark.parametrize("failpoint", [*KIND_STEPS, "instance.gone_confirmed"])
def test_kill_at_each_kinds_fail_point_then_converge(world: GraphWorld, failpoint: str) -> None:
    for version in (1, 2):  # a key replacement, then a volume replacement
        world.write_version(version)
        code = world.kill_at_failpoint(f"{failpoint}:1")
        assert code in (-signal.SIGKILL, 0), code  # 0: not reached in this change
        world.converge()
        world.check_invariants()


def test_kill_a_graph_apply_at_random_moments(world: GraphWorld) -> None:
    rng = random.Random(20261201)
    killed = 0
    for trial in range(RANDOM_TRIALS):
        world.write_version(trial + 1)
        if world.kill_at_random(rng, low=0.2, high=1.5) == -signal.SIGKILL:
            killed += 1
        world.converge()
        world.check_invariants()
    assert killed >= RANDOM_TRIALS // 2
