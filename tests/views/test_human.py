"""The terminal view: Terraform-like lines per action, sections, summary, colour, secrets."""

from __future__ import annotations

import io

from hypothesis import given, settings

from reconciler.models.plan import Action, Change, CostSummary, FieldChange, FleetPlan, Plan
from reconciler.views import render_plan_human

from .plans import (
    FINGERPRINT_DIGEST,
    NO_CAPACITY,
    OTHER_SECRET,
    OVERRIDE,
    SECRET,
    large_plan,
    plans,
    priced_plan,
    quiet_plan,
    sample_plan,
    without_prices,
)


def render(plan: Plan, *, color: bool = False) -> str:
    out = io.StringIO()
    render_plan_human(plan, out, color=color)
    return out.getvalue()


def header_line(lines: list[str], header: str) -> int:
    """Index of the change header ``header``, with or without its $/hour figure after it."""
    return next(
        n for n, line in enumerate(lines) if line == header or line.startswith(header + "  ")
    )


def block_of(text: str, header: str) -> list[str]:
    """The detail lines under a change header, up to the blank line that ends them."""
    lines = text.splitlines()
    start = header_line(lines, header) + 1
    end = lines.index("", start)
    return lines[start:end]


def test_each_action_has_its_terraform_header():
    lines = render(sample_plan()).splitlines()
    for header in (
        "  + inference/vllm-0",
        "  ~ inference/vllm-1 [i-1]",
        "-/+ inference/vllm-2 [i-2] (create before destroy)",
        "  - inference/vllm-3 [i-3]",
        "  x inference/vllm-4 [i-4] (already gone; removed from state)",
        "-/+ inference/vllm-9 [i-9]",
        "    inference/vllm-6 (adopt i-6)",
    ):
        assert header_line(lines, header) >= 0


def test_unchanged_noops_are_not_listed():
    text = render(sample_plan())
    assert "vllm-7" not in text
    assert "up to date" not in text


def test_create_shows_key_fields_of_after():
    text = render(sample_plan())
    assert block_of(text, "  + inference/vllm-0") == [
        "      # new instance",
        '      name:              "vllm-0"',
        "      cloud/region/type: hyperstack/canada-1/A6000",
        '      rental_type:       "on_demand"',
        '      os:                "ubuntu22.04_cuda12.2_shade_os"',
        '      image:             "vllm/vllm-openai:v0.6"',
        "      container envs:    HF_TOKEN=(sensitive)",
        '      tags:              ["team-ml"]',
    ]


def test_field_changes_show_before_after_and_forced_replacement():
    text = render(sample_plan())
    assert block_of(text, "  ~ inference/vllm-1 [i-1]") == [
        '      tags: ["team-ml"] -> ["team-ml", "prod"]'
    ]
    assert block_of(text, "-/+ inference/vllm-2 [i-2] (create before destroy)") == [
        '      shade_instance_type: "A6000" -> "H100"  # forces replacement'
    ]


def test_reasons_without_field_changes_are_shown():
    text = render(sample_plan())
    assert block_of(text, "-/+ inference/vllm-9 [i-9]") == [
        "      # instance is in error: GPU fell off the bus"
    ]
    assert "      # removed from the manifest" in block_of(text, "  - inference/vllm-3 [i-3]")


def test_secrets_never_appear_and_fingerprints_print_as_sensitive():
    text = render(sample_plan(), color=True) + render(sample_plan())
    assert SECRET not in text and OTHER_SECRET not in text
    assert "(sensitive:" not in text
    changed = block_of(render(sample_plan()), "-/+ inference/vllm-5 [i-5]")
    assert changed == [  # a long path: the note stays on its line, the value gets its own
        "      launch_configuration.docker_configuration.envs:"
        "  # forces replacement; sensitive value changed",
        '          [{"name": "HF_TOKEN", "value": (sensitive)}] -> '
        '[{"name": "HF_TOKEN", "value": (sensitive)}]',
    ]
    assert all(len(line) <= 100 for line in changed[:1])


def test_blocked_and_warnings_have_their_own_sections():
    lines = render(sample_plan()).splitlines()
    blocked = lines.index("Blocked (left alone until resolved):")
    assert lines[blocked + 1].startswith(
        "  inference/vllm-8: a create was recorded at 2026-11-27T09:59:20Z (intent t-8)"
    )
    assert "it is released in 20s, when --intent-grace (60s) has passed" in lines[blocked + 1]
    warnings = lines.index("Warnings:")
    assert lines[warnings + 1].startswith("  instance i-99 (stray) carries fleet inference's tag")


