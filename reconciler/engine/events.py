"""Progress events the executor emits; the views layer decides how to show them."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum


class Phase(StrEnum):
    STARTED = "started"
    PROGRESS = "progress"
    SUCCEEDED = "succeeded"
    FAILED = "failed"


@dataclass(frozen=True)
class ActionEvent:
    address: str
    action: str
    phase: Phase
    message: str = ""


ProgressSink = Callable[[ActionEvent], None]


def ignore_progress(event: ActionEvent) -> None:
    """A sink that drops every event (the default for library use and tests)."""
