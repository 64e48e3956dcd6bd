"""The CLI's signal guard: SIGTERM and SIGINT alike, a clean cancel, a second signal forces."""

from __future__ import annotations

import os
import signal

import pytest

from reconciler.cli.signals import Interrupted, exit_code_for, guarded


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
