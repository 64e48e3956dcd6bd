"""Comparable specs: JSON-safe, secrets fingerprinted wherever the spec allows them."""

from __future__ import annotations

import json

from pydantic import SecretStr

from reconciler.engine.comparable import comparable_spec, fingerprint, is_fingerprint
from reconciler.models.spec import (
    DockerConfiguration,
    Env,
    LaunchConfiguration,
    RegistryCredentials,
)

from .factories import KEY, secret_env, spec


def docker_spec(password: str = "hunter2") -> object:
    return spec(
        envs=(secret_env("top-level-secret"),),
        launch_configuration=LaunchConfiguration(
            type="docker",
            docker_configuration=DockerConfiguration(
                image="vllm/vllm-openai:latest",
                envs=(
                    Env(name="PLAIN", value="visible"),
                    Env(name="TOKEN", value=SecretStr("docker-secret")),
                ),
                registry_credentials=RegistryCredentials(
                    username=SecretStr("robot"), password=SecretStr(password)
                ),
            ),
        ),
    )


def test_no_secret_value_survives_and_plain_values_do():
    text = json.dumps(comparable_spec(docker_spec(), KEY))
    for secret in ("top-level-secret", "docker-secret", "robot", "hunter2"):
        assert secret not in text
    assert "visible" in text
    plain = comparable_spec(docker_spec(), KEY)
    docker = plain["launch_configuration"]["docker_configuration"]
    assert is_fingerprint(docker["registry_credentials"]["password"])
    assert is_fingerprint(plain["envs"][0]["value"])


def test_fingerprints_are_keyed_and_stable():
    assert fingerprint("x", KEY) == fingerprint("x", KEY)
    assert fingerprint("x", KEY) != fingerprint("x", "11" * 32)
    assert comparable_spec(docker_spec("a"), KEY) != comparable_spec(docker_spec("b"), KEY)


def test_comparable_form_round_trips_through_json():
    plain = comparable_spec(docker_spec(), KEY)
    assert json.loads(json.dumps(plain)) == plain
