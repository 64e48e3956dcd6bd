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


def test_volumes_and_keys_deleted_or_changed_outside_are_drift():
    from reconciler.engine.drift import state_matching_shadeform
    from reconciler.models.live import LiveResource
    from reconciler.models.state import ResourceRecord

    def recorded(address: str, kind: str, resource_id: str, applied: dict) -> ResourceRecord:
        return ResourceRecord(
            address=address,
            kind=kind,
            resource_id=resource_id,
            applied_spec=applied,
            created_at="2026-11-27T10:00:00Z",
            updated_at="2026-11-27T10:00:00Z",
        )

    volume = {"name": "data", "cloud": "hyperstack", "region": "canada-1", "size_in_gb": 100}
    key = {"name": "deploy", "fingerprint": "SHA256:abc"}
    before = state().model_copy(
        update={
            "resources": {
                "inference/volume.data": recorded("inference/volume.data", "volume", "v-1", volume),
                "inference/ssh_key.deploy": recorded(
                    "inference/ssh_key.deploy", "ssh_key", "k-1", key
                ),
            }
        }
    )
    resized = LiveResource(
        id="v-1", kind="volume", name="data", observed={**volume, "size_in_gb": 500}
    )
    report = fleet_drift(before, snapshot(resources={"v-1": resized}))
    found = {(i.address, i.resource_kind, i.kind) for i in report.items}
    assert found == {
        ("inference/volume.data", "volume", DriftKind.CHANGED),
        ("inference/ssh_key.deploy", "ssh_key", DriftKind.GONE),
    }
    changed = next(i for i in report.items if i.kind is DriftKind.CHANGED)
    assert [(c.path, c.before, c.after) for c in changed.field_changes] == [
        ("size_in_gb", 100, 500)
    ]
    after = state_matching_shadeform(before, snapshot(resources={"v-1": resized}), now="t")
    assert list(after.resources) == ["inference/volume.data"], "the gone key's record is dropped"
    assert after.resources["inference/volume.data"].applied_spec["size_in_gb"] == 500
