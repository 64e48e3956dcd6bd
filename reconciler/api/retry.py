"""When and how long to wait before retrying a failed API call.

Exponential backoff with full jitter (a uniformly random wait between 0 and
``min(max_delay, base_delay * 2 ** (attempt - 1))``), a server's ``Retry-After`` honoured
when present, at most ``max_attempts`` attempts and ``total_seconds`` of trying in all.
Sleep, randomness and the clock are injectable so tests run instantly and deterministically::

    policy = RetryPolicy(max_attempts=3, sleep=fake_sleep, random=lambda: 0.5)

Which failures are *retryable* is the client's decision (it knows whether a request may have
reached the server); this module only decides the wait.
"""

from __future__ import annotations

import asyncio
import email.utils
import random as _random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

# 500 is retried like the gateway errors: Shadeform answers a transient fault with a plain 500
# as often as with a 502-504, and a read (or an idempotent update/delete) is safe to repeat.
# Creates are never repeated on any 5xx: the client raises AmbiguousCreateError instead.
RETRYABLE_STATUSES: frozenset[int] = frozenset({429, 500, 502, 503, 504})


@dataclass(frozen=True, kw_only=True)
class RetryPolicy:
    """Bounded exponential backoff with full jitter. ``RetryPolicy.never()`` disables retries."""

    max_attempts: int = 5
    base_delay: float = 0.25
    max_delay: float = 8.0
    total_seconds: float = 60.0
    retry_statuses: frozenset[int] = RETRYABLE_STATUSES
    sleep: Callable[[float], Awaitable[None]] = field(default=asyncio.sleep, repr=False)
    random: Callable[[], float] = field(default=_random.random, repr=False)
    clock: Callable[[], float] = field(default=time.monotonic, repr=False)

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")
        if self.base_delay < 0 or self.max_delay < 0 or self.total_seconds < 0:
            raise ValueError("delays and total_seconds must not be negative")

    @classmethod
    def never(cls) -> RetryPolicy:
        return cls(max_attempts=1)

    def backoff(self, attempt: int) -> float:
        """Full-jitter wait after failed attempt number ``attempt`` (1-based)."""
        ceiling = min(self.max_delay, self.base_delay * (2 ** (attempt - 1)))
        return self.random() * ceiling

    def next_delay(self, attempt: int, elapsed: float, retry_after: float | None) -> float | None:
        """Seconds to wait before attempt ``attempt + 1``, or ``None`` to give up.

        ``elapsed`` is the time spent since the first attempt started; a wait that would end
        past ``total_seconds`` (including a server's long ``Retry-After``) means giving up now.
        """
        if attempt >= self.max_attempts:
            return None
        delay = retry_after if retry_after is not None else self.backoff(attempt)
        if elapsed + delay > self.total_seconds:
            return None
        return delay


def parse_retry_after(value: str | None, *, now: datetime | None = None) -> float | None:
    """Seconds from a ``Retry-After`` header (delta-seconds or HTTP-date); ``None`` if absent
    or unreadable. Negative values and dates in the past become ``0``."""
    if value is None:
        return None
    text = value.strip()
    if not text:
        return None
    try:
        return max(0.0, float(text))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(text)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    current = now or datetime.now(UTC)
    return max(0.0, (when - current).total_seconds())
