"""What refresh saw in the live API, in our own types (the planner's third input)."""

from __future__ import annotations

from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

FLEET_TAG = "reconciler:fleet="
ADDRESS_TAG = "reconciler:address="
INTENT_TAG = "reconciler:intent="
OWNERSHIP_PREFIX = "reconciler:"


def ownership_tags(fleet: str, address: str) -> tuple[str, str]:
    return (f"{FLEET_TAG}{fleet}", f"{ADDRESS_TAG}{address}")


class Health(StrEnum):
    IN_PROGRESS = "in_progress"  # creating, pending_provider, pending
    HEALTHY = "healthy"  # active
    BROKEN = "broken"  # error
    GONE = "gone"  # deleting, deleted, not found


class LiveModel(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class LiveInstance(LiveModel):
    id: str
    name: str
    status: str
    status_details: str | None = None
    health: Health
    tags: tuple[str, ...] = ()
    observed: dict[str, Any] = Field(
        default_factory=dict,
        description="Spec fields the API reported, in comparable form (user tags only)",
    )
    hourly_price: int | None = None
    cost_estimate: str | None = None
    created_at: str | None = None
    ip: str | None = Field(default=None, description="Public IP, once Shadeform knows it")
    ssh_user: str | None = None
    ssh_port: int | None = None

    def tag_value(self, prefix: str) -> str | None:
        for tag in self.tags:
            if tag.startswith(prefix):
                return tag[len(prefix) :]
        return None

    @property
    def fleet(self) -> str | None:
        return self.tag_value(FLEET_TAG)

    @property
    def address(self) -> str | None:
        return self.tag_value(ADDRESS_TAG)

    @property
    def preempted(self) -> bool:
        return self.status_details == "preempted"


class LiveResource(LiveModel):
    """A volume or an SSH key as the API listed it. These carry no tags: the state's records
    (by id) and create intents (by anchor: exact name and more) say which ones a fleet owns."""

    id: str
    kind: str
    name: str
    observed: dict[str, Any] = Field(
        default_factory=dict, description="Spec fields the API reported, in comparable form"
    )
    in_use_by: tuple[str, ...] = Field(default=(), description="Instances that use it now")

    def matches(self, anchor: dict[str, str]) -> bool:
        """Whether this resource has every attribute of a create intent's ``anchor``."""
        return bool(anchor) and all(
            str(self.observed.get(key, "")) == value for key, value in anchor.items()
        )


class IntentResolution(StrEnum):
    FOUND = "found"  # exactly one resource carries the intent tag (or anchor): adopt it
    ABANDONED = "abandoned"  # none found after the grace period: the create never happened
    PENDING = "pending"  # none found yet, still inside the grace period
    AMBIGUOUS = "ambiguous"  # more than one carries the tag: stop and report


class ResolvedIntent(LiveModel):
    intent_id: str
    address: str
    resolution: IntentResolution
    kind: str = "instance"
    resource_ids: tuple[str, ...] = ()
    recorded_at: str | None = Field(default=None, description="When the intent was recorded")
    age_seconds: float | None = Field(default=None, description="Its age at refresh time")
    grace_seconds: float | None = Field(
        default=None, description="How long it is looked for before it is released"
    )

    @property
    def seconds_left(self) -> float | None:
        """For a pending intent: how long until its grace runs out."""
        if self.age_seconds is None or self.grace_seconds is None:
            return None
        return max(0.0, self.grace_seconds - self.age_seconds)


class LiveSnapshot(LiveModel):
    """One fleet's live view: the state's instances by id (absent = not found) and orphans;
    the state's volumes and keys by id (absent = not found), and those it does not record."""

    fleet: str
    by_id: dict[str, LiveInstance] = Field(default_factory=dict)
    orphans: tuple[LiveInstance, ...] = Field(
        default=(), description="Live instances with this fleet's tag that the state lacks"
    )
    intents: tuple[ResolvedIntent, ...] = ()
    resources: dict[str, LiveResource] = Field(
        default_factory=dict, description="Recorded volumes and keys that exist, by id"
    )
    unrecorded: tuple[LiveResource, ...] = Field(
        default=(),
        description="Volumes and keys in the account that this state does not record",
    )

    def found_by_intent(self, address: str) -> str | None:
        """The id of the resource a resolved intent found for ``address``, if any."""
        for intent in self.intents:
            if intent.address == address and intent.resolution is IntentResolution.FOUND:
                return intent.resource_ids[0]
        return None
