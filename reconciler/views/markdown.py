"""The plan as a pull-request comment: title, cost table, summary table, instances without
capacity, budget overrides, notices, rollouts (a paragraph and a table of waves per replica
group replaced in waves), then per fleet a collapsed ``<details>`` block with the changes in a
``diff`` code block.

The comment is kept under ``max_chars`` (GitHub refuses comments over 65,536 characters): the
title, both tables, instances without capacity and budget overrides always appear (a reviewer
must see why a plan fails and every limit it breaks); notices, rollouts and changes are added
while they fit, then a note says how many were left out. User-controlled text is escaped for
where it lands: Markdown text (``$`` included: GitHub reads ``$...$`` as math), inline code,
HTML (``<summary>``), a table cell (``|``) or a fenced block whose fence outruns any backticks
in it.
"""

from __future__ import annotations

import html
import re
from dataclasses import dataclass, field
from typing import TextIO

from reconciler.models.catalog import format_cents
from reconciler.models.plan import Action, Change, CostSummary, FleetPlan, Plan, Rollout
from reconciler.redaction import scrub
from reconciler.views._money import change_cost, has_prices, signed, unknown_note
from reconciler.views._outline import (
    DATA_LOSS_HEADING,
    KEPT_HEADING,
    LineKind,
    Summary,
    change_details,
    change_title,
    data_loss_lines,
    field_change_line,
    is_listed,
    rollout_outline,
    summarize,
    unsettled_parts,
)
from reconciler.views._values import clean_text, format_value

# ``$`` too: GitHub renders text between dollar signs as LaTeX math.
_MARKDOWN_SPECIAL = re.compile(r"([\\`*_\[\]<>|#~&!@$])")
_BACKTICKS = re.compile(r"`+")


def md_text(text: str) -> str:
    """Plain text safe anywhere in Markdown (including table cells): specials backslashed.

    Secrets are scrubbed first: once escaped (``hf\\_token``) they would no longer be
    recognised by the output streams' scrubbing."""
    return _MARKDOWN_SPECIAL.sub(r"\\\1", clean_text(scrub(text)))


def _longest_backtick_run(text: str) -> int:
    return max((len(m) for m in _BACKTICKS.findall(text)), default=0)


def md_code(text: str) -> str:
    """Inline code that survives backticks in ``text``."""
    text = clean_text(scrub(text))
    fence = "`" * (_longest_backtick_run(text) + 1)
    pad = " " if text.startswith("`") or text.endswith("`") else ""
    return f"{fence}{pad}{text}{pad}{fence}"


# In GitHub's ``diff`` highlighting a line's first character decides its colour: ``+`` green,
# ``-`` red, ``!`` orange, anything else plain. So each change gets the marker that reads right:
# a replacement or an update is "changed" (``!``, with words saying which), and its fields
# show as a ``-`` before line and a ``+`` after line, like any code review.
_MARKERS = {
    Action.CREATE: ("+", "create"),
    Action.DELETE: ("-", "delete"),
    Action.REPLACE: ("!", "replace"),
    Action.UPDATE: ("!", "update in place"),
    Action.FORGET: (" ", "forget"),
    Action.NOOP: (" ", "adopt"),
}


def _cell_code(text: str) -> str:
    """Inline code inside a table cell: GitHub splits cells at every ``|``, even in code."""
    return md_code(text).replace("|", "\\|")


def _change_block(change: Change, rollout: Rollout | None = None) -> str:
    marker, verb = _MARKERS[change.action]
    heading = f"{marker} {verb} {change_title(change)}"
    cost = change_cost(change)
    lines = [heading + "  " + cost if cost is not None else heading]
    for line in change_details(change, rollout):
        if line.kind is LineKind.FIELD and change.field_changes:
            continue  # shown below as before/after pairs
        body_marker = marker if line.kind is LineKind.FIELD and marker in "+-" else " "
        lines.append(f"{body_marker}     {line.text}")
    for field_change in change.field_changes:
        path, _ = field_change_line(field_change)
        notes = []
        if field_change.forces_replacement:
            notes.append("forces replacement")
        if field_change.sensitive:
            notes.append("sensitive")
        note = f"  # {'; '.join(notes)}" if notes else ""
        lines.append(f"-     {path}: {format_value(field_change.before)}")
        lines.append(f"+     {path}: {format_value(field_change.after)}{note}")
    return "\n".join(lines) + "\n"


