from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Callable

import httpx
import pytest

from reconciler.api.pools import ConnectionSlots, pool_sizes

pytestmark = pytest.mark.anyio


@pytest.mark.parametrize(
    ("parallelism", "per_pool", "sizes"),
    [(64, 4, [4] * 16), (10, 4, [4, 4, 2]), (3, 4, [3]), (1, 8, [1])],
)
def test_pool_sizes_split_parallelism_into_small_pools(
    parallelism: int, per_pool: int, sizes: list[int]
) -> None:
    assert pool_sizes(parallelism, per_pool) == sizes


def _recorder() -> tuple[list[int], Callable[[int], httpx.AsyncClient]]:
    made: list[int] = []

    def make(connections: int) -> httpx.AsyncClient:
        made.append(connections)
        return httpx.AsyncClient(transport=httpx.MockTransport(lambda r: httpx.Response(200)))

    return made, make


async def test_own_pools_are_small_and_an_injected_transport_gets_one_client() -> None:
    made, make = _recorder()
    slots = ConnectionSlots(10, make, shared_transport=False)
    assert made == [4, 4, 2] and len(slots.clients) == 3
    made.clear()
    shared = ConnectionSlots(10, make, shared_transport=True)
    assert made == [10] and len(shared.clients) == 1
    await slots.aclose()
    await shared.aclose()
    assert all(client.is_closed for client in slots.clients + shared.clients)


async def test_slots_bound_each_pool_and_the_total() -> None:
    _, make = _recorder()
    slots = ConnectionSlots(10, make, shared_transport=False)
    in_use: Counter[int] = Counter()
    peak_total = 0
    peak_per_pool: Counter[int] = Counter()

    async def work() -> None:
        nonlocal peak_total
        async with slots.take() as client:
            key = id(client)
            in_use[key] += 1
            peak_per_pool[key] = max(peak_per_pool[key], in_use[key])
            peak_total = max(peak_total, sum(in_use.values()))
            for _ in range(5):
                await asyncio.sleep(0)
            in_use[key] -= 1

    await asyncio.gather(*(work() for _ in range(50)))
    sizes = {id(client): size for client, size in zip(slots.clients, [4, 4, 2], strict=True)}
    assert peak_total == 10
    assert all(peak_per_pool[key] <= sizes[key] for key in sizes)
    await slots.aclose()


async def test_a_slot_is_returned_when_the_request_fails() -> None:
    _, make = _recorder()
    slots = ConnectionSlots(1, make, shared_transport=False)
    with pytest.raises(RuntimeError):
        async with slots.take():
            raise RuntimeError("boom")
    async with slots.take() as client:  # would wait forever if the slot had leaked
        assert client is slots.clients[0]
    await slots.aclose()


async def test_the_most_recently_freed_pool_is_reused_first() -> None:
    _, make = _recorder()
    slots = ConnectionSlots(8, make, shared_transport=False)
    async with slots.take() as first:
        pass
    async with slots.take() as second:
        assert second is first
    await slots.aclose()
