"""Plans: frozen data with a versioned JSON form (``PLAN_FORMAT_VERSION``).

A :class:`Plan` holds one :class:`FleetPlan` per fleet; each lists :class:`Change` objects in a
deterministic order (by kind, then address). A change acts on one resource of one ``kind``
(``instance``, ``volume`` or ``ssh_key``). Reasons are for people; the executor acts on
``kind``, ``action``, ``resource_id``, ``create_before_destroy`` and ``depends_on`` alone.
Specs appear in *comparable* form (secrets replaced by fingerprints), so a plan file never
holds a secret value; the executor re-reads the desired specs from the manifests (whose digest
the plan pins).

Money is in cents per hour: whole cents for instances (Shadeform prices them so), fractions for
storage (a volume costs ``size_in_gb * price_per_gb_per_hour``), rounded to 1e-6 cent.

Format 2 (this one) added ``kind``, ``depends_on``, ``destroys_data`` and renamed
``instance_id`` to ``resource_id``; a format 1 plan file still reads.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any, Literal

from pydantic import AliasChoices, BaseModel, ConfigDict, Field

from reconciler.models.catalog import HOURS_PER_30_DAYS, Cents, Offer, round_cents

PLAN_FORMAT_VERSION = 2
SENSITIVE_PREFIX = "(sensitive:"

ResourceKindName = Literal["instance", "volume", "ssh_key"]
"""The kinds of resource a fleet manages; each has one handler in ``reconciler.engine.kinds``."""


def is_fingerprint(value: Any) -> bool:
    """Whether ``value`` is a secret's fingerprint (what plans and states hold instead)."""
    return isinstance(value, str) and value.startswith(SENSITIVE_PREFIX)


