"""The manifest language models (reconciler/models/manifest.py) on their own."""

from __future__ import annotations

import re

import pytest
from pydantic import SecretStr, ValidationError

from reconciler.models.manifest import (
    Budget,
    DockerConfiguration,
    InstanceEntry,
    Lifecycle,
    Manifest,
    Placement,
    PlacementRequirements,
    RegistryCredentials,
    Thresholds,
    ignorable_fields,
    manifest_json_schema,
    model_fields_at,
)


@pytest.mark.parametrize(
    "value",
    [
        "2030-01-02T15:04:05Z",
        "2030-01-02t15:04:05z",
        "2030-01-02T15:04:05.123-07:00",
        "2030-01-02 15:04:05+00:00",
    ],
)
def test_rfc3339_forms_accepted(value: str) -> None:
    assert Thresholds(date_threshold=value).date_threshold == value


@pytest.mark.parametrize("value", ["2030-02-30T00:00:00Z", "2030-01-02T15:04:05", "2030-01-02"])
def test_rfc3339_forms_refused(value: str) -> None:
    with pytest.raises(ValidationError):
        Thresholds(date_threshold=value)


@pytest.mark.parametrize("value", ["3", "3.14", "0.5", "1000.00"])
def test_spend_thresholds_accepted(value: str) -> None:
    assert Thresholds(spend_threshold=value).spend_threshold == value


def test_integers_and_booleans_accept_interpolated_text_only() -> None:
    entry = InstanceEntry.model_validate({"name": "a", "replicas": "3", "shade_cloud": "TRUE"})
    assert (entry.replicas, entry.shade_cloud) == (3, True)
    for bad in (
        {"replicas": True},
        {"replicas": "3.5"},
        {"shade_cloud": "yes"},
        {"shade_cloud": 0},
    ):
        with pytest.raises(ValidationError):
            InstanceEntry.model_validate({"name": "a", **bad})


def test_registry_password_is_secret_and_username_keeps_its_kind() -> None:
    creds = RegistryCredentials.model_validate({"username": "u", "password": "p"})
    assert creds.username == "u"
    assert isinstance(creds.password, SecretStr)
    secret_user = RegistryCredentials.model_validate({"username": SecretStr("u")})
    assert isinstance(secret_user.username, SecretStr)
    with pytest.raises(ValidationError):
        RegistryCredentials.model_validate({"password": 123})


def test_docker_configuration_rules() -> None:
    with pytest.raises(ValidationError):
        DockerConfiguration.model_validate({"image": ""})
    with pytest.raises(ValidationError):
        DockerConfiguration.model_validate({"image": "x", "shared_memory_in_gb": 0})
    config = DockerConfiguration.model_validate(
        {"image": "x", "port_mappings": [{"host_port": "80", "container_port": 8000}]}
    )
    assert config.port_mappings[0].host_port == 80


def test_ignorable_fields_follow_the_spec() -> None:
    fields = ignorable_fields()
    assert {
        "tags",
        "auto_delete.spend_threshold",
        "launch_configuration",
        "launch_configuration.docker_configuration.image",
    } <= fields
    assert not {"name", "address", "fleet", "lifecycle", "source"} & fields
    assert "envs.value" not in fields  # lists compare whole
    assert Lifecycle(ignore_changes=["tags"]).ignore_changes == ["tags"]


def test_model_fields_at_follows_lists_and_union_tags() -> None:
    loc = ("instances", 0, "launch_configuration", "script")
    assert model_fields_at(Manifest, loc) == [
        "script",
        "script_configuration",
        "script_file",
        "type",
    ]
    assert "envs" in model_fields_at(Manifest, ("defaults",))
    assert model_fields_at(Manifest, ("nope",)) == []


def test_schema_starts_with_the_dialect_and_forbids_unknown_keys() -> None:
    schema = manifest_json_schema()
    assert next(iter(schema)) == "$schema"
    assert all(
        definition.get("additionalProperties") is False
        for definition in schema["$defs"].values()
        if definition.get("type") == "object"
    )


