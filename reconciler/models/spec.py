"""Resolved desired instance specs: what the manifests ask for, every value concrete.

The manifest loader produces these; the planner, state and executor consume them. Field names
mirror Shadeform's ``CreateRequest`` so users can read Shadeform's docs.

Values that came from the environment into ``envs`` or ``registry_credentials`` (and every
registry password) are held as :class:`pydantic.SecretStr`: they print as ``**********``,
serialise masked, and must be revealed explicitly with ``get_secret_value()`` (only the API
client does, when it builds a create request).
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr

RentalType = Literal["on_demand", "spot"]


class SpecModel(BaseModel):
    """Base of every resolved spec model: immutable, no unknown fields."""

    model_config = ConfigDict(frozen=True, extra="forbid")


class Env(SpecModel):
    name: str
    value: str | SecretStr

    @property
    def sensitive(self) -> bool:
        return isinstance(self.value, SecretStr)


class PortMapping(SpecModel):
    host_port: int = Field(ge=1, le=65535)
    container_port: int = Field(ge=1, le=65535)


class VolumeMountPath(SpecModel):
    host_path: str
    container_path: str


class RegistryCredentials(SpecModel):
    username: str | SecretStr | None = None
    password: SecretStr | None = None


class DockerConfiguration(SpecModel):
    image: str
    args: str | None = None
    shared_memory_in_gb: int | None = None
    envs: tuple[Env, ...] = ()
    port_mappings: tuple[PortMapping, ...] = ()
    volume_mounts: tuple[VolumeMountPath, ...] = ()
    registry_credentials: RegistryCredentials | None = None


class ScriptConfiguration(SpecModel):
    base64_script: str


class LaunchConfiguration(SpecModel):
    type: Literal["docker", "script"]
    docker_configuration: DockerConfiguration | None = None
    script_configuration: ScriptConfiguration | None = None


class Thresholds(SpecModel):
    """``auto_delete`` and ``alert``: RFC3339 date and/or decimal dollar spend."""

    date_threshold: str | None = None
    spend_threshold: str | None = None


class VolumeMount(SpecModel):
    auto: bool | None = None


class Lifecycle(SpecModel):
    prevent_destroy: bool = False
    create_before_destroy: bool = False
    ignore_changes: tuple[str, ...] = ()


class PlacementCandidate(SpecModel):
    """One acceptable offer, named exactly."""

    cloud: str
    region: str
    shade_instance_type: str
    rental_type: RentalType = "on_demand"


class PlacementRequirements(SpecModel):
    """What any acceptable offer must satisfy; unset fields do not constrain."""

    gpu_type: str | None = None
    num_gpus: int | None = None
    min_vram_per_gpu_in_gb: int | None = None
    max_hourly_price: str | None = Field(
        default=None, description="Decimal dollars per hour, e.g. '2.50'"
    )
    clouds: tuple[str, ...] = ()
    regions: tuple[str, ...] = ()
    rental_types: tuple[RentalType, ...] = ("on_demand",)


class Placement(SpecModel):
    """A placement envelope: the offers an instance may land on, and how to choose.

    Offers are the ``candidates`` in order, then (when ``requirements`` is set) every catalog
    offer meeting them. ``ordered`` takes the first available; ``cheapest`` the cheapest
    available. At apply time a create that fails for capacity moves to the next offer in this
    approved list, never outside it.
    """

    strategy: Literal["ordered", "cheapest"] = "ordered"
    candidates: tuple[PlacementCandidate, ...] = ()
    requirements: PlacementRequirements | None = None


class Budget(SpecModel):
    """Fleet spending guards, checked at plan time before anything is created."""

    max_hourly: str | None = Field(default=None, description="Fleet burn rate ceiling, $/hour")
    max_instance_hourly: str | None = Field(
        default=None, description="Per-instance ceiling, $/hour"
    )
    max_creates_per_apply: int | None = Field(default=None, ge=0)


class SourceLocation(SpecModel):
    file: str
    line: int | None = None


class UpdateStrategy(SpecModel):
    """How replacements of a replica group roll (see docs/rollouts.md)."""

    max_unavailable: int = Field(ge=0)
    max_surge: int = Field(ge=0)


class Readiness(SpecModel):
    """A new replica serves once it is active and ``command`` exits 0 (tried every
    ``interval_seconds`` for up to ``timeout_seconds``). ``command[0]`` is a program inside the
    manifest's tree, as written (relative to the manifest's directory)."""

    command: tuple[str, ...]
    timeout_seconds: float = Field(gt=0)
    interval_seconds: float = Field(gt=0)


class InstanceSpec(SpecModel):
    """One desired instance, fully resolved (defaults merged, replicas expanded)."""

    address: str = Field(description="Stable address: '<fleet>/<instance-name>'")
    fleet: str
    name: str
    cloud: str | None = Field(default=None, description="None when a placement envelope decides")
    region: str | None = None
    shade_instance_type: str | None = None
    shade_cloud: bool
    rental_type: RentalType = "on_demand"
    placement: Placement | None = Field(
        default=None, description="Placement envelope; replaces cloud/region/type when set"
    )
    os: str | None = None
    template_id: str | None = None
    launch_configuration: LaunchConfiguration | None = None
    volume_ids: tuple[str, ...] = ()
    ssh_key_id: str | None = None
    volumes: tuple[str, ...] = Field(
        default=(), description="Managed volumes (by name) to mount; their ids fill volume_ids"
    )
    ssh_key: str | None = Field(
        default=None, description="Managed SSH key (by name); its id fills ssh_key_id"
    )
    auto_delete: Thresholds | None = None
    alert: Thresholds | None = None
    volume_mount: VolumeMount | None = None
    tags: tuple[str, ...] = ()
    envs: tuple[Env, ...] = ()
    lifecycle: Lifecycle = Lifecycle()
    group: str | None = Field(
        default=None,
        description="'<fleet>/<entry name>': the replica group (set when replicas > 1)",
    )
    update_strategy: UpdateStrategy | None = None
    readiness: Readiness | None = None
    source: SourceLocation | None = Field(
        default=None, description="Where the instance was declared; not part of the diff"
    )


VOLUME_PREFIX = "volume."
SSH_KEY_PREFIX = "ssh_key."


def volume_address(fleet: str, name: str) -> str:
    return f"{fleet}/{VOLUME_PREFIX}{name}"


def ssh_key_address(fleet: str, name: str) -> str:
    return f"{fleet}/{SSH_KEY_PREFIX}{name}"


class VolumeSpec(SpecModel):
    """One desired storage volume. Volumes have no update endpoint: any change replaces one,
    and replacing or deleting a volume destroys its data."""

    address: str = Field(description="'<fleet>/volume.<name>'")
    fleet: str
    name: str
    cloud: str
    region: str
    size_in_gb: int = Field(gt=0)
    source: SourceLocation | None = None


class SshKeySpec(SpecModel):
    """One desired SSH key; plans show its fingerprint, never the key."""

    address: str = Field(description="'<fleet>/ssh_key.<name>'")
    fleet: str
    name: str
    public_key: str
    fingerprint: str = Field(description="SHA256:... as ssh-keygen -l prints it")
    source: SourceLocation | None = None


class Fleet(SpecModel):
    """One fleet's desired state, as loaded from its manifest file."""

    name: str
    source: str = Field(description="Manifest file the fleet came from")
    instances: tuple[InstanceSpec, ...]
    volumes: tuple[VolumeSpec, ...] = ()
    ssh_keys: tuple[SshKeySpec, ...] = ()
    state_dir: str | None = None
    budget: Budget | None = None
    backend: SecretStr | None = Field(
        default=None, description="State backend URL from the manifest (may hold a password)"
    )
    digest: str = Field(description="sha256 of the fleet's resolved specs (secrets fingerprinted)")
