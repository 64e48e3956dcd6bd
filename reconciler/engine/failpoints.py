"""Named fail-points for crash tests: kill the process at an exact step of the executor.

Set ``RECONCILER_FAILPOINT=<step>`` (first hit) or ``<step>:<n>`` (n-th hit); the CLI reads it
and passes a :class:`FailPoints` in, so nothing here reads the environment. The process kills
itself with SIGKILL there, or with ``<step>:<n>:TERM`` (or ``:INT``) sends itself that signal
and carries on, as a CI cancel arriving at that exact moment would. Steps:

``intent_recorded``   the create intent is durably in the state; nothing sent yet
``create_sent``       the create request is about to go on the wire
``create_returned``   Shadeform answered with an id that the state does not hold yet
``id_recorded``       the new id is in the state
``update_sent`` / ``delete_sent``   just before those requests
``action_saved``      the state was saved after an action
"""

from __future__ import annotations

import os
import signal

STEPS = (
    "intent_recorded",
    "create_sent",
    "create_returned",
    "id_recorded",
    "update_sent",
    "delete_sent",
    "action_saved",
)


class FailPoints:
    def __init__(self, spec: str | None = None) -> None:
        self._step: str | None = None
        self._remaining = 0
        self._signal = signal.SIGKILL
        if spec:
            step, _, rest = spec.partition(":")
            count, _, name = rest.partition(":")
            if step not in STEPS:
                raise ValueError(f"unknown fail-point {step!r}; known: {', '.join(STEPS)}")
            self._step = step
            self._remaining = int(count) if count else 1
            if name:
                self._signal = signal.Signals[f"SIG{name.upper()}"]

    def hit(self, step: str) -> None:
        if step != self._step:
            return
        self._remaining -= 1
        if self._remaining == 0:
            os.kill(os.getpid(), self._signal)
