"""The pull-request comment: summary table first, collapsed details, escaping, size limit."""

from __future__ import annotations

import io
import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from reconciler.models.plan import Action, Blocked, Change, CostSummary, FleetPlan, Plan
from reconciler.views import render_plan_markdown

from .plans import (
    FINGERPRINT_DIGEST,
    OTHER_SECRET,
    SECRET,
    large_plan,
    plans,
    priced_plan,
    quiet_plan,
    sample_plan,
    without_prices,
)

NOTE = re.compile(
    r"… output truncated: (\d+) more changes(?: and (\d+) more blocked/warning notes)?; "
    r"run `reconciler plan` locally for the full plan\n$"
)
LARGE_HEADER = re.compile(
    r"^(?:\+ create|! update in place|! replace|- delete) inference/vllm-\d+", re.MULTILINE
)


def render(plan: Plan, **kw: int) -> str:
    out = io.StringIO()
    render_plan_markdown(plan, out, **kw)
    return out.getvalue()


def fleet_plan(name: str = "inference", **kw: object) -> FleetPlan:
    return FleetPlan(fleet=name, lineage=None, serial=0, manifest_digest="d", **kw)  # type: ignore[arg-type]


def test_title_and_summary_table_come_first():
    lines = render(without_prices(sample_plan())).splitlines()
    assert lines[:5] == [
        "### Reconciler plan: 1 to create, 1 to update, 3 to replace, 1 to delete"
        " (not in sync: 1 waiting for a create sent earlier)",
        "",
        "| Fleet | Create | Update | Replace | Delete |",
        "| --- | ---: | ---: | ---: | ---: |",
        "| inference | 1 | 1 | 3 | 1 |",
    ]
    assert "State only: 1 instance to adopt, 1 state record to forget." in lines


def test_cost_table_comes_first_then_the_summary_table():
    lines = render(priced_plan()).splitlines()
    assert lines[:21] == [
        "### Reconciler plan: 2 to create, 1 to update, 1 to replace, 1 to delete"
        " (not in sync: 1 without capacity)",
        "",
        "| Fleet | $/h before | $/h after | $/h change | 30 days before | 30 days after |",
        "| --- | ---: | ---: | ---: | ---: | ---: |",
        "| inference | \\$4.89 | \\$4.49 | -\\$0.40 | \\$3,520.80 | \\$3,232.80 |",
        "| training | \\$19.92 | \\$19.92 | \\$0.00 | \\$14,342.40 | \\$14,342.40 |",
        "| **Total** | \\$24.81 | \\$24.41 | -\\$0.40 | \\$17,863.20 | \\$17,575.20 |",
        "",
        "Price unknown for 1 instance (not counted).",
        "",
        "| Fleet | Create | Update | Replace | Delete |",
        "| --- | ---: | ---: | ---: | ---: |",
        "| inference | 1 | 1 | 1 | 1 |",
        "| training | 1 | 0 | 0 | 0 |",
        "| **Total** | 2 | 1 | 1 | 1 |",
        "",
        "**No capacity** (this plan fails until an approved offer is free):",
        "",
        "- `training/trainer-2`: no capacity: no approved offer is available "
        "(approved: 8xH100 in nebius/eu-north1)",
        "",
        "**Budget overrides** (allowed by `--allow-over-budget`):",
    ]


def test_one_fleet_cost_table_has_no_total_and_rising_costs_are_signed():
    fleet = fleet_plan(cost=CostSummary(hourly_cents_before=1240, hourly_cents_after=1520))
    text = render(Plan(fleets=(fleet,)))
    assert "| inference | \\$12.40 | \\$15.20 | +\\$2.80 | \\$8,928.00 | \\$10,944.00 |" in text
    assert "Total" not in text and "unknown" not in text


def test_plans_without_prices_have_no_cost_table():
    assert "$/h" not in render(without_prices(sample_plan()))
    assert "$/h" not in render(large_plan(10))