def _title(plan: Plan, summary: Summary) -> str:
    if summary.has_changes:
        what = summary.plan_line()
    elif plan.in_sync:
        what = "no changes"
    else:
        what = "nothing can be changed yet"
    unsettled = unsettled_parts(
        blocked=len(plan.blocked), pending=len(plan.pending), no_capacity=len(plan.no_capacity)
    )
    if unsettled:
        what += f" (not in sync: {', '.join(unsettled)})"
    title = f"### Reconciler plan: {what}"
    if plan.destroy:
        title += " (destroy)"
    if plan.sandbox:
        title += " (sandbox)"
    lines = [title, ""]
    if plan.targets:
        lines += ["Targeted plan: only " + ", ".join(md_code(t) for t in plan.targets), ""]
    if plan.excludes:
        lines += ["Left out (--exclude): " + ", ".join(md_code(e) for e in plan.excludes), ""]
    if plan.replace:
        lines += ["Replacement requested: " + ", ".join(md_code(r) for r in plan.replace), ""]
    return "\n".join(lines) + "\n"


def _cost_table(plan: Plan) -> str:
    """Burn rate per fleet before and after the plan; empty for a plan made without prices."""
    total = plan.cost
    if not has_prices(total):
        return ""
    peaks = total.hourly_cents_peak is not None  # a column only for plans that have a peak
    rows = [
        "| Fleet | $/h before | $/h after | $/h change | "
        + ("$/h peak | " if peaks else "")
        + "30 days before | 30 days after |",
        "| --- | ---: | ---: | ---: | " + ("---: | " if peaks else "") + "---: | ---: |",
    ]

    def row(name: str, c: CostSummary) -> str:
        change = c.hourly_cents_after - c.hourly_cents_before
        cells = [
            format_cents(c.hourly_cents_before),
            format_cents(c.hourly_cents_after),
            signed(change) if change else format_cents(0),
            *([format_cents(c.peak)] if peaks else []),
            format_cents(c.monthly_cents_before),
            format_cents(c.monthly_cents_after),
        ]
        return f"| {name} | " + " | ".join(md_text(cell) for cell in cells) + " |"

    rows += [row(md_text(f.fleet), f.cost) for f in plan.fleets]
    if len(plan.fleets) > 1:
        rows.append(row("**Total**", total))
    if total.unknown_prices:
        note = unknown_note(total.unknown_prices)
        rows += ["", f"{note[0].upper()}{note[1:]}."]
    return "\n".join(rows) + "\n\n"


def _why_it_fails_or_costs_more(plan: Plan) -> str:
    """Data loss, volumes a destroy keeps, instances without capacity and budget limits
    broken by permission: never cut for length, since a reviewer must see them all."""
    sections = []
    data_loss = [f"- {md_text(line)}" for line in data_loss_lines(plan)]
    if data_loss:
        heading = f"**⚠ {md_text(DATA_LOSS_HEADING)}**"
        sections.append(heading + "\n\n" + "\n".join(data_loss) + "\n\n")
    kept = [f"- {md_code(k.address)}: {md_text(k.message)}" for k in plan.kept]
    if kept:
        sections.append(f"**{md_text(KEPT_HEADING)}**\n\n" + "\n".join(kept) + "\n\n")
    no_capacity = [f"- {md_code(b.address)}: {md_text(b.message)}" for b in plan.no_capacity]
    if no_capacity:
        heading = "**No capacity** (this plan fails until an approved offer is free):"
        sections.append(heading + "\n\n" + "\n".join(no_capacity) + "\n\n")
    prefix = len(plan.fleets) > 1
    overrides = [
        f"- {md_code(f.fleet) + ': ' if prefix else ''}{md_text(o)}"
        for f in plan.fleets
        for o in f.budget_overrides
    ]
    if overrides:
        heading = "**Budget overrides** (allowed by `--allow-over-budget`):"
        sections.append(heading + "\n\n" + "\n".join(overrides) + "\n\n")
    return "".join(sections)


