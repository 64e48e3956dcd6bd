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
``gone_confirmed``    a deleted resource others waited for is confirmed gone
``action_saved``      the state was saved after an action

A step counts for every kind of resource; ``volume.create_sent`` (or ``ssh_key.…``,
``instance.…``) counts that kind's only.
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
    "gone_confirmed",
    "action_saved",
)
KIND_NAMES = ("instance", "volume", "ssh_key")


class FailPoints:
    def __init__(self, spec: str | None = None) -> None:
        self._step: str | None = None
        self._remaining = 0
        self._signal = signal.SIGKILL
        if spec:
            step, _, rest = spec.partition(":")
            count, _, name = rest.partition(":")
            kind, dot, bare = step.rpartition(".")
            if bare not in STEPS or (dot and kind not in KIND_NAMES):
                raise ValueError(
                    f"unknown fail-point {step!r}; known: {', '.join(STEPS)}, each also as "
                    f"<kind>.<step> for kind {', '.join(KIND_NAMES)}"
                )
            self._step = step
            self._remaining = int(count) if count else 1
            if name:
                self._signal = signal.Signals[f"SIG{name.upper()}"]

    def hit(self, step: str, kind: str = "instance") -> None:
        if self._step not in (step, f"{kind}.{step}"):
            return
        self._remaining -= 1
        if self._remaining == 0:
            os.kill(os.getpid(), self._signal)
