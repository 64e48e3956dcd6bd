"""What the emulated account ran, and when: for tests and benchmarks that check a rollout.

Every instance the emulator knew during its life is kept (gone ones included, in memory
only). From their timestamps :func:`extremes` finds, over a window, the fewest instances
that were ``active`` (serving, before readiness) and the most that were running (created and
not yet gone: booting and deleting ones are billed machines too) among those a filter picks.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

from reconciler.emulator.lifecycle import InstanceRecord


@dataclass(frozen=True)
class InstancePeriod:
    id: str
    name: str
    tags: tuple[str, ...]
    os: str
    created_at: float
    active_from: float | None
    """When it became active (None: never)."""
    active_until: float | None
    """When it stopped being active: deleting or failed (None: still active)."""
    gone_at: float | None

    def active(self, t: float) -> bool:
        return (
            self.active_from is not None
            and self.active_from <= t
            and (self.active_until is None or t < self.active_until)
        )

    def running(self, t: float) -> bool:
        return self.created_at <= t and (self.gone_at is None or t < self.gone_at)


def period_from_json(data: dict[str, object]) -> InstancePeriod:
    """A period as ``GET /_admin/timeline`` lists it."""
    fields = dict(data)
    fields["tags"] = tuple(fields["tags"])  # type: ignore[arg-type]
    return InstancePeriod(**fields)  # type: ignore[arg-type]


def period_of(record: InstanceRecord) -> InstancePeriod:
    ends = [t for t in (record.deleting_at, record.fails_at) if t is not None]
    stop = min(ends) if ends else None
    active_from = record.boots_at if stop is None or stop > record.boots_at else None
    return InstancePeriod(
        id=record.id,
        name=record.name,
        tags=tuple(record.tags),
        os=record.os,
        created_at=record.created_at,
        active_from=active_from,
        active_until=stop if active_from is not None else None,
        gone_at=record.gone_at,
    )


@dataclass(frozen=True)
class Extremes:
    fewest_active: int
    most_running: int


def extremes(
    periods: Iterable[InstancePeriod],
    *,
    since: float,
    until: float,
    chosen: Callable[[InstancePeriod], bool] = lambda p: True,
) -> Extremes:
    """The fewest active and the most running of the ``chosen`` periods in [since, until]."""
    picked = [p for p in periods if chosen(p)]
    moments = {since, until}
    for p in picked:
        for t in (p.created_at, p.active_from, p.active_until, p.gone_at):
            if t is not None and since <= t <= until:
                moments.add(t)
    fewest, most = len(picked) + 1, 0
    for t in sorted(moments):
        fewest = min(fewest, sum(1 for p in picked if p.active(t)))
        most = max(most, sum(1 for p in picked if p.running(t)))
    return Extremes(fewest_active=fewest if picked else 0, most_running=most)
