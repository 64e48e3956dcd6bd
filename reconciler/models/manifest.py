"""The fleet manifest language: what users write, as strict pydantic models.

These models describe one manifest file *as written* (before defaults are merged and replicas
expanded); the loader in :mod:`reconciler.manifest` turns them into resolved
:class:`~reconciler.models.spec.InstanceSpec` objects. They are also the source of
``reconciler schema``. Field names mirror Shadeform's ``CreateRequest``.

Every model forbids unknown keys. Types are checked the way a careful reviewer would:
strings must be strings (``region: no`` is YAML for ``false`` and is refused), integers and
booleans also accept the text an interpolation produces (``"8080"``, ``"true"``), and cross-field
rules live in model validators.

Example::

    manifest = Manifest.model_validate({"fleet": "demo", "instances": []})
"""

from __future__ import annotations

import base64
import binascii
import re
from datetime import datetime
from typing import Annotated, Any, Literal, get_args, get_origin

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainValidator,
    SecretStr,
    ValidationInfo,
    WithJsonSchema,
    field_validator,
    model_validator,
)

from reconciler.models.spec import InstanceSpec

SCHEMA_DIALECT = "https://json-schema.org/draft/2020-12/schema"
NAME_PATTERN = r"^[a-z0-9]([a-z0-9-]*[a-z0-9])?$"
NAME_MAX_LENGTH = 63
VARIABLE_NAME_PATTERN = r"^[A-Za-z_][A-Za-z0-9_-]*$"
ENV_NAME_PATTERN = r"^[A-Za-z_][A-Za-z0-9_]*$"
RESERVED_TAG_PREFIX = "reconciler:"
MAX_REPLICAS = 1000

_RFC3339 = re.compile(r"^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})$")
_DECIMAL = re.compile(r"^\d+(\.\d+)?$")
_INTEGER_TEXT = re.compile(r"^[+-]?\d+$")
_URL = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://\S+$")


# --- scalar types ------------------------------------------------------------------------------


def _int_input(value: Any) -> Any:
    """Integers, or the decimal text an interpolation produced; never booleans."""
    if isinstance(value, bool):
        raise ValueError("expected an integer, got a boolean")
    if isinstance(value, str) and _INTEGER_TEXT.match(value.strip()):
        return int(value.strip())
    return value


def _bool_input(value: Any) -> Any:
    """``true``/``false`` only (also as text from an interpolation); never 0/1 or 'yes'."""
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in ("true", "false"):
        return value.strip().lower() == "true"
    if isinstance(value, str) and value.strip().lower() in _YAML11_BOOLEANS:
        raise ValueError(
            f"expected true or false, not '{value}' (YAML 1.1's yes/no/on/off are not "
            "booleans in a manifest)"
        )
    raise ValueError("expected true or false")


_YAML11_BOOLEANS = frozenset({"yes", "no", "on", "off", "y", "n"})