def test_summary_line_counts_each_action():
    lines = render(without_prices(sample_plan())).splitlines()
    assert lines[-3:] == [
        "State only: 1 instance to adopt, 1 state record to forget.",
        "Plan: 1 to create, 1 to update, 3 to replace, 1 to delete.",
        "Not in sync: 1 waiting for a create sent earlier (listed above); the fleets differ from "
        "the manifests until these are resolved.",
    ]


# -- money --------------------------------------------------------------------------------------


def test_creates_replaces_and_deletes_show_their_hourly_effect():
    lines = render(priced_plan()).splitlines()
    for header in (
        "  + inference/vllm-0  +$0.40/h",
        "-/+ inference/vllm-1 [i-1]  $0.80/h -> $2.49/h",
        "  - inference/vllm-2 [i-2]  -$2.49/h",
        "  ~ inference/vllm-3 [i-3]",  # an update does not change the price
        "  + training/trainer-0  +$?/h",  # price not in the catalog
    ):
        assert header in lines


def test_placement_shows_offer_price_boot_time_and_fallbacks_left():
    text = render(priced_plan())
    assert block_of(text, "  + inference/vllm-0") == [
        "      placement: A6000 spot in hyperstack/canada-1 at $0.40/h, boots in ≤5 min, "
        "2 fallbacks"
    ]
    assert block_of(text, "-/+ inference/vllm-1 [i-1]") == [
        "      placement: H100 in lambdalabs/us-east-1 at $2.49/h, no fallbacks"
    ]
    assert "placement:" not in "".join(block_of(text, "  - inference/vllm-2 [i-2]"))


def test_burn_rate_line_follows_the_summary():
    lines = render(priced_plan()).splitlines()
    assert lines[-3:] == [
        "Plan: 2 to create, 1 to update, 1 to replace, 1 to delete.",
        "Not in sync: 1 without capacity (listed above); the fleets differ from the "
        "manifests until these are resolved.",
        "Cost: $24.81/h -> $24.41/h (-$0.40/h); per 30 days $17,863.20 -> $17,575.20; "
        "price unknown for 1 instance (not counted)",
    ]


def test_burn_rate_going_up_and_staying_put():
    fleet = FleetPlan(
        fleet="f",
        lineage=None,
        serial=0,
        manifest_digest="d",
        cost=CostSummary(hourly_cents_before=1240, hourly_cents_after=1520),
    )
    assert render(Plan(fleets=(fleet,))).splitlines()[-1] == (
        "Cost: $12.40/h -> $15.20/h (+$2.80/h); per 30 days $8,928.00 -> $10,944.00"
    )
    same = fleet.model_copy(
        update={"cost": CostSummary(hourly_cents_before=80, hourly_cents_after=80)}
    )
    assert render(Plan(fleets=(same,))).splitlines()[-2:] == [
        "No changes. Your fleets match the manifests.",
        "Cost: $0.80/h (unchanged); per 30 days $576.00",
    ]


def test_plans_without_prices_have_no_cost_line():
    assert "Cost:" not in render(without_prices(sample_plan()))
    assert "Cost:" not in render(large_plan(10))


def test_budget_overrides_have_their_own_section():
    lines = render(priced_plan()).splitlines()
    start = lines.index("Budget overrides (allowed by --allow-over-budget):")
    assert lines[start + 1 : start + 3] == ["  inference: " + OVERRIDE, ""]
    assert start < lines.index("Plan: 2 to create, 1 to update, 1 to replace, 1 to delete.")
    assert "Budget overrides" not in render(sample_plan())
    coloured = render(priced_plan(), color=True)
    assert "\x1b[1;31mBudget overrides (allowed by --allow-over-budget):\x1b[0m" in coloured


def test_nothing_to_do_says_no_changes():
    text = render(without_prices(quiet_plan()))
    assert text.splitlines()[-1] == "No changes. Your fleets match the manifests."
    assert "Plan:" not in text
    assert render(Plan()) == "No changes. Your fleets match the manifests.\n"


def test_adoption_alone_is_a_change():
    change = Change(address="f/a", action=Action.NOOP, instance_id="i-1", adopt=True)
    plan = Plan(
        fleets=(
            FleetPlan(fleet="f", lineage=None, serial=0, manifest_digest="d", changes=(change,)),
        )
    )
    assert (
        render(plan).splitlines()[-1]
        == "Plan: 0 to create, 0 to update, 0 to replace, 0 to delete."
    )


