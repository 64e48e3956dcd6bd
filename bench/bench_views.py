"""How long each plan view takes on a 10,000-change plan with prices and placements.

Run: python bench/bench_views.py
"""

from __future__ import annotations

import io
import time
from collections.abc import Callable

from reconciler.models.catalog import Offer
from reconciler.models.plan import (
    Action,
    Change,
    CostSummary,
    FieldChange,
    FleetPlan,
    PlacementChoice,
    Plan,
    Reason,
    ReasonCode,
)
from reconciler.views import (
    plan_from_json,
    render_plan_human,
    render_plan_json,
    render_plan_markdown,
)

ACTIONS = [Action.CREATE, Action.UPDATE, Action.REPLACE, Action.DELETE]
SPOT = Offer(
    cloud="hyperstack",
    region="canada-1",
    shade_instance_type="A6000",
    rental_type="spot",
    hourly_price_cents=40,
    boot_seconds_max=300,
)
PLACEMENT = PlacementChoice(
    chosen=SPOT,
    fallbacks=(SPOT.model_copy(update={"rental_type": "on_demand", "hourly_price_cents": 80}),),
)


def make_change(i: int) -> Change:
    action = ACTIONS[i % 4]
    spec = {
        "name": f"vllm-{i}",
        "cloud": "hyperstack",
        "region": "canada-1",
        "shade_instance_type": "A6000",
        "shade_cloud": True,
        "os": "ubuntu22.04_cuda12.2_shade_os",
        "tags": ["team-ml", "prod"],
        "launch_configuration": {
            "type": "docker",
            "docker_configuration": {
                "image": "vllm/vllm-openai:v0.6",
                "envs": [{"name": "HF_TOKEN", "value": "(sensitive:0123456789abcdef)"}],
            },
        },
    }
    field_changes = (
        (
            FieldChange(
                path="shade_instance_type", before="A6000", after="H100", forces_replacement=True
            ),
        )
        if action is Action.REPLACE
        else (FieldChange(path="tags", before=["team-ml"], after=["team-ml", "prod"]),)
        if action is Action.UPDATE
        else ()
    )
    return Change(
        address=f"inference/vllm-{i}",
        action=action,
        instance_id=None if action is Action.CREATE else f"i-{i}",
        before=None if action is Action.CREATE else spec,
        after=None if action is Action.DELETE else spec,
        field_changes=field_changes,
        reasons=(Reason(code=ReasonCode.NEW, message="new instance"),),
        placement=PLACEMENT if action in (Action.CREATE, Action.REPLACE) else None,
        hourly_cents_before=None if action is Action.CREATE else 80,
        hourly_cents_after=None if action is Action.DELETE else 40,
    )


def timed(label: str, run: Callable[[], object]) -> None:
    start = time.perf_counter()
    run()
    print(f"{label:<28} {time.perf_counter() - start:6.3f} s")


def main() -> None:
    plan = Plan(
        fleets=(
            FleetPlan(
                fleet="inference",
                lineage="l",
                serial=1,
                manifest_digest="d",
                changes=tuple(make_change(i) for i in range(10_000)),
                cost=CostSummary(hourly_cents_before=600_000, hourly_cents_after=300_000),
                budget_overrides=("max_hourly $4,000.00 exceeded",),
            ),
        )
    )
    json_text = io.StringIO()
    render_plan_json(plan, json_text)
    print(f"10,000 changes; JSON plan is {len(json_text.getvalue()) / 1e6:.1f} MB")
    timed("human, no colour", lambda: render_plan_human(plan, io.StringIO(), color=False))
    timed("human, colour", lambda: render_plan_human(plan, io.StringIO(), color=True))
    timed("json", lambda: render_plan_json(plan, io.StringIO()))
    timed("plan_from_json", lambda: plan_from_json(json_text.getvalue()))
    timed("markdown (60,000 chars)", lambda: render_plan_markdown(plan, io.StringIO()))
    timed(
        "markdown (no limit)",
        lambda: render_plan_markdown(plan, io.StringIO(), max_chars=10**9),
    )


if __name__ == "__main__":
    main()