def _dollars_input(value: Any) -> Any:
    """A decimal dollar amount written as text (``"40.00"``); numbers are refused, because
    YAML turns ``40.10`` into a float and ``1e3`` into a string."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        raise ValueError('write the amount as a quoted decimal string, e.g. "50.00"')
    if isinstance(value, str) and not _DECIMAL.match(value):
        raise ValueError('expected a decimal dollar amount such as "50.00"')
    return value


def _backend_url(value: Any) -> SecretStr:
    """A state backend URL, always held as a secret (it may carry a password).

    Messages never repeat the value."""
    secret = _secret(value)
    if not _URL.match(secret.get_secret_value()):
        raise ValueError(
            "expected a URL such as file://state or postgresql://user@host:5432/fleets"
        )
    return secret


def _str_or_secret(value: Any) -> str | SecretStr:
    if isinstance(value, str | SecretStr):
        return value
    raise ValueError("Input should be a valid string")


def _secret(value: Any) -> SecretStr:
    if isinstance(value, SecretStr):
        return value
    if isinstance(value, str):
        return SecretStr(value)
    raise ValueError("Input should be a valid string")


def _scalar(value: Any) -> str | int | float | bool:
    if isinstance(value, str | int | float | bool):
        return value
    raise ValueError("a variable must be a string, number or boolean")


# Integers and booleans may also be written as one ${...} interpolation; the schema says so,
# so that editors do not flag `host_port: ${var.port}`.
_INTERPOLATION_SCHEMA = {"type": "string", "pattern": r"^\$\{[^{}]+\}$"}


def _int_schema(minimum: int, maximum: int | None = None) -> WithJsonSchema:
    bounds: dict[str, Any] = {"type": "integer", "minimum": minimum}
    if maximum is not None:
        bounds["maximum"] = maximum
    return WithJsonSchema({"anyOf": [bounds, _INTERPOLATION_SCHEMA]})


Bool = Annotated[
    bool,
    BeforeValidator(_bool_input),
    WithJsonSchema({"anyOf": [{"type": "boolean"}, _INTERPOLATION_SCHEMA]}),
]
Port = Annotated[int, BeforeValidator(_int_input), Field(ge=1, le=65535), _int_schema(1, 65535)]
PositiveInt = Annotated[int, BeforeValidator(_int_input), Field(ge=1), _int_schema(1)]
NonNegativeInt = Annotated[int, BeforeValidator(_int_input), Field(ge=0), _int_schema(0)]
Dollars = Annotated[
    str,
    BeforeValidator(_dollars_input),
    WithJsonSchema(
        {"anyOf": [{"type": "string", "pattern": _DECIMAL.pattern}, _INTERPOLATION_SCHEMA]}
    ),
]
RentalType = Literal["on_demand", "spot"]
Replicas = Annotated[
    int, BeforeValidator(_int_input), Field(ge=1, le=MAX_REPLICAS), _int_schema(1, MAX_REPLICAS)
]
NonEmptyStr = Annotated[str, Field(min_length=1)]
Name = Annotated[
    str,
    Field(
        pattern=NAME_PATTERN,
        max_length=NAME_MAX_LENGTH,
        description="Lowercase letters, digits and hyphens; starts and ends with a letter or digit",
    ),
]
# Plain text, or a SecretStr when the loader filled it from ``${env:...}``.
MaybeSecretStr = Annotated[
    str | SecretStr, PlainValidator(_str_or_secret), WithJsonSchema({"type": "string"})
]
AlwaysSecretStr = Annotated[
    SecretStr,
    PlainValidator(_secret),
    WithJsonSchema({"type": "string", "writeOnly": True}),
]
BackendUrl = Annotated[
    SecretStr,
    PlainValidator(_backend_url),
    WithJsonSchema({"type": "string", "writeOnly": True}),
]
VariableValue = Annotated[
    str | int | float | bool,
    PlainValidator(_scalar),
    WithJsonSchema({"type": ["string", "number", "boolean"]}),
]


class ManifestModel(BaseModel):
    """Base of every manifest model: unknown keys are errors, values are immutable."""

    model_config = ConfigDict(extra="forbid", frozen=True)


# --- launch configuration ----------------------------------------------------------------------


class EnvVar(ManifestModel):
    name: str = Field(pattern=ENV_NAME_PATTERN, description="Environment variable name")
    value: MaybeSecretStr = Field(
        description="Value; when it comes from ${env:...} it is kept secret"
    )


class PortMapping(ManifestModel):
    host_port: Port = Field(description="Port on the host (1-65535)")
    container_port: Port = Field(description="Port in the container (1-65535)")


class VolumeMountPath(ManifestModel):
    host_path: NonEmptyStr = Field(description="Path on the host, e.g. ~/.cache/huggingface")
    container_path: NonEmptyStr = Field(description="Path in the container")


class RegistryCredentials(ManifestModel):
    username: MaybeSecretStr | None = Field(default=None, description="Registry user name")
    password: AlwaysSecretStr | None = Field(
        default=None, description="Registry password; always treated as a secret"
    )


class DockerConfiguration(ManifestModel):
    image: NonEmptyStr = Field(description="Docker image pulled and run at startup")
    args: str | None = Field(default=None, description="Container arguments")
    shared_memory_in_gb: PositiveInt | None = Field(
        default=None, description="--shm-size in GB; unset means --ipc=host"
    )
    envs: list[EnvVar] = Field(default_factory=list, description="Container environment")
    port_mappings: list[PortMapping] = Field(default_factory=list, description="-p mappings")
    volume_mounts: list[VolumeMountPath] = Field(default_factory=list, description="-v mounts")
    registry_credentials: RegistryCredentials | None = Field(
        default=None, description="Credentials for a private registry"
    )

    @field_validator("envs")
    @classmethod
    def _unique_env_names(cls, envs: list[EnvVar]) -> list[EnvVar]:
        _refuse_duplicates([e.name for e in envs], "environment variable")
        return envs

    @field_validator("port_mappings")
    @classmethod
    def _unique_host_ports(cls, mappings: list[PortMapping]) -> list[PortMapping]:
        _refuse_duplicates([str(m.host_port) for m in mappings], "host_port")
        return mappings


class ScriptConfiguration(ManifestModel):
    base64_script: NonEmptyStr = Field(description="Startup script, base64-encoded")

    @field_validator("base64_script")
    @classmethod
    def _valid_base64(cls, value: str) -> str:
        try:
            base64.b64decode(value, validate=True)
        except (binascii.Error, ValueError):
            raise ValueError("base64_script is not valid base64") from None
        return value


class DockerLaunch(ManifestModel):
    """Pull and run a container once the instance is active."""

    type: Literal["docker"] = Field(description="Run a docker container")
    docker_configuration: DockerConfiguration = Field(description="The container to run")

    @model_validator(mode="before")
    @classmethod
    def _no_script_parts(cls, data: Any) -> Any:
        if isinstance(data, dict):
            _refuse_keys(data, ("script_configuration", "script", "script_file"), "docker")
        return data


class ScriptLaunch(ManifestModel):
    """Run a startup script once the instance is active: exactly one of the three forms."""

    type: Literal["script"] = Field(description="Run a startup script")
    script: str | None = Field(default=None, description="Inline script text")
    script_file: NonEmptyStr | None = Field(
        default=None, description="Script path, relative to the manifest file"
    )
    script_configuration: ScriptConfiguration | None = Field(
        default=None, description="The API's form: an already base64-encoded script"
    )

    @model_validator(mode="before")
    @classmethod
    def _no_docker_parts(cls, data: Any) -> Any:
        if isinstance(data, dict):
            _refuse_keys(data, ("docker_configuration",), "script")
        return data

    @model_validator(mode="after")
    def _exactly_one_script(self) -> ScriptLaunch:
        given = [self.script, self.script_file, self.script_configuration]
        if sum(v is not None for v in given) != 1:
            raise ValueError(
                "type 'script' needs exactly one of script, script_file or script_configuration"
            )
        return self


LaunchConfiguration = Annotated[
    DockerLaunch | ScriptLaunch,
    Field(discriminator="type", description="What runs once the instance is active"),
]


# --- thresholds, mounts, lifecycle -------------------------------------------------------------


class Thresholds(ManifestModel):
    """A date and/or a spend threshold (used by ``auto_delete`` and ``alert``)."""

    date_threshold: str | None = Field(
        default=None, description="RFC3339 time, e.g. 2030-01-02T15:04:05Z"
    )
    spend_threshold: Dollars | None = Field(
        default=None, description='Dollar amount as a decimal string, e.g. "50.00"'
    )

    @field_validator("date_threshold")
    @classmethod
    def _rfc3339(cls, value: str | None) -> str | None:
        if value is not None:
            valid = bool(_RFC3339.match(value))
            if valid:
                try:
                    datetime.fromisoformat(value.upper())
                except ValueError:
                    valid = False
            if not valid:
                raise ValueError("expected an RFC3339 time such as 2030-01-02T15:04:05Z")
        return value

    @model_validator(mode="after")
    def _something_set(self) -> Thresholds:
        if self.date_threshold is None and self.spend_threshold is None:
            raise ValueError("set date_threshold, spend_threshold or both")
        return self


class VolumeMount(ManifestModel):
    auto: Bool | None = Field(
        default=None, description="Mount unmounted disks to a default filesystem"
    )


_ROLLOUT_KEYS = ("group", "update_strategy", "readiness")


def ignorable_fields() -> frozenset[str]:
    """Dotted paths of the resolved spec that ``lifecycle.ignore_changes`` may name."""
    skip = {"address", "fleet", "name", "lifecycle", "source", *_ROLLOUT_KEYS}
    paths: set[str] = set()

    def walk(model: type[BaseModel], prefix: str) -> None:
        for name, info in model.model_fields.items():
            if not prefix and name in skip:
                continue
            path = prefix + name
            paths.add(path)
            if get_origin(info.annotation) is tuple:
                continue  # lists are compared whole
            for arg in (info.annotation, *get_args(info.annotation)):
                if isinstance(arg, type) and issubclass(arg, BaseModel):
                    walk(arg, path + ".")

    walk(InstanceSpec, "")
    return frozenset(paths)


_IGNORABLE = ignorable_fields()


def _known_field(path: str) -> str:
    """One ``ignore_changes`` entry; checked per item, so every bad entry is reported."""
    from difflib import get_close_matches

    if path not in _IGNORABLE:
        close = get_close_matches(path, sorted(_IGNORABLE), n=1)
        hint = f"; did you mean '{close[0]}'?" if close else ""
        raise ValueError(f"'{path}' is not a field of an instance{hint}")
    return path


IgnorableField = Annotated[str, AfterValidator(_known_field)]


class Lifecycle(ManifestModel):
    """Reconciler-only rules for how an instance may change."""

    prevent_destroy: Bool = Field(default=False, description="Refuse plans that destroy it")
    create_before_destroy: Bool = Field(
        default=False, description="On replace, create the new instance before deleting the old"
    )
    ignore_changes: list[IgnorableField] = Field(
        default_factory=list,
        description="Spec fields whose drift is ignored, e.g. tags, auto_delete.spend_threshold",
    )


_DURATION = re.compile(r"^(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?$")


def duration_seconds(value: Any) -> float:
    """``90s``, ``20m``, ``1h30m`` or a number of seconds, as seconds (more than 0)."""
    if isinstance(value, bool):
        raise ValueError("expected a duration such as 90s, 20m or 1h30m")
    if isinstance(value, int | float):
        seconds = float(value)
    elif isinstance(value, str) and value.strip() and _DURATION.match(value.strip()):
        hours, minutes, secs = (int(p or 0) for p in _DURATION.match(value.strip()).groups())  # type: ignore[union-attr]
        seconds = float(hours * 3600 + minutes * 60 + secs)
    else:
        raise ValueError("expected a duration such as 90s, 20m or 1h30m")
    if not 0 < seconds <= 24 * 3600:
        raise ValueError("a duration must be more than 0 and at most 24h")
    return seconds


Duration = Annotated[
    float,
    BeforeValidator(duration_seconds),
    WithJsonSchema(
        {
            "anyOf": [
                {"type": "string", "pattern": _DURATION.pattern},
                {"type": "number", "exclusiveMinimum": 0},
            ]
        }
    ),
]


class UpdateStrategy(ManifestModel):
    """How a replacement of a replica group rolls: in waves, never below a serving floor."""

    max_unavailable: NonNegativeInt = Field(
        default=1, description="At most this many replicas of the group not serving at once"
    )
    max_surge: NonNegativeInt | None = Field(
        default=None,
        description="At most this many extra replicas running during the change "
        "(default 1; 0 for an instance that mounts a volume)",
    )

    @model_validator(mode="after")
    def _can_progress(self) -> UpdateStrategy:
        if self.max_unavailable == 0 and self.max_surge == 0:
            raise ValueError(
                "max_unavailable and max_surge are both 0, so no replica could ever be "
                "replaced; allow one of them to be at least 1"
            )
        return self


class Readiness(ManifestModel):
    """When a new replica counts as serving: active, and then this command exits 0."""

    command: list[NonEmptyStr] = Field(
        min_length=1,
        description="A program inside the manifest's tree and its arguments (no shell); runs "
        "with ADDRESS, INSTANCE_ID, IP, SSH_USER and SSH_PORT set",
    )
    timeout: Duration = Field(default=600.0, description="How long it may take to pass")
    interval: Duration = Field(default=10.0, description="Pause between two tries")


# --- placement envelopes and budgets ----------------------------------------------------------

STRATEGIES = ("ordered", "cheapest")
_HARDWARE_OR_PRICE = ("gpu_type", "num_gpus", "min_vram_per_gpu_in_gb", "max_hourly_price")


class PlacementCandidate(ManifestModel):
    """One acceptable offer, named exactly."""

    cloud: NonEmptyStr = Field(description="Cloud provider, e.g. lambdalabs")
    region: NonEmptyStr = Field(description="Region, e.g. us-east-1")
    shade_instance_type: NonEmptyStr = Field(description="Shadeform instance type, e.g. H100")
    rental_type: RentalType = Field(
        default="on_demand", description="on_demand (default) or spot; spot needs shade_cloud"
    )


class PlacementRequirements(ManifestModel):
    """Any catalog offer meeting all of these is acceptable; unset keys do not constrain."""

    gpu_type: NonEmptyStr | None = Field(default=None, description="GPU model, e.g. H100")
    num_gpus: PositiveInt | None = Field(default=None, description="GPUs per instance")
    min_vram_per_gpu_in_gb: PositiveInt | None = Field(
        default=None, description="Minimum memory per GPU, in GB"
    )
    max_hourly_price: Dollars | None = Field(
        default=None, description='Highest acceptable price, dollars per hour, e.g. "3.00"'
    )
    clouds: list[NonEmptyStr] | None = Field(
        default=None, min_length=1, description="Allowed clouds (default: any)"
    )
    regions: list[NonEmptyStr] | None = Field(
        default=None, min_length=1, description="Allowed regions (default: any)"
    )
    rental_types: list[RentalType] | None = Field(
        default=None, min_length=1, description="Allowed rental types (default: [on_demand])"
    )

    @field_validator("clouds", "regions", "rental_types", mode="before")
    @classmethod
    def _not_empty(cls, values: Any, info: ValidationInfo) -> Any:
        if isinstance(values, list) and not values:
            name = info.field_name
            raise ValueError(f"an empty list allows nothing; leave {name} out to allow any")
        return values

    @field_validator("clouds", "regions", "rental_types")
    @classmethod
    def _unique(cls, values: list[str] | None) -> list[str] | None:
        _refuse_duplicates(list(values or ()), "value")
        return values

    @model_validator(mode="after")
    def _says_what_hardware_or_price(self) -> PlacementRequirements:
        if all(getattr(self, name) is None for name in _HARDWARE_OR_PRICE):
            raise ValueError(
                "requirements must say what hardware or price is acceptable: set gpu_type,"
                " num_gpus, min_vram_per_gpu_in_gb or max_hourly_price"
            )
        return self


class Placement(ManifestModel):
    """The offers an instance may land on (``candidates`` first, in order, then any offer
    meeting ``requirements``), and how to choose among the available ones."""

    strategy: Literal["ordered", "cheapest"] = Field(
        default="ordered",
        description="ordered: first available offer; cheapest: cheapest available offer",
    )
    candidates: list[PlacementCandidate] = Field(
        default_factory=list, description="Acceptable offers, in order of preference"
    )
    requirements: PlacementRequirements | None = Field(
        default=None, description="Accept any catalog offer meeting these"
    )

    @field_validator("candidates")
    @classmethod
    def _unique_candidates(cls, candidates: list[PlacementCandidate]) -> list[PlacementCandidate]:
        _refuse_duplicates([describe_candidate(c) for c in candidates], "candidate")
        return candidates

    @model_validator(mode="after")
    def _something_to_choose_from(self) -> Placement:
        if not self.candidates and self.requirements is None:
            raise ValueError("placement needs at least one candidate or a requirements block")
        return self

    def allows_spot(self) -> bool:
        in_candidates = any(c.rental_type == "spot" for c in self.candidates)
        in_requirements = self.requirements is not None and "spot" in (
            self.requirements.rental_types or ()
        )
        return in_candidates or in_requirements


def describe_candidate(candidate: PlacementCandidate) -> str:
    """``H100 spot in datacrunch/FIN-01``."""
    rental = " spot" if candidate.rental_type == "spot" else ""
    return f"{candidate.shade_instance_type}{rental} in {candidate.cloud}/{candidate.region}"


class Budget(ManifestModel):
    """Fleet spending guards: a plan that breaks one fails before anything is created."""

    max_hourly: Dollars | None = Field(
        default=None, description='Ceiling on the whole fleet, dollars per hour, e.g. "40.00"'
    )
    max_instance_hourly: Dollars | None = Field(
        default=None, description='Ceiling on any one instance, dollars per hour, e.g. "4.00"'
    )
    max_creates_per_apply: NonNegativeInt | None = Field(
        default=None, description="Most instances one apply may create (blast radius)"
    )

    @model_validator(mode="after")
    def _something_set(self) -> Budget:
        if all(getattr(self, name) is None for name in type(self).model_fields):
            raise ValueError("set max_hourly, max_instance_hourly or max_creates_per_apply")
        return self


# --- instances and the manifest ----------------------------------------------------------------


class InstanceFields(ManifestModel):
    """Fields an instance and ``defaults`` share; all optional until defaults are merged."""

    cloud: NonEmptyStr | None = Field(default=None, description="Cloud provider, e.g. hyperstack")
    region: NonEmptyStr | None = Field(default=None, description="Region, e.g. canada-1")
    shade_instance_type: NonEmptyStr | None = Field(
        default=None, description="Shadeform instance type, e.g. A6000 or 8xH100"
    )
    shade_cloud: Bool | None = Field(
        default=None, description="Launch in Shade Cloud (true) or a linked cloud account"
    )
    rental_type: RentalType | None = Field(
        default=None, description="on_demand (default) or spot; spot needs shade_cloud: true"
    )
    placement: Placement | None = Field(
        default=None,
        description="Offers the reconciler may choose from, instead of cloud/region/type",
    )
    os: NonEmptyStr | None = Field(default=None, description="e.g. ubuntu22.04_cuda12.2_shade_os")
    template_id: NonEmptyStr | None = Field(default=None, description="Shadeform template id")
    launch_configuration: LaunchConfiguration | None = None
    volume_ids: list[NonEmptyStr] | None = Field(
        default=None,
        max_length=1,
        description="Ids of storage volumes the fleet does not manage (at most one)",
    )
    ssh_key_id: NonEmptyStr | None = Field(
        default=None, description="Id of a Shadeform SSH key the fleet does not manage"
    )
    volumes: list[Name] | None = Field(
        default=None,
        description="Names of the fleet's managed volumes to mount (at most one)",
    )
    ssh_key: Name | None = Field(default=None, description="Name of a managed SSH key")
    auto_delete: Thresholds | None = Field(
        default=None, description="Delete the instance at a date or spend threshold"
    )
    alert: Thresholds | None = Field(
        default=None, description="Email an alert at a date or spend threshold"
    )
    volume_mount: VolumeMount | None = Field(default=None, description="Volume mount settings")
    tags: list[NonEmptyStr] | None = Field(
        default=None, description="Searchable tags; defaults' and the instance's are combined"
    )
    envs: list[EnvVar] | None = Field(default=None, description="Instance environment")
    lifecycle: Lifecycle | None = Field(default=None, description="Reconciler-only change rules")
    update_strategy: UpdateStrategy | None = Field(
        default=None, description="Replace a replica group in waves (max_unavailable, max_surge)"
    )
    readiness: Readiness | None = Field(
        default=None, description="What 'serving' means beyond active: a command that passes"
    )

    @field_validator("tags")
    @classmethod
    def _no_reserved_tags(cls, tags: list[str] | None) -> list[str] | None:
        for tag in tags or ():
            if tag.startswith(RESERVED_TAG_PREFIX):
                raise ValueError(
                    f"tag '{tag}': tags starting with '{RESERVED_TAG_PREFIX}' are reserved"
                    " for the reconciler's ownership tags"
                )
        return tags

    @field_validator("envs")
    @classmethod
    def _unique_env_names(cls, envs: list[EnvVar] | None) -> list[EnvVar] | None:
        _refuse_duplicates([e.name for e in envs or ()], "environment variable")
        return envs


class InstanceDefaults(InstanceFields):
    """Merged into every instance of the fleet; the instance's own keys win."""


