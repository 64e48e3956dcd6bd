"""What the PostgreSQL backend adds beyond the shared rules (those run in test_store.py):
history, compare-and-swap under real concurrency, caching, lost connections, imports."""

from __future__ import annotations

import threading
from pathlib import Path

import psycopg
import pytest

from reconciler.errors import StateError
from reconciler.state import StateStore, new_state
from reconciler.state.postgres import PostgresStateStore
from reconciler.state.versions import PlanAttributedWrites, StateImporter, VersionHistory

from .conftest import make_state, with_generation
from .postgres_server import open_postgres


@pytest.fixture
def store(postgres_url: str, tmp_path: Path) -> PostgresStateStore:
    return open_postgres(postgres_url, emergency_dir=tmp_path)


def admin(store: PostgresStateStore, statement: str, *params: object) -> None:
    with psycopg.connect(store.backend.conninfo, autocommit=True) as conn:
        conn.execute(statement.replace("{schema}", store.backend.schema), params)  # type: ignore[arg-type]


def generation(state_store: StateStore) -> int:
    state = state_store.read("inference")
    assert state is not None
    live = state.instances["inference/worker-0"].live
    assert live is not None
    return int(live["generation"])


def test_offers_every_capability(store: PostgresStateStore) -> None:
    assert isinstance(store, StateStore)
    assert isinstance(store, VersionHistory)
    assert isinstance(store, PlanAttributedWrites)
    assert isinstance(store, StateImporter)


def test_history_keeps_every_version_with_who_and_which_plan(store: PostgresStateStore) -> None:
    first = store.write(make_state())
    store.write(first)  # unchanged: no new version
    with store.lock("inference", command="reconciler apply plan.json") as info:
        second = store.write_from_plan(with_generation(first, 1), plan_digest="sha256:abc")
    versions = store.history("inference")
    assert [v.serial for v in versions] == [2, 1]
    newest, oldest = versions
    assert newest.plan_digest == "sha256:abc" and newest.lock_id == info.id
    assert (
        "reconciler apply plan.json" in newest.written_by
        and f"(pid {info.pid})" in newest.written_by
    )
    assert oldest.lock_id is None and "(without a lock)" in oldest.written_by
    assert newest.lineage == oldest.lineage == first.lineage
    assert store.history("inference", limit=1) == [newest]
    assert store.read_version("inference", 1) == first
    assert store.read_version("inference", 2) == second
    assert store.read_version("inference", 3) is None
    assert store.history("training") == []


def test_concurrent_writers_without_locks_never_lose_an_update(postgres_url: str) -> None:
    """Each thread has its own store (connection) and retries on conflict: the final
    counter counts every increment and the history holds every serial exactly once."""
    seed = open_postgres(postgres_url)
    seed.write(with_generation(make_state(), 0))
    threads_count, increments = 4, 8
    conflicts: list[int] = []

    def increment() -> None:
        mine = open_postgres(postgres_url)
        done = 0
        while done < increments:
            current = mine.read("inference")
            assert current is not None
            live = current.instances["inference/worker-0"].live or {}
            try:
                mine.write(with_generation(current, int(live["generation"]) + 1))
                done += 1
            except StateError as exc:
                assert "changed" in str(exc)
                conflicts.append(1)
        mine.close()

    workers = [threading.Thread(target=increment) for _ in range(threads_count)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    total = threads_count * increments
    assert generation(seed) == total
    serials = sorted(v.serial for v in seed.history("inference"))
    assert serials == list(range(1, total + 2))


def test_a_write_from_a_stale_read_is_refused(postgres_url: str) -> None:
    mine, theirs = open_postgres(postgres_url), open_postgres(postgres_url)
    saved = mine.write(make_state())
    current = theirs.read("inference")
    assert current is not None
    theirs.write(with_generation(current, 5))
    with pytest.raises(StateError, match="changed since it was read"):
        mine.write(with_generation(saved, 6))
    assert generation(mine) == 5, "the cached version is not served once the row moved on"


def test_a_write_survives_a_dropped_connection_exactly_once(store: PostgresStateStore) -> None:
    saved = store.write(make_state())
    pid = store.db.run(lambda cur: cur.execute("SELECT pg_backend_pid()").fetchone())
    assert pid is not None
    admin(store, "SELECT pg_terminate_backend(%s)", pid[0])
    assert store.write(with_generation(saved, 1)).serial == 2
    assert [v.serial for v in store.history("inference")] == [2, 1]


def test_damaged_rows_are_reported_not_used(store: PostgresStateStore) -> None:
    store.write(make_state())
    admin(store, """UPDATE {schema}.state_history SET state = '{"fleet": "inference"}'""")
    fresh = open_postgres(f"{store.backend.conninfo}?schema={store.backend.schema}")
    with pytest.raises(StateError, match="no valid format_version"):
        fresh.read("inference")


def test_import_keeps_lineage_and_serial_and_refuses_other_histories(
    store: PostgresStateStore,
) -> None:
    state = make_state().model_copy(update={"serial": 7})
    assert store.import_state(state) is True
    assert store.read("inference") == state
    assert store.import_state(state) is False, "the same version again is a no-op"
    assert [
        (v.serial, v.written_by.startswith("migrated here by")) for v in store.history("inference")
    ] == [(7, True)]
    with pytest.raises(StateError, match="different history"):
        store.import_state(new_state("inference").model_copy(update={"serial": 9}))
    with pytest.raises(StateError, match="newer than"):
        store.import_state(state.model_copy(update={"serial": 6}))
    newer = with_generation(state, 1).model_copy(update={"serial": 9})
    assert store.import_state(newer) is True
    assert store.write(with_generation(newer, 2)).serial == 10, "writes carry on from there"


def test_emergency_copy_goes_to_the_given_directory(
    store: PostgresStateStore, tmp_path: Path
) -> None:
    path = store.write_emergency_copy(make_state())
    assert path.parent == tmp_path and path.name.startswith("inference.emergency-")
