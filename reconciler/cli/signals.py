"""SIGTERM and SIGINT, handled alike: a cancel is clean, a second signal forces the exit.

CI systems cancel jobs with signals: GitLab and ``docker stop`` send SIGTERM, GitHub Actions
sends SIGINT and then SIGTERM. Python's defaults are wrong for a tool holding locks: SIGTERM
kills at once (the lock file keeps its holder record and a PostgreSQL lease lingers until it
expires) and SIGINT is ignored altogether when the parent shell ignored it (a background job).
So the CLI installs its own handler for both, whatever the inherited disposition:

- **While planning** (or waiting for a lock, or at a prompt) the first signal raises
  :class:`Interrupted` at once: nothing was changed, the ``with`` blocks unwind, every lock is
  released and its record cleared.
- **While applying** the first signal cancels the run through a
  :class:`~reconciler.engine.cancel.CancelToken`: no new action starts, those in flight get a
  few seconds, everything learned is recorded, the summary says what finished and what is
  pending, then the locks are released.
- A **second** signal raises :class:`Interrupted` wherever the run is (still unwinding, so
  locks are released); a **third** ends the process on the spot.
- Once an apply has started, a first signal never raises: after the actions it only lets the
  run finish what it is doing (the summary, saving, releasing the locks), so no message can
  claim "nothing was changed" and no lock release is cut short.

Raising from a signal handler while an asyncio loop runs would land in whichever task happens
to be running, and asyncio stores a task's exception instead of propagating it. So while a
coroutine runs under :func:`run` the handler raises nothing: it cancels the run's main task
(through the loop, which is safe from a handler) and :func:`run` raises the
:class:`Interrupted` once the loop has unwound.

The exit code is 128 + the signal: 130 for SIGINT, 143 for SIGTERM.
"""

from __future__ import annotations

import os
import signal
from collections.abc import Coroutine, Iterator
from contextlib import contextmanager
from types import FrameType
from typing import TYPE_CHECKING, Any, TypeVar

from reconciler.engine.cancel import CancelToken

if TYPE_CHECKING:
    import asyncio

HANDLED = (signal.SIGTERM, signal.SIGINT)
T = TypeVar("T")


def exit_code_for(signum: int) -> int:
    return 128 + signum


def signal_name(signum: int) -> str:
    try:
        return signal.Signals(signum).name
    except ValueError:
        return f"signal {signum}"


class Interrupted(BaseException):  # noqa: N818 - a BaseException like KeyboardInterrupt
    """Raised in the main thread by a signal: unwinds the run (locks are released)."""

    def __init__(self, signum: int, *, forced: bool) -> None:
        super().__init__(signal_name(signum))
        self.signum = signum
        self.forced = forced

    @property
    def exit_code(self) -> int:
        return exit_code_for(self.signum)


class SignalGuard:
    """Installs the handlers for its lifetime (main thread only; elsewhere it does nothing)."""

    def __init__(self) -> None:
        self.count = 0
        self.first: int | None = None
        self.applying_started = False
        self._token: CancelToken | None = None
        self._previous: dict[int, Any] = {}
        self._main_task: asyncio.Task[Any] | None = None
        self._pending: Interrupted | None = None

    def install(self) -> None:
        for signum in HANDLED:
            try:
                self._previous[signum] = signal.signal(signum, self._handle)
            except ValueError:  # not the main thread (e.g. an embedding application)
                return

    def restore(self) -> None:
        for signum, previous in self._previous.items():
            try:
                signal.signal(signum, previous)
            except (ValueError, TypeError):
                pass
        self._previous.clear()

    @contextmanager
    def cancellable(self) -> Iterator[CancelToken]:
        """While applying: the first signal cancels ``token`` instead of raising."""
        token = CancelToken()
        self._token = token
        self.applying_started = True
        if self.first is not None:  # a signal arrived just before: honour it
            token.cancel(signal_name(self.first))
        try:
            yield token
        finally:
            self._token = None

    def run(self, main: Coroutine[Any, Any, T]) -> T:
        """``asyncio.run(main)``, interruptible without raising into a random task."""
        import asyncio

        async def root() -> T:
            self._main_task = asyncio.current_task()
            try:
                return await main
            finally:
                self._main_task = None

        try:
            result = asyncio.run(root())
        except asyncio.CancelledError:
            if self._pending is not None:
                raise self._pending from None
            raise
        if self._pending is not None:
            raise self._pending
        return result

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        self.count += 1
        if self.first is None:
            self.first = signum
        if self.count >= 3:
            os._exit(exit_code_for(self.first))
        forced = self.count > 1
        if not forced and (self._token is not None or self.applying_started):
            if self._token is not None:
                self._token.cancel(signal_name(signum))
            return  # the apply winds down by itself; nothing is cut short
        interrupt = Interrupted(self.first, forced=forced)
        task = self._main_task
        if task is not None and not task.done():
            self._pending = interrupt
            task.get_loop().call_soon_threadsafe(task.cancel)
            return
        raise interrupt


_CURRENT: list[SignalGuard] = []


def current_guard() -> SignalGuard | None:
    """The guard of the running command, if the CLI installed one."""
    return _CURRENT[-1] if _CURRENT else None


def run(main: Coroutine[Any, Any, T]) -> T:
    """Run a coroutine the way every CLI command does: under the guard when there is one."""
    import asyncio

    guard = current_guard()
    return guard.run(main) if guard is not None else asyncio.run(main)


@contextmanager
def guarded() -> Iterator[SignalGuard]:
    """The running command's guard: the one ``main()`` installed first thing, or a new one."""
    existing = current_guard()
    if existing is not None:
        yield existing
        return
    guard = SignalGuard()
    guard.install()
    _CURRENT.append(guard)
    try:
        yield guard
    finally:
        _CURRENT.remove(guard)
        guard.restore()
