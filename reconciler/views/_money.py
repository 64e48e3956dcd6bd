"""Display forms of money and placement, shared by the human and Markdown views.

Prices are integer cents per hour; ``None`` is a price nobody knows and prints as ``$?``::

    change_cost(create)    -> "+$0.80/h"
    change_cost(replace)   -> "$0.80/h -> $2.49/h"
    placement_text(choice) -> "A6000 spot in hyperstack/canada-1 at $0.40/h, boots in ≤5 min,
                               2 fallbacks"
    cost_line(summary)     -> "Cost: $12.40/h -> $15.20/h (+$2.80/h); per 30 days $8,928.00 ->
                               $10,944.00"
    peak_line(summary)     -> "Peak: $16.20/h while the plan is applied (+$1.00/h while new
                               instances run beside old ones)"
    duration_text(5400)    -> "1 h 30 min"
"""

from __future__ import annotations

from reconciler.models.catalog import HOURS_PER_30_DAYS, Cents, format_cents, round_cents
from reconciler.models.plan import Action, Change, CostSummary, PlacementChoice
from reconciler.views._values import clean_text


def hourly(cents: Cents | None) -> str:
    """``80`` -> ``$0.80/h``."""
    return f"{format_cents(cents)}/h"


def signed(cents: Cents | None) -> str:
    """``280`` -> ``+$2.80``, ``-249`` -> ``-$2.49``, ``None`` -> ``$?``."""
    if cents is None:
        return format_cents(None)
    return ("+" if cents >= 0 else "") + format_cents(cents)


def change_cost(change: Change) -> str | None:
    """The $/hour effect of a create, replace or delete; None for other actions, and for
    what costs nothing (an SSH key). Storage adds its 30-day figure (it is priced so)."""
    before, after = change.hourly_cents_before, change.hourly_cents_after
    if change.kind == "ssh_key" and not before and not after:
        return None
    monthly = ""
    if change.kind == "volume":
        month = after if change.action is not Action.DELETE else before
        if month is not None:
            monthly = f" ({format_cents(round_cents(month * HOURS_PER_30_DAYS))} per 30 days)"
    if change.action is Action.CREATE:
        return ("+" + hourly(after) if after is not None else "+$?/h") + monthly
    if change.action is Action.DELETE:
        return ("-" + hourly(before) if before is not None else "-$?/h") + monthly
    if change.action is Action.REPLACE:
        return f"{hourly(before)} -> {hourly(after)}{monthly}"
    return None


def boot_text(seconds: int) -> str:
    """``300`` -> ``≤5 min``; under a minute in seconds (``≤45 s``)."""
    if seconds < 60:
        return f"≤{seconds} s"
    return f"≤{-(-seconds // 60)} min"


def duration_text(seconds: int) -> str:
    """``1200`` -> ``20 min``, ``5400`` -> ``1 h 30 min``; under a minute in seconds."""
    if seconds < 60:
        return f"{seconds} s"
    hours, minutes = divmod(round(seconds / 60), 60)
    if not hours:
        return f"{minutes} min"
    return f"{hours} h" + (f" {minutes} min" if minutes else "")


def placement_text(placement: PlacementChoice) -> str:
    """The chosen offer, its price, its boot time (when known) and the fallbacks left."""
    chosen = placement.chosen
    parts = [f"{clean_text(chosen.describe())} at {hourly(chosen.hourly_price_cents)}"]
    if chosen.boot_seconds_max is not None:
        parts.append(f"boots in {boot_text(chosen.boot_seconds_max)}")
    left = len(placement.fallbacks)
    parts.append(f"{left or 'no'} fallback{'' if left == 1 else 's'}")
    return ", ".join(parts)


def has_prices(cost: CostSummary) -> bool:
    """Whether there is anything to say about money (a plan made without prices has not)."""
    return bool(cost.hourly_cents_before or cost.hourly_cents_after or cost.unknown_prices)


def unknown_note(count: int) -> str:
    """``price unknown for 2 instances (not counted)``."""
    return f"price unknown for {count} instance{'' if count == 1 else 's'} (not counted)"


def cost_line(cost: CostSummary) -> str:
    """The burn rate before and after, per hour and per 30 days."""
    before, after = cost.hourly_cents_before, cost.hourly_cents_after
    if before == after:
        monthly = format_cents(cost.monthly_cents_after)
        line = f"Cost: {hourly(after)} (unchanged); per 30 days {monthly}"
    else:
        line = (
            f"Cost: {hourly(before)} -> {hourly(after)} ({signed(round_cents(after - before))}/h); "
            f"per 30 days {format_cents(cost.monthly_cents_before)} -> "
            f"{format_cents(cost.monthly_cents_after)}"
        )
    if cost.unknown_prices:
        line += "; " + unknown_note(cost.unknown_prices)
    return line


def peak_line(cost: CostSummary) -> str | None:
    """The highest burn while the plan is applied, when it is above before and after (old
    and new instances running side by side); None when there is no such peak."""
    if cost.hourly_cents_peak is None:
        return None
    extra = round_cents(
        cost.hourly_cents_peak - max(cost.hourly_cents_before, cost.hourly_cents_after)
    )
    return (
        f"Peak: {hourly(cost.hourly_cents_peak)} while the plan is applied ({signed(extra)}/h "
        "while new instances run beside old ones)"
    )
