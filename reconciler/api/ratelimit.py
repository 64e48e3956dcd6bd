"""An optional client-side token bucket, so a big refresh stays under Shadeform's rate limit.

::

    bucket = TokenBucket(rate_per_second=20, burst=20)
    await bucket.acquire()   # returns at once while tokens last, then paces callers

Waiters are served in arrival order (they queue on one lock). Clock and sleep are injectable.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable


class TokenBucket:
    """``rate_per_second`` tokens refill continuously up to ``burst``; one per request."""

    def __init__(
        self,
        rate_per_second: float,
        *,
        burst: float | None = None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        if rate_per_second <= 0:
            raise ValueError("rate_per_second must be positive")
        self.rate_per_second = rate_per_second
        self.burst = burst if burst is not None else max(1.0, rate_per_second)
        if self.burst < 1:
            raise ValueError("burst must be at least 1")
        self._clock = clock
        self._sleep = sleep
        self._tokens = self.burst
        self._updated = clock()
        self._lock = asyncio.Lock()

    def __repr__(self) -> str:
        return f"TokenBucket(rate_per_second={self.rate_per_second}, burst={self.burst})"

    def _refill(self) -> None:
        now = self._clock()
        self._tokens = min(self.burst, self._tokens + (now - self._updated) * self.rate_per_second)
        self._updated = now

    async def acquire(self) -> None:
        """Take one token, waiting for it if the bucket is empty."""
        async with self._lock:
            self._refill()
            if self._tokens < 1:
                await self._sleep((1 - self._tokens) / self.rate_per_second)
                self._refill()
                # The wait was computed to yield exactly one token; don't chase float dust.
                self._tokens = max(self._tokens, 1.0)
            self._tokens -= 1
