"""Fixtures for the state tests: sample states, a controllable clock, and every backend."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from reconciler.models.state import CreateIntent, FleetState, InstanceRecord
from reconciler.state import FileStateStore, MemoryStateStore, StateStore, new_state

from .postgres_server import fresh_schema, open_postgres


def make_record(fleet: str, index: int, *, generation: int = 0) -> InstanceRecord:
    address = f"{fleet}/worker-{index}"
    return InstanceRecord(
        address=address,
        instance_id=f"inst-{index:05d}",
        applied_spec={
            "name": f"worker-{index}",
            "cloud": "hyperstack",
            "region": "canada-1",
            "shade_instance_type": "A6000",
            "envs": [{"name": "HF_TOKEN", "value": "(sensitive:hmac-sha256:abcd)"}],
        },
        live={"status": "active", "generation": generation},
        created_at="2024-05-01T12:00:00Z",
        updated_at="2024-05-01T12:00:00Z",
    )


def make_state(fleet: str = "inference", *, instances: int = 3) -> FleetState:
    """A fresh (serial 0) state holding ``instances`` records and one pending intent."""
    state = new_state(fleet)
    records = {r.address: r for r in (make_record(fleet, i) for i in range(instances))}
    intent = CreateIntent(
        intent_id="intent-1", address=f"{fleet}/worker-new", created_at="2024-05-01T12:00:00Z"
    )
    return state.model_copy(update={"instances": records, "intents": {"intent-1": intent}})


def with_generation(state: FleetState, generation: int) -> FleetState:
    """A copy where every record's live attributes carry ``generation``."""
    instances = {
        address: record.model_copy(update={"live": {"status": "active", "generation": generation}})
        for address, record in state.instances.items()
    }
    return state.model_copy(update={"instances": instances})


@dataclass
class FakeClock:
    """A monotonic clock that only moves when someone sleeps; ``on_sleep`` hooks run first."""

    now: float = 1000.0
    sleeps: list[float] = field(default_factory=list)
    on_sleep: list[object] = field(default_factory=list)

    def monotonic(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds
        for hook in list(self.on_sleep):
            assert callable(hook)
            hook(len(self.sleeps))


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """A backend URL with a fresh, initialised schema of its own (dropped afterwards)."""
    with fresh_schema() as url:
        yield url


@pytest.fixture(params=["file", "memory", "postgres"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[StateStore]:
    """Each backend in turn: the shared semantics must hold for all of them."""
    if request.param == "file":
        yield FileStateStore(tmp_path / "state", emergency_fallback_dir=tmp_path / "fallback")
    elif request.param == "memory":
        yield MemoryStateStore(emergency_dir=tmp_path)
    else:
        with fresh_schema() as url:
            store = open_postgres(url, emergency_dir=tmp_path)
            yield store
            store.close()