class InstanceEntry(InstanceFields):
    """One instance (or, with ``replicas``, a group of identical ones)."""

    name: Name = Field(description="Instance name; replicas append -0, -1, ...")
    replicas: Replicas = Field(default=1, description="Number of identical instances")


class VolumeEntry(ManifestModel):
    """A storage volume the fleet manages: created before the instances that mount it, kept
    after them, and never deleted or replaced (its data lost) without ``--allow-data-loss``."""

    name: Name = Field(description="Volume name; its address is <fleet>/volume.<name>")
    cloud: NonEmptyStr = Field(description="Cloud provider, e.g. lambdalabs")
    region: NonEmptyStr = Field(description="Region, e.g. us-east-1")
    size_in_gb: PositiveInt = Field(description="Size in GB")


class SshKeyEntry(ManifestModel):
    """An SSH key the fleet manages (added to Shadeform before the instances that use it)."""

    name: Name = Field(description="Key name; its address is <fleet>/ssh_key.<name>")
    public_key: NonEmptyStr | None = Field(
        default=None, description='OpenSSH public key, e.g. "ssh-ed25519 AAAA... ci"'
    )
    public_key_file: NonEmptyStr | None = Field(
        default=None, description="File holding the public key, relative to the manifest"
    )

    @model_validator(mode="after")
    def _exactly_one_key(self) -> SshKeyEntry:
        if (self.public_key is None) == (self.public_key_file is None):
            raise ValueError("set exactly one of public_key or public_key_file")
        return self


