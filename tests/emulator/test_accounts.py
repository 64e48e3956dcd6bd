"""Volumes and SSH keys over the API, including what may not be deleted."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from .conftest import Api, FakeClock, create_body

PUBLIC_KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIKx me@laptop"


def create_volume(api: Api, **overrides: Any) -> str:
    body = {"cloud": "hyperstack", "region": "canada-1", "size_in_gb": 100, "name": "data"}
    body.update(overrides)
    response = api.post("/volumes/create", json=body)
    assert response.status_code == 200, response.text
    return str(response.json()["id"])


def create_instance(api: Api, **overrides: Any) -> str:
    response = api.post("/instances/create", json=create_body(**overrides))
    assert response.status_code == 200, response.text
    return str(response.json()["id"])


def assert_in_use(response: httpx.Response, message: str) -> None:
    """A 409 whose code says "in use", never one a client could read as "no capacity"."""
    assert response.status_code == 409, response.text
    error = response.json()["error"]
    assert error["code"] == "RESOURCE_IN_USE"
    assert message in error["message"]


def test_volumes_are_created_listed_and_cost_grows(api: Api, clock: FakeClock) -> None:
    volume_id = create_volume(api)
    volume = api.get(f"/volumes/{volume_id}/info").json()
    assert volume["size_in_gb"] == 100 and volume["fixed_size"] is True
    assert volume["mounted_by"] == "" and volume["cost_estimate"] == "0.00"
    clock.advance(10 * 3600)
    assert api.get(f"/volumes/{volume_id}/info").json()["cost_estimate"] == "0.10"
    clock.advance(10 * 3600)  # 100 GB at $0.0001 per GB-hour: 20 hours is 20 cents
    assert api.get(f"/volumes/{volume_id}/info").json()["cost_estimate"] == "0.20"
    listed = api.get("/volumes").json()["volumes"]
    assert [(v["id"], v["cost_estimate"]) for v in listed] == [(volume_id, "0.20")]


def test_volume_create_outside_the_volume_catalog_is_refused(api: Api) -> None:
    response = api.post(
        "/volumes/create",
        json={"cloud": "hyperstack", "region": "norway-1", "size_in_gb": 10, "name": "x"},
    )
    assert response.status_code == 400
    assert "volumes are not offered in norway-1 (hyperstack)" in response.json()["error"]


def test_a_mounted_volume_cannot_be_deleted_until_its_instance_is_gone(
    api: Api, clock: FakeClock
) -> None:
    volume_id = create_volume(api)
    instance_id = create_instance(api, volume_ids=[volume_id])
    assert api.get(f"/volumes/{volume_id}/info").json()["mounted_by"] == instance_id
    assert_in_use(api.post(f"/volumes/{volume_id}/delete"), f"mounted by instance {instance_id}")
    assert api.post(f"/instances/{instance_id}/delete").status_code == 200
    clock.advance(0.5)  # deleting, not yet gone: it still mounts the volume
    assert api.get(f"/instances/{instance_id}/info").json()["status"] == "deleting"
    listed = api.get("/volumes").json()["volumes"]
    assert [v["mounted_by"] for v in listed] == [instance_id]
    assert_in_use(api.post(f"/volumes/{volume_id}/delete"), f"mounted by instance {instance_id}")
    clock.advance(0.5)
    assert api.get(f"/volumes/{volume_id}/info").json()["mounted_by"] == ""
    assert api.post(f"/volumes/{volume_id}/delete").status_code == 200
    assert api.get(f"/volumes/{volume_id}/info").status_code == 404


@pytest.mark.parametrize(("cloud", "region"), [("hyperstack", "us-1"), ("lambdalabs", "us-east-1")])
def test_a_volume_from_another_region_or_cloud_cannot_be_mounted(
    api: Api, cloud: str, region: str
) -> None:
    elsewhere = create_volume(api, cloud=cloud, region=region)
    wrong = api.post("/instances/create", json=create_body(volume_ids=[elsewhere]))
    assert wrong.status_code == 400
    assert wrong.json()["error"] == (
        f"volume {elsewhere} is in {region} ({cloud}); "
        "an instance in canada-1 (hyperstack) cannot mount it"
    )
    assert api.get("/instances").json()["instances"] == []
    assert api.get(f"/volumes/{elsewhere}/info").json()["mounted_by"] == ""


def test_a_mounted_volume_cannot_be_mounted_again_until_its_instance_is_gone(
    api: Api, clock: FakeClock
) -> None:
    single = create_volume(api)
    first = create_instance(api, volume_ids=[single])
    api.post(f"/instances/{first}/delete")  # deleting still mounts it
    second = api.post("/instances/create", json=create_body(name="b", volume_ids=[single]))
    assert second.status_code == 400
    assert second.json()["error"] == f"volume {single} is already mounted by instance {first}"
    clock.advance(1)
    third = create_instance(api, name="c", volume_ids=[single])
    assert api.get(f"/volumes/{single}/info").json()["mounted_by"] == third


def test_mount_rules(api: Api) -> None:
    single = create_volume(api)
    create_instance(api, volume_ids=[single])
    second = api.post("/instances/create", json=create_body(name="b", volume_ids=[single]))
    assert second.status_code == 400 and "already mounted" in second.json()["error"]
    shared = create_volume(api, cloud="nebius", region="eu-north1")
    for name in ("n1", "n2"):  # nebius volumes support multi-mount
        create_instance(
            api,
            cloud="nebius",
            region="eu-north1",
            shade_instance_type="B200",
            name=name,
            volume_ids=[shared],
        )


def test_the_account_starts_with_a_managed_default_key(api: Api) -> None:
    keys = api.get("/sshkeys").json()["ssh_keys"]
    assert len(keys) == 1
    assert keys[0]["name"] == "Shadeform Managed Key" and keys[0]["is_default"] is True


def test_ssh_keys_add_info_setdefault_delete(api: Api) -> None:
    managed = api.get("/sshkeys").json()["ssh_keys"][0]["id"]
    added = api.post("/sshkeys/add", json={"name": "laptop", "public_key": PUBLIC_KEY})
    assert added.status_code == 200
    key_id = added.json()["id"]
    assert api.get(f"/sshkeys/{key_id}/info").json() == {
        "id": key_id,
        "name": "laptop",
        "public_key": PUBLIC_KEY,
        "is_default": False,
    }
    assert api.post(f"/sshkeys/{key_id}/setdefault").status_code == 200
    assert api.get(f"/sshkeys/{managed}/info").json()["is_default"] is False
    assert_in_use(api.post(f"/sshkeys/{key_id}/delete"), "is the default key")
    api.post(f"/sshkeys/{managed}/setdefault")
    assert api.post(f"/sshkeys/{key_id}/delete").status_code == 200
    assert api.get(f"/sshkeys/{key_id}/info").status_code == 404


@pytest.mark.parametrize(
    "path", ["/sshkeys/{}/info", "/sshkeys/{}/delete", "/sshkeys/{}/setdefault"]
)
def test_unknown_keys_are_404(api: Api, path: str) -> None:
    method = api.get if path.endswith("info") else api.post
    response = method(path.format("missing"))
    assert response.status_code == 404 and response.json() == {"error": "ssh key missing not found"}


def test_the_managed_key_is_never_deletable_a_bad_request_not_a_conflict(api: Api) -> None:
    managed = api.get("/sshkeys").json()["ssh_keys"][0]["id"]
    key_id = api.post("/sshkeys/add", json={"name": "k", "public_key": PUBLIC_KEY}).json()["id"]
    api.post(f"/sshkeys/{key_id}/setdefault")  # not the default, still not deletable
    refused = api.post(f"/sshkeys/{managed}/delete")
    assert refused.status_code == 400
    assert refused.json() == {"error": "the Shadeform managed SSH key cannot be deleted"}


def test_a_key_in_use_cannot_be_deleted_until_its_instance_is_gone(
    api: Api, clock: FakeClock
) -> None:
    key_id = api.post("/sshkeys/add", json={"name": "k", "public_key": PUBLIC_KEY}).json()["id"]
    instance_id = create_instance(api, ssh_key_id=key_id)
    assert_in_use(api.post(f"/sshkeys/{key_id}/delete"), "in use by an instance")
    api.post(f"/instances/{instance_id}/delete")
    assert_in_use(api.post(f"/sshkeys/{key_id}/delete"), "in use by an instance")  # deleting
    clock.advance(1)
    assert api.post(f"/sshkeys/{key_id}/delete").status_code == 200
    assert api.get(f"/sshkeys/{key_id}/info").status_code == 404


def test_bad_key_bodies_are_400(api: Api) -> None:
    response = api.post("/sshkeys/add", json={"name": "k", "public_key": "hello"})
    assert response.status_code == 400
    assert "public_key must be an OpenSSH public key" in response.json()["error"]
