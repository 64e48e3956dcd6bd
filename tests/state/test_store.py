"""The rules every backend shares, run against each backend through the ``store`` fixture."""

from __future__ import annotations

import asyncio
import re

import pytest

from reconciler.errors import LockError, StateError, UsageError
from reconciler.models.state import STATE_FORMAT_VERSION, FleetState
from reconciler.state import StateStore, check_fleet_name, new_state
from reconciler.state.store import next_version

from .conftest import make_state, with_generation


def test_new_state_is_fresh_and_unique() -> None:
    first, second = new_state("inference"), new_state("inference")
    assert first.serial == 0 and first.fleet == "inference"
    assert first.instances == {} and first.intents == {}
    assert re.fullmatch(r"[0-9a-f]{64}", first.fingerprint_key)
    assert first.lineage != second.lineage
    assert first.fingerprint_key != second.fingerprint_key


@pytest.mark.parametrize("name", ["inference", "a", "team.fleet_2-x", "A1"])
def test_valid_fleet_names(name: str) -> None:
    check_fleet_name(name)


@pytest.mark.parametrize(
    "name", ["", "../etc", ".hidden", "a/b", "a..b", "with space", "-dash", "x\n", "a" * 101]
)
def test_invalid_fleet_names_are_refused(name: str) -> None:
    with pytest.raises(UsageError, match="not a valid fleet name"):
        check_fleet_name(name)


def test_read_of_unknown_fleet_is_none(store: StateStore) -> None:
    assert store.read("inference") is None
    assert store.list_fleets() == []


def test_first_write_gets_serial_one_and_round_trips(store: StateStore) -> None:
    state = make_state()
    saved = store.write(state)
    assert saved.serial == 1
    assert state.serial == 0, "the caller's object is not modified"
    assert store.read("inference") == saved
    assert store.list_fleets() == ["inference"]


def test_serial_moves_only_when_content_changes(store: StateStore) -> None:
    saved = store.write(make_state())
    again = store.write(saved)
    assert again.serial == 1
    assert store.read("inference") == saved
    changed = store.write(with_generation(saved, 7))
    assert changed.serial == 2
    read_back = store.read("inference")
    assert read_back is not None
    assert read_back.instances["inference/worker-0"].live == {"status": "active", "generation": 7}


def test_stale_serial_is_a_conflict(store: StateStore) -> None:
    saved = store.write(make_state())
    store.write(with_generation(saved, 1))  # someone else moved it to serial 2
    with pytest.raises(StateError, match="changed since it was read"):
        store.write(with_generation(saved, 2))


def test_serial_ahead_of_store_is_a_conflict(store: StateStore) -> None:
    with pytest.raises(StateError, match="changed since it was read"):
        store.write(make_state().model_copy(update={"serial": 3}))


def test_other_lineage_is_refused_naming_both(store: StateStore) -> None:
    saved = store.write(make_state())
    foreign = new_state("inference").model_copy(update={"serial": saved.serial})
    with pytest.raises(StateError) as caught:
        store.write(foreign)
    assert saved.lineage in str(caught.value) and foreign.lineage in str(caught.value)
    assert store.read("inference") == saved


def test_newer_format_is_not_written(store: StateStore) -> None:
    newer = STATE_FORMAT_VERSION + 1
    with pytest.raises(StateError, match=f"format version {newer}"):
        store.write(make_state().model_copy(update={"format_version": newer}))


def test_fleets_are_separate(store: StateStore) -> None:
    store.write(make_state("training"))
    store.write(make_state("inference"))
    assert store.list_fleets() == ["inference", "training"]
    training = store.read("training")
    assert training is not None and training.fleet == "training"


def test_emergency_copy_holds_the_state(store: StateStore) -> None:
    state = with_generation(make_state(), 5)
    path = store.write_emergency_copy(state)
    assert path.exists()
    assert FleetState.model_validate_json(path.read_text()) == state
    assert "inference.emergency-" in path.name


def test_lock_yields_holder_and_refuses_a_second_taker(store: StateStore) -> None:
    with store.lock("inference", command="reconciler apply") as info:
        assert info.fleet == "inference" and info.command == "reconciler apply"
        assert store.lock_holder("inference") == info
        with pytest.raises(LockError) as caught:
            with store.lock("inference", command="reconciler plan"):
                pass
        assert info.id in str(caught.value) and "reconciler apply" in str(caught.value)
        with store.lock("training", command="other fleet is independent"):
            pass
    with store.lock("inference", command="again") as second:
        assert second.id != info.id


def test_force_unlock_needs_the_holder_id(store: StateStore) -> None:
    with pytest.raises(LockError, match="not locked"):
        store.force_unlock("inference", "nope")
    with store.lock("inference", command="hung apply") as info:
        with pytest.raises(LockError, match="does not match"):
            store.force_unlock("inference", "wrong-id")
        store.force_unlock("inference", info.id)
        with store.lock("inference", command="next run") as taken:
            assert store.lock_holder("inference") == taken


def test_force_unlocked_holder_can_no_longer_write(store: StateStore) -> None:
    saved = store.write(make_state())
    with store.lock("inference", command="hung apply") as info:
        store.force_unlock("inference", info.id)
        with pytest.raises(LockError, match="force-unlocked"):
            store.write(with_generation(saved, 1))
    assert store.read("inference") == saved
    assert store.write(with_generation(saved, 1)).serial == 2, "after leaving, writes work"


def test_next_version_without_stored_state() -> None:
    state = make_state()
    persisted = next_version(None, state)
    assert persisted is not None and persisted.serial == 1
    assert persisted.content_equal(state)


def test_force_unlock_also_stops_writes_made_from_a_worker_thread(store: StateStore) -> None:
    """The executor writes through ``asyncio.to_thread`` while its task holds the lock."""
    saved = store.write(make_state())

    async def hung_apply() -> None:
        with store.lock("inference", command="hung apply") as info:
            await asyncio.to_thread(store.write, with_generation(saved, 1))  # allowed
            store.force_unlock("inference", info.id)
            with pytest.raises(LockError, match="force-unlocked"):
                await asyncio.to_thread(store.write, with_generation(saved, 2))

    asyncio.run(hung_apply())
    stored = store.read("inference")
    assert stored is not None and stored.serial == 2
