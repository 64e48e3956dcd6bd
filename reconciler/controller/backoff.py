"""Per-address exponential backoff after a failed heal (pure: the clock is passed in).

The first failure waits ``base`` seconds, each next one twice as long, up to ``cap``; a
success forgets the address. A watcher never hammers the API for an address that keeps
failing (no capacity, an API error), and says until when it waits.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class Backoff:
    base: float
    cap: float
    failures: dict[str, int] = field(default_factory=dict)
    until: dict[str, float] = field(default_factory=dict)

    def waiting(self, key: str, now: float) -> bool:
        return self.until.get(key, 0.0) > now

    def failed(self, key: str, now: float) -> float:
        """Record a failure; the seconds until the next try."""
        count = self.failures.get(key, 0) + 1
        self.failures[key] = count
        delay = min(self.cap, self.base * 2 ** (count - 1))
        self.until[key] = now + delay
        return delay

    def succeeded(self, key: str) -> None:
        self.failures.pop(key, None)
        self.until.pop(key, None)
