from __future__ import annotations

import asyncio

import pytest

from reconciler.api import TokenBucket
from tests.api.conftest import FakeClock

pytestmark = pytest.mark.anyio


async def test_a_full_bucket_lets_a_burst_through_without_waiting() -> None:
    clock = FakeClock()
    bucket = TokenBucket(5, burst=5, clock=clock, sleep=clock.sleep)
    for _ in range(5):
        await bucket.acquire()
    assert clock.sleeps == []


async def test_an_empty_bucket_paces_callers_at_the_rate() -> None:
    clock = FakeClock()
    bucket = TokenBucket(4, burst=2, clock=clock, sleep=clock.sleep)
    for _ in range(2 + 8):
        await bucket.acquire()
    assert clock.now == pytest.approx(8 / 4)


async def test_tokens_refill_while_idle_up_to_the_burst() -> None:
    clock = FakeClock()
    bucket = TokenBucket(10, burst=3, clock=clock, sleep=clock.sleep)
    for _ in range(3):
        await bucket.acquire()
    clock.now += 100  # idle for a long time: refills only to the burst size
    for _ in range(3):
        await bucket.acquire()
    assert clock.sleeps == []
    await bucket.acquire()
    assert sum(clock.sleeps) == pytest.approx(0.1)


async def test_concurrent_callers_share_the_rate() -> None:
    clock = FakeClock()
    bucket = TokenBucket(10, burst=1, clock=clock, sleep=clock.sleep)
    await asyncio.gather(*(bucket.acquire() for _ in range(21)))
    assert clock.now == pytest.approx(2.0)


def test_rate_and_burst_must_be_positive() -> None:
    with pytest.raises(ValueError):
        TokenBucket(0)
    with pytest.raises(ValueError):
        TokenBucket(1, burst=0.5)
