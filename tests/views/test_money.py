"""Money and placement wording shared by the text views."""

from __future__ import annotations

import pytest

from reconciler.models.plan import Action, Change, CostSummary, PlacementChoice
from reconciler.views._money import (
    boot_text,
    change_cost,
    cost_line,
    duration_text,
    has_prices,
    peak_line,
    placement_text,
    signed,
)

from .plans import A6000, H100, SPOT_A6000


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(0, "≤0 s"), (45, "≤45 s"), (60, "≤1 min"), (61, "≤2 min"), (300, "≤5 min")],
)
def test_boot_time_rounds_up_to_whole_minutes(seconds, text):
    assert boot_text(seconds) == text


def test_signed_amounts():
    assert signed(280) == "+$2.80"
    assert signed(-249) == "-$2.49"
    assert signed(0) == "+$0.00"
    assert signed(None) == "$?"


@pytest.mark.parametrize(
    ("action", "before", "after", "text"),
    [
        (Action.CREATE, None, 80, "+$0.80/h"),
        (Action.CREATE, None, None, "+$?/h"),
        (Action.DELETE, 199_200, None, "-$1,992.00/h"),
        (Action.DELETE, None, None, "-$?/h"),
        (Action.REPLACE, 80, 249, "$0.80/h -> $2.49/h"),
        (Action.REPLACE, None, 249, "$?/h -> $2.49/h"),
        (Action.UPDATE, 80, 80, None),
        (Action.NOOP, 80, 80, None),
        (Action.FORGET, 80, None, None),
    ],
)
def test_change_cost_per_action(action, before, after, text):
    change = Change(
        address="f/a", action=action, hourly_cents_before=before, hourly_cents_after=after
    )
    assert change_cost(change) == text


def test_placement_counts_fallbacks_and_omits_unknown_boot_time():
    one = PlacementChoice(chosen=SPOT_A6000, fallbacks=(A6000,))
    assert placement_text(one) == (
        "A6000 spot in hyperstack/canada-1 at $0.40/h, boots in ≤5 min, 1 fallback"
    )
    assert placement_text(PlacementChoice(chosen=H100, fallbacks=(A6000, SPOT_A6000))) == (
        "H100 in lambdalabs/us-east-1 at $2.49/h, 2 fallbacks"
    )


def test_placement_text_cannot_carry_escape_codes():
    evil = H100.model_copy(update={"cloud": "x\x1b[31m"})
    assert "\x1b" not in placement_text(PlacementChoice(chosen=evil))


def test_cost_line_forms():
    assert not has_prices(CostSummary())
    assert has_prices(CostSummary(unknown_prices=1))
    down = CostSummary(hourly_cents_before=200, hourly_cents_after=100, unknown_prices=2)
    assert cost_line(down) == (
        "Cost: $2.00/h -> $1.00/h (-$1.00/h); per 30 days $1,440.00 -> $720.00; "
        "price unknown for 2 instances (not counted)"
    )


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(45, "45 s"), (60, "1 min"), (1200, "20 min"), (3600, "1 h"), (5400, "1 h 30 min")],
)
def test_durations_in_minutes_and_hours(seconds, text):
    assert duration_text(seconds) == text


def test_peak_line_only_when_there_is_a_peak():
    assert peak_line(CostSummary(hourly_cents_before=400, hourly_cents_after=400)) is None
    rolling = CostSummary(hourly_cents_before=400, hourly_cents_after=300, hourly_cents_peak=500)
    assert peak_line(rolling) == (
        "Peak: $5.00/h while the plan is applied (+$1.00/h while new instances run beside old ones)"
    )
