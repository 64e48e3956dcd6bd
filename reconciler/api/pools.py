"""Connection slots: at most ``parallelism`` requests in flight, spread over small pools.

httpcore's connection pool does bookkeeping that grows with the square of its connection count
on every request (``_assign_requests_to_connections``); at 64 connections that cost dwarfs the
request itself (measured with bench/bench_client.py's set-up: ~5 ms of client CPU per request
in one pool of 64, ~0.65 ms in pools of 4, ~1.1 ms in pools of 16). So the client keeps
several ``httpx.AsyncClient`` pools of at most :data:`CONNECTIONS_PER_POOL` connections, and a
slot names the pool a request runs on. Slots are handed out last-in-first-out, so a light load
keeps reusing the same warm connections.

With an injected transport (tests, the in-process emulator) there is one client; slots then
only bound concurrency.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

import httpx

CONNECTIONS_PER_POOL = 4


def pool_sizes(parallelism: int, per_pool: int = CONNECTIONS_PER_POOL) -> list[int]:
    """``parallelism`` split into pools of at most ``per_pool``: (10, 4) -> [4, 4, 2]."""
    full, rest = divmod(parallelism, per_pool)
    return [per_pool] * full + ([rest] if rest else [])


class ConnectionSlots:
    """``parallelism`` slots over one or more clients; ``async with slots.take() as http``."""

    def __init__(
        self,
        parallelism: int,
        make_client: Callable[[int], httpx.AsyncClient],
        *,
        shared_transport: bool,
    ) -> None:
        sizes = [parallelism] if shared_transport else pool_sizes(parallelism)
        self.clients = [make_client(size) for size in sizes]
        self._free: asyncio.LifoQueue[httpx.AsyncClient] = asyncio.LifoQueue()
        for client, size in zip(self.clients, sizes, strict=True):
            for _ in range(size):
                self._free.put_nowait(client)

    @asynccontextmanager
    async def take(self) -> AsyncIterator[httpx.AsyncClient]:
        """Wait for a free slot; yields the client whose connection it is."""
        client = await self._free.get()
        try:
            yield client
        finally:
            self._free.put_nowait(client)

    async def aclose(self) -> None:
        for client in self.clients:
            await client.aclose()