class PlanModel(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Action(StrEnum):
    CREATE = "create"
    UPDATE = "update"
    REPLACE = "replace"
    DELETE = "delete"
    NOOP = "no-op"
    FORGET = "forget"  # the resource is already gone; only its state record is dropped

    @property
    def symbol(self) -> str:
        return _SYMBOLS[self]

    @property
    def is_change(self) -> bool:
        """Whether this action changes infrastructure (what -detailed-exitcode counts)."""
        return self in (Action.CREATE, Action.UPDATE, Action.REPLACE, Action.DELETE)


_SYMBOLS = {
    Action.CREATE: "+",
    Action.UPDATE: "~",
    Action.REPLACE: "-/+",
    Action.DELETE: "-",
    Action.NOOP: " ",
    Action.FORGET: "x",
}


class ReasonCode(StrEnum):
    NEW = "new"
    FIELD_CHANGED = "field_changed"
    FORCES_REPLACEMENT = "forces_replacement"
    DELETED_OUTSIDE = "deleted_outside"
    IN_ERROR = "in_error"
    PREEMPTED = "preempted"
    ADOPTED_ORPHAN = "adopted_orphan"
    DUPLICATE_ORPHAN = "duplicate_orphan"
    REMOVED_FROM_MANIFEST = "removed_from_manifest"
    REPLACE_REQUESTED = "replace_requested"
    NOT_OWNED = "not_owned"
    UNCHANGED = "unchanged"
    DEPENDENCY_REPLACED = "dependency_replaced"  # a volume or key it uses is created anew
    DESTROYS_DATA = "destroys_data"


class Reason(PlanModel):
    code: ReasonCode
    message: str


class FieldChange(PlanModel):
    """One changed field; values are comparable-form JSON (secrets are fingerprints)."""

    path: str
    before: Any = None
    after: Any = None
    forces_replacement: bool = False
    sensitive: bool = False


class PlacementChoice(PlanModel):
    """Where a new instance goes: the chosen offer and the approved fallbacks, in order.

    The executor may move down ``fallbacks`` when a create fails for capacity, never outside.
    """

    strategy: str = "ordered"
    chosen: Offer
    fallbacks: tuple[Offer, ...] = ()


class Change(PlanModel):
    address: str
    kind: ResourceKindName = "instance"
    action: Action
    reasons: tuple[Reason, ...] = ()
    resource_id: str | None = Field(
        default=None,
        validation_alias=AliasChoices("resource_id", "instance_id"),
        description="The existing resource this change acts on, if any",
    )
    adopt: bool = Field(
        default=False,
        description="Record resource_id in state (an orphan found by its tags or its intent)",
    )
    before: dict[str, Any] | None = None
    after: dict[str, Any] | None = None
    field_changes: tuple[FieldChange, ...] = ()
    create_before_destroy: bool = False
    depends_on: tuple[str, ...] = Field(
        default=(),
        description=(
            "Addresses this resource uses (before or after the change): they are created "
            "before it, and deleted only once it is gone"
        ),
    )
    destroys_data: bool = Field(
        default=False,
        description="Deleting or replacing this resource destroys the data it holds",
    )
    placement: PlacementChoice | None = Field(
        default=None, description="For creates and replacements: the offer and its fallbacks"
    )
    rollout: str | None = Field(
        default=None, description="The replica group whose rollout this change is part of"
    )
    wave: int | None = Field(
        default=None,
        description="Its wave in the rollout: it starts once every earlier wave has finished "
        "(0 settles what an earlier run left: replicas still booting, a predecessor to retire)",
    )
    serving_first: str | None = Field(
        default=None,
        description="An instance that must be serving (active, readiness passed) before this "
        "change acts: the successor of a replacement an earlier run did not finish",
    )
    hourly_cents_before: Cents | None = Field(
        default=None, description="Cost of the resource this change removes or keeps, cents/h"
    )
    hourly_cents_after: Cents | None = Field(
        default=None, description="Cost of the resource after the change, cents/h"
    )

    @property
    def is_change(self) -> bool:
        """Counts for ``-detailed-exitcode``: infrastructure changes and adoptions."""
        return self.action.is_change or self.adopt


class RolloutWave(PlanModel):
    number: int = Field(description="1 = first; 0 settles what an earlier run left")
    addresses: tuple[str, ...]
    create_first: tuple[str, ...] = Field(
        default=(), description="Surge slots: the new replica serves before the old one goes"
    )
    boot_seconds: int | None = Field(
        default=None, description="Expected duration: the slowest boot among its new replicas"
    )


class Rollout(PlanModel):
    """How the replacements of one replica group roll: waves that keep it serving."""

    group: str
    replicas: int = Field(description="Replicas the group declares")
    serving: int = Field(description="Replicas serving when the plan was made")
    max_unavailable: int
    max_surge: int
    waves: tuple[RolloutWave, ...]
    serving_floor: int = Field(description="Never fewer replicas serving during the rollout")
    peak_running: int = Field(description="Never more replicas running (booting included)")
    expected_seconds: int | None = Field(
        default=None, description="Sum of the waves' boot times (readiness and deletes extra)"
    )
    surge_hourly_cents: Cents = Field(
        default=0, description="What the surge replicas add to the burn while they run, cents/h"
    )
    readiness: tuple[str, ...] | None = Field(
        default=None, description="The readiness command a new replica must pass"
    )


class BlockedKind(StrEnum):
    PENDING_CREATE = "pending_create"  # a create sent earlier is not visible yet
    AMBIGUOUS_CREATE = "ambiguous_create"  # more than one instance carries one create's tag
    NO_CAPACITY = "no_capacity"  # no approved offer is available (in ``no_capacity``)
    OTHER = "other"


class Blocked(PlanModel):
    """An address the plan will not touch until a person or a later run resolves it."""

    address: str
    message: str
    kind: BlockedKind = BlockedKind.OTHER
    resolves_in_seconds: float | None = Field(
        default=None,
        description="For a pending create: seconds until its grace runs out and it is released",
    )


class CostSummary(PlanModel):
    """A fleet's burn rate before and after the plan, in cents per hour (storage included)."""

    hourly_cents_before: Cents = 0
    hourly_cents_after: Cents = 0
    unknown_prices: int = Field(default=0, description="Resources whose price is not known")
    hourly_cents_peak: Cents | None = Field(
        default=None,
        description="The highest burn while the plan is applied (old and new replicas both "
        "running), when above before and after",
    )

    @property
    def peak(self) -> Cents:
        """The highest burn while the plan is applied."""
        return max(
            self.hourly_cents_before,
            self.hourly_cents_after,
            self.hourly_cents_peak if self.hourly_cents_peak is not None else 0,
        )

    @property
    def monthly_cents_before(self) -> Cents:
        return round_cents(self.hourly_cents_before * HOURS_PER_30_DAYS)

    @property
    def monthly_cents_after(self) -> Cents:
        return round_cents(self.hourly_cents_after * HOURS_PER_30_DAYS)

    def __add__(self, other: CostSummary) -> CostSummary:
        before = round_cents(self.hourly_cents_before + other.hourly_cents_before)
        after = round_cents(self.hourly_cents_after + other.hourly_cents_after)
        peak = round_cents(self.peak + other.peak)
        return CostSummary(
            hourly_cents_before=before,
            hourly_cents_after=after,
            unknown_prices=self.unknown_prices + other.unknown_prices,
            hourly_cents_peak=peak if peak > max(before, after) else None,
        )


class Kept(PlanModel):
    """A resource a destroy leaves in place because deleting it would destroy data."""

    address: str
    kind: ResourceKindName
    resource_id: str
    message: str


class FleetPlan(PlanModel):
    fleet: str
    lineage: str | None = Field(description="Lineage of the state planned from; None if no state")
    serial: int = Field(description="Serial of the state planned from (0 if no state)")
    manifest_digest: str
    changes: tuple[Change, ...] = ()
    blocked: tuple[Blocked, ...] = ()
    no_capacity: tuple[Blocked, ...] = Field(
        default=(), description="Instances no approved offer is available for (plan fails)"
    )
    warnings: tuple[str, ...] = ()
    released_intents: tuple[str, ...] = Field(
        default=(), description="Create intents refresh resolved (adopted or abandoned)"
    )
    cost: CostSummary = CostSummary()
    budget_overrides: tuple[str, ...] = Field(
        default=(), description="Budget limits this plan breaks, allowed explicitly"
    )
    kept: tuple[Kept, ...] = Field(
        default=(),
        description="Volumes a destroy keeps (their data) unless --allow-data-loss is given",
    )
    rollouts: tuple[Rollout, ...] = Field(
        default=(), description="Replica groups replaced in waves (update_strategy)"
    )

    def count(self, action: Action) -> int:
        return sum(1 for c in self.changes if c.action is action)

    @property
    def has_changes(self) -> bool:
        return any(c.is_change for c in self.changes)

    @property
    def in_sync(self) -> bool:
        """Nothing to change and nothing left undone: no change, no blocked or pending
        address, no instance without capacity. Only then do the fleets match the manifests."""
        return not self.has_changes and not self.blocked and not self.no_capacity

    @property
    def pending(self) -> tuple[Blocked, ...]:
        return tuple(b for b in self.blocked if b.kind is BlockedKind.PENDING_CREATE)

    @property
    def data_loss(self) -> tuple[Change, ...]:
        """Changes that destroy data (a volume deleted or replaced)."""
        return tuple(c for c in self.changes if c.destroys_data)

    @property
    def has_work(self) -> bool:
        """Whether applying this fleet's plan would do anything, state housekeeping included."""
        return (
            self.has_changes
            or bool(self.released_intents)
            or any(c.action is Action.FORGET for c in self.changes)
        )


class Plan(PlanModel):
    format_version: int = PLAN_FORMAT_VERSION
    fleets: tuple[FleetPlan, ...] = ()
    paths: tuple[str, ...] = Field(
        default=(),
        description="Manifest paths the plan was made from (apply PLANFILE reloads them)",
    )
    targets: tuple[str, ...] = ()
    excludes: tuple[str, ...] = Field(default=(), description="Addresses left out (--exclude)")
    replace: tuple[str, ...] = ()
    destroy: bool = False
    allow_data_loss: bool = Field(
        default=False,
        description="Made with --allow-data-loss: applying it may destroy data it lists",
    )
    created_at: str | None = None
    sandbox: bool = False

    def count(self, action: Action) -> int:
        return sum(f.count(action) for f in self.fleets)

    @property
    def no_capacity(self) -> tuple[Blocked, ...]:
        return tuple(b for f in self.fleets for b in f.no_capacity)

    @property
    def cost(self) -> CostSummary:
        total = CostSummary()
        for fleet in self.fleets:
            total = total + fleet.cost
        return total

    @property
    def has_changes(self) -> bool:
        return any(f.has_changes for f in self.fleets)

    @property
    def in_sync(self) -> bool:
        """What ``--detailed-exitcode`` 0 promises: every fleet matches its manifests."""
        return all(f.in_sync for f in self.fleets)

    @property
    def blocked(self) -> tuple[Blocked, ...]:
        return tuple(b for f in self.fleets for b in f.blocked)

    @property
    def pending(self) -> tuple[Blocked, ...]:
        return tuple(b for f in self.fleets for b in f.pending)

    @property
    def data_loss(self) -> tuple[Change, ...]:
        return tuple(c for f in self.fleets for c in f.data_loss)

    @property
    def kept(self) -> tuple[Kept, ...]:
        return tuple(k for f in self.fleets for k in f.kept)


class PendingCreate(PlanModel):
    """A create recorded as an intent whose outcome is not known yet (reported after apply)."""

    address: str
    intent_id: str
    resolves_at: str = Field(description="RFC3339 time its grace runs out")


class Endpoint(PlanModel):
    """How to reach one managed instance (``reconciler output``, ``reconciler ssh``)."""

    fleet: str
    address: str
    instance_id: str
    status: str
    ip: str | None = None
    ssh_user: str | None = None
    ssh_port: int | None = None
    hourly_price_cents: int | None = None

    @property
    def reachable(self) -> bool:
        return bool(self.ip and self.ssh_user)


class ManagedResource(PlanModel):
    """A managed volume or SSH key as ``reconciler output`` shows it."""

    fleet: str
    address: str
    kind: ResourceKindName
    resource_id: str
    present: bool = Field(description="Whether Shadeform still has it")
    detail: str = Field(default="", description="Size and place of a volume, a key's fingerprint")
    in_use_by: tuple[str, ...] = ()


class DriftKind(StrEnum):
    GONE = "gone"  # deleted outside the reconciler (or reclaimed)
    PREEMPTED = "preempted"  # a spot instance Shadeform reclaimed
    BROKEN = "broken"  # in error
    CHANGED = "changed"  # a field changed outside (console, API)
    NOT_OWNED = "not_owned"  # lost its reconciler:fleet tag
    UNRECORDED = "unrecorded"  # carries the fleet's tags but is not in the state


class DriftItem(PlanModel):
    """One way Shadeform differs from what the state recorded (``--refresh-only``)."""

    address: str
    resource_id: str = Field(validation_alias=AliasChoices("resource_id", "instance_id"))
    resource_kind: ResourceKindName = "instance"
    kind: DriftKind
    message: str
    field_changes: tuple[FieldChange, ...] = ()


class FleetDrift(PlanModel):
    fleet: str
    serial: int
    items: tuple[DriftItem, ...] = ()


class DriftReport(PlanModel):
    """What ``plan --refresh-only`` shows: drift only, no proposed changes."""

    format_version: int = PLAN_FORMAT_VERSION
    fleets: tuple[FleetDrift, ...] = ()
    sandbox: bool = False

    @property
    def has_drift(self) -> bool:
        return any(f.items for f in self.fleets)
