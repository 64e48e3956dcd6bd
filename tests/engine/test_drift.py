"""fleet_drift: how Shadeform differs from the state, without consulting the manifests."""

from __future__ import annotations

from reconciler.engine.drift import fleet_drift
from reconciler.models.live import Health
from reconciler.models.plan import DriftKind
from reconciler.models.spec import Lifecycle

from .factories import live, record, snapshot, spec, state


def test_no_drift_when_shadeform_matches_the_state():
    s = spec("a")
    assert fleet_drift(state(record(s, "i-1")), snapshot(live(s, "i-1"))).items == ()


def test_every_kind_of_drift_is_reported():
    gone, spot, changed, lost, broken, stray = (spec(n) for n in "abcdef")
    report = fleet_drift(
        state(
            record(gone, "i-1"),
            record(spot, "i-2"),
            record(changed, "i-3"),
            record(lost, "i-4"),
            record(broken, "i-5"),
        ),
        snapshot(
            live(spot, "i-2", health=Health.GONE, status_details="preempted"),
            live(changed, "i-3", tags=["team-ml", "edited-in-console"]),
            live(lost, "i-4", owned=False),
            live(broken, "i-5", health=Health.BROKEN, status_details="GPU fell off the bus"),
            orphans=(live(stray, "i-6"),),
        ),
    )
    kinds = {item.address: item.kind for item in report.items}
    assert kinds == {
        "inference/a": DriftKind.GONE,
        "inference/b": DriftKind.PREEMPTED,
        "inference/c": DriftKind.CHANGED,
        "inference/d": DriftKind.NOT_OWNED,
        "inference/e": DriftKind.BROKEN,
        "inference/f": DriftKind.UNRECORDED,
    }
    (edit,) = next(i for i in report.items if i.kind is DriftKind.CHANGED).field_changes
    assert (edit.path, edit.before, edit.after) == (
        "tags",
        ["team-ml"],
        ["team-ml", "edited-in-console"],
    )


def test_ignored_fields_and_recorded_facts_are_not_drift_again():
    s = spec("a", lifecycle=Lifecycle(ignore_changes=("tags",)))
    edited = live(s, "i-1", tags=["team-ml", "edited-in-console"])
    assert fleet_drift(state(record(s, "i-1")), snapshot(edited)).items == ()
    b = spec("b")
    broken = live(b, "i-2", health=Health.BROKEN)
    rec = record(b, "i-2")
    assert [i.kind for i in fleet_drift(state(rec), snapshot(broken)).items] == [DriftKind.BROKEN]
    seen_before = rec.model_copy(update={"live": broken.model_dump(mode="json")})
    assert fleet_drift(state(seen_before), snapshot(broken)).items == ()
