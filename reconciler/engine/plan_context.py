"""What the planner and the kind handlers share while one fleet is planned (pure data).

The planner core builds one :class:`PlanContext` per fleet, asks each kind's handler to plan
its addresses into it, then runs the graph checks over everything the handlers added.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from reconciler.models.catalog import Catalog
from reconciler.models.live import LiveInstance, LiveSnapshot
from reconciler.models.plan import (
    Blocked,
    BlockedKind,
    Change,
    CostSummary,
    Kept,
    Reason,
    ReasonCode,
)
from reconciler.models.spec import Fleet
from reconciler.models.state import FleetState


@dataclass(frozen=True)
class PlanOptions:
    targets: tuple[str, ...] = ()
    excludes: tuple[str, ...] = ()  # the inverse of targets: left out of the plan
    replace: tuple[str, ...] = ()
    destroy: bool = False  # plan the deletion of everything the fleet owns
    allow_over_budget: bool = False  # record budget violations instead of failing
    allow_data_loss: bool = False  # a destroy deletes volumes too (else it keeps them)
    now: datetime | None = None
    """The plan's moment (data, not a clock): a new instance's ``auto_delete`` date must
    follow it, or Shadeform would delete the machine as soon as it is created."""


def address_selected(address: str, selectors: Iterable[str]) -> bool:
    """``--target`` matching: an exact address, a fleet name, or a replica group.

    ``inference`` selects the whole fleet; ``inference/vllm`` selects ``inference/vllm`` and
    its replicas ``inference/vllm-0``, ``inference/vllm-1``, ...
    """
    for selector in selectors:
        if address == selector or address.startswith(selector + "/"):
            return True
        if re.fullmatch(re.escape(selector) + r"-\d+", address):
            return True
    return False


def reason(code: ReasonCode, message: str) -> Reason:
    return Reason(code=code, message=message)


@dataclass
class PlanContext:
    """One fleet's planning inputs, and what the kind handlers have planned so far."""

    fleet: Fleet
    state: FleetState
    live: LiveSnapshot
    options: PlanOptions
    catalog: Catalog | None
    also_selected: frozenset[str] = frozenset()
    """Addresses a ``--target`` pulls in: what the targeted resources use."""
    declared: dict[str, Any] = field(default_factory=dict)
    """Every spec the fleet's manifest declares, any kind, by address."""
    orphans_by_address: dict[str, list[LiveInstance]] = field(default_factory=dict)
    changes: list[Change] = field(default_factory=list)
    blocked: dict[str, Blocked] = field(default_factory=dict)
    no_capacity: list[Blocked] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    catalog_issues: dict[tuple[str, int | None, str, str], list[str]] = field(default_factory=dict)
    """Manifest problems the catalog revealed: (file, line, field, problem) -> addresses."""
    untouched: CostSummary = CostSummary()
    """The burn of resources outside --target/--exclude: unchanged by this plan, but part of
    the fleet's burn before and after (and of its max_hourly budget)."""
    kept: list[Kept] = field(default_factory=list)
    """What a destroy leaves in place to keep its data."""
    recreated: set[str] = field(default_factory=set)
    """Addresses this plan creates anew (created or replaced): what uses them must follow."""

    def desired(self, address: str) -> Any | None:
        """The spec ``address`` should match; None when it should not exist (a destroy)."""
        return None if self.options.destroy else self.declared.get(address)

    @property
    def key(self) -> str:
        """The state's key for fingerprints of secrets."""
        return self.state.fingerprint_key

    def selected(self, address: str) -> bool:
        """Inside ``--target`` (when given) and outside every ``--exclude``."""
        options = self.options
        if options.targets and not (
            address_selected(address, options.targets) or address in self.also_selected
        ):
            return False
        return not address_selected(address, options.excludes)

    def add(self, change: Change) -> None:
        self.changes.append(change)
        if change.action.value in ("create", "replace"):
            self.recreated.add(change.address)

    def block(self, address: str, message: str, kind: BlockedKind = BlockedKind.OTHER) -> None:
        self.blocked[address] = Blocked(address=address, message=message, kind=kind)

    def waiting(self, address: str) -> Blocked | None:
        """Why ``address`` is left alone by this plan (blocked, or no capacity), if it is."""
        if address in self.blocked:
            return self.blocked[address]
        return next((b for b in self.no_capacity if b.address == address), None)
