"""What a watcher did and saw: one :class:`WatchEvent` each, written as a readable line
(the default) or as one JSON object per line (``--log-format json``), and the last ones kept
for the status page."""

from __future__ import annotations

import json
import sys
from collections import deque
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime
from typing import Any, Literal, TextIO

from reconciler.redaction import scrub

LogFormat = Literal["text", "json"]
KEPT_EVENTS = 200


@dataclass(frozen=True)
class WatchEvent:
    event: str
    """cycle, heal, healed, heal_failed, heal_refused, drift, locked, backoff, error, stop..."""
    message: str
    fleet: str | None = None
    address: str | None = None
    at: str = field(
        default_factory=lambda: (
            datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
        )
    )
    details: dict[str, Any] = field(default_factory=dict)

    def line(self) -> str:
        where = self.address or self.fleet
        return f"{self.at} {self.event}" + (f" {where}" if where else "") + f": {self.message}"


class EventLog:
    """Writes every event (secrets scrubbed) and keeps the last :data:`KEPT_EVENTS`."""

    def __init__(self, stream: TextIO | None = None, log_format: LogFormat = "text") -> None:
        self.stream = stream if stream is not None else sys.stderr
        self.log_format = log_format
        self.recent: deque[WatchEvent] = deque(maxlen=KEPT_EVENTS)

    def emit(self, event: WatchEvent) -> None:
        # Scrubbed before it is kept: the status page and /status.json show these too.
        event = replace(event, message=scrub(event.message))
        self.recent.append(event)
        if self.log_format == "json":
            text = json.dumps({k: v for k, v in asdict(event).items() if v not in (None, {})})
        else:
            text = event.line()
        self.stream.write(scrub(text) + "\n")
        self.stream.flush()

    def __call__(self, event: str, message: str, **kw: Any) -> WatchEvent:
        made = WatchEvent(event, message, **kw)
        self.emit(made)
        return made
