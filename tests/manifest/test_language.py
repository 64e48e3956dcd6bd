"""The manifest language models (reconciler/models/manifest.py) on their own."""

from __future__ import annotations

import pytest
from pydantic import SecretStr, ValidationError

from reconciler.models.manifest import (
    DockerConfiguration,
    InstanceEntry,
    Lifecycle,
    Manifest,
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
