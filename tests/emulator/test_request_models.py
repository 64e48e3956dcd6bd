"""Strict request validation: what Shadeform accepts and the messages for what it does not."""

from __future__ import annotations

import json
from typing import Any

import pytest
from pydantic import ValidationError

from reconciler.emulator.request_models import (
    AddSshKeyRequest,
    CreateInstanceRequest,
    CreateVolumeRequest,
    UpdateInstanceRequest,
    describe_validation_error,
)

from .conftest import create_body


def problem(model: Any, body: Any) -> str:
    with pytest.raises(ValidationError) as caught:
        model.model_validate_json(json.dumps(body) if not isinstance(body, bytes) else body)
    return describe_validation_error(caught.value)


def docker(**overrides: Any) -> dict[str, Any]:
    config: dict[str, Any] = {"image": "vllm/vllm-openai:latest"}
    config.update(overrides)
    return {"type": "docker", "docker_configuration": config}


def test_a_full_create_request_is_accepted() -> None:
    body = create_body(
        rental_type="spot",
        os="ubuntu22.04_cuda12.2_shade_os",
        launch_configuration=docker(
            args="--model x",
            shared_memory_in_gb=8,
            envs=[{"name": "HF_TOKEN", "value": "secret"}],
            port_mappings=[{"host_port": 80, "container_port": 8000}],
            volume_mounts=[{"host_path": "~/.cache", "container_path": "/root/.cache"}],
            registry_credentials={"username": "u", "password": "p"},
        ),
        volume_ids=["v-1"],
        ssh_key_id="k-1",
        auto_delete={"date_threshold": "2030-01-02T15:04:05-07:00", "spend_threshold": "3.14"},
        alert={"spend_threshold": "10"},
        volume_mount={"auto": True},
        tags=["a", "b"],
        envs=[{"name": "A", "value": "1"}],
    )
    request = CreateInstanceRequest.model_validate_json(json.dumps(body))
    assert request.effective_rental_type == "spot"
    assert request.launch_configuration is not None


def test_null_optional_fields_mean_absent() -> None:
    request = CreateInstanceRequest.model_validate_json(
        json.dumps(create_body(os=None, rental_type=None, tags=None))
    )
    assert request.os is None and request.effective_rental_type == "on_demand"


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (
            {k: v for k, v in create_body().items() if k != "shade_cloud"},
            "shade_cloud: required field missing",
        ),
        (create_body(shade_cloud="true"), "shade_cloud: Input should be a valid boolean"),
        (create_body(name=""), "name: String should have at least 1 character"),
        (create_body(colud="x"), "colud: unknown field"),
        (create_body(rental_type="reserved"), "rental_type: Input should be 'on_demand' or 'spot'"),
        (create_body(rental_type="spot", shade_cloud=False), "spot' requires shade_cloud: true"),
        (create_body(volume_ids=["a", "b"]), "volume_ids: List should have at most 1 item"),
        (create_body(tags="a"), "tags: Input should be a valid array"),
        (create_body(envs=[{"name": "A"}]), "envs.0.value: required field missing"),
        (create_body(auto_delete={"date_threshold": "tomorrow"}), "must be an RFC3339 date"),
        (create_body(alert={"spend_threshold": "lots"}), "must be a decimal dollar amount"),
        (create_body(alert={"spend_threshold": "-1"}), "non-negative"),
        (
            create_body(
                launch_configuration=docker(port_mappings=[{"host_port": 0, "container_port": 80}])
            ),
            "host_port: Input should be greater than or equal to 1",
        ),
        (
            create_body(
                launch_configuration=docker(
                    port_mappings=[{"host_port": 80, "container_port": 70000}]
                )
            ),
            "container_port: Input should be less than or equal to 65535",
        ),
        (
            create_body(launch_configuration=docker(shared_memory_in_gb="8")),
            "shared_memory_in_gb: Input should be a valid integer",
        ),
        (
            create_body(launch_configuration={"type": "docker"}),
            "type 'docker' needs docker_configuration",
        ),
        (
            create_body(
                launch_configuration={
                    "type": "script",
                    "script_configuration": {"base64_script": "%%%"},
                }
            ),
            "base64_script is not valid base64",
        ),
        (
            create_body(
                launch_configuration={
                    **docker(),
                    "script_configuration": {"base64_script": "ZWNobyBoaQ=="},
                }
            ),
            "only one of docker_configuration and script_configuration",
        ),
        (create_body(launch_configuration={"type": "vm"}), "Input should be 'docker' or 'script'"),
        ([create_body()], "Input should be an object"),
    ],
)
def test_bad_create_requests_are_explained(body: Any, expected: str) -> None:
    message = problem(CreateInstanceRequest, body)
    assert message.startswith("invalid request: ")
    assert expected in message


def test_every_problem_is_reported_at_once() -> None:
    message = problem(CreateInstanceRequest, {"name": 3})
    for field in ("cloud", "region", "shade_instance_type", "shade_cloud", "name"):
        assert f"{field}:" in message


def test_a_body_that_is_not_json_says_so() -> None:
    assert problem(CreateInstanceRequest, b"{nope") == "request body is not valid JSON"
    assert problem(CreateInstanceRequest, b"") == "request body is not valid JSON"


def test_update_keeps_track_of_what_was_sent() -> None:
    request = UpdateInstanceRequest.model_validate_json('{"tags": null, "name": "x"}')
    assert request.model_fields_set == {"tags", "name"}
    assert "name cannot be removed" in problem(UpdateInstanceRequest, {"name": None})
    assert "unknown field" in problem(UpdateInstanceRequest, {"os": "x"})


def test_volume_and_ssh_key_requests_are_checked() -> None:
    assert "size_in_gb: Input should be greater than or equal to 1" in problem(
        CreateVolumeRequest, {"cloud": "c", "region": "r", "size_in_gb": 0, "name": "v"}
    )
    assert "public_key must be an OpenSSH public key" in problem(
        AddSshKeyRequest, {"name": "k", "public_key": "not a key"}
    )
    key = AddSshKeyRequest.model_validate({"name": "k", "public_key": "ssh-ed25519 AAAAC3Nz me"})
    assert key.name == "k"
