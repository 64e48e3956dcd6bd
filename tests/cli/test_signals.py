"""The CLI's signal guard: SIGTERM and SIGINT alike, a clean cancel, a second signal forces."""

from __future__ import annotations

import asyncio
import os
import signal
import time

import pytest

from reconciler.cli.signals import Interrupted, exit_code_for, guarded
from reconciler.engine.cancel import CancelToken


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_outside_an_apply_the_first_signal_unwinds_at_once(signum: int) -> None:
    released = []
    with guarded():
        with pytest.raises(Interrupted) as caught:
            try:
                os.kill(os.getpid(), signum)
                raise AssertionError("not interrupted")
            finally:
                released.append("lock")  # a `with lock:` block unwinds
    assert released == ["lock"]
    assert caught.value.signum == signum and not caught.value.forced
    assert caught.value.exit_code == exit_code_for(signum) == 128 + signum


def test_while_applying_the_first_signal_cancels_and_the_second_forces() -> None:
    with guarded() as guard, guard.cancellable() as token:
        os.kill(os.getpid(), signal.SIGTERM)
        assert token.requested and token.reason == "SIGTERM"
        with pytest.raises(Interrupted) as caught:
            os.kill(os.getpid(), signal.SIGINT)
            raise AssertionError("not interrupted")
    assert caught.value.forced and caught.value.signum == signal.SIGTERM  # the first names it


def test_a_signal_ignored_by_the_parent_is_handled_and_restored_afterwards() -> None:
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        with guarded():
            assert signal.getsignal(signal.SIGINT) not in (signal.SIG_IGN, signal.SIG_DFL)
        assert signal.getsignal(signal.SIGINT) is signal.SIG_IGN
    finally:
        signal.signal(signal.SIGINT, previous)


def test_a_signal_during_a_coroutine_cancels_the_run_instead_of_hiding_in_a_task() -> None:
    """Raised from a handler, an exception lands in whichever task runs, and asyncio keeps a
    task's exception to itself; the guard cancels the main task and raises afterwards."""
    finished: list[str] = []

    async def work() -> None:
        async def child() -> None:
            try:
                os.kill(os.getpid(), signal.SIGTERM)  # arrives while this task runs
                await asyncio.sleep(10)
            finally:
                finished.append("child unwound")

        await asyncio.gather(asyncio.create_task(child()), asyncio.sleep(10))

    with guarded() as guard:
        started = time.monotonic()
        with pytest.raises(Interrupted) as caught:
            guard.run(work())
    assert time.monotonic() - started < 5
    assert caught.value.signum == signal.SIGTERM and finished == ["child unwound"]


def test_while_applying_a_second_signal_in_a_coroutine_forces_the_exit() -> None:
    async def apply(token) -> None:  # type: ignore[no-untyped-def]
        os.kill(os.getpid(), signal.SIGINT)
        await asyncio.sleep(0)
        assert token.requested  # the first only asked the apply to stop
        os.kill(os.getpid(), signal.SIGTERM)
        await asyncio.sleep(10)

    with guarded() as guard:
        with guard.cancellable() as token:
            with pytest.raises(Interrupted) as caught:
                guard.run(apply(token))
    assert caught.value.forced and caught.value.signum == signal.SIGINT


def test_after_an_apply_a_first_signal_does_not_cut_the_wind_down_short() -> None:
    with guarded() as guard:
        with guard.cancellable():
            pass
        os.kill(os.getpid(), signal.SIGTERM)  # e.g. while locks are being released
        released = True
    assert released and guard.first == signal.SIGTERM


def test_cancel_tokens_take_no_lock_a_handler_could_deadlock_on() -> None:
    token = CancelToken()

    async def waiting() -> None:
        waiter = asyncio.create_task(token.wait())
        await asyncio.sleep(0)
        token.cancel("SIGTERM")  # as a handler would, at any moment
        token.cancel("SIGINT")  # idempotent: the first reason stays
        await asyncio.wait_for(waiter, 1)

    asyncio.run(waiting())
    assert token.reason == "SIGTERM"