class Manifest(ManifestModel):
    """One manifest file: one fleet."""

    model_config = ConfigDict(
        title="Shadeform Reconciler fleet manifest",
        json_schema_extra={"$schema": SCHEMA_DIALECT},
    )

    fleet: Name = Field(description="Fleet name; scopes its state and ownership tags")
    state_dir: NonEmptyStr | None = Field(
        default=None, description="Where this fleet's local state lives (default: state/)"
    )
    backend: BackendUrl | None = Field(
        default=None,
        description="State backend URL, e.g. file://state or postgresql://...; kept secret",
    )
    budget: Budget | None = Field(default=None, description="The fleet's spending guards")
    variables: dict[Annotated[str, Field(pattern=VARIABLE_NAME_PATTERN)], VariableValue] = Field(
        default_factory=dict, description="Values for ${var.NAME}; --var overrides them"
    )
    defaults: InstanceDefaults | None = Field(
        default=None, description="Merged into every instance"
    )
    volumes: list[VolumeEntry] = Field(
        default_factory=list, description="Storage volumes the fleet manages"
    )
    ssh_keys: list[SshKeyEntry] = Field(
        default_factory=list, description="SSH keys the fleet manages"
    )
    instances: list[InstanceEntry] = Field(description="The fleet's instances")

    @field_validator("volumes", "ssh_keys")
    @classmethod
    def _unique_names(cls, entries: list[Any], info: ValidationInfo) -> list[Any]:
        what = "volume" if info.field_name == "volumes" else "SSH key"
        _refuse_duplicates([e.name for e in entries], what)
        return entries


