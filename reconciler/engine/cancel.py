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

from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import asyncio


class CancelToken:
    """Set once; wakes every asyncio waiter registered with :meth:`wait`.

    Lock-free on purpose: :meth:`cancel` runs inside signal handlers, which interrupt the main
    thread at any bytecode, possibly in the middle of :meth:`wait`; a lock held there would
    deadlock the process. Appending to a list and assigning an attribute are atomic in
    CPython, and :meth:`wait` checks again after registering, so no wake-up is lost.
    """

    def __init__(self) -> None:
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
        if self._reason is not None:
            return
        self._reason = reason
        for wake in list(self._wakers):
            wake()

    async def wait(self) -> None:
        """Return once cancellation is requested."""
        import asyncio

        loop = asyncio.get_running_loop()
        event = asyncio.Event()

        def waker() -> None:
            _wake(loop, event)

        self._wakers.append(waker)
        try:
            if self._reason is not None:
                event.set()
            await event.wait()
        finally:
            self._wakers.remove(waker)


def _wake(loop: asyncio.AbstractEventLoop, event: asyncio.Event) -> None:
    try:
        loop.call_soon_threadsafe(event.set)
    except RuntimeError:  # the loop is closed: nobody waits any more
        pass
