"""Money in the plan (pure): a fleet's burn rate, and the budget guards a reviewer approved."""

from __future__ import annotations

from collections.abc import Sequence

from reconciler.errors import BudgetError
from reconciler.models.catalog import Cents, dollars_to_cents, format_cents, round_cents
from reconciler.models.plan import Action, Change, CostSummary, Rollout
from reconciler.models.spec import Fleet


def fleet_cost(changes: Sequence[Change], rollouts: Sequence[Rollout] = ()) -> CostSummary:
    """Burn rate before and after, from every change (no-ops included), in cents per hour,
    and the peak while it is applied: a create-first replacement runs the old and the new
    instance side by side (all at once, unless a rollout's waves pace them)."""
    before: Cents = 0
    after: Cents = 0
    unknown = 0
    overlap: Cents = sum(r.surge_hourly_cents for r in rollouts)
    for change in changes:
        if (
            change.action is Action.REPLACE
            and change.create_before_destroy
            and change.rollout is None
            and change.hourly_cents_before is not None
            and change.hourly_cents_after is not None
        ):
            overlap += min(change.hourly_cents_before, change.hourly_cents_after)
        if change.action is Action.FORGET:
            continue
        existing = change.resource_id is not None
        if existing:
            if change.hourly_cents_before is None:
                unknown += 1
            else:
                before += change.hourly_cents_before
        if change.action is Action.DELETE:
            continue
        if change.hourly_cents_after is None:
            if not existing:
                unknown += 1
        else:
            after += change.hourly_cents_after
    peak = round_cents(max(before, after) + overlap)
    return CostSummary(
        hourly_cents_before=round_cents(before),
        hourly_cents_after=round_cents(after),
        unknown_prices=unknown,
        hourly_cents_peak=peak if overlap > 0 else None,
    )


def budget_violations(
    fleet: Fleet,
    changes: Sequence[Change],
    untouched: CostSummary = CostSummary(),
    rollouts: Sequence[Rollout] = (),
) -> list[str]:
    budget = fleet.budget
    if budget is None:
        return []
    problems = []
    # The per-machine guards are about GPU machines; storage counts in the fleet's burn.
    creates = [
        c for c in changes if c.kind == "instance" and c.action in (Action.CREATE, Action.REPLACE)
    ]
    if budget.max_creates_per_apply is not None and len(creates) > budget.max_creates_per_apply:
        problems.append(
            f"{len(creates)} instances would be created (replacements included), over "
            f"max_creates_per_apply {budget.max_creates_per_apply}"
        )
    ceiling = dollars_to_cents(budget.max_instance_hourly) if budget.max_instance_hourly else None
    if ceiling is not None:
        for change in creates:
            price = change.hourly_cents_after
            if price is not None and price > ceiling:
                problems.append(
                    f"{change.address} would cost {format_cents(price)}/h, over "
                    f"max_instance_hourly {format_cents(ceiling)}/h"
                )
    limit = dollars_to_cents(budget.max_hourly) if budget.max_hourly else None
    if limit is not None:
        cost = fleet_cost(changes, rollouts) + untouched  # the whole fleet, also under --target
        note = (
            f" ({cost.unknown_prices} instance price(s) unknown, counted as $0)"
            if cost.unknown_prices
            else ""
        )
        if cost.hourly_cents_after > limit and cost.hourly_cents_after > cost.hourly_cents_before:
            problems.append(
                f"fleet {fleet.name} would burn {format_cents(cost.hourly_cents_after)}/h "
                f"(now {format_cents(cost.hourly_cents_before)}/h), over max_hourly "
                f"{format_cents(limit)}/h{note}"
            )
        elif cost.peak > limit and cost.peak > cost.hourly_cents_before:
            problems.append(
                f"fleet {fleet.name} would burn {format_cents(cost.peak)}/h at the peak of the "
                f"change, while new replicas run beside the ones they replace (now "
                f"{format_cents(cost.hourly_cents_before)}/h, after "
                f"{format_cents(cost.hourly_cents_after)}/h), over max_hourly "
                f"{format_cents(limit)}/h{note}; a smaller max_surge lowers the peak"
            )
    return problems


def check_budget(
    fleet: Fleet,
    changes: Sequence[Change],
    *,
    allow_over_budget: bool,
    untouched: CostSummary = CostSummary(),
    rollouts: Sequence[Rollout] = (),
) -> tuple[str, ...]:
    """Raise :class:`BudgetError` for a plan over budget, unless explicitly allowed.

    ``untouched`` is the burn of the instances a ``--target``/``--exclude`` left out of the
    plan: ``max_hourly`` limits the whole fleet. Returns the violations that were allowed, so
    the plan shows them.
    """
    problems = budget_violations(fleet, changes, untouched, rollouts)
    if problems and not allow_over_budget:
        raise BudgetError(
            f"The plan for fleet {fleet.name} breaks its budget, so nothing will be created:\n"
            + "\n".join(f"  {p}" for p in problems)
            + "\nChange the manifest, raise the budget in review, or re-run with "
            "--allow-over-budget to accept it explicitly (the plan will say so)."
        )
    return tuple(problems) if problems else ()
