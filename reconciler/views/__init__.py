"""Views: every way a plan is shown, each writing to a stream it is given.

::

    render_plan_human(plan, sys.stdout, color=True)   # Terraform-like terminal output
    render_plan_json(plan, sys.stdout)                # versioned JSON (docs/plan-json.md)
    plan = plan_from_json(path.read_text(), source=str(path))
    render_plan_markdown(plan, sys.stdout)            # a pull-request comment
    render_cost_human([fleet_spend(state, snapshot)], sys.stdout)  # `reconciler cost`

No view ever prints a secret: specs in plans hold fingerprints, and the text views show each
one as ``(sensitive)``. The JSON view keeps fingerprints (keyed hashes, not secrets).
"""

from reconciler.views.cost_view import (
    FleetSpend,
    InstanceSpend,
    fleet_spend,
    render_cost_human,
    render_cost_json,
)
from reconciler.views.human import render_plan_human
from reconciler.views.json_view import plan_from_json, plan_to_json_dict, render_plan_json
from reconciler.views.markdown import render_plan_markdown

__all__ = [
    "FleetSpend",
    "InstanceSpend",
    "fleet_spend",
    "plan_from_json",
    "plan_to_json_dict",
    "render_cost_human",
    "render_cost_json",
    "render_plan_human",
    "render_plan_json",
    "render_plan_markdown",
]
