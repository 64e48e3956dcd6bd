"""An emulated instance and how its status follows from timestamps.

Nothing runs in the background: an instance stores *when* things happen (created, boots,
fails, starts deleting, is gone) and :func:`observe` derives its status for any moment.
That keeps the emulator correct under a fake clock, across restarts from a data file and
with ``boot_seconds=0``.

Timeline of a healthy instance with ``boot_seconds = B``::

    created ── creating ──> 0.1 B ── pending_provider ──> 0.4 B ── pending ──> B ── active

``fails_at`` turns it to ``error``; ``deleting_at`` to ``deleting`` and ``gone_at`` to
``deleted`` (then it disappears from the API). Deletion wins over everything else.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

CREATING_UNTIL = 0.1
PENDING_PROVIDER_UNTIL = 0.4
PREEMPTED = "preempted"

JsonDict = dict[str, Any]


@dataclass(slots=True)
class InstanceRecord:
    """Everything the emulator knows about one instance; JSON-serialisable as a dict."""

    id: str
    name: str
    cloud: str
    region: str
    shade_instance_type: str
    cloud_instance_type: str
    rental_type: str
    shade_cloud: bool
    os: str
    cloud_assigned_id: str
    ip: str
    hourly_price: int
    created_at: float
    boot_seconds: float
    ssh_port: int = 22
    launch_configuration: JsonDict | None = None
    volume_ids: list[str] = field(default_factory=list)
    ssh_key_id: str | None = None
    auto_delete: JsonDict | None = None
    alert: JsonDict | None = None
    volume_mount: JsonDict | None = None
    tags: list[str] = field(default_factory=list)
    envs: list[JsonDict] = field(default_factory=list)
    fails_at: float | None = None
    failure_details: str | None = None
    deleting_at: float | None = None
    gone_at: float | None = None
    deleting_details: str | None = None
    restarted_at: float | None = None

    def to_json(self) -> JsonDict:
        return asdict(self)

    @classmethod
    def from_json(cls, data: JsonDict) -> InstanceRecord:
        return cls(**data)

    @property
    def boots_at(self) -> float:
        return self.created_at + self.boot_seconds


@dataclass(frozen=True, slots=True)
class Observation:
    """An instance as seen at one moment."""

    status: str
    details: str | None
    active_at: float | None
    billed_seconds: float

    @property
    def gone(self) -> bool:
        return self.status == "deleted"


def _reached_active(record: InstanceRecord) -> bool:
    boots_at = record.boots_at
    if record.fails_at is not None and record.fails_at <= boots_at:
        return False
    return record.deleting_at is None or record.deleting_at > boots_at


def observe(record: InstanceRecord, now: float) -> Observation:
    """The status, status details, activation time and billed time of ``record`` at ``now``."""
    active_at = record.boots_at if _reached_active(record) and now >= record.boots_at else None
    stops = [t for t in (record.deleting_at, record.fails_at, now) if t is not None]
    billed = max(0.0, min(stops) - active_at) if active_at is not None else 0.0

    if record.gone_at is not None and now >= record.gone_at:
        return Observation("deleted", record.deleting_details, active_at, billed)
    if record.deleting_at is not None and now >= record.deleting_at:
        return Observation("deleting", record.deleting_details, active_at, billed)
    if record.fails_at is not None and now >= record.fails_at:
        return Observation("error", record.failure_details, active_at, billed)
    if active_at is not None:
        return Observation("active", None, active_at, billed)
    elapsed = now - record.created_at
    if elapsed < CREATING_UNTIL * record.boot_seconds:
        return Observation("creating", None, None, 0.0)
    if elapsed < PENDING_PROVIDER_UNTIL * record.boot_seconds:
        return Observation("pending_provider", "waiting for the provider", None, 0.0)
    return Observation("pending", "booting", None, 0.0)


def start_deleting(
    record: InstanceRecord, at: float, delete_seconds: float, details: str | None = None
) -> bool:
    """Move ``record`` to deleting at ``at``; False if it was already deleting."""
    if record.deleting_at is not None and record.deleting_at <= at:
        return False
    record.deleting_at = at
    record.gone_at = at + delete_seconds
    record.deleting_details = details
    return True


def preempt_if_due(
    record: InstanceRecord, now: float, preempt_after: float | None, delete_seconds: float
) -> bool:
    """Reclaim a spot instance ``preempt_after`` seconds after creation; True if it changed.

    Called on every read so preemption is lazy too; once it happened it is written into the
    record, so turning the knob off later does not bring the instance back.
    """
    if record.rental_type != "spot" or preempt_after is None or record.deleting_at is not None:
        return False
    due = record.created_at + preempt_after
    if now < due:
        return False
    return start_deleting(record, due, delete_seconds, PREEMPTED)
