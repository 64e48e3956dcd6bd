"""The emulator's own request models: what Shadeform accepts, checked strictly.

These are independent of the API client's models on purpose: the emulator judges what the
client sends. Types are strict (``"true"`` is not a boolean, ``"8"`` is not an integer) and
unknown fields are rejected, which is stricter than Shadeform (it ignores them) so that a
misspelt field in the client fails loudly here. ``null`` on an optional field means "absent",
as Shadeform's Go backend reads it.
"""

from __future__ import annotations

import base64
import binascii
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

RentalType = Literal["on_demand", "spot"]
SSH_KEY_PREFIXES = ("ssh-rsa ", "ssh-ed25519 ", "ecdsa-sha2-", "sk-ssh-ed25519@", "ssh-dss ")


class _Strict(BaseModel):
    model_config = ConfigDict(strict=True, extra="forbid")


class EnvVar(_Strict):
    name: str = Field(min_length=1)
    value: str


class PortMapping(_Strict):
    host_port: int = Field(ge=1, le=65535)
    container_port: int = Field(ge=1, le=65535)


class VolumeMountPaths(_Strict):
    host_path: str = Field(min_length=1)
    container_path: str = Field(min_length=1)


class RegistryCredentials(_Strict):
    username: str | None = None
    password: str | None = None


class DockerConfiguration(_Strict):
    image: str = Field(min_length=1)
    args: str | None = None
    shared_memory_in_gb: int | None = Field(default=None, ge=1)
    envs: list[EnvVar] | None = None
    port_mappings: list[PortMapping] | None = None
    volume_mounts: list[VolumeMountPaths] | None = None
    registry_credentials: RegistryCredentials | None = None


class ScriptConfiguration(_Strict):
    base64_script: str = Field(min_length=1)

    @field_validator("base64_script")
    @classmethod
    def _is_base64(cls, value: str) -> str:
        try:
            base64.b64decode(value, validate=True)
        except (binascii.Error, ValueError):
            raise ValueError("base64_script is not valid base64") from None
        return value


class LaunchConfiguration(_Strict):
    type: Literal["docker", "script"]
    docker_configuration: DockerConfiguration | None = None
    script_configuration: ScriptConfiguration | None = None

    @model_validator(mode="after")
    def _one_configuration(self) -> LaunchConfiguration:
        if self.docker_configuration and self.script_configuration:
            raise ValueError(
                "only one of docker_configuration and script_configuration may be given"
            )
        if self.type == "docker" and self.docker_configuration is None:
            raise ValueError("type 'docker' needs docker_configuration")
        if self.type == "script" and self.script_configuration is None:
            raise ValueError("type 'script' needs script_configuration")
        return self


class Thresholds(_Strict):
    """``auto_delete`` and ``alert``."""

    date_threshold: str | None = None
    spend_threshold: str | None = None

    @field_validator("date_threshold")
    @classmethod
    def _rfc3339(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                parsed = datetime.fromisoformat(value)
            except ValueError:
                raise ValueError("date_threshold must be an RFC3339 date") from None
            if parsed.tzinfo is None:
                raise ValueError("date_threshold must carry a UTC offset (RFC3339)")
        return value

    @field_validator("spend_threshold")
    @classmethod
    def _decimal(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                amount = Decimal(value)
            except InvalidOperation:
                raise ValueError("spend_threshold must be a decimal dollar amount") from None
            if not amount.is_finite() or amount < 0:
                raise ValueError("spend_threshold must be a non-negative dollar amount")
        return value


class VolumeMount(_Strict):
    auto: bool | None = None


class CreateInstanceRequest(_Strict):
    cloud: str = Field(min_length=1)
    region: str = Field(min_length=1)
    shade_instance_type: str = Field(min_length=1)
    shade_cloud: bool
    name: str = Field(min_length=1)
    rental_type: RentalType | None = None
    os: str | None = None
    template_id: str | None = None
    launch_configuration: LaunchConfiguration | None = None
    volume_ids: list[str] | None = Field(default=None, max_length=1)
    ssh_key_id: str | None = None
    auto_delete: Thresholds | None = None
    alert: Thresholds | None = None
    volume_mount: VolumeMount | None = None
    tags: list[str] | None = None
    envs: list[EnvVar] | None = None

    @property
    def effective_rental_type(self) -> RentalType:
        return self.rental_type or "on_demand"

    @model_validator(mode="after")
    def _spot_needs_shade_cloud(self) -> CreateInstanceRequest:
        if self.rental_type == "spot" and not self.shade_cloud:
            raise ValueError("rental_type 'spot' requires shade_cloud: true")
        return self


class UpdateInstanceRequest(_Strict):
    """Only fields present in the body change; ``null`` removes a value."""

    name: str | None = Field(default=None, min_length=1)
    auto_delete: Thresholds | None = None
    alert: Thresholds | None = None
    tags: list[str] | None = None

    @model_validator(mode="after")
    def _name_stays(self) -> UpdateInstanceRequest:
        if "name" in self.model_fields_set and self.name is None:
            raise ValueError("name cannot be removed, only changed")
        return self


class CreateVolumeRequest(_Strict):
    cloud: str = Field(min_length=1)
    region: str = Field(min_length=1)
    size_in_gb: int = Field(ge=1, le=100_000)
    name: str = Field(min_length=1)


class AddSshKeyRequest(_Strict):
    name: str = Field(min_length=1)
    public_key: str = Field(min_length=1)

    @field_validator("public_key")
    @classmethod
    def _openssh_format(cls, value: str) -> str:
        if not value.strip().startswith(SSH_KEY_PREFIXES) or len(value.split()) < 2:
            raise ValueError("public_key must be an OpenSSH public key ('ssh-ed25519 AAAA...')")
        return value


def describe_validation_error(exc: ValidationError) -> str:
    """One readable line listing every problem, e.g. ``shade_cloud: must be a boolean``."""
    problems = []
    for error in exc.errors(include_url=False):
        location = ".".join(str(part) for part in error["loc"])
        if error["type"] == "json_invalid":
            return "request body is not valid JSON"
        if error["type"] == "extra_forbidden":
            message = "unknown field"
        elif error["type"] == "missing":
            message = "required field missing"
        else:
            message = str(error["msg"]).removeprefix("Value error, ")
        problems.append(f"{location}: {message}" if location else message)
    return "invalid request: " + "; ".join(problems)
