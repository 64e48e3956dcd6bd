"""The view of ``plan --refresh-only``: drift only, in words (terminal) or as JSON."""

from __future__ import annotations

from typing import TextIO

from pydantic_core import to_json

from reconciler.models.plan import DriftReport
from reconciler.views._outline import field_change_line
from reconciler.views._values import clean_text

NO_DRIFT = "No drift: Shadeform matches the state."


def render_drift_human(report: DriftReport, stream: TextIO) -> None:
    if report.sandbox:
        stream.write("Sandbox: refreshed against Shadeform's sandbox.\n\n")
    count = 0
    for fleet in report.fleets:
        if not fleet.items:
            stream.write(f"Fleet {clean_text(fleet.fleet)}: no drift.\n\n")
            continue
        stream.write(f"Fleet {clean_text(fleet.fleet)}:\n\n")
        for item in fleet.items:
            count += 1
            stream.write(
                f"  ! {clean_text(item.address)} [{clean_text(item.resource_id)}]: "
                f"{clean_text(item.message)}\n"
            )
            pairs = [field_change_line(change) for change in item.field_changes]
            width = max((len(path) for path, _ in pairs), default=0)
            for path, text in pairs:
                stream.write(f"      {path + ':':<{width + 1}} {text}\n")
        stream.write("\n")
    if count:
        stream.write(
            f"Drift: {count} difference(s) between Shadeform and the state. `reconciler apply "
            "--refresh-only` records what exists now; `reconciler plan` shows what apply would "
            "change to match the manifests.\n"
        )
    else:
        stream.write(NO_DRIFT + "\n")


def render_drift_json(report: DriftReport, stream: TextIO) -> None:
    data = {"kind": "reconciler-drift", **report.model_dump(mode="json")}
    data["has_drift"] = report.has_drift
    stream.write(to_json(data, indent=2).decode() + "\n")
