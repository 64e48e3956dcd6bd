"""What the executor reports while it works; the views layer decides how to show it."""

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
class InstanceWait:
    """One new instance being waited for: where it is in Shadeform's boot, and for how long."""

    address: str
    instance_id: str
    status: str  # creating, pending_provider, pending, active, ...
    waited_seconds: float
    boot_seconds_max: int | None = None  # what the catalog expects, when known


@dataclass(frozen=True)
class ActionEvent:
    address: str
    action: str
    phase: Phase
    message: str = ""
    waits: tuple[InstanceWait, ...] = ()
    """For the ``wait`` progress event: every instance still booting."""
    boot_finished: bool = False
    """A new instance's boot ended (active, or failed while booting)."""


ProgressSink = Callable[[ActionEvent], None]


def ignore_progress(event: ActionEvent) -> None:
    """A sink that drops every event (the default for library use and tests)."""
