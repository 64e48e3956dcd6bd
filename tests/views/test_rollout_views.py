"""Rollouts in the text views: each rollout's section (settings, floor and peak, duration, peak
$/h, readiness, waves), each change's wave, the peak in the cost summary; plans without a
rollout render as they always did. (The JSON form is tested in ``test_json_view``.)"""

from __future__ import annotations

import io
import re

from reconciler.models.plan import FleetPlan, Plan, Rollout, RolloutWave
from reconciler.views import render_plan_human, render_plan_markdown

from .plans import priced_plan, rollout_plan, sample_plan, unfinished_rollout_plan


def human(plan: Plan, *, color: bool = False) -> str:
    out = io.StringIO()
    render_plan_human(plan, out, color=color)
    return out.getvalue()


def markdown(plan: Plan, **kw: int) -> str:
    out = io.StringIO()
    render_plan_markdown(plan, out, **kw)
    return out.getvalue()


def section(text: str, heading: str) -> list[str]:
    """The lines from the one starting with ``heading`` up to the blank line that ends them."""
    lines = text.splitlines()
    start = next(n for n, line in enumerate(lines) if line.startswith(heading))
    return lines[start : lines.index("", start)]


ROLLOUT_SECTION = [
    "Rollout of inference/mistral: 4 replicas, max_unavailable 1, max_surge 1",
    "  never fewer than 3 serving, never more than 5 running; about 20 min (2 waves × ≤10 min boot)",
    "  peak $5.00/h while surge replicas run (+$1.00/h)",
    "  readiness: ./scripts/ready.sh (must pass before a new replica counts as serving)",
    "  wave 1: mistral-0 (create first), mistral-1",
    "  wave 2: mistral-2 (create first), mistral-3",
]


# -- human --------------------------------------------------------------------------------------


def test_human_shows_the_rollout_after_the_fleets_changes():
    text = human(rollout_plan())
    assert section(text, "Rollout of ") == ROLLOUT_SECTION
    assert text.index("-/+ inference/mistral-3") < text.index("Rollout of ") < text.index("Plan:")


def test_human_change_lines_name_their_wave():
    lines = human(rollout_plan()).splitlines()
    for address, wave in (("mistral-0", 1), ("mistral-1", 1), ("mistral-2", 2), ("mistral-3", 2)):
        header = next(n for n, line in enumerate(lines) if f" inference/{address} [" in line)
        assert lines[header + 1] == f"      # rollout inference/mistral: wave {wave} of 2"
    # the title still says which replacements are create-first; the header layout is unchanged
    assert (
        "-/+ inference/mistral-0 [i-0] (create before destroy)  $1.00/h -> $1.00/h" in lines
        and "-/+ inference/mistral-1 [i-1]  $1.00/h -> $1.00/h" in lines
    )


def test_human_cost_summary_shows_the_peak():
    assert human(rollout_plan()).splitlines()[-3:] == [
        "Plan: 0 to create, 0 to update, 4 to replace, 0 to delete.",
        "Cost: $4.00/h (unchanged); per 30 days $2,880.00",
        "Peak: $5.00/h while the plan is applied (+$1.00/h while new instances run beside old ones)",
    ]


def test_human_wave_zero_finishes_what_an_earlier_run_left():
    text = human(unfinished_rollout_plan())
    assert section(text, "Rollout of ") == [
        "Rollout of inference/mistral: 3 replicas, max_unavailable 1, max_surge 1",
        "  never fewer than 2 serving, never more than 4 running; "
        "about 10 min (the boot times of 2 waves)",
        "  peak $5.00/h while surge replicas run (+$1.00/h)",
        "  readiness: none (a new replica counts as serving once it is active)",
        "  wave 0 (finish first): mistral-0 (i-0 goes once i-new serves)",
        "  wave 1: mistral-1 (create first), mistral-2",
    ]
    delete = section(text, "  - inference/mistral-0 [i-0]")
    assert delete[1:] == [
        "      # i-0 is the predecessor of i-new, which is still pending: deleted once i-new serves",
        "      # rollout inference/mistral: wave 0 (finish first)",
    ]


def test_human_without_surge_says_there_is_no_extra_cost():
    text = human(rollout_plan(max_surge=0, readiness=False))
    assert section(text, "Rollout of ") == [
        "Rollout of inference/mistral: 4 replicas, max_unavailable 1, max_surge 0",
        "  never fewer than 3 serving, never more than 4 running; about 40 min (4 waves × ≤10 min boot)",
        "  no surge replicas, so no extra cost",
        "  readiness: none (a new replica counts as serving once it is active)",
        "  wave 1: mistral-0",
        "  wave 2: mistral-1",
        "  wave 3: mistral-2",
        "  wave 4: mistral-3",
    ]
    assert "Peak:" not in text


