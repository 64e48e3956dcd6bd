"""The extension point: one handler per kind of resource a fleet manages.

A :class:`ResourceKind` holds everything specific to one kind (instances, volumes, SSH keys):
where its specs and state records live, its comparable form and what it may change in place,
how refresh finds it and tells which ones a fleet owns, how it is planned, which other
resources it uses (its dependency edges), and the API calls that create, update and delete it.
The planner core and the executor core only ever talk to this interface; ``docs/resource-
kinds.md`` walks through adding a kind.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

from reconciler.models.live import LiveInstance, LiveResource
from reconciler.models.plan import Change
from reconciler.models.spec import Fleet
from reconciler.models.state import CreateIntent, FleetState

if TYPE_CHECKING:
    from reconciler.api import ShadeformClient
    from reconciler.engine.apply_context import ApplyRun, Job
    from reconciler.engine.plan_context import PlanContext


@dataclass(frozen=True)
class Recorded:
    """What the state records about one managed resource, whatever its kind."""

    address: str
    resource_id: str
    applied_spec: dict[str, Any]


@dataclass
class FleetObservation:
    """What refresh saw of one kind for one fleet; the core merges kinds into a snapshot."""

    by_id: dict[str, LiveInstance] = field(default_factory=dict)
    orphans: tuple[LiveInstance, ...] = ()
    resources: dict[str, LiveResource] = field(default_factory=dict)
    unrecorded: tuple[LiveResource, ...] = ()
    intent_matches: dict[str, tuple[str, ...]] = field(default_factory=dict)
    """Per create intent of this kind: the ids of what carries it (tag or anchor)."""


class KindExecutor(ABC):
    """One kind's side of one apply: runs a change's steps, keeps per-run bookkeeping."""

    @abstractmethod
    async def run(self, job: Job) -> tuple[str, str | None]:
        """Carry out ``job.change``; return (what was done, the resource id now recorded).

        Steps that create call ``job.gate.before_create()`` first and ``job.gate.created()``
        after; steps that destroy call ``job.gate.before_destroy()`` and ``job.gate.destroyed()``.
        """

    async def finish(self) -> None:  # noqa: B027 - optional hook
        """After every change has run: settle what this kind left to settle (boots)."""


class ResourceKind(ABC):
    name: ClassVar[str]
    """``instance``, ``volume``, ``ssh_key``: the ``kind`` in plans, states and intents."""
    noun: ClassVar[str]
    """How messages name one: ``instance``, ``volume``, ``SSH key``."""
    address_prefix: ClassVar[str]
    """What follows ``<fleet>/`` in its addresses (``volume.``); empty for instances."""
    found_by: ClassVar[str] = "carries"
    """How a resource relates to the create intent that finds it again (its tag, its anchor)."""

    # -- manifests and state ------------------------------------------------------------------

    @abstractmethod
    def specs(self, fleet: Fleet) -> Sequence[Any]:
        """The fleet's desired resources of this kind (each has ``address``)."""

    @abstractmethod
    def records(self, state: FleetState) -> Mapping[str, Recorded]:
        """The state's resources of this kind, by address."""

    @abstractmethod
    def comparable(self, spec: Any, key: str) -> dict[str, Any]:
        """The spec as the diff, the plan and the state see it (secrets fingerprinted)."""

    def references(self, spec: Any) -> tuple[str, ...]:
        """Addresses of the other resources ``spec`` uses (created before it)."""
        return ()

    def recorded_references(self, fleet: str, applied: dict[str, Any]) -> tuple[str, ...]:
        """Addresses an applied spec (from the state) used (deleted only after it is gone)."""
        return ()

    @abstractmethod
    def forget(self, draft: FleetState, address: str, resource_id: str | None) -> None:
        """Drop ``address``'s record from ``draft`` if it still names ``resource_id``."""

    def owns_address(self, address: str) -> bool:
        """Whether ``address`` (``<fleet>/<rest>``) is one of this kind's."""
        rest = address.partition("/")[2]
        return rest.startswith(self.address_prefix) if self.address_prefix else "." not in rest

    # -- refresh --------------------------------------------------------------------------------

    def wanted(self, fleet: Fleet | None, state: FleetState) -> bool:
        """Whether refresh must look at this kind for this fleet (cheap runs skip the call)."""
        return (
            bool(self.records(state))
            or any(i.kind == self.name for i in state.intents.values())
            or (fleet is not None and bool(self.specs(fleet)))
        )

    @abstractmethod
    async def observe(
        self, client: ShadeformClient, states: Mapping[str, FleetState], info_threshold: int
    ) -> dict[str, FleetObservation]:
        """Look at what exists (one list call), per fleet of ``states``."""

    # -- plan -------------------------------------------------------------------------------------

    def prepare(self, ctx: PlanContext) -> None:  # noqa: B027 - optional hook
        """Before this kind's addresses are planned (say, warn about what it cannot plan)."""

    def not_seen_yet(self, anchor: dict[str, str]) -> str:
        """How a pending create's message says nothing was found for it yet."""
        return f"no {self.noun} carries its tag yet"

    @abstractmethod
    def addresses(self, ctx: PlanContext) -> set[str]:
        """Every address of this kind the plan must consider (desired, recorded, found)."""

    @abstractmethod
    def plan(self, ctx: PlanContext, address: str) -> None:
        """Add ``address``'s change(s) to ``ctx`` (or block it there)."""

    def count_untouched(self, ctx: PlanContext, address: str) -> None:  # noqa: B027
        """Add the burn of ``address``, which this plan leaves out, to ``ctx.untouched``."""

    def protected(self, ctx: PlanContext, address: str) -> bool:
        """Whether ``lifecycle.prevent_destroy`` (or the like) protects ``address``."""
        return False

    def check(self, ctx: PlanContext) -> None:  # noqa: B027 - optional hook
        """Kind-specific checks over the finished plan (raise to refuse it)."""

    # -- apply ------------------------------------------------------------------------------------

    @abstractmethod
    def executor(self, run: ApplyRun) -> KindExecutor:
        """This kind's executor for one apply."""

    def intent(self, change: Change, spec: Any, *, intent_id: str, now: str) -> CreateIntent:
        """The create intent recorded before ``spec`` is sent (kinds without tags anchor it)."""
        return CreateIntent(
            intent_id=intent_id, address=change.address, kind=self.name, created_at=now
        )
