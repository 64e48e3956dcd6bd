"""The API models in reconciler/models/api.py (kept with the client tests they serve)."""

from __future__ import annotations

import pytest
from pydantic import SecretStr, ValidationError

from reconciler.models.api import (
    CreateRequest,
    Instance,
    InstanceInfo,
    InstanceType,
    SshKey,
    Thresholds,
    UpdateRequest,
    Volume,
    dollars_to_cents,
)
from reconciler.models.spec import (
    DockerConfiguration,
    Env,
    InstanceSpec,
    LaunchConfiguration,
    RegistryCredentials,
)
from tests.api.conftest import instance_body, instance_type_body, ssh_key_body, volume_body


def test_responses_ignore_unknown_fields() -> None:
    instance = Instance.model_validate(instance_body(brand_new_field={"x": 1}))
    assert instance.name == "trainer-0"
    assert not hasattr(instance, "brand_new_field")


def test_responses_tolerate_missing_optional_and_blank_fields() -> None:
    body = instance_body(ip=None, deleted_at="", active_at=None)
    del body["cloud_assigned_id"]
    instance = Instance.model_validate(body)
    assert (
        instance.ip is None and instance.deleted_at is None and instance.cloud_assigned_id is None
    )


def test_status_must_be_a_known_status() -> None:
    with pytest.raises(ValidationError):
        Instance.model_validate(instance_body(status="hibernating"))


def test_rental_type_defaults_to_on_demand_without_rental_terms() -> None:
    assert Instance.model_validate(instance_body()).rental_type == "on_demand"
    spot = Instance.model_validate(instance_body(rental_terms={"rental_type": "spot"}))
    assert spot.rental_type == "spot"


def test_info_env_values_are_masked() -> None:
    info = InstanceInfo.model_validate(
        instance_body(envs=[{"name": "HF_TOKEN", "value": "hf_very_secret"}])
    )
    assert info.envs[0].value.get_secret_value() == "hf_very_secret"
    assert "hf_very_secret" not in repr(info)
    assert "hf_very_secret" not in info.model_dump_json()


def test_instance_type_availability_and_spot_price() -> None:
    offer = InstanceType.model_validate(instance_type_body())
    spot = offer.availability_in("canada-1", "spot")
    assert spot is not None and spot.spot_price_cents == 40
    on_demand = offer.availability_in("canada-1", "on_demand")
    assert on_demand is not None and on_demand.spot_price_cents is None
    assert offer.availability_in("us-1", "on_demand") is None


def test_availability_without_rental_type_counts_as_on_demand() -> None:
    offer = InstanceType.model_validate(
        instance_type_body(availability=[{"region": "canada-1", "available": True}])
    )
    assert offer.availability[0].rental_type == "on_demand"


@pytest.mark.parametrize(
    ("dollars", "cents"),
    [("1.50", 150), ("0.405", 41), ("2", 200), ("$3.10", 310), (None, None), ("n/a", None)],
)
def test_dollars_to_cents(dollars: str | None, cents: int | None) -> None:
    assert dollars_to_cents(dollars) == cents


def test_volume_and_ssh_key_parse() -> None:
    assert Volume.model_validate(volume_body()).size_in_gb == 100
    assert SshKey.model_validate(ssh_key_body()).is_default is True


def test_requests_reject_unknown_fields() -> None:
    with pytest.raises(ValidationError):
        UpdateRequest.model_validate({"nmae": "typo"})


def test_update_request_remembers_which_fields_were_set() -> None:
    assert UpdateRequest(name="x").model_fields_set == {"name"}
    assert UpdateRequest(auto_delete=None).model_fields_set == {"auto_delete"}
    assert UpdateRequest().model_fields_set == set()


def _spec(**overrides: object) -> InstanceSpec:
    fields: dict[str, object] = {
        "address": "train/trainer-0",
        "fleet": "train",
        "name": "trainer-0",
        "cloud": "hyperstack",
        "region": "canada-1",
        "shade_instance_type": "A6000",
        "shade_cloud": True,
        "os": "ubuntu22.04_cuda12.2_shade_os",
        "tags": ("team:ml",),
        "envs": (Env(name="PLAIN", value="1"), Env(name="TOKEN", value=SecretStr("tok"))),
        "launch_configuration": LaunchConfiguration(
            type="docker",
            docker_configuration=DockerConfiguration(
                image="vllm/vllm-openai:latest",
                registry_credentials=RegistryCredentials(
                    username="bot", password=SecretStr("registry-pw")
                ),
            ),
        ),
        "auto_delete": Thresholds(spend_threshold="10.00").model_dump(),
    }
    fields.update(overrides)
    return InstanceSpec.model_validate(fields)


def test_create_request_from_spec_carries_the_spec_and_ownership_tags() -> None:
    request = CreateRequest.from_spec(_spec(), extra_tags=("reconciler:fleet=train",))
    assert request.name == "trainer-0"
    assert request.rental_type == "on_demand"
    assert request.tags == ("team:ml", "reconciler:fleet=train")
    assert request.auto_delete == Thresholds(spend_threshold="10.00")
    assert request.envs is not None
    assert [e.value.get_secret_value() for e in request.envs] == ["1", "tok"]
    assert request.launch_configuration is not None
    docker = request.launch_configuration.docker_configuration
    assert docker is not None and docker.registry_credentials is not None
    assert docker.registry_credentials.password is not None
    assert docker.registry_credentials.password.get_secret_value() == "registry-pw"
    assert "tok" not in repr(request) and "registry-pw" not in repr(request)


def test_create_request_from_spec_leaves_empty_collections_out() -> None:
    request = CreateRequest.from_spec(_spec(tags=(), envs=()))
    assert request.tags is None and request.envs is None and request.volume_ids is None