def test_changes_show_their_hourly_effect_and_placement():
    body = render(priced_plan()).splitlines()
    assert body[body.index("+ create inference/vllm-0  +$0.40/h") + 1] == (
        "      placement: A6000 spot in hyperstack/canada-1 at $0.40/h, boots in ≤5 min,"
        " 2 fallbacks"
    )
    assert "! replace inference/vllm-1 [i-1]  $0.80/h -> $2.49/h" in body
    assert "- delete inference/vllm-2 [i-2]  -$2.49/h" in body
    assert "! update in place inference/vllm-3 [i-3]" in body
    assert "+ create training/trainer-0  +$?/h" in body


def test_budget_overrides_and_missing_capacity_are_escaped_and_never_cut():
    expected = (
        "- `inference`: max\\_instance\\_hourly \\$2.00 exceeded: inference/vllm-1 costs \\$2.49/h"
    )
    text = render(priced_plan())
    assert expected in text.splitlines()
    assert text.index(expected) < text.index("<details>")
    short = render(priced_plan(), max_chars=300)
    assert expected in short.splitlines() and "output truncated" in short
    assert "- `training/trainer-2`: no capacity" in short


def test_dollar_signs_in_user_text_cannot_start_latex():
    plan = Plan(fleets=(fleet_plan(warnings=("costs $1/$2 now",)),))
    assert "- costs \\$1/\\$2 now" in render(plan)


def test_changes_sit_in_a_collapsed_diff_block():
    text = render(sample_plan())
    details = text[text.index("<details>") :]
    assert details.startswith(
        "<details><summary>inference: 1 to create, 1 to update, 3 to replace, 1 to delete"
        "</summary>\n\n```diff\n+ create inference/vllm-0  +$?/h\n      # new instance\n"
    )
    body = details.splitlines()
    assert "! replace inference/vllm-2 [i-2] (create before destroy)  $?/h -> $?/h" in body
    assert '-     shade_instance_type: "A6000"' in body  # before: red in GitHub's diff
    assert '+     shade_instance_type: "H100"  # forces replacement' in body  # after: green
    assert '-     tags: ["team-ml"]' in body and '+     tags: ["team-ml", "prod"]' in body
    assert "- delete inference/vllm-3 [i-3]  -$?/h" in body
    assert "  forget inference/vllm-4 [i-4] (already gone; removed from state)" in body
    assert "  adopt inference/vllm-6 (adopt i-6)" in body
    assert "      # instance is in error: GPU fell off the bus" in body
    assert "vllm-7" not in text  # unchanged no-ops are not listed
    assert details.endswith("```\n\n</details>\n\n")


def test_blocked_and_warnings_are_visible_above_the_details():
    text = render(sample_plan())
    top = text[: text.index("<details>")]
    assert "**Blocked** (left alone until resolved):\n\n- `inference/vllm-8`: a create was" in top
    assert "**Warnings:**\n\n- instance i-99 (stray) carries fleet inference's tag" in top
    assert "\\`reconciler import\\`" in top  # backticks in messages are escaped


def test_no_changes():
    text = render(quiet_plan())
    assert text.startswith("### Reconciler plan: no changes\n")
    assert "<details>" not in text


def test_several_fleets_get_a_total_row():
    text = render(large_plan(30, fleets=3))
    assert "| fleet-0 | 2 | 2 | 2 | 2 |" in text
    assert "| **Total** | 6 | 6 | 6 | 6 |" in text
    assert text.count("<details>") == 3


def test_flags_are_shown():
    plan = sample_plan().model_copy(
        update={"sandbox": True, "destroy": True, "targets": ("inference/vllm",)}
    )
    text = render(plan)
    assert text.splitlines()[0].endswith("(destroy) (sandbox)")
    assert "Targeted plan: only `inference/vllm`" in text


def test_secrets_never_appear():
    text = render(sample_plan())
    assert SECRET not in text and OTHER_SECRET not in text and "(sensitive:" not in text
    assert '"value": (sensitive)' in text


