"""A cancellation request the executor honours between and around actions.

Whoever wants a run to stop (the CLI on SIGTERM or SIGINT, a controller shutting down) calls
:meth:`CancelToken.cancel`; it is safe from a signal handler and from another thread. The
executor then starts no new action, gives the ones in flight a short grace to finish (so what
they learn is recorded), abandons the rest safely (a create in flight keeps its intent, to be
resolved by the next run) and returns its report with ``cancelled`` set.

Example::

    token = CancelToken()
    executor = Executor(client, cancel=token)
    ...  # elsewhere: token.cancel("SIGTERM")
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable


class CancelToken:
    """Set once; wakes every asyncio waiter registered with :meth:`wait`."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._reason: str | None = None
        self._wakers: list[Callable[[], None]] = []

    @property
    def requested(self) -> bool:
        return self._reason is not None

    @property
    def reason(self) -> str | None:
        """Why the run is being cancelled (e.g. ``"SIGTERM"``), or None."""
        return self._reason

    def cancel(self, reason: str) -> None:
        """Ask the run to stop; idempotent (the first reason is kept)."""
        with self._lock:
            if self._reason is not None:
                return
            self._reason = reason
            wakers, self._wakers = self._wakers, []
        for wake in wakers:
            wake()

    async def wait(self) -> None:
        """Return once cancellation is requested."""
        loop = asyncio.get_running_loop()
        event = asyncio.Event()
        with self._lock:
            if self._reason is None:
                self._wakers.append(lambda: _wake(loop, event))
            else:
                event.set()
        await event.wait()


def _wake(loop: asyncio.AbstractEventLoop, event: asyncio.Event) -> None:
    try:
        loop.call_soon_threadsafe(event.set)
    except RuntimeError:  # the loop is closed: nobody waits any more
        pass
