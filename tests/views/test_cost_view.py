"""The `reconciler cost` view: spend per instance and fleet from state plus live snapshot."""

from __future__ import annotations

import io
import json

from reconciler.models.live import Health, LiveInstance
from reconciler.views.cost_view import (
    FleetSpend,
    InstanceSpend,
    cost_to_json_dict,
    fleet_spend,
    render_cost_human,
    render_cost_json,
)

from ..engine.factories import live, record, snapshot, spec, state


def priced(instance: LiveInstance, hourly: int | None, spent: str | None) -> LiveInstance:
    return instance.model_copy(update={"hourly_price": hourly, "cost_estimate": spent})


def sample_spend() -> FleetSpend:
    """vllm-0 active ($0.80/h, $12.34 spent), vllm-1 recorded but gone, vllm-2 deleting
    (preempted spot, $0.40/h, $3.00 spent), an orphan vllm-3 ($2.49/h, spend unknown)."""
    s0, s1, s2, s3 = spec("vllm-0"), spec("vllm-1"), spec("vllm-2"), spec("vllm-3")
    return fleet_spend(
        state(record(s0, "i-0"), record(s1, "i-1"), record(s2, "i-2")),
        snapshot(
            priced(live(s0, "i-0"), 80, "12.34"),
            priced(live(s2, "i-2", health=Health.GONE, status_details="preempted"), 40, "3.00"),
            orphans=(priced(live(s3, "i-3"), 249, None),),
        ),
    )


def human(fleets: list[FleetSpend]) -> str:
    out = io.StringIO()
    render_cost_human(fleets, out)
    return out.getvalue()


def test_fleet_spend_joins_state_and_live_instances():
    spend = sample_spend()
    assert spend.fleet == "inference"
    assert [(i.address, i.instance_id, i.in_state, i.burning) for i in spend.instances] == [
        ("inference/vllm-0", "i-0", True, True),
        ("inference/vllm-2", "i-2", True, False),
        ("inference/vllm-3", "i-3", False, True),
    ]
    assert spend.missing == ("inference/vllm-1",)
    assert spend.instances[0].spent_cents == 1234 and spend.instances[0].hourly_cents == 80


def test_fleet_totals_skip_deleting_instances_and_unknowns():
    spend = sample_spend()
    assert spend.hourly_cents == 80 + 249  # the deleting spot instance no longer burns
    assert spend.monthly_cents == 329 * 720
    assert spend.spent_cents == 1234 + 300  # but what it cost so far counts
    assert spend.unknown_prices == 0 and spend.unknown_spend == 1


def test_human_view_lists_each_instance_then_the_fleet_figures():
    assert human([sample_spend()]).splitlines() == [
        "Fleet inference:",
        "",
        "  ADDRESS                          INSTANCE  STATUS                  CREATED (UTC)     "
        "$/HOUR   SPENT",
        "  inference/vllm-0                 i-0       active                  2026-11-27 10:00  "
        " $0.80  $12.34",
        "  inference/vllm-2                 i-2       deleting (not counted)  2026-11-27 10:00  "
        " $0.40   $3.00",
        "  inference/vllm-3 (not in state)  i-3       active                  2026-11-27 10:00  "
        " $2.49      $?",
        "",
        "  Recorded in the state but not found in Shadeform:",
        "    inference/vllm-1",
        "",
        "  Burn rate $3.29/h ($2,368.80 per 30 days); spent so far $15.34 "
        "(spend unknown for 1 instance; not counted).",
        "",
    ]


def test_several_fleets_get_a_total_and_empty_fleets_say_so():
    other = FleetSpend(
        fleet="training",
        instances=(
            InstanceSpend(
                address="training/t-0",
                instance_id="i-9",
                status="active",
                hourly_cents=None,
                spent_cents=199_200,
                created_at="2026-11-27T11:30:00+01:00",
            ),
        ),
    )
    text = human([sample_spend(), other, FleetSpend(fleet="idle")])
    lines = text.splitlines()
    assert "  training/t-0  i-9       active  2026-11-27 10:30      $?  $1,992.00" in lines
    assert "Fleet idle: no instances." in lines
    assert lines[-1] == (
        "Total over 3 fleets, 4 instances: burn rate $3.29/h ($2,368.80 per 30 days); "
        "spent so far $2,007.34 (price unknown for 1 instance; spend unknown for 1 instance; "
        "not counted)."
    )
    assert human([]) == "No fleets.\n"


def test_user_text_cannot_inject_escape_codes():
    spend = FleetSpend(
        fleet="f\x1b[2J",
        instances=(
            InstanceSpend(
                address="f/\x1b]0;x\x07",
                instance_id="i-\n1",
                status="act\x1bive",
                hourly_cents=1,
                spent_cents=1,
                created_at="not a \x1b time",
            ),
        ),
    )
    text = human([spend])
    assert "\x1b" not in text and "\x07" not in text
    assert len(text.splitlines()) == 7


def test_json_carries_every_figure_in_cents():
    out = io.StringIO()
    render_cost_json([sample_spend()], out)
    data = json.loads(out.getvalue())
    assert data == cost_to_json_dict([sample_spend()])
    assert data["kind"] == "reconciler-cost"
    assert data["total"] == {
        "hourly_cents": 329,
        "monthly_cents": 329 * 720,
        "spent_cents": 1534,
        "unknown_prices": 0,
        "unknown_spend": 1,
    }
    fleet = data["fleets"][0]
    assert fleet["missing"] == ["inference/vllm-1"]
    assert fleet["instances"][1] == {
        "address": "inference/vllm-2",
        "instance_id": "i-2",
        "status": "deleting",
        "created_at": "2026-11-27T10:00:00Z",
        "hourly_cents": 40,
        "spent_cents": 300,
        "in_state": True,
        "counted_in_burn_rate": False,
    }
