"""The versioned JSON plan: documented shape, summary, exact round trip, refusals."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
from hypothesis import given, settings

from reconciler.errors import UsageError
from reconciler.models.catalog import Offer
from reconciler.models.plan import (
    PLAN_FORMAT_VERSION,
    Blocked,
    Change,
    CostSummary,
    FieldChange,
    FleetPlan,
    PlacementChoice,
    Plan,
    Reason,
    Rollout,
    RolloutWave,
)
from reconciler.views import plan_from_json, plan_to_json_dict, render_plan_json

from .plans import (
    OTHER_SECRET,
    OVERRIDE,
    SECRET,
    large_plan,
    plans,
    priced_plan,
    quiet_plan,
    rollout_plan,
    sample_plan,
    unfinished_rollout_plan,
    without_prices,
)

DOC = Path(__file__).resolve().parents[2] / "docs" / "plan-json.md"


def as_text(plan: Plan) -> str:
    out = io.StringIO()
    render_plan_json(plan, out)
    return out.getvalue()


def test_top_level_shape_and_order():
    data = plan_to_json_dict(sample_plan())
    assert list(data) == [
        "format_version",
        "kind",
        "paths",
        "targets",
        "excludes",
        "replace",
        "destroy",
        "allow_data_loss",
        "created_at",
        "sandbox",
        "summary",
        "fleets",
    ]
    assert data["format_version"] == PLAN_FORMAT_VERSION and data["kind"] == "reconciler-plan"
    assert data["paths"] == ["fleets/"]
    assert data["created_at"] == "2026-11-27T10:00:00Z"


NO_COST = {
    "hourly_cents_before": 0,
    "hourly_cents_after": 0,
    "monthly_cents_before": 0,
    "monthly_cents_after": 0,
    "unknown_prices": 0,
    "hourly_cents_peak": None,
}


def test_summary_counts_changes_per_fleet_and_overall():
    data = plan_to_json_dict(without_prices(sample_plan()))
    expected = {
        "create": 1,
        "update": 1,
        "replace": 3,
        "delete": 1,
        "has_changes": True,
        "in_sync": False,
        "pending": ["inference/vllm-8"],
        "blocked": [],
        "no_capacity": [],
        "data_loss": [],
        "kept": [],
        "cost": NO_COST,
    }
    assert data["summary"] == expected
    assert data["fleets"][0]["summary"] == expected
    assert plan_to_json_dict(without_prices(quiet_plan()))["summary"] == {
        "create": 0,
        "update": 0,
        "replace": 0,
        "delete": 0,
        "has_changes": False,
        "in_sync": True,
        "pending": [],
        "blocked": [],
        "no_capacity": [],
        "data_loss": [],
        "kept": [],
        "cost": NO_COST,
    }


def test_summary_cost_gives_hourly_and_30_day_figures_in_cents():
    data = plan_to_json_dict(priced_plan())
    assert data["summary"]["cost"] == {
        "hourly_cents_before": 2481,
        "hourly_cents_after": 2441,
        "monthly_cents_before": 2481 * 720,
        "monthly_cents_after": 2441 * 720,
        "unknown_prices": 1,
        "hourly_cents_peak": None,  # nothing runs beside what it replaces
    }
    inference, training = data["fleets"]
    assert inference["summary"]["cost"]["monthly_cents_after"] == 449 * 720
    assert inference["cost"] == {
        "hourly_cents_before": 489,
        "hourly_cents_after": 449,
        "unknown_prices": 0,
        "hourly_cents_peak": None,
    }
    assert training["summary"]["cost"]["unknown_prices"] == 1


def test_changes_carry_placement_prices_and_overrides():
    inference = plan_to_json_dict(priced_plan())["fleets"][0]
    assert inference["budget_overrides"] == [OVERRIDE]
    create = inference["changes"][0]
    assert create["hourly_cents_before"] is None and create["hourly_cents_after"] == 40
    assert create["placement"]["strategy"] == "cheapest"
    assert create["placement"]["chosen"] == {
        "cloud": "hyperstack",
        "region": "canada-1",
        "shade_instance_type": "A6000",
        "rental_type": "spot",
        "hourly_price_cents": 40,
        "available": True,
        "boot_seconds_max": 300,
        "gpu_type": None,
        "num_gpus": None,
        "vram_per_gpu_in_gb": None,
    }
    assert [f["rental_type"] for f in create["placement"]["fallbacks"]] == [
        "on_demand",
        "on_demand",
    ]
    assert inference["changes"][2]["placement"] is None  # the delete


def test_priced_plan_round_trips():
    plan = priced_plan()
    assert plan_from_json(as_text(plan)) == plan


def test_changes_carry_every_field():
    fleet = plan_to_json_dict(sample_plan())["fleets"][0]
    assert list(fleet) == [
        "fleet",
        "lineage",
        "serial",
        "manifest_digest",
        "summary",
        "changes",
        "blocked",
        "no_capacity",
        "warnings",
        "released_intents",
        "cost",
        "budget_overrides",
        "kept",
        "rollouts",
    ]
    replace = next(c for c in fleet["changes"] if c["address"] == "inference/vllm-2")
    assert replace == {
        "address": "inference/vllm-2",
        "kind": "instance",
        "action": "replace",
        "reasons": [
            {
                "code": "forces_replacement",
                "message": "shade_instance_type changed (forces replacement)",
            }
        ],
        "resource_id": "i-2",
        "adopt": False,
        "before": replace["before"],
        "after": replace["after"],
        "field_changes": [
            {
                "path": "shade_instance_type",
                "before": "A6000",
                "after": "H100",
                "forces_replacement": True,
                "sensitive": False,
            }
        ],
        "create_before_destroy": True,
        "depends_on": [],
        "destroys_data": False,
        "placement": replace["placement"],
        "rollout": None,
        "wave": None,
        "serving_first": None,
        "hourly_cents_before": replace["hourly_cents_before"],
        "hourly_cents_after": replace["hourly_cents_after"],
    }
    assert replace["before"]["shade_instance_type"] == "A6000"
    assert replace["after"]["shade_instance_type"] == "H100"
    assert fleet["blocked"] == [
        {
            "address": "inference/vllm-8",
            "message": fleet["blocked"][0]["message"],
            "kind": "pending_create",
            "resolves_in_seconds": 20.0,
        }
    ]
    assert fleet["warnings"] and fleet["released_intents"] == []


def test_rollouts_and_the_peak_are_in_the_json():
    data = plan_to_json_dict(rollout_plan())
    fleet = data["fleets"][0]
    (rollout,) = fleet["rollouts"]
    assert rollout == {
        "group": "inference/mistral",
        "replicas": 4,
        "serving": 4,
        "max_unavailable": 1,
        "max_surge": 1,
        "waves": [
            {
                "number": 1,
                "addresses": ["inference/mistral-0", "inference/mistral-1"],
                "create_first": ["inference/mistral-0"],
                "boot_seconds": 600,
            },
            {
                "number": 2,
                "addresses": ["inference/mistral-2", "inference/mistral-3"],
                "create_first": ["inference/mistral-2"],
                "boot_seconds": 600,
            },
        ],
        "serving_floor": 3,
        "peak_running": 5,
        "expected_seconds": 1200,
        "surge_hourly_cents": 100,
        "readiness": ["./scripts/ready.sh"],
    }
    assert [(c["address"], c["rollout"], c["wave"]) for c in fleet["changes"]] == [
        (f"inference/mistral-{i}", "inference/mistral", 1 + i // 2) for i in range(4)
    ]
    assert fleet["cost"]["hourly_cents_peak"] == 500
    assert fleet["summary"]["cost"]["hourly_cents_peak"] == 500
    assert data["summary"]["cost"] == {
        "hourly_cents_before": 400,
        "hourly_cents_after": 400,
        "monthly_cents_before": 400 * 720,
        "monthly_cents_after": 400 * 720,
        "unknown_prices": 0,
        "hourly_cents_peak": 500,  # per hour only: the peak lasts while the plan is applied
    }


def test_a_change_waiting_for_a_successor_names_it():
    changes = plan_to_json_dict(unfinished_rollout_plan())["fleets"][0]["changes"]
    retire = next(c for c in changes if c["resource_id"] == "i-0")
    assert (retire["action"], retire["wave"], retire["serving_first"]) == ("delete", 0, "i-new")


def test_rollout_plans_round_trip():
    for plan in (rollout_plan(), unfinished_rollout_plan()):
        assert plan_from_json(as_text(plan)) == plan


def _model_fields(model: type) -> set[str]:
    return set(model.model_fields)  # type: ignore[attr-defined]


def test_every_model_field_is_in_the_json_and_documented():
    data = plan_to_json_dict(sample_plan())
    fleet = data["fleets"][0]
    change = fleet["changes"][0]
    assert _model_fields(Plan) <= set(data)
    assert _model_fields(FleetPlan) <= set(fleet)
    assert _model_fields(Change) <= set(change)
    assert _model_fields(Reason) <= set(change["reasons"][0])
    assert _model_fields(Blocked) <= set(fleet["blocked"][0])
    assert _model_fields(CostSummary) <= set(fleet["cost"])
    placement = plan_to_json_dict(priced_plan())["fleets"][0]["changes"][0]["placement"]
    assert _model_fields(PlacementChoice) <= set(placement)
    assert _model_fields(Offer) <= set(placement["chosen"])
    rollout = plan_to_json_dict(rollout_plan())["fleets"][0]["rollouts"][0]
    assert _model_fields(Rollout) <= set(rollout)
    assert _model_fields(RolloutWave) <= set(rollout["waves"][0])
    doc = DOC.read_text(encoding="utf-8")
    keys = set(data) | set(fleet) | set(change) | set(data["summary"])
    keys |= set(data["summary"]["cost"]) | set(placement) | set(placement["chosen"])
    keys |= set(rollout) | set(rollout["waves"][0])
    keys |= _model_fields(FieldChange) | _model_fields(Reason) | _model_fields(Blocked)
    undocumented = sorted(k for k in keys if f"| `{k}` |" not in doc)
    assert not undocumented, f"add these fields to {DOC.name}: {undocumented}"


def test_output_is_indented_json_with_a_trailing_newline():
    text = as_text(sample_plan())
    assert text.endswith("}\n")
    assert text.startswith(
        f'{{\n  "format_version": {PLAN_FORMAT_VERSION},\n  "kind": "reconciler-plan",'
    )
    assert json.loads(text) == plan_to_json_dict(sample_plan())
    assert text == json.dumps(plan_to_json_dict(sample_plan()), indent=2, ensure_ascii=False) + "\n"


def test_non_ascii_text_is_written_as_is():
    plan = sample_plan().model_copy(update={"targets": ("inférence/vllm-✓",)})
    text = as_text(plan)
    assert '"inférence/vllm-✓"' in text
    assert plan_from_json(text) == plan


def test_round_trip_is_exact():
    plan = sample_plan().model_copy(
        update={"sandbox": True, "targets": ("inference",), "replace": ("inference/vllm-2",)}
    )
    assert plan_from_json(as_text(plan)) == plan


def test_large_plan_round_trips():
    plan = large_plan(3000, fleets=3)
    assert plan_from_json(as_text(plan)) == plan


@settings(max_examples=80, deadline=None)
@given(plans)
def test_any_plan_round_trips(plan):
    assert plan_from_json(as_text(plan)) == plan


def test_fingerprints_are_kept_but_secrets_never_appear():
    text = as_text(sample_plan())
    assert SECRET not in text and OTHER_SECRET not in text
    assert '"value": "(sensitive:' in text


def test_summary_is_ignored_when_reading():
    data = plan_to_json_dict(sample_plan())
    data["summary"]["create"] = 99
    data["fleets"][0]["summary"]["delete"] = 99
    assert plan_from_json(json.dumps(data)) == sample_plan()


def _error(text: str, **kw: str) -> UsageError:
    with pytest.raises(UsageError) as info:
        plan_from_json(text, **kw)
    assert info.value.exit_code == 64
    return info.value


def test_refuses_other_kinds():
    data = plan_to_json_dict(sample_plan()) | {"kind": "terraform-plan"}
    message = str(_error(json.dumps(data), source="plan.json"))
    assert message.startswith("plan.json is not a plan this reconciler can read")
    assert '"terraform-plan"' in message and '"reconciler-plan"' in message
    assert "kind" in str(_error(json.dumps({"format_version": 1})))


def test_refuses_newer_format_versions():
    newer = PLAN_FORMAT_VERSION + 1
    data = plan_to_json_dict(sample_plan()) | {"format_version": newer}
    message = str(_error(json.dumps(data)))
    assert f"format_version {newer}" in message and "upgrade the reconciler" in message


def test_reads_a_format_1_plan_file():
    """Format 1 named a change's id ``instance_id`` and had no kinds: it still reads."""
    data = plan_to_json_dict(sample_plan()) | {"format_version": 1}
    for fleet in data["fleets"]:
        fleet.pop("kept")
        for change in fleet["changes"]:
            change["instance_id"] = change.pop("resource_id")
            for new in ("kind", "depends_on", "destroys_data"):
                change.pop(new)
    plan = plan_from_json(json.dumps(data))
    assert plan.model_copy(update={"format_version": PLAN_FORMAT_VERSION}) == sample_plan()
    assert any(c.resource_id == "i-2" for f in plan.fleets for c in f.changes)


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("{not json", "invalid JSON at line 1, column 2"),
        ("[1, 2]", "expected a JSON object"),
        ('{"kind": "reconciler-plan", "format_version": "1"}', "positive integer"),
        ('{"kind": "reconciler-plan", "format_version": 0}', "positive integer"),
        (
            '{"kind": "reconciler-plan", "format_version": 1, "fleets": [{"fleet": "f"}]}',
            "fleets.0.lineage: Field required (and 2 more problems)",
        ),
        (
            '{"kind": "reconciler-plan", "format_version": 1, "extra": true}',
            "extra: Extra inputs are not permitted",
        ),
    ],
)
def test_refuses_malformed_plans_with_one_clear_line(text, problem):
    message = str(_error(text))
    assert problem in message
    assert "\n" not in message and "Traceback" not in message