def test_user_text_is_escaped_for_markdown_and_html():
    plan = Plan(
        fleets=(
            fleet_plan(
                "a|b<img src=x>*c*",
                changes=(Change(address="a/x", action=Action.CREATE, after={"name": "x"}),),
                blocked=(Blocked(address="a/`y`", message="[click](http://e.test) <b>now</b>"),),
                warnings=("ping @org/team & _all_ # of\nyou",),
            ),
        )
    )
    text = render(plan)
    assert "| a\\|b\\<img src=x\\>\\*c\\* | 1 | 0 | 0 | 0 |" in text
    assert "<summary>a|b&lt;img src=x&gt;*c*: 1 to create" in text
    assert "- `` a/`y` ``: \\[click\\](http://e.test) \\<b\\>now\\</b\\>" in text
    # the newline is shown as an escape, whose backslash is itself escaped for Markdown
    assert "- ping \\@org/team \\& \\_all\\_ \\# of\\\\x0ayou" in text
    assert not re.search(r"(?<!\\)<(img|b>)", text)  # no live HTML tag anywhere


def test_github_colours_replacements_as_changes_and_fields_as_before_and_after():
    """In a ``diff`` block GitHub colours a line by its first character: a replacement must not
    start with ``-`` (it would read as a deletion) and an update must be highlighted."""
    text = render(sample_plan())
    block = text[text.index("```diff") : text.rindex("```")]
    lines = block.splitlines()[1:]
    assert not any(line.startswith(("-/+", "~")) for line in lines)
    headers = [line for line in lines if "inference/vllm-" in line and "     " not in line[:7]]
    for header in headers:
        if " replace " in header or " update in place " in header:
            assert header.startswith("! ")  # "changed": orange, neither red nor green
    reds = [line for line in lines if line.startswith("-")]
    assert all(line.startswith(("- delete", "-     ")) for line in reds)


def test_code_fence_outruns_backticks_in_values():
    change = Change(address="f/a", action=Action.CREATE, after={"name": "```\n</details>"})
    text = render(Plan(fleets=(fleet_plan("f", changes=(change,)),)))
    assert "````diff\n+ create f/a  +$?/h\n" in text
    assert text.endswith("````\n\n</details>\n\n")


def test_everything_fits_without_a_note_when_small():
    assert "output truncated" not in render(sample_plan())


@pytest.mark.parametrize("max_chars", [400, 2_000, 10_000, 60_000])
def test_long_plans_are_cut_below_max_chars_with_a_note(max_chars):
    plan = large_plan(10_000, fleets=2)
    text = render(plan, max_chars=max_chars)
    assert len(text) <= max_chars
    left = NOTE.search(text)
    assert left is not None
    shown = len(LARGE_HEADER.findall(text))
    assert shown + int(left.group(1)) == 8_000  # every change but the no-ops is listed
    assert text.count("<details>") == text.count("</details>")
    assert text.count("```diff") * 2 == len(re.findall(r"^```", text, re.MULTILINE))


def test_notices_are_cut_too_and_counted():
    plan = Plan(fleets=(fleet_plan(warnings=tuple(f"warning {i}" for i in range(500))),))
    text = render(plan, max_chars=1_000)
    assert len(text) <= 1_000
    left = NOTE.search(text)
    assert left is not None
    assert text.count("- warning ") + int(left.group(2)) == 500


@settings(max_examples=60, deadline=None)
@given(plans, st.integers(min_value=1_500, max_value=6_000))
def test_any_plan_stays_under_max_chars(plan, max_chars):
    text = render(plan, max_chars=max_chars)
    assert len(text) <= max_chars
    assert FINGERPRINT_DIGEST not in text
    assert "\x1b" not in text


def test_the_default_comment_fits_githubs_65536_character_limit_with_a_note():
    text = io.StringIO()
    render_plan_markdown(large_plan(8_000), text)  # the default limit
    comment = text.getvalue()
    assert len(comment) <= 65_536
    assert re.search(
        r"… output truncated: \d+ more changes; run `reconciler plan` locally", comment
    )
    assert comment.count("<details>") == comment.count("</details>")
