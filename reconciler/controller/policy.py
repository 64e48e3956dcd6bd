"""What a watcher may do on its own (pure): heal, and nothing else unless ``--sync``.

Self-healing drift is an instance the fleet recorded that is gone or broken for reasons of
its own: preempted by Shadeform (``status_details: preempted``), in ``error``, or deleted out
of band; and what an interrupted run (a watcher killed mid-heal) left: an instance it created
to adopt, a duplicate to delete. Recreating it (inside its placement envelope, within the budget) is what a person
would do without a review: the manifests already say it should exist. Everything else (a
manifest change, a new replica, a delete, a tag edited outside) waits for a reviewed apply,
so the watcher only reports it, unless it runs with ``--sync`` (an auto-syncing GitOps
controller: it applies every plan, still bound by budgets, ``prevent_destroy`` and the data
loss rule).
"""

from __future__ import annotations

from dataclasses import dataclass

from reconciler.models.plan import Action, Change, FleetPlan, ReasonCode

HEALING_REASONS = frozenset({ReasonCode.DELETED_OUTSIDE, ReasonCode.PREEMPTED, ReasonCode.IN_ERROR})


@dataclass(frozen=True)
class Decision:
    """For one fleet: the addresses to act on, and what is only reported."""

    act_on: tuple[str, ...]
    reported: tuple[Change, ...]
    """Changes the watcher leaves for a reviewed apply (empty with ``--sync``)."""


def heals(change: Change) -> bool:
    """An instance recreated because it is gone or broken, not because the manifests moved;
    or what an interrupted run left to finish: an instance it created to adopt (found by its
    intent or ownership tags), a duplicate of an address to delete (billed twice)."""
    if change.kind != "instance" or change.field_changes:
        return False
    codes = {r.code for r in change.reasons}
    if change.action is Action.NOOP and change.adopt:
        return True
    if change.action is Action.DELETE and codes == {ReasonCode.DUPLICATE_ORPHAN}:
        return True
    if change.action is Action.CREATE:
        return bool(codes & {ReasonCode.DELETED_OUTSIDE, ReasonCode.PREEMPTED})
    if change.action is Action.REPLACE:
        return ReasonCode.IN_ERROR in codes
    return False


def decide(plan: FleetPlan, *, sync: bool) -> Decision:
    changes = [c for c in plan.changes if c.is_change]
    if sync:
        return Decision(act_on=tuple(sorted({c.address for c in changes})), reported=())
    healing = sorted({c.address for c in changes if heals(c)})
    # An address with any other change is not a pure heal: a person reviews it.
    mixed = {c.address for c in changes if not heals(c)}
    act_on = tuple(a for a in healing if a not in mixed)
    reported = tuple(c for c in changes if c.address not in act_on)
    return Decision(act_on=act_on, reported=reported)