def test_plan_options_are_stated_up_front():
    plan = sample_plan().model_copy(
        update={
            "sandbox": True,
            "destroy": True,
            "targets": ("inference/vllm",),
            "replace": ("inference/vllm-2",),
        }
    )
    head = render(plan).split("Fleet inference:")[0]
    assert "sandbox" in head
    assert "Destroy plan" in head
    assert "Targeted plan: only inference/vllm" in head
    assert "Replacement requested: inference/vllm-2" in head


def test_without_color_there_are_no_escape_codes():
    assert "\x1b" not in render(sample_plan(), color=False)


def test_with_color_symbols_are_coloured_by_action():
    text = render(sample_plan(), color=True)
    assert "\x1b[32m  +\x1b[0m" in text  # green create
    assert "\x1b[33m  ~\x1b[0m" in text  # yellow update
    assert "\x1b[35m-/+\x1b[0m" in text  # magenta replace
    assert "\x1b[31m  -\x1b[0m" in text  # red delete


def test_user_text_cannot_inject_escape_codes_or_lines():
    fleet = FleetPlan(
        fleet="inference",
        lineage=None,
        serial=0,
        manifest_digest="d",
        changes=(
            Change(
                address="inference/\x1b[2Jevil\nx",
                action=Action.CREATE,
                after={"name": "a\x1b[31mb"},
            ),
        ),
        warnings=("status says \x1b]0;pwned\x07 and\nnew line",),
    )
    text = render(Plan(fleets=(fleet,)))
    assert "\x1b" not in text and "\x07" not in text
    assert "  + inference/\\x1b[2Jevil\\x0ax  +$?/h" in text.splitlines()
    assert "  status says \\x1b]0;pwned\\x07 and\\x0anew line" in text.splitlines()


def test_long_lines_are_not_wrapped():
    fleet = FleetPlan(
        fleet="inference",
        lineage=None,
        serial=0,
        manifest_digest="d",
        changes=(
            Change(address="inference/a", action=Action.CREATE, after={"tags": ["t" * 50] * 10}),
        ),
    )
    line = next(x for x in render(Plan(fleets=(fleet,))).splitlines() if "tags:" in x)
    assert line.count('"' + "t" * 50 + '"') == 10  # one line, never wrapped by the view


def test_a_long_field_path_does_not_push_the_other_values_out_of_line():
    fleet = FleetPlan(
        fleet="inference",
        lineage=None,
        serial=0,
        manifest_digest="d",
        changes=(
            Change(
                address="inference/a",
                action=Action.REPLACE,
                instance_id="i-1",
                field_changes=(
                    FieldChange(path="tags", before=["a"], after=["b"]),
                    FieldChange(
                        path="launch_configuration.docker_configuration.image",
                        before="vllm:0.4",
                        after="vllm:0.5",
                        forces_replacement=True,
                    ),
                    FieldChange(path="os", before="u22", after="u24", forces_replacement=True),
                ),
            ),
        ),
    )
    lines = block_of(render(Plan(fleets=(fleet,))), "-/+ inference/a [i-1]")
    assert lines == [
        '      tags: ["a"] -> ["b"]',
        "      launch_configuration.docker_configuration.image:  # forces replacement",
        '          "vllm:0.4" -> "vllm:0.5"',
        '      os:   "u22" -> "u24"  # forces replacement',
    ]


def test_long_strings_are_shortened_with_their_length():
    fleet = FleetPlan(
        fleet="inference",
        lineage=None,
        serial=0,
        manifest_digest="d",
        changes=(
            Change(
                address="inference/a",
                action=Action.CREATE,
                after={
                    "launch_configuration": {
                        "type": "script",
                        "script_configuration": {"base64_script": "QUJD" * 1000},
                    }
                },
            ),
        ),
    )
    assert "      script: (base64, 4000 characters)" in render(Plan(fleets=(fleet,))).splitlines()


def test_large_plan_lists_every_change():
    text = render(large_plan(2000, fleets=2))
    assert text.count("\n-/+ ") == 400 and text.count("\n  + ") == 400
    assert (
        text.splitlines()[-1]
        == "Plan: 400 to create, 400 to update, 400 to replace, 400 to delete."
    )


@settings(max_examples=60, deadline=None)
@given(plans)
def test_any_plan_renders_without_escapes_or_fingerprints(plan):
    text = render(plan)
    assert "\x1b" not in text
    assert FINGERPRINT_DIGEST not in text


def test_instances_without_capacity_are_listed_before_the_summary():
    lines = render(priced_plan()).splitlines()
    start = lines.index("No capacity (this plan fails until an approved offer is free):")
    assert lines[start + 1 : start + 3] == ["  training/trainer-2: " + NO_CAPACITY, ""]
    assert start < lines.index("Budget overrides (allowed by --allow-over-budget):")
    assert "No capacity" not in render(sample_plan())
