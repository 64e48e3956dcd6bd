"""Out-of-band changes: the Python admin API and the same over HTTP under /_admin."""

from __future__ import annotations

import pytest

from reconciler.emulator import Emulator, UnknownResource

from .conftest import Api, FakeClock, create_body

ADMIN = "http://emulator.test/_admin"


def create(api: Api, name: str = "web-0") -> str:
    return str(api.post("/instances/create", json=create_body(name=name)).json()["id"])


def test_delete_out_of_band_goes_through_deleting(
    emulator: Emulator, api: Api, clock: FakeClock
) -> None:
    instance_id = create(api)
    emulator.delete_instance_out_of_band(instance_id)
    assert [i["status"] for i in emulator.live_instances()] == ["deleting"]
    clock.advance(1)
    assert emulator.live_instances() == []


def test_immediate_delete_out_of_band(emulator: Emulator, api: Api) -> None:
    instance_id = create(api)
    emulator.delete_instance_out_of_band(instance_id, immediate=True)
    assert api.get(f"/instances/{instance_id}/info").status_code == 404


def test_rename_retag_fail_preempt(emulator: Emulator, api: Api) -> None:
    instance_id = create(api)
    emulator.rename_instance(instance_id, "renamed")
    emulator.retag_instance(instance_id, ["x"])
    emulator.fail_instance(instance_id, details="GPU fell off the bus")
    seen = api.get(f"/instances/{instance_id}/info").json()
    assert (seen["name"], seen["tags"], seen["status"], seen["status_details"]) == (
        "renamed",
        ["x"],
        "error",
        "GPU fell off the bus",
    )
    emulator.preempt_instance(instance_id)
    seen = api.get(f"/instances/{instance_id}/info").json()
    assert (seen["status"], seen["status_details"]) == ("deleting", "preempted")


def test_create_count_spots_duplicates(emulator: Emulator, api: Api) -> None:
    create(api, "a")
    create(api, "a")
    create(api, "b")
    assert (emulator.create_count("a"), emulator.create_count("b"), emulator.create_count("c")) == (
        2,
        1,
        0,
    )


def test_admin_calls_on_unknown_instances_raise(emulator: Emulator) -> None:
    with pytest.raises(UnknownResource, match="instance nope not found"):
        emulator.rename_instance("nope", "x")
    with pytest.raises(UnknownResource):
        emulator.preempt_instance("nope")


def test_live_instances_are_info_shaped(emulator: Emulator, api: Api) -> None:
    create(api)
    (live,) = emulator.live_instances()
    assert "envs" in live and live["name"] == "web-0"


def test_http_admin_routes_mirror_the_python_api(
    emulator: Emulator, api: Api, clock: FakeClock
) -> None:
    keep, drop = create(api, "keep"), create(api, "drop")
    assert api.post(f"{ADMIN}/instances/{keep}/rename", json={"name": "kept"}).status_code == 200
    assert api.post(f"{ADMIN}/instances/{keep}/retag", json={"tags": ["t"]}).status_code == 200
    assert api.post(f"{ADMIN}/instances/{keep}/fail").status_code == 200
    assert api.post(f"{ADMIN}/instances/{drop}/delete", json={"immediate": True}).status_code == 200
    live = api.get(f"{ADMIN}/instances").json()["instances"]
    assert [(i["name"], i["tags"], i["status"]) for i in live] == [("kept", ["t"], "error")]
    assert api.post(f"{ADMIN}/instances/{keep}/preempt").status_code == 200
    assert api.get(f"{ADMIN}/create-counts").json() == {"create_counts": {"keep": 1, "drop": 1}}
    assert api.get(f"{ADMIN}/create-counts/keep").json() == {"name": "keep", "count": 1}


def test_http_admin_capacity_and_faults(emulator: Emulator, api: Api) -> None:
    body = {
        "cloud": "hyperstack",
        "region": "canada-1",
        "shade_instance_type": "A6000",
        "available": False,
    }
    assert api.post(f"{ADMIN}/capacity", json=body).status_code == 200
    assert api.post("/instances/create", json=create_body()).status_code == 409
    assert (
        api.request(
            "PUT", f"{ADMIN}/faults", json={"error_rate": 1, "error_statuses": [502]}
        ).status_code
        == 200
    )
    assert emulator.faults.error_rate == 1
    assert api.get("/instances").status_code == 502
    assert api.get(f"{ADMIN}/faults").json()["error_statuses"] == [502]


def test_http_admin_refusals(emulator: Emulator, api: Api) -> None:
    assert Api(emulator, api_key="bad").get(f"{ADMIN}/instances").status_code == 401
    missing = api.post(f"{ADMIN}/instances/nope/fail")
    assert missing.status_code == 404 and missing.json() == {"error": "instance nope not found"}
    bad = api.request("PUT", f"{ADMIN}/faults", json={"error_rate": 7})
    assert bad.status_code == 400 and "error_rate" in bad.json()["error"]
    unknown = api.post(
        f"{ADMIN}/capacity",
        json={"cloud": "aws", "region": "r", "shade_instance_type": "H100", "available": False},
    )
    assert unknown.status_code == 400 and "unknown cloud" in unknown.json()["error"]


def test_the_timeline_keeps_gone_instances_with_their_times(
    emulator: Emulator, api: Api, clock: FakeClock
) -> None:
    from reconciler.emulator.timeline import extremes, period_from_json

    start = emulator.now()
    first = create(api, "a")
    clock.advance(emulator.config.boot_seconds + 1)
    create(api, "b")
    emulator.delete_instance_out_of_band(first)
    deleted_at = emulator.now()
    clock.advance(emulator.config.delete_seconds + 1)
    assert [i["name"] for i in emulator.live_instances()] == ["b"]
    answer = api.get(f"{ADMIN}/timeline").json()
    assert answer["now"] == emulator.now()
    periods = {p.name: p for p in map(period_from_json, answer["instances"])}
    assert set(periods) == {"a", "b"}, "gone instances stay in the timeline"
    a = periods["a"]
    assert (a.created_at, a.active_from, a.active_until) == (
        start,
        start + emulator.config.boot_seconds,
        deleted_at,
    )
    assert a.gone_at == deleted_at + emulator.config.delete_seconds
    seen = extremes(periods.values(), since=start, until=emulator.now())
    assert (seen.fewest_active, seen.most_running) == (0, 2)
