"""Leases: refusals name the holder, heartbeats keep them, dead holders lose them, and a
holder whose lease is gone or expired cannot write."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import ExitStack
from datetime import UTC, datetime

import psycopg
import pytest

from reconciler.errors import LockError
from reconciler.state.holder import make_lock_info
from reconciler.state.postgres import PostgresStateStore
from reconciler.state.postgres_lease import acquire, check_for_write

from .conftest import FakeClock, make_state, with_generation
from .postgres_server import fresh_schema, open_postgres

SHORT_TTL = "1"  # seconds: the heartbeat renews every 1/3 s


@pytest.fixture
def short_lease_url() -> Iterator[str]:
    with fresh_schema(lease_ttl=SHORT_TTL) as url:
        yield url


def expire_leases(store: PostgresStateStore) -> None:
    with psycopg.connect(store.backend.conninfo, autocommit=True) as conn:
        conn.execute(
            f'UPDATE "{store.backend.schema}".leases '  # type: ignore[arg-type]
            "SET expires_at = clock_timestamp() - interval '1 second'"
        )


def test_refusal_names_the_holder_and_when_its_lease_runs_out(postgres_url: str) -> None:
    holder, other = open_postgres(postgres_url), open_postgres(postgres_url)
    with holder.lock("inference", command="reconciler apply specs/") as info:
        with pytest.raises(LockError) as caught:
            with other.lock("inference", command="reconciler plan"):
                pass
    message = str(caught.value)
    assert info.id in message and "reconciler apply specs/" in message
    assert "lease runs out at" in message and "lease time 30s" in message


def test_waiting_uses_the_injected_clock(postgres_url: str) -> None:
    holder = open_postgres(postgres_url)
    clock = FakeClock()
    waiter = open_postgres(postgres_url, clock=clock.monotonic, sleep=clock.sleep)
    with holder.lock("inference", command="long apply"):
        with pytest.raises(LockError, match="after waiting 1s"):
            with waiter.lock("inference", timeout=1.0, command="second"):
                pass
    assert clock.sleeps and sum(clock.sleeps) == pytest.approx(1.0)


def test_a_waiter_gets_the_lease_once_it_is_released(postgres_url: str) -> None:
    holder, waiter = open_postgres(postgres_url), open_postgres(postgres_url)
    taken, release = threading.Event(), threading.Event()

    def hold() -> None:
        with holder.lock("inference", command="first"):
            taken.set()
            release.wait()

    thread = threading.Thread(target=hold)
    thread.start()
    taken.wait()
    threading.Timer(0.3, release.set).start()
    with waiter.lock("inference", timeout=30, command="second") as info:
        assert waiter.lock_holder("inference") == info
    thread.join()


@pytest.mark.slow
def test_the_heartbeat_keeps_a_lease_past_its_lease_time(short_lease_url: str) -> None:
    holder, other = open_postgres(short_lease_url), open_postgres(short_lease_url)
    with holder.lock("inference", command="long apply") as info:
        time.sleep(2.5)  # 2.5 lease times: without renewals it would have expired
        with pytest.raises(LockError, match="long apply"):
            with other.lock("inference", command="second"):
                pass
        saved = holder.write(make_state())
        assert saved.serial == 1 and holder.lock_holder("inference") == info


def test_a_holder_that_stops_renewing_is_taken_over_and_cannot_write(
    short_lease_url: str,
) -> None:
    """A dead holder: its lease was taken, then nothing renews it (no heartbeat)."""
    dead = open_postgres(short_lease_url)
    info = make_lock_info("inference", command="killed apply", environ={}, now=datetime.now(UTC))
    acquire(dead.db, info, timeout=0, clock=time.monotonic, sleep=time.sleep)
    successor = open_postgres(short_lease_url)
    with successor.lock("inference", timeout=5, command="next run") as taken:
        assert successor.lock_holder("inference") == taken
        with pytest.raises(LockError, match="force-unlocked, or it expired and another run"):
            dead.db.run(lambda cur: check_for_write(dead.db, cur, "inference", {info.id}))


def test_an_expired_lease_refuses_writes_even_before_anyone_takes_it(
    postgres_url: str,
) -> None:
    store = open_postgres(postgres_url)
    saved = store.write(make_state())
    with store.lock("inference", command="stalled apply"):
        expire_leases(store)
        with pytest.raises(LockError, match="expired at"):
            store.write(with_generation(saved, 1))
    assert store.read("inference") == saved


def test_leaving_after_a_takeover_keeps_the_new_holders_lease(postgres_url: str) -> None:
    first, second = open_postgres(postgres_url), open_postgres(postgres_url)
    saved = first.write(make_state())
    with ExitStack() as first_block:
        first_block.enter_context(first.lock("inference", command="stalled apply"))
        expire_leases(first)
        with second.lock("inference", command="next run") as taken:
            with pytest.raises(LockError, match="was lost"):
                first.write(with_generation(saved, 1))
            first_block.close()  # the stalled run leaves while the next one holds the lease
            assert second.lock_holder("inference") == taken
            assert second.write(with_generation(saved, 2)).serial == 2
    assert second.lock_holder("inference") is None


def test_a_holder_is_told_when_its_lease_is_taken_over(short_lease_url: str) -> None:
    """Whoever acts under a lease (a watcher mid-heal) hears when it is lost, so it can stop
    before another holder acts on the same fleet."""
    holder = open_postgres(short_lease_url)
    lost: list[str] = []
    told = threading.Event()

    def on_lost(why: str) -> None:
        lost.append(why)
        told.set()

    with holder.lock("inference", command="watch", on_lost=on_lost):
        expire_leases(holder)
        successor = open_postgres(short_lease_url)
        with successor.lock("inference", timeout=5, command="other watcher"):
            assert told.wait(3), "the heartbeat did not notice the takeover"
    assert lost == ["the lease was taken over or force-unlocked"]


def test_a_holder_is_not_told_anything_while_its_lease_is_kept(short_lease_url: str) -> None:
    holder = open_postgres(short_lease_url)
    lost: list[str] = []
    with holder.lock("inference", command="watch", on_lost=lost.append):
        time.sleep(1.5)
    assert lost == []