def _table(fleets: list[tuple[FleetPlan, Summary]], total: Summary) -> str:
    rows = ["| Fleet | Create | Update | Replace | Delete |", "| --- | ---: | ---: | ---: | ---: |"]

    def row(name: str, s: Summary) -> str:
        return f"| {name} | {s.create} | {s.update} | {s.replace} | {s.delete} |"

    rows += [row(md_text(f.fleet), s) for f, s in fleets]
    if len(fleets) > 1:
        rows.append(row("**Total**", total))
    state_only = total.state_only_line()
    if state_only:
        rows += ["", f"State only: {state_only}."]
    return "\n".join(rows) + "\n\n"


def _notice_items(plan: Plan) -> list[tuple[str, str]]:
    """(section heading, list item) for every blocked address and warning, blocked first."""
    items = [
        (
            "**Blocked** (left alone until resolved):",
            f"- {md_code(b.address)}: {md_text(b.message)}",
        )
        for f in plan.fleets
        for b in f.blocked
    ]
    prefix = len(plan.fleets) > 1
    items += [
        ("**Warnings:**", f"- {md_code(f.fleet) + ': ' if prefix else ''}{md_text(w)}")
        for f in plan.fleets
        for w in f.warnings
    ]
    return items


def _rollout_block(rollout: Rollout, fleet: FleetPlan) -> str:
    """A rollout: a bold heading with its settings, a list of its floor, peak, duration, cost
    and readiness, then a table of its waves."""
    outline = rollout_outline(rollout, fleet)
    if outline.readiness is not None:
        readiness = f"{md_code(outline.readiness)} ({md_text(outline.readiness_note)})"
    else:
        readiness = f"none ({md_text(outline.readiness_note)})"
    lines = [
        f"**Rollout of {md_code(outline.group)}**: {md_text(outline.settings)}",
        "",
        f"- {md_text(outline.bounds)}",
        *([f"- {md_text(outline.cost)}"] if outline.cost is not None else []),
        f"- readiness: {readiness}",
        "",
        "| Wave | Replicas |",
        "| --- | --- |",
    ]
    for wave in outline.waves:
        label = wave.label.removeprefix("wave ")
        entries = ", ".join(
            _cell_code(e.name) + (f" ({md_text('; '.join(e.notes))})" if e.notes else "")
            for e in wave.entries
        )
        lines.append(f"| {label} | {entries} |")
    return "\n".join(lines) + "\n\n"


def _add_rollouts(comment: _Comment, blocks: list[str]) -> int:
    """Add each rollout's block while they fit; return how many."""
    shown = 0
    for block in blocks:
        if not comment.fits(block):
            break
        comment.add(block)
        shown += 1
    return shown


def truncation_note(changes: int, notices: int, rollouts: int = 0) -> str:
    parts = [f"{changes} more changes"]
    if notices:
        parts.append(f"{notices} more blocked/warning notes")
    if rollouts:
        parts.append(f"{rollouts} more rollout{'' if rollouts == 1 else 's'}")
    left = parts[0] if len(parts) == 1 else ", ".join(parts[:-1]) + " and " + parts[-1]
    return f"… output truncated: {left}; run `reconciler plan` locally for the full plan\n"


SHORT_TRUNCATION_NOTE = "… output truncated; run `reconciler plan` locally for the full plan\n"


