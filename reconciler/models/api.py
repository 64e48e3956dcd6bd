"""Shadeform API request and response bodies, mirroring ``shadeform-openapi.yaml``.

Responses are lenient: unknown fields are ignored, and fields the spec lists as required but
that a real server may leave empty are optional here, so a new Shadeform field or a missing
``ip`` never breaks a refresh. Requests are strict (unknown fields rejected) because we build
them ourselves.

Secret-bearing values (every ``Env.value``, registry passwords) are :class:`SecretStr` in
both directions: they print masked, and only the API client reveals them on the wire.

``UpdateRequest`` distinguishes *omit* from *delete*: a field never passed is left out of the
body (unchanged), a field passed as ``None`` is sent as JSON ``null`` (Shadeform deletes it)::

    UpdateRequest(name="trainer-0")       # {"name": "trainer-0"}
    UpdateRequest(auto_delete=None)       # {"auto_delete": null}
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, SecretStr

from reconciler.models.spec import InstanceSpec

InstanceStatus = Literal[
    "creating", "pending_provider", "pending", "active", "error", "deleting", "deleted"
]
RentalType = Literal["on_demand", "spot"]
RentalTermsType = Literal["on_demand", "spot", "commitment"]
LaunchType = Literal["docker", "script"]

IN_PROGRESS_STATUSES: frozenset[str] = frozenset({"creating", "pending_provider", "pending"})
GONE_STATUSES: frozenset[str] = frozenset({"deleting", "deleted"})


def _blank_to_none(value: Any) -> Any:
    return None if value == "" else value


Timestamp = Annotated[datetime | None, BeforeValidator(_blank_to_none)]


def dollars_to_cents(value: str | None) -> int | None:
    """``"1.50"`` -> ``150`` (rounded half up); ``None`` or unparsable -> ``None``."""
    if value is None:
        return None
    try:
        cents = Decimal(value.strip().lstrip("$")) * 100
    except InvalidOperation:
        return None
    return int(cents.quantize(Decimal(1), rounding="ROUND_HALF_UP"))


class ApiModel(BaseModel):
    """Base of bodies shared by requests and responses: immutable, unknown fields ignored."""

    model_config = ConfigDict(frozen=True, extra="ignore")


class RequestModel(BaseModel):
    """Base of request-only bodies: immutable, unknown fields rejected."""

    model_config = ConfigDict(frozen=True, extra="forbid")


# --- shared pieces -------------------------------------------------------------------------


class Env(ApiModel):
    name: str
    value: SecretStr


class PortMapping(ApiModel):
    host_port: int
    container_port: int


class VolumeMountPath(ApiModel):
    host_path: str
    container_path: str


class RegistryCredentials(ApiModel):
    username: str | SecretStr | None = None
    password: SecretStr | None = None


class DockerConfiguration(ApiModel):
    image: str
    args: str | None = None
    shared_memory_in_gb: int | None = None
    envs: tuple[Env, ...] | None = None
    port_mappings: tuple[PortMapping, ...] | None = None
    volume_mounts: tuple[VolumeMountPath, ...] | None = None
    registry_credentials: RegistryCredentials | None = None


class ScriptConfiguration(ApiModel):
    base64_script: str


class LaunchConfiguration(ApiModel):
    type: LaunchType
    docker_configuration: DockerConfiguration | None = None
    script_configuration: ScriptConfiguration | None = None


class Thresholds(ApiModel):
    """``auto_delete`` and ``alert``: an RFC3339 date and/or a decimal dollar spend."""

    date_threshold: str | None = None
    spend_threshold: str | None = None


class VolumeMount(ApiModel):
    auto: bool | None = None


class BootTime(ApiModel):
    min_boot_in_sec: int | None = None
    max_boot_in_sec: int | None = None


# --- instances -----------------------------------------------------------------------------


class InstanceConfiguration(ApiModel):
    memory_in_gb: int | None = None
    storage_in_gb: int | None = None
    vcpus: int | None = None
    num_gpus: int | None = None
    gpu_type: str | None = None
    interconnect: str | None = None
    nvlink: bool | None = None
    vram_per_gpu_in_gb: int | None = None
    gpu_manufacturer: str | None = None
    os: str | None = None


class RentalTerms(ApiModel):
    rental_type: RentalTermsType
    hourly_price: str | None = None
    ending_at: Timestamp = None


class InstancePortMapping(ApiModel):
    internal_port: int | None = None
    external_port: int | None = None


class Instance(ApiModel):
    """One entry of ``GET /instances``."""

    id: str
    cloud: str
    region: str
    shade_instance_type: str
    name: str
    status: InstanceStatus
    cloud_instance_type: str | None = None
    cloud_assigned_id: str | None = None
    shade_cloud: bool | None = None
    configuration: InstanceConfiguration | None = None
    ip: str | None = None
    ssh_user: str | None = None
    ssh_port: int | None = None
    status_details: str | None = None
    cost_estimate: str | None = None
    hourly_price: int | None = Field(default=None, description="Cents per hour")
    rental_terms: RentalTerms | None = None
    launch_configuration: LaunchConfiguration | None = None
    tags: tuple[str, ...] = ()
    port_mappings: tuple[InstancePortMapping, ...] = ()
    active_at: Timestamp = None
    created_at: Timestamp = None
    deleted_at: Timestamp = None
    boot_time: BootTime | None = None

    @property
    def rental_type(self) -> RentalTermsType:
        return self.rental_terms.rental_type if self.rental_terms else "on_demand"


class InstanceInfo(Instance):
    """``GET /instances/{id}/info``: the list shape plus what was requested at create."""

    volume_ids: tuple[str, ...] = ()
    ssh_key_id: str | None = None
    auto_delete: Thresholds | None = None
    alert: Thresholds | None = None
    volume_mount: VolumeMount | None = None
    envs: tuple[Env, ...] = ()


class InstancesResponse(ApiModel):
    instances: tuple[Instance, ...]


class CreateRequest(RequestModel):
    """``POST /instances/create``. ``None`` fields are left out of the body."""

    cloud: str
    region: str
    shade_instance_type: str
    shade_cloud: bool
    name: str
    rental_type: RentalType | None = None
    os: str | None = None
    template_id: str | None = None
    launch_configuration: LaunchConfiguration | None = None
    volume_ids: tuple[str, ...] | None = None
    ssh_key_id: str | None = None
    auto_delete: Thresholds | None = None
    alert: Thresholds | None = None
    volume_mount: VolumeMount | None = None
    tags: tuple[str, ...] | None = None
    envs: tuple[Env, ...] | None = None

    @classmethod
    def from_spec(cls, spec: InstanceSpec, *, extra_tags: tuple[str, ...] = ()) -> CreateRequest:
        """The create request for a resolved spec, with ``extra_tags`` (ownership) appended."""
        data = spec.model_dump(
            exclude={
                "address",
                "fleet",
                "lifecycle",
                "source",
                "placement",
                "volumes",
                "ssh_key",
                "group",
                "update_strategy",
                "readiness",
            }
        )  # managed references: the executor has already resolved them into the ids
        data["tags"] = (*spec.tags, *extra_tags)
        for empty_is_absent in ("volume_ids", "envs", "tags"):
            if not data[empty_is_absent]:
                data[empty_is_absent] = None
        return cls.model_validate(data)


class CreateResponse(ApiModel):
    id: str


class UpdateRequest(RequestModel):
    """``POST /instances/{id}/update``: unset fields are omitted, ``None`` means delete."""

    name: str | None = None
    auto_delete: Thresholds | None = None
    alert: Thresholds | None = None
    tags: tuple[str, ...] | None = None


# --- instance types ------------------------------------------------------------------------


class InstanceTypeConfiguration(ApiModel):
    memory_in_gb: int | None = None
    storage_in_gb: int | None = None
    vcpus: int | None = None
    num_gpus: int
    gpu_type: str
    interconnect: str | None = None
    nvlink: bool | None = None
    vram_per_gpu_in_gb: int | None = None
    os_options: tuple[str, ...] = ()
    gpu_manufacturer: str | None = None


class Availability(ApiModel):
    region: str
    available: bool
    display_name: str | None = None
    rental_type: RentalType = "on_demand"
    hourly_price: str | None = Field(default=None, description="Spot price, decimal dollars")

    @property
    def spot_price_cents(self) -> int | None:
        return dollars_to_cents(self.hourly_price)


class InstanceType(ApiModel):
    """One offer family of ``GET /instances/types``; ``availability`` lists each region."""

    cloud: str
    shade_instance_type: str
    cloud_instance_type: str | None = None
    configuration: InstanceTypeConfiguration
    hourly_price: int = Field(description="On-demand cents per hour")
    deployment_type: str | None = None
    availability: tuple[Availability, ...] = ()
    boot_time: BootTime | None = None

    def availability_in(self, region: str, rental_type: RentalType) -> Availability | None:
        for entry in self.availability:
            if entry.region == region and entry.rental_type == rental_type:
                return entry
        return None


class InstanceTypesResponse(ApiModel):
    instance_types: tuple[InstanceType, ...]


# --- volumes -------------------------------------------------------------------------------


class Volume(ApiModel):
    id: str
    cloud: str
    region: str
    name: str
    size_in_gb: int
    cloud_assigned_id: str | None = None
    fixed_size: bool | None = None
    cost_estimate: str | None = None
    supports_multi_mount: bool | None = None
    mounted_by: str | None = None


class VolumesResponse(ApiModel):
    volumes: tuple[Volume, ...]


class VolumeType(ApiModel):
    cloud: str
    region: str
    supports_multi_mount: bool | None = None
    fixed_size: bool | None = None
    price_per_gb_per_hour: str | None = None


class VolumeTypesResponse(ApiModel):
    volume_types: tuple[VolumeType, ...]


class CreateVolumeRequest(RequestModel):
    cloud: str
    region: str
    size_in_gb: int = Field(gt=0)
    name: str


class CreateVolumeResponse(ApiModel):
    id: str


# --- SSH keys ------------------------------------------------------------------------------


class SshKey(ApiModel):
    id: str
    name: str
    public_key: str
    is_default: bool = False


class SshKeysResponse(ApiModel):
    ssh_keys: tuple[SshKey, ...]


class AddSshKeyRequest(RequestModel):
    name: str
    public_key: str


class AddSshKeyResponse(ApiModel):
    id: str
