"""The persisted state of one fleet (format version 2).

A state carries a ``lineage`` (set once when the state is born, never changes), a ``serial``
(grows by one on every write that changes content) and, per address, what the reconciler
knows about the resource it manages there: ``instances`` (``<fleet>/<name>``) and the other
kinds in ``resources`` (volumes ``<fleet>/volume.<name>``, SSH keys
``<fleet>/ssh_key.<name>``). Specs are stored in *comparable* form: plain JSON where every
secret is replaced by a keyed fingerprint (``"(sensitive:hmac-sha256:…)"``), so a state file
never holds a secret value.

Format 2 added ``resources`` and the ``kind`` and ``anchor`` of create intents; a format 1
state upgrades on read (``reconciler.state.upgrade``).
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

STATE_FORMAT_VERSION = 2


class StateModel(BaseModel):
    model_config = ConfigDict(extra="forbid")


class InstanceRecord(StateModel):
    address: str
    instance_id: str
    applied_spec: dict[str, Any] = Field(
        description="The desired spec last applied, in comparable form (secrets fingerprinted)"
    )
    live: dict[str, Any] | None = Field(
        default=None, description="Last refreshed live attributes, redacted"
    )
    placement: dict[str, Any] | None = Field(
        default=None, description="The offer used (cloud, region, type, rental, price)"
    )
    uses: dict[str, str] = Field(
        default_factory=dict,
        description=(
            "The managed volumes and key it was created with: address -> id. An instance "
            "whose volume or key has been created anew since is replaced (ids are fixed at "
            "create), even if the run that replaced them stopped before getting to it"
        ),
    )
    created_at: str
    updated_at: str
    refreshed_at: str | None = None
    awaiting_readiness: bool = Field(
        default=False,
        description=(
            "Created by a change that waits for its readiness command, which has not passed "
            "yet: it does not count as serving, whatever its status (a rollout resumed after a "
            "crash waits for it before its predecessor goes or the next wave starts)"
        ),
    )


class ResourceRecord(StateModel):
    """A managed resource other than an instance: a volume or an SSH key."""

    address: str
    kind: str = Field(description="volume or ssh_key")
    resource_id: str
    applied_spec: dict[str, Any] = Field(description="The spec last applied, comparable form")
    live: dict[str, Any] | None = Field(default=None, description="Last refreshed attributes")
    retiring: tuple[str, ...] = Field(
        default=(),
        description=(
            "Ids of predecessors a replacement created before deleting them (an SSH key is "
            "replaced create-first); still owned, deleted once what used them is gone"
        ),
    )
    created_at: str
    updated_at: str
    refreshed_at: str | None = None


class CreateIntent(StateModel):
    """Recorded durably *before* a create is sent; resolved after any failure by the
    instance's intent tag, or (volumes and keys carry no tags) by its ``anchor``."""

    intent_id: str
    address: str
    kind: str = Field(default="instance", description="instance, volume or ssh_key")
    anchor: dict[str, str] = Field(
        default_factory=dict,
        description="What identifies an untagged resource: its exact name (and cloud, region)",
    )
    created_at: str = Field(description="RFC3339 time the intent was recorded")
    request_sent: bool = Field(
        default=False,
        description="Unused (always false): an intent is recorded before its create is sent, "
        "and whether the request left is never known for sure; kept so older states load",
    )


class FleetState(StateModel):
    format_version: int = STATE_FORMAT_VERSION
    fleet: str
    lineage: str
    serial: int = 0
    fingerprint_key: str = Field(description="Hex key for HMAC fingerprints of secrets", repr=False)
    instances: dict[str, InstanceRecord] = Field(default_factory=dict)
    resources: dict[str, ResourceRecord] = Field(
        default_factory=dict, description="Volumes and SSH keys, by address"
    )
    intents: dict[str, CreateIntent] = Field(default_factory=dict)

    def content_equal(self, other: FleetState) -> bool:
        """True when both hold the same content, ignoring the serial."""
        return self.model_dump(exclude={"serial"}) == other.model_dump(exclude={"serial"})


class LockInfo(StateModel):
    """Who holds a fleet's lock; shown to whoever is refused."""

    id: str
    fleet: str
    user: str
    host: str
    pid: int
    command: str
    created_at: str
    ci_run_url: str | None = None

    def describe(self) -> str:
        who = f"{self.user}@{self.host} (pid {self.pid}) since {self.created_at}: {self.command}"
        if self.ci_run_url:
            who += f" [{self.ci_run_url}]"
        return f"lock {self.id} held by {who}"
