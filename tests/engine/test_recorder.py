"""The state recorder's plan attribution: stores that keep history learn which plan wrote."""

from __future__ import annotations

import asyncio

from reconciler.engine.recorder import StateRecorder
from reconciler.models.state import FleetState
from reconciler.state import MemoryStateStore, new_state


class PlanRecordingStore(MemoryStateStore):
    """The memory backend plus ``write_from_plan``, remembering each write's digest."""

    def __init__(self) -> None:
        super().__init__()
        self.digests: list[str | None] = []

    def write(self, state: FleetState) -> FleetState:
        self.digests.append(None)
        return super().write(state)

    def write_from_plan(self, state: FleetState, *, plan_digest: str) -> FleetState:
        self.digests.append(plan_digest)
        return super().write(state)


def tag(state: FleetState) -> None:
    state.intents.clear()


async def record(recorder: StateRecorder) -> None:
    await recorder.update(tag)


def test_writes_carry_the_plan_digest_when_the_store_keeps_history() -> None:
    store = PlanRecordingStore()
    recorder = StateRecorder(store, new_state("web"), plan_digest="sha256:abc")
    asyncio.run(record(recorder))
    assert store.digests == ["sha256:abc"] and recorder.state.serial == 1


def test_without_a_digest_or_without_support_plain_writes_are_used() -> None:
    store = PlanRecordingStore()
    asyncio.run(record(StateRecorder(store, new_state("web"))))
    assert store.digests == [None]
    plain = MemoryStateStore()
    recorder = StateRecorder(plain, new_state("web"), plan_digest="sha256:abc")
    asyncio.run(record(recorder))
    assert recorder.state.serial == 1
