"""The Terraform-like terminal view of a plan.

::

    Fleet inference:

      + inference/vllm-0  +$0.80/h
          # new instance
          placement: A6000 in hyperstack/canada-1 at $0.80/h, boots in ≤5 min, 1 fallback
          name:              "vllm-0"
          cloud/region/type: hyperstack/canada-1/A6000

    -/+ inference/vllm-1 [i-2] (create before destroy)  $0.80/h -> $2.49/h
          shade_instance_type: "A6000" -> "H100"  # forces replacement

    Plan: 1 to create, 0 to update, 1 to replace, 0 to delete.
    Cost: $0.80/h -> $3.29/h (+$2.49/h); per 30 days $576.00 -> $2,368.80
    Peak: $4.09/h while the plan is applied (+$0.80/h while new instances run beside old ones)

A fleet whose replica groups roll in waves (``update_strategy``) closes with one section per
rollout, after its changes::

    Rollout of inference/mistral: 4 replicas, max_unavailable 1, max_surge 1
      never fewer than 3 serving, never more than 5 running; about 20 min (2 waves × ≤10 min boot)
      peak $5.00/h while surge replicas run (+$1.00/h)
      readiness: ./scripts/ready.sh (must pass before a new replica counts as serving)
      wave 1: mistral-0 (create first), mistral-1
      wave 2: mistral-2 (create first), mistral-3

Colour (green ``+``, yellow ``~``, magenta ``-/+``, red ``-``) only when asked for. rich supplies
the escape codes for each style once; lines are assembled as plain strings because laying out
tens of thousands of lines through a rich ``Console`` takes seconds.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TextIO

from rich.color import ColorSystem
from rich.style import Style

from reconciler.models.plan import Action, Change, CostSummary, FleetPlan, Plan, Rollout
from reconciler.views._money import change_cost, cost_line, has_prices, peak_line
from reconciler.views._outline import (
    DATA_LOSS_HEADING,
    KEPT_HEADING,
    LineKind,
    Summary,
    change_details,
    change_title,
    data_loss_lines,
    is_listed,
    rollout_outline,
    summarize,
    unsettled_parts,
)
from reconciler.views._values import clean_text

NO_CHANGES = "No changes. Your fleets match the manifests."
NO_CAPACITY_HEADING = "No capacity (this plan fails until an approved offer is free):"

_ACTION_STYLES = {
    Action.CREATE: "green",
    Action.UPDATE: "yellow",
    Action.REPLACE: "magenta",
    Action.DELETE: "red",
    Action.FORGET: "dim",
    Action.NOOP: "cyan",
}
_DETAIL_INDENT = " " * 6


class _Painter:
    """Wraps text in ANSI styles when colour is on; returns it untouched when off."""

    def __init__(self, color: bool) -> None:
        self._codes: dict[str, tuple[str, str]] = {}
        self._color = color

    def __call__(self, text: str, style: str) -> str:
        if not self._color or not text:
            return text
        codes = self._codes.get(style)
        if codes is None:
            rendered = Style.parse(style).render("\0", color_system=ColorSystem.STANDARD)
            start, _, end = rendered.partition("\0")
            codes = self._codes[style] = (start, end)
        return f"{codes[0]}{text}{codes[1]}"


def _change_lines(change: Change, paint: _Painter, rollout: Rollout | None = None) -> Iterator[str]:
    symbol = f"{change.action.symbol:>3}"
    header = f"{paint(symbol, _ACTION_STYLES[change.action])} {paint(change_title(change), 'bold')}"
    cost = change_cost(change)
    yield header + "  " + cost if cost is not None else header
    for line in change_details(change, rollout):
        if line.kind is LineKind.FIELD and line.forces_replacement:
            text, sep, note = line.text.rpartition("  # ")
            if sep:
                yield f"{_DETAIL_INDENT}{text}{sep}{paint(note, 'red')}"
            else:
                yield _DETAIL_INDENT + line.text
        elif line.kind is LineKind.REASON or line.kind is LineKind.ROLLOUT:
            yield _DETAIL_INDENT + paint(line.text, "dim")
        elif line.kind is LineKind.PLACEMENT:
            yield _DETAIL_INDENT + paint(line.text, "cyan")
        else:
            yield _DETAIL_INDENT + line.text


def _fleet_lines(fleet: FleetPlan, paint: _Painter) -> Iterator[str]:
    listed = [c for c in fleet.changes if is_listed(c)]
    name = clean_text(fleet.fleet)
    if not listed:
        yield f"{paint('Fleet ' + name, 'bold')}: no changes."
        yield ""
        return
    yield paint(f"Fleet {name}:", "bold")
    yield ""
    rollouts = {r.group: r for r in fleet.rollouts}
    for change in listed:
        rollout = rollouts.get(change.rollout) if change.rollout is not None else None
        yield from _change_lines(change, paint, rollout)
        yield ""
    for rollout in fleet.rollouts:
        yield from _rollout_lines(rollout, fleet, paint)
        yield ""


def _rollout_lines(rollout: Rollout, fleet: FleetPlan, paint: _Painter) -> Iterator[str]:
    """A rollout's heading, its floor and peak, its cost, readiness, then a line per wave."""
    outline = rollout_outline(rollout, fleet)
    yield paint(f"Rollout of {clean_text(outline.group)}:", "bold") + " " + outline.settings
    yield "  " + outline.bounds
    if outline.cost is not None:
        yield "  " + outline.cost
    if outline.readiness is not None:
        yield f"  readiness: {clean_text(outline.readiness)} ({outline.readiness_note})"
    else:
        yield f"  readiness: none ({outline.readiness_note})"
    for wave in outline.waves:
        entries = ", ".join(
            clean_text(e.name) + (f" ({clean_text('; '.join(e.notes))})" if e.notes else "")
            for e in wave.entries
        )
        yield f"  {wave.label}: {entries}"