def test_human_rollouts_sit_in_their_own_fleet_section():
    other = FleetPlan(fleet="training", lineage=None, serial=0, manifest_digest="d")
    plan = rollout_plan().model_copy(update={"fleets": (*rollout_plan().fleets, other)})
    text = human(plan)
    assert text.index("Rollout of ") < text.index("Fleet training: no changes.")


def test_human_rollout_heading_is_bold_and_user_text_is_cleaned():
    assert "\x1b[1mRollout of inference/mistral:\x1b[0m 4 replicas" in human(
        rollout_plan(), color=True
    )
    fleet = rollout_plan().fleets[0]
    evil = fleet.model_copy(
        update={
            "rollouts": (
                fleet.rollouts[0].model_copy(
                    update={
                        "group": "inference/\x1b[2Jmistral",
                        "readiness": ("./ready\x1b]0;x\x07.sh", "--port", "8000 1"),
                    }
                ),
            )
        }
    )
    text = human(Plan(fleets=(evil,)))
    assert "\x1b" not in text and "\x07" not in text
    assert "Rollout of inference/\\x1b[2Jmistral: 4 replicas" in text
    assert "  readiness: './ready\\x1b]0;x\\x07.sh' --port '8000 1' (must pass" in text


def test_plans_without_rollouts_show_no_rollout_or_peak():
    for plan in (sample_plan(), priced_plan()):
        for text in (human(plan), markdown(plan)):
            assert "Rollout" not in text and "rollout" not in text
            assert "Peak" not in text and "peak" not in text


# -- Markdown -----------------------------------------------------------------------------------


def test_markdown_cost_table_has_a_peak_column_when_there_is_a_peak():
    lines = markdown(rollout_plan()).splitlines()
    assert lines[2:5] == [
        "| Fleet | $/h before | $/h after | $/h change | $/h peak | 30 days before | 30 days after |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: |",
        "| inference | \\$4.00 | \\$4.00 | \\$0.00 | \\$5.00 | \\$2,880.00 | \\$2,880.00 |",
    ]


def test_markdown_shows_each_rollout_with_a_table_of_waves():
    text = markdown(rollout_plan())
    start = text.index("**Rollout of ")
    assert text[start:].splitlines()[:11] == [
        "**Rollout of `inference/mistral`**: 4 replicas, max\\_unavailable 1, max\\_surge 1",
        "",
        "- never fewer than 3 serving, never more than 5 running; about 20 min "
        "(2 waves × ≤10 min boot)",
        "- peak \\$5.00/h while surge replicas run (+\\$1.00/h)",
        "- readiness: `./scripts/ready.sh` (must pass before a new replica counts as serving)",
        "",
        "| Wave | Replicas |",
        "| --- | --- |",
        "| 1 | `mistral-0` (create first), `mistral-1` |",
        "| 2 | `mistral-2` (create first), `mistral-3` |",
        "",
    ]
    assert text.index("| inference | 0 | 0 | 4 | 0 |") < start < text.index("<details>")


def test_markdown_change_blocks_name_their_wave():
    body = markdown(rollout_plan()).splitlines()
    header = body.index(
        "! replace inference/mistral-2 [i-2] (create before destroy)  $1.00/h -> $1.00/h"
    )
    assert body[header + 1] == "      # rollout inference/mistral: wave 2 of 2"


def test_markdown_wave_zero_row():
    text = markdown(unfinished_rollout_plan())
    assert "| 0 (finish first) | `mistral-0` (i-0 goes once i-new serves) |" in text.splitlines()
    assert "| 1 | `mistral-1` (create first), `mistral-2` |" in text.splitlines()


def test_markdown_escapes_rollout_text_for_tables_and_code():
    fleet = rollout_plan().fleets[0]
    rollout = Rollout(
        group="inference/a|b`c",
        replicas=2,
        serving=2,
        max_unavailable=1,
        max_surge=0,
        waves=(RolloutWave(number=1, addresses=("inference/x|y", "inference/$z$")),),
        serving_floor=1,
        peak_running=2,
        readiness=("ready", "<b>now</b>"),
    )
    text = markdown(Plan(fleets=(fleet.model_copy(update={"rollouts": (rollout,)}),)))
    assert "**Rollout of ``inference/a|b`c``**: 2 replicas" in text
    assert "- readiness: `ready '<b>now</b>'` (must pass" in text  # inline code, no live HTML
    assert "| 1 | `x\\|y`, `$z$` |" in text.splitlines()  # one cell; code holds no math


def test_markdown_rollouts_are_cut_to_fit_and_counted():
    fleet = rollout_plan().fleets[0]
    many = fleet.model_copy(update={"rollouts": fleet.rollouts * 40})
    text = markdown(Plan(fleets=(many,)), max_chars=5_000)
    assert len(text) <= 5_000
    note = re.search(r"… output truncated: 4 more changes and (\d+) more rollouts; run", text)
    assert note is not None
    assert text.count("**Rollout of ") + int(note.group(1)) == 40
    assert "<details>" not in text  # changes come after every rollout