@dataclass
class _Comment:
    """The comment being built; ``fits`` keeps ``reserve`` characters free for the note."""

    limit: int
    reserve: int
    parts: list[str] = field(default_factory=list)
    used: int = 0

    def fits(self, *texts: str) -> bool:
        return self.used + sum(len(t) for t in texts) + self.reserve <= self.limit

    def add(self, text: str) -> None:
        self.parts.append(text)
        self.used += len(text)


def _add_notices(comment: _Comment, notices: list[tuple[str, str]]) -> int:
    """Add blocked/warning items under their headings while they fit; return how many."""
    shown = 0
    heading = None
    for item_heading, item in notices:
        text = (f"{item_heading}\n\n" if item_heading != heading else "") + item + "\n"
        if not comment.fits(text):
            break
        if item_heading != heading and heading is not None:
            comment.add("\n")
        heading = item_heading
        comment.add(text)
        shown += 1
    if heading is not None:
        comment.add("\n")
    return shown


def _details(fleet: FleetPlan, summary: Summary, blocks: list[str]) -> tuple[str, str]:
    """Opening and closing text of a fleet's collapsed block."""
    fence = "`" * max(3, 1 + max(_longest_backtick_run(b) for b in blocks))
    what = summary.plan_line() if summary.has_changes else "state only"
    opening = (
        f"<details><summary>{html.escape(clean_text(fleet.fleet))}: {what}</summary>\n\n"
        f"{fence}diff\n"
    )
    return opening, f"{fence}\n\n</details>\n\n"


def _add_details(comment: _Comment, fleets: list[tuple[FleetPlan, Summary, list[Change]]]) -> int:
    """Add each fleet's collapsed block, change by change, while they fit; return how many."""
    shown = 0
    for fleet, summary, changes in fleets:
        if not changes:
            continue
        rollouts = {r.group: r for r in fleet.rollouts}
        blocks = [
            _change_block(c, rollouts.get(c.rollout) if c.rollout is not None else None)
            for c in changes
        ]
        opening, closing = _details(fleet, summary, blocks)
        if not comment.fits(opening, blocks[0], closing):
            return shown
        comment.add(opening)
        for block in blocks:
            if not comment.fits(block, closing):
                comment.add(closing)
                return shown
            comment.add(block)
            shown += 1
        comment.add(closing)
    return shown


def render_plan_markdown(plan: Plan, stream: TextIO, *, max_chars: int = 60_000) -> None:
    """Write a compact PR comment for ``plan``, at most ``max_chars`` characters long
    (unless the title, tables, no-capacity list and budget overrides alone are longer)."""
    fleets = [
        (f, summarize(f.changes), [c for c in f.changes if is_listed(c)]) for f in plan.fleets
    ]
    total = sum((s for _, s, _ in fleets), Summary())
    listed = sum(len(changes) for _, _, changes in fleets)
    notices = _notice_items(plan)
    rollouts = [_rollout_block(r, f) for f in plan.fleets for r in f.rollouts]
    # Room for the longest possible note, plus the blank lines that end the notice sections.
    note = truncation_note(listed, len(notices), len(rollouts))
    comment = _Comment(max_chars, reserve=len(note) + 8)
    comment.add(_title(plan, total))
    comment.add(_cost_table(plan))
    comment.add(_table([(f, s) for f, s, _ in fleets], total))
    comment.add(_why_it_fails_or_costs_more(plan))
    notices_shown = _add_notices(comment, notices)
    rollouts_shown = _add_rollouts(comment, rollouts) if notices_shown == len(notices) else 0
    changes_shown = _add_details(comment, fleets) if rollouts_shown == len(rollouts) else 0
    if changes_shown < listed or notices_shown < len(notices) or rollouts_shown < len(rollouts):
        note = truncation_note(
            listed - changes_shown, len(notices) - notices_shown, len(rollouts) - rollouts_shown
        )
        # What always appears may leave less than the reserve: then the note says less.
        comment.reserve = 0
        comment.add(note if comment.fits(note) else SHORT_TRUNCATION_NOTE)
    stream.write("".join(comment.parts))