def manifest_json_schema() -> dict[str, Any]:
    """The JSON Schema of a manifest file, as printed by ``reconciler schema``."""
    schema = Manifest.model_json_schema()
    return {"$schema": schema.pop("$schema", SCHEMA_DIALECT), **schema}


def model_fields_at(model: type[BaseModel], loc: tuple[str | int, ...]) -> list[str]:
    """Field names of the model found by following ``loc`` from ``model`` (for hints)."""
    candidates: list[Any] = [model]
    for element in loc:
        candidates = [t for c in candidates for t in _step(c, element)]
    names: set[str] = set()
    for candidate in candidates:
        for tp in _flatten(candidate):
            if isinstance(tp, type) and issubclass(tp, BaseModel):
                names.update(tp.model_fields)
    return sorted(names)


def _flatten(tp: Any) -> list[Any]:
    origin = get_origin(tp)
    if origin is Annotated:
        return _flatten(get_args(tp)[0])
    if origin is not None and origin not in (list, dict, tuple):  # unions
        return [t for arg in get_args(tp) for t in _flatten(arg)]
    return [tp]


def _step(tp: Any, element: str | int) -> list[Any]:
    out: list[Any] = []
    for t in _flatten(tp):
        origin = get_origin(t)
        if isinstance(t, type) and issubclass(t, BaseModel):
            if element == _literal_tag(t):  # pydantic puts a union's tag in the location
                out.append(t)
            elif isinstance(element, str) and element in t.model_fields:
                out.append(t.model_fields[element].annotation)
        elif origin in (list, tuple) and isinstance(element, int):
            out.append(get_args(t)[0])
        elif origin is dict:
            out.append(get_args(t)[1])
    return out


def _literal_tag(model: type[BaseModel]) -> object:
    field = model.model_fields.get("type")
    if field is not None and get_origin(field.annotation) is Literal:
        return get_args(field.annotation)[0]
    return None


def _refuse_duplicates(values: list[str], what: str) -> None:
    seen: set[str] = set()
    for value in values:
        if value in seen:
            raise ValueError(f"{what} '{value}' is listed twice")
        seen.add(value)


def _refuse_keys(data: dict[str, Any], keys: tuple[str, ...], type_name: str) -> None:
    for key in keys:
        if key in data:
            other = "script" if type_name == "docker" else "docker"
            raise ValueError(
                f"'{key}' is not allowed when type is '{type_name}' (use type: {other})"
            )