def _preamble(plan: Plan) -> Iterator[str]:
    if plan.sandbox:
        yield "Sandbox: planned against Shadeform's sandbox; nothing here launches real machines."
    if plan.destroy:
        yield (
            "Destroy plan: everything the selected fleets own is to be deleted"
            + (", volumes kept unless --allow-data-loss." if not plan.data_loss else ".")
        )
    if plan.targets:
        yield "Targeted plan: only " + ", ".join(clean_text(t) for t in plan.targets)
    if plan.excludes:
        yield "Left out (--exclude): " + ", ".join(clean_text(e) for e in plan.excludes)
    if plan.replace:
        yield "Replacement requested: " + ", ".join(clean_text(r) for r in plan.replace)
    if plan.sandbox or plan.destroy or plan.targets or plan.excludes or plan.replace:
        yield ""


def _notices(plan: Plan, paint: _Painter) -> Iterator[str]:
    data_loss = data_loss_lines(plan)
    if data_loss:
        yield paint(DATA_LOSS_HEADING, "bold red")
        for line in data_loss:
            yield "  " + line
        yield ""
    if plan.kept:
        yield paint(KEPT_HEADING, "bold")
        for kept in plan.kept:
            yield f"  {clean_text(kept.address)}: {clean_text(kept.message)}"
        yield ""
    blocked = [b for f in plan.fleets for b in f.blocked]
    if blocked:
        yield paint("Blocked (left alone until resolved):", "bold red")
        for item in blocked:
            yield f"  {clean_text(item.address)}: {clean_text(item.message)}"
        yield ""
    no_capacity = plan.no_capacity
    if no_capacity:
        yield paint(NO_CAPACITY_HEADING, "bold red")
        for item in no_capacity:
            yield f"  {clean_text(item.address)}: {clean_text(item.message)}"
        yield ""
    prefix_fleet = len(plan.fleets) > 1
    warnings = [
        (clean_text(f.fleet) + ": " if prefix_fleet else "") + clean_text(w)
        for f in plan.fleets
        for w in f.warnings
    ]
    if warnings:
        yield paint("Warnings:", "bold yellow")
        for warning in warnings:
            yield "  " + warning
        yield ""
    overrides = [
        (clean_text(f.fleet) + ": " if prefix_fleet else "") + clean_text(o)
        for f in plan.fleets
        for o in f.budget_overrides
    ]
    if overrides:
        yield paint("Budget overrides (allowed by --allow-over-budget):", "bold red")
        for override in overrides:
            yield "  " + override
        yield ""


def summary_lines(
    summary: Summary,
    cost: CostSummary = CostSummary(),
    *,
    blocked: int = 0,
    pending: int = 0,
    no_capacity: int = 0,
) -> list[str]:
    """The closing lines: state-only changes, Terraform's one-line summary, the burn rate.

    "No changes. Your fleets match the manifests." only when that is true: never while an
    address is blocked or waiting for an earlier create, or an instance has no capacity."""
    lines = []
    state_only = summary.state_only_line()
    if state_only:
        lines.append(f"State only: {state_only}.")
    unsettled = unsettled_line(blocked=blocked, pending=pending, no_capacity=no_capacity)
    if summary.has_changes:
        lines.append(f"Plan: {summary.plan_line()}.")
    elif unsettled is None:
        lines.append(NO_CHANGES)
    else:
        lines.append("Nothing can be changed yet.")
    if unsettled is not None:
        lines.append(unsettled)
    if has_prices(cost):
        lines.append(cost_line(cost))
        peak = peak_line(cost)
        if peak is not None:
            lines.append(peak)
    return lines


def unsettled_line(*, blocked: int, pending: int, no_capacity: int) -> str | None:
    """Why the fleets do not match the manifests even after this plan, or None."""
    parts = unsettled_parts(blocked=blocked, pending=pending, no_capacity=no_capacity)
    if not parts:
        return None
    return (
        f"Not in sync: {', '.join(parts)} (listed above); the fleets differ from the "
        "manifests until these are resolved."
    )


def render_plan_human(plan: Plan, stream: TextIO, *, color: bool) -> None:
    """Write ``plan`` for a terminal; ``color=False`` writes no escape sequences at all."""
    paint = _Painter(color)
    stream.write("".join(line + "\n" for line in _preamble(plan)))
    summary = Summary()
    for fleet in plan.fleets:
        summary += summarize(fleet.changes)
        stream.write("".join(line + "\n" for line in _fleet_lines(fleet, paint)))
    stream.write("".join(line + "\n" for line in _notices(plan, paint)))
    closing = summary_lines(
        summary,
        plan.cost,
        blocked=len(plan.blocked),
        pending=len(plan.pending),
        no_capacity=len(plan.no_capacity),
    )
    stream.write("".join(paint(line, "bold") + "\n" for line in closing))
