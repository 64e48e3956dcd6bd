"""Contract tests: every answer the emulator gives validates against Shadeform's OpenAPI spec.

A scenario drives every emulated endpoint (successes and refusals) through the ASGI app and
records each exchange; each exchange is then checked with openapi-core. The spec defines no
error responses, so for 4xx/5xx we check that the spec indeed has none for that status and
that the body is our ``{"error": "..."}`` shape. Requests are checked too: the bodies the
emulator accepts are valid per the spec, and bodies the spec rejects the emulator rejects.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from openapi_core import OpenAPI
from openapi_core.templating.responses.exceptions import ResponseNotFound
from openapi_core.testing import MockRequest, MockResponse

from reconciler.emulator import Emulator, EmulatorConfig, FaultConfig

from .conftest import Api, FakeClock, create_body

SPEC_HOST = "https://api.shadeform.ai"
EMULATED_TAGS = {"instances", "volumes", "ssh-keys"}
PUBLIC_KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIKx me@laptop"
Operation = tuple[str, str, str]  # (method, path template, operationId)


@pytest.fixture(scope="module")
def openapi(openapi_spec_path: Path) -> OpenAPI:
    return OpenAPI.from_file_path(str(openapi_spec_path))


@pytest.fixture(scope="module")
def operations(openapi_spec_path: Path) -> list[Operation]:
    """Every operation of the spec the emulator must serve (instances, volumes, SSH keys)."""
    spec = yaml.safe_load(openapi_spec_path.read_text())
    found = []
    for path, item in spec["paths"].items():
        for method, operation in item.items():
            if method in ("get", "post") and EMULATED_TAGS & set(operation["tags"]):
                found.append((method.upper(), path, operation["operationId"]))
    return found


def _operation_of(operations: list[Operation], request: httpx.Request) -> str | None:
    path = request.url.path.removeprefix("/v1")
    for method, template, operation_id in operations:
        pattern = "^" + re.sub(r"\{[^/]+\}", "[^/]+", template) + "$"
        if method == request.method and re.match(pattern, path):
            return operation_id
    return None


def _spec_request(request: httpx.Request) -> MockRequest:
    return MockRequest(
        SPEC_HOST,
        request.method,
        request.url.path,
        args=dict(request.url.params),
        headers=dict(request.headers),
        data=request.content or None,
        content_type=request.headers.get("content-type", "application/json"),
    )


def _spec_response(response: httpx.Response) -> MockResponse:
    return MockResponse(
        response.content,
        status_code=response.status_code,
        headers=dict(response.headers),
        content_type=response.headers.get("content-type", ""),
    )


def _scenario(api: Api, emulator: Emulator, clock: FakeClock) -> None:
    """Drive every endpoint, in success and in refusal."""
    for params in (
        {},
        {"cloud": "lambdalabs", "available": "true", "sort": "price"},
        {"num_gpus": "8", "region": "eu-north1"},
        {"num_gpus": "x"},
    ):
        api.get("/instances/types", params=params)
    api.get("/volumes/types")
    volume_id = api.post(
        "/volumes/create",
        json={"cloud": "hyperstack", "region": "canada-1", "size_in_gb": 50, "name": "data"},
    ).json()["id"]
    api.post(
        "/volumes/create",
        json={"cloud": "hyperstack", "region": "canada-1", "size_in_gb": 0, "name": "x"},
    )
    key_id = api.post("/sshkeys/add", json={"name": "laptop", "public_key": PUBLIC_KEY}).json()[
        "id"
    ]
    api.post("/sshkeys/add", json={"name": "laptop"})
    full = create_body(
        name="full",
        os="ubuntu20.04_cuda12.0_shade_os",
        volume_ids=[volume_id],
        ssh_key_id=key_id,
        launch_configuration={
            "type": "docker",
            "docker_configuration": {
                "image": "vllm/vllm-openai:latest",
                "args": "--model m",
                "shared_memory_in_gb": 8,
                "envs": [{"name": "HF_TOKEN", "value": "t"}],
                "port_mappings": [{"host_port": 80, "container_port": 8000}],
                "volume_mounts": [{"host_path": "~/.cache", "container_path": "/root/.cache"}],
                "registry_credentials": {"username": "u", "password": "p"},
            },
        },
        auto_delete={"date_threshold": "2030-01-02T15:04:05-07:00", "spend_threshold": "3.14"},
        alert={"spend_threshold": "1"},
        volume_mount={"auto": True},
        tags=["a"],
        envs=[{"name": "A", "value": "1"}],
    )
    full_id = api.post("/instances/create", json=full).json()["id"]
    script = create_body(
        name="script",
        launch_configuration={
            "type": "script",
            "script_configuration": {"base64_script": "ZWNobyBoaQ=="},
        },
    )
    api.post("/instances/create", json=script)
    spot_id = api.post(
        "/instances/create", json=create_body(name="spot", rental_type="spot")
    ).json()["id"]
    api.post("/instances/create", json=create_body(region="nowhere"))
    api.post("/instances/create", json=create_body(region="norway-1"))
    api.post("/instances/create", json=create_body(shade_cloud="true"))
    for _ in range(4):  # creating, pending_provider, pending, active
        api.get("/instances")
        api.get(f"/instances/{full_id}/info")
        clock.advance(3.0)
    api.get("/instances/00000000-0000-0000-0000-000000000000/info")
    api.post(
        f"/instances/{full_id}/update",
        json={
            "name": "renamed",
            "tags": ["b"],
            "alert": None,
            "auto_delete": {"spend_threshold": "2"},
        },
    )
    api.post(f"/instances/{full_id}/update", json={"name": 5})
    api.post(f"/instances/{full_id}/restart")
    emulator.fail_instance(spot_id, "boom")
    api.get(f"/instances/{spot_id}/info")
    api.post(f"/instances/{spot_id}/restart")
    api.get(f"/volumes/{volume_id}/info")
    api.get("/volumes")
    api.post(f"/volumes/{volume_id}/delete")
    api.get(f"/sshkeys/{key_id}/info")
    api.get("/sshkeys")
    api.post(f"/sshkeys/{key_id}/setdefault")
    api.post(f"/sshkeys/{key_id}/delete")
    api.post(f"/instances/{full_id}/delete")
    api.get(f"/instances/{full_id}/info")
    api.get("/instances")
    clock.advance(1.0)
    api.post(f"/instances/{full_id}/delete")
    api.post(f"/volumes/{volume_id}/delete")
    api.get(f"/volumes/{volume_id}/info")
    api.get("/sshkeys/missing/info")
    api.post("/sshkeys/missing/delete")
    api.post("/sshkeys/missing/setdefault")
    for status in (500, 502, 503, 504):
        emulator.faults = FaultConfig(error_rate=1.0, error_statuses=(status,))
        api.get("/instances")
    emulator.faults = FaultConfig(rate_limit_rps=0.01, rate_limit_burst=1, lost_create_rate=1.0)
    api.post("/instances/create", json=create_body(name="lost"))
    api.get("/instances")
    stranger = Api(emulator, api_key="wrong")
    api.exchanges.append(stranger.get("/instances"))
    stranger.close()


@pytest.fixture(scope="module")
def exchanges(openapi: OpenAPI) -> Iterator[list[httpx.Response]]:
    clock = FakeClock()
    emulator = Emulator(EmulatorConfig(clock=clock, boot_seconds=9.0, delete_seconds=1.0))
    api = Api(emulator)
    _scenario(api, emulator, clock)
    yield api.exchanges
    api.close()
    emulator.close()


def test_the_emulator_serves_every_instance_volume_and_ssh_key_operation(
    operations: list[Operation], exchanges: list[httpx.Response]
) -> None:
    exercised = {_operation_of(operations, r.request) for r in exchanges}
    missing = {op for _, _, op in operations} - exercised
    assert not missing, f"operations never exercised: {sorted(missing)}"
    assert len(operations) == 17


def test_every_successful_answer_matches_the_spec(
    openapi: OpenAPI, operations: list[Operation], exchanges: list[httpx.Response]
) -> None:
    checked = 0
    for response in exchanges:
        if response.status_code != 200:
            continue
        operation = _operation_of(operations, response.request)
        try:
            openapi.validate_response(_spec_request(response.request), _spec_response(response))
        except Exception as exc:  # report which exchange broke the contract
            cause = exc.__cause__ or exc
            pytest.fail(f"{operation} {response.request.url.path}: {cause}\n{response.text[:2000]}")
        checked += 1
    assert checked >= 25


def test_every_error_answer_is_an_error_object_the_spec_leaves_undefined(
    openapi: OpenAPI, exchanges: list[httpx.Response]
) -> None:
    errors = [r for r in exchanges if r.status_code != 200]
    statuses = {r.status_code for r in errors}
    assert {400, 401, 404, 409, 429, 500, 502, 503, 504} <= statuses
    for response in errors:
        with pytest.raises(ResponseNotFound):
            openapi.validate_response(_spec_request(response.request), _spec_response(response))
        if response.content:  # a lost answer is an empty 502, like a gateway's
            body = response.json()
            assert list(body) == ["error"] and body["error"]
            if response.status_code == 409:  # every 409 carries a code
                path = response.request.url.path
                code = "OUT_OF_STOCK" if path.endswith("/create") else "RESOURCE_IN_USE"
                assert body["error"]["code"] == code and body["error"]["message"]
            else:
                assert isinstance(body["error"], str)
    conflicts = {r.request.url.path.split("/")[2] for r in errors if r.status_code == 409}
    assert conflicts == {"instances", "volumes", "sshkeys"}  # capacity and both in-use kinds


def test_every_request_the_emulator_accepted_is_valid_per_the_spec(
    openapi: OpenAPI, operations: list[Operation], exchanges: list[httpx.Response]
) -> None:
    for response in exchanges:
        if response.status_code != 200:
            continue
        body = json.loads(response.request.content or b"{}")
        if (
            _operation_of(operations, response.request) == "InstancesUpdate"
            and None in body.values()
        ):
            # The spec says "set a value to null to delete it" but its UpdateRequest schema is
            # not nullable; the emulator follows the description.
            continue
        openapi.validate_request(_spec_request(response.request))


@pytest.mark.parametrize(
    "body",
    [
        {k: v for k, v in create_body().items() if k != "name"},
        create_body(shade_cloud="true"),
        create_body(rental_type="reserved"),
        create_body(envs=[{"name": "A"}]),
        create_body(launch_configuration={"type": "vm"}),
        create_body(launch_configuration={"type": "docker", "docker_configuration": {"args": "x"}}),
        create_body(tags=[1]),
    ],
)
def test_create_bodies_the_spec_rejects_the_emulator_rejects(
    openapi: OpenAPI, api: Api, body: dict[str, Any]
) -> None:
    response = api.post("/instances/create", json=body)
    with pytest.raises(Exception, match="(?i)invalid|required|not valid|type"):
        openapi.validate_request(_spec_request(response.request))
    assert response.status_code == 400, json.dumps(body)
