"""Instances over the API: create checks, lifecycle under a fake clock, update/delete/restart."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from reconciler.emulator import BadRequest, Emulator, FaultConfig

from .conftest import Api, FakeClock, MakeEmulator, create_body

REGISTRY = {"username": "bot", "password": "registry-pass"}


def create(api: Api, **overrides: Any) -> str:
    response = api.post("/instances/create", json=create_body(**overrides))
    assert response.status_code == 200, response.text
    return str(response.json()["id"])


def info(api: Api, instance_id: str) -> dict[str, Any]:
    response = api.get(f"/instances/{instance_id}/info")
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def test_create_returns_a_uuid_at_once_and_the_instance_boots(api: Api, clock: FakeClock) -> None:
    instance_id = create(api)
    uuid.UUID(instance_id)
    seen = []
    for step in (0.0, 1.0, 3.0, 6.0):  # boot_seconds is 10
        clock.advance(step)
        seen.append(info(api, instance_id)["status"])
    assert seen == ["creating", "pending_provider", "pending", "active"]


def test_an_active_instance_is_filled_in_plausibly(api: Api, clock: FakeClock) -> None:
    instance_id = create(api)
    before = info(api, instance_id)
    assert before["ip"] == "" and "active_at" not in before
    clock.advance(10 + 3600)
    after = info(api, instance_id)
    assert after["ip"].count(".") == 3
    assert (after["ssh_user"], after["ssh_port"]) == ("shadeform", 22)
    assert after["active_at"] > after["created_at"]
    assert after["cost_estimate"] == "0.80"  # one hour of an 80-cent A6000
    assert after["deleted_at"] == "0001-01-01T00:00:00Z"
    assert after["configuration"]["os"] == "ubuntu22.04_cuda12.2_shade_os"
    assert after["rental_terms"] == {
        "rental_type": "on_demand",
        "hourly_price": "0.80",
        "ending_at": None,
    }
    clock.advance(3600)
    assert info(api, instance_id)["cost_estimate"] == "1.60"


def test_linked_cloud_instances_cost_nothing_through_shadeform(api: Api, clock: FakeClock) -> None:
    instance_id = create(api, shade_cloud=False)
    clock.advance(7200)
    assert info(api, instance_id)["cost_estimate"] == "0.00"


def test_info_echoes_what_was_asked_for_and_list_leaves_out_envs(api: Api) -> None:
    launch = {
        "type": "docker",
        "docker_configuration": {"image": "nginx", "registry_credentials": REGISTRY},
    }
    instance_id = create(
        api,
        envs=[{"name": "TOKEN", "value": "s3cret"}],
        launch_configuration=launch,
        tags=["team:ml"],
        auto_delete={"spend_threshold": "10"},
        volume_mount={"auto": True},
    )
    detailed = info(api, instance_id)
    assert detailed["envs"] == [{"name": "TOKEN", "value": "s3cret"}]
    assert detailed["launch_configuration"] == launch
    assert detailed["tags"] == ["team:ml"]
    assert detailed["auto_delete"] == {"spend_threshold": "10"}
    assert detailed["volume_ids"] == []
    listed = api.get("/instances").json()["instances"]
    assert [i["id"] for i in listed] == [instance_id]
    assert "envs" not in listed[0] and "auto_delete" not in listed[0]
    assert listed[0]["launch_configuration"] == launch


def test_spot_instances_are_billed_at_the_spot_price(api: Api) -> None:
    instance_id = create(api, rental_type="spot")
    detailed = info(api, instance_id)
    assert detailed["hourly_price"] == 40
    assert detailed["rental_terms"]["rental_type"] == "spot"


@pytest.mark.parametrize(
    ("overrides", "status", "message"),
    [
        (
            {"cloud": "aws"},
            400,
            "unknown cloud 'aws'; valid clouds: datacrunch, hyperstack, lambdalabs, nebius",
        ),
        (
            {"shade_instance_type": "B200"},
            400,
            "cloud hyperstack does not offer shade_instance_type 'B200'; it offers: 8xH100, A100_80G, A6000, H100",
        ),
        (
            {"region": "us-east-1"},
            400,
            "A6000 on hyperstack is not offered in region 'us-east-1'; valid regions: canada-1, norway-1",
        ),
        ({"os": "windows"}, 400, "os 'windows' is not offered for A6000 in canada-1 (hyperstack)"),
        (
            {"shade_instance_type": "H100", "rental_type": "spot"},
            400,
            "no spot offer for H100 in canada-1 (hyperstack)",
        ),
        ({"region": "norway-1"}, 409, "no capacity available for A6000 in norway-1 (hyperstack)"),
        (
            {
                "cloud": "datacrunch",
                "region": "FIN-02",
                "shade_instance_type": "A100_80G",
                "rental_type": "spot",
            },
            409,
            "no spot capacity available for A100_80G in FIN-02 (datacrunch)",
        ),
        ({"template_id": "t-1"}, 400, "template t-1 not found"),
        ({"ssh_key_id": "k-1"}, 400, "ssh key k-1 not found"),
        ({"volume_ids": ["v-1"]}, 400, "volume v-1 not found"),
        ({"shade_cloud": "yes"}, 400, "shade_cloud: Input should be a valid boolean"),
    ],
)
def test_create_refusals_name_what_is_valid(
    api: Api, emulator: Emulator, overrides: dict[str, Any], status: int, message: str
) -> None:
    response = api.post("/instances/create", json=create_body(**overrides))
    assert response.status_code == status
    error = response.json()["error"]
    if status == 409:
        assert error["code"] == "OUT_OF_STOCK"
        error = error["message"]
    assert message in error
    assert emulator.create_count("web-0") == 0
    assert api.get("/instances").json() == {"instances": []}


def test_exhausted_capacity_refuses_creates_until_it_returns(api: Api, emulator: Emulator) -> None:
    emulator.set_capacity("hyperstack", "canada-1", "A6000", available=False)
    assert api.post("/instances/create", json=create_body()).status_code == 409
    assert create(api, rental_type="spot")  # spot capacity is separate
    emulator.set_capacity("hyperstack", "canada-1", "A6000", available=True)
    assert create(api)


def test_set_capacity_rejects_unknown_offers(emulator: Emulator) -> None:
    with pytest.raises(BadRequest, match="has no spot offer"):
        emulator.set_capacity("hyperstack", "canada-1", "H100", False, rental_type="spot")
    with pytest.raises(BadRequest, match="unknown cloud"):
        emulator.set_capacity("aws", "us-east-1", "H100", False)


def test_delete_shows_deleting_then_the_instance_is_gone(api: Api, clock: FakeClock) -> None:
    instance_id = create(api)
    assert api.post(f"/instances/{instance_id}/delete").status_code == 200
    assert info(api, instance_id)["status"] == "deleting"
    assert [i["status"] for i in api.get("/instances").json()["instances"]] == ["deleting"]
    assert api.post(f"/instances/{instance_id}/delete").status_code == 200  # still deleting
    clock.advance(1.0)
    assert api.get(f"/instances/{instance_id}/info").status_code == 404
    assert api.get("/instances").json() == {"instances": []}
    gone = api.post(f"/instances/{instance_id}/delete")
    assert gone.status_code == 404
    assert gone.json() == {"error": f"instance {instance_id} not found"}


def test_zero_delete_seconds_removes_at_once(make_emulator: MakeEmulator) -> None:
    api = Api(make_emulator(boot_seconds=0, delete_seconds=0))
    instance_id = create(api)
    assert info(api, instance_id)["status"] == "active"
    api.post(f"/instances/{instance_id}/delete")
    assert api.get(f"/instances/{instance_id}/info").status_code == 404


def test_update_changes_only_what_is_sent_and_null_removes(api: Api) -> None:
    instance_id = create(
        api, tags=["a"], alert={"spend_threshold": "5"}, auto_delete={"spend_threshold": "9"}
    )
    response = api.post(
        f"/instances/{instance_id}/update",
        json={"name": "web-1", "tags": ["b", "c"], "alert": None},
    )
    assert response.status_code == 200 and response.content == b""
    detailed = info(api, instance_id)
    assert detailed["name"] == "web-1"
    assert detailed["tags"] == ["b", "c"]
    assert "alert" not in detailed
    assert detailed["auto_delete"] == {"spend_threshold": "9"}
    api.post(f"/instances/{instance_id}/update", json={"tags": None})
    assert info(api, instance_id)["tags"] == []


def test_update_refusals(api: Api) -> None:
    instance_id = create(api)
    bad = api.post(f"/instances/{instance_id}/update", json={"os": "x"})
    assert bad.status_code == 400 and "os: unknown field" in bad.json()["error"]
    assert api.post(f"/instances/{instance_id}/update", json={"name": None}).status_code == 400
    assert api.post("/instances/nope/update", json={"name": "x"}).status_code == 404


def test_restart_needs_an_active_instance(api: Api, clock: FakeClock) -> None:
    instance_id = create(api)
    refused = api.post(f"/instances/{instance_id}/restart")
    assert refused.status_code == 400
    assert "is creating; only active instances restart" in refused.json()["error"]
    clock.advance(10)
    assert api.post(f"/instances/{instance_id}/restart").status_code == 200
    assert info(api, instance_id)["status"] == "active"


def test_boot_failures_end_in_error(make_emulator: MakeEmulator, clock: FakeClock) -> None:
    api = Api(make_emulator(faults=FaultConfig(boot_failure_rate=1.0)))
    instance_id = create(api)
    assert info(api, instance_id)["status"] == "creating"
    clock.advance(10)
    detailed = info(api, instance_id)
    assert detailed["status"] == "error"
    assert detailed["status_details"] == "the provider failed to provision the instance"
