"""Run awaitables together so that none outlives a failure of another."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any, TypeVar

T = TypeVar("T")


async def all_or_nothing(*coroutines: Coroutine[Any, Any, T]) -> list[T]:
    """Their results, in order; if one fails (or this is cancelled), the others are
    cancelled and waited for before the error goes on, so nothing is left running."""
    tasks = [asyncio.ensure_future(c) for c in coroutines]
    try:
        return list(await asyncio.gather(*tasks))
    except BaseException:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        raise