CANDIDATE = {"cloud": "datacrunch", "region": "FIN-01", "shade_instance_type": "H100"}


def test_placement_needs_candidates_or_requirements() -> None:
    with pytest.raises(ValidationError, match="at least one candidate or a requirements"):
        Placement.model_validate({"strategy": "cheapest"})
    placement = Placement.model_validate({"candidates": [CANDIDATE]})
    assert placement.strategy == "ordered"
    assert placement.candidates[0].rental_type == "on_demand"
    assert not placement.allows_spot()


def test_placement_refuses_duplicate_candidates_and_unknown_strategies() -> None:
    with pytest.raises(ValidationError, match="candidate 'H100 in datacrunch/FIN-01' is listed"):
        Placement.model_validate({"candidates": [CANDIDATE, CANDIDATE]})
    spot = {**CANDIDATE, "rental_type": "spot"}
    assert Placement.model_validate({"candidates": [CANDIDATE, spot]}).allows_spot()
    with pytest.raises(ValidationError):
        Placement.model_validate({"candidates": [CANDIDATE], "strategy": "fastest"})


def test_requirements_must_name_hardware_or_price() -> None:
    with pytest.raises(ValidationError, match="what hardware or price"):
        PlacementRequirements.model_validate({"clouds": ["lambdalabs"]})
    for enough in (
        {"gpu_type": "H100"},
        {"num_gpus": "8"},
        {"min_vram_per_gpu_in_gb": 80},
        {"max_hourly_price": "2.50"},
    ):
        PlacementRequirements.model_validate(enough)
    spot_only = {"max_hourly_price": "1", "rental_types": ["spot"]}
    assert Placement.model_validate({"requirements": spot_only}).allows_spot()


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ({"clouds": []}, "an empty list allows nothing; leave clouds out to allow any"),
        ({"regions": ["FIN-01", "FIN-01"]}, "value 'FIN-01' is listed twice"),
        ({"rental_types": ["reserved"]}, "Input should be 'on_demand' or 'spot'"),
        ({"max_hourly_price": 3}, "quoted decimal string"),
        ({"max_hourly_price": "$3"}, "decimal dollar amount"),
        ({"num_gpus": 0}, "greater than or equal to 1"),
    ],
)
def test_requirements_field_rules(extra: dict[str, object], message: str) -> None:
    with pytest.raises(ValidationError, match=re.escape(message)):
        PlacementRequirements.model_validate({"gpu_type": "H100", **extra})


def test_budget_fields() -> None:
    budget = Budget.model_validate(
        {"max_hourly": "40.00", "max_instance_hourly": "4", "max_creates_per_apply": "0"}
    )
    assert (budget.max_hourly, budget.max_instance_hourly, budget.max_creates_per_apply) == (
        "40.00",
        "4",
        0,
    )
    for bad in (
        {},
        {"max_hourly": 40},
        {"max_hourly": "-1"},
        {"max_creates_per_apply": -1},
        {"max_creates_per_apply": True},
        {"max_instance_hourly": None},
    ):
        with pytest.raises(ValidationError):
            Budget.model_validate(bad)


def test_backend_is_always_secret_and_must_look_like_a_url() -> None:
    manifest = Manifest.model_validate(
        {"fleet": "f", "instances": [], "backend": "postgresql://u:pw@db:5432/fleets"}
    )
    assert isinstance(manifest.backend, SecretStr)
    assert manifest.backend.get_secret_value() == "postgresql://u:pw@db:5432/fleets"
    assert "pw@" not in repr(manifest)
    with pytest.raises(ValidationError) as caught:
        Manifest.model_validate({"fleet": "f", "instances": [], "backend": "pw@db/fleets"})
    assert "expected a URL" in str(caught.value)
    assert all("pw@db" not in str(error["msg"]) for error in caught.value.errors())
