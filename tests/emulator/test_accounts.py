"""Volumes and SSH keys over the API, including what may not be deleted."""

from __future__ import annotations

from typing import Any

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


def test_volumes_are_created_listed_and_cost_grows(api: Api, clock: FakeClock) -> None:
    volume_id = create_volume(api)
    volume = api.get(f"/volumes/{volume_id}/info").json()
    assert volume["size_in_gb"] == 100 and volume["fixed_size"] is True
    assert volume["mounted_by"] == "" and volume["cost_estimate"] == "0.00"
    clock.advance(10 * 3600)
    assert api.get(f"/volumes/{volume_id}/info").json()["cost_estimate"] == "0.10"
    assert [v["id"] for v in api.get("/volumes").json()["volumes"]] == [volume_id]


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
    refused = api.post(f"/volumes/{volume_id}/delete")
    assert refused.status_code == 400
    assert f"mounted by instance {instance_id}" in refused.json()["error"]
    api.post(f"/instances/{instance_id}/delete")
    clock.advance(1)
    assert api.get(f"/volumes/{volume_id}/info").json()["mounted_by"] == ""
    assert api.post(f"/volumes/{volume_id}/delete").status_code == 200
    assert api.get(f"/volumes/{volume_id}/info").status_code == 404


def test_mount_rules(api: Api) -> None:
    single = create_volume(api)
    create_instance(api, volume_ids=[single])
    second = api.post("/instances/create", json=create_body(name="b", volume_ids=[single]))
    assert second.status_code == 400 and "already mounted" in second.json()["error"]
    elsewhere = create_volume(api, region="us-1")
    wrong = api.post("/instances/create", json=create_body(volume_ids=[elsewhere]))
    assert wrong.status_code == 400 and "cannot mount it" in wrong.json()["error"]
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
    refused = api.post(f"/sshkeys/{key_id}/delete")
    assert refused.status_code == 400 and "default key" in refused.json()["error"]
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


def test_managed_and_in_use_keys_cannot_be_deleted(api: Api) -> None:
    managed = api.get("/sshkeys").json()["ssh_keys"][0]["id"]
    key_id = api.post("/sshkeys/add", json={"name": "k", "public_key": PUBLIC_KEY}).json()["id"]
    api.post(f"/sshkeys/{key_id}/setdefault")
    refused = api.post(f"/sshkeys/{managed}/delete")
    assert (
        refused.status_code == 400
        and "managed SSH key cannot be deleted" in refused.json()["error"]
    )
    api.post(f"/sshkeys/{managed}/setdefault")
    create_instance(api, ssh_key_id=key_id)
    in_use = api.post(f"/sshkeys/{key_id}/delete")
    assert in_use.status_code == 400 and "in use" in in_use.json()["error"]


def test_bad_key_bodies_are_400(api: Api) -> None:
    response = api.post("/sshkeys/add", json={"name": "k", "public_key": "hello"})
    assert response.status_code == 400
    assert "public_key must be an OpenSSH public key" in response.json()["error"]
