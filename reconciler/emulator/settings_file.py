"""The emulator's config file (YAML or JSON), for ``reconciler emulator --config FILE``.

::

    api_key: sandbox-key
    boot_seconds: 2
    delete_seconds: 1
    data_file: sandbox-cloud.json      # relative to this file
    faults:                            # every FaultConfig field, all optional
      seed: 7
      latency_ms: 20
      endpoints:
        InstancesCreate: {latency_ms: 400, error_rate: 0.05}
    capacity:
      - {cloud: lambdalabs, region: us-east-1, shade_instance_type: H100, available: false}
    volumes:                           # in the account from the start (kept across restarts)
      - {id: 6f1c2b7e-..., cloud: lambdalabs, region: us-east-1, name: ckpt, size_in_gb: 2000}
    ssh_keys:
      - {id: 0d4f..., name: ci-deploy, public_key: "ssh-ed25519 AAAA... ci"}

Unknown keys are errors. This is the emulator's only use of PyYAML (a JSON file is YAML).
"""

from __future__ import annotations

from pathlib import Path

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from reconciler.emulator.config import CapacitySetting, FaultConfig, SeedSshKey, SeedVolume
from reconciler.errors import UsageError


class EmulatorSettings(BaseModel):
    """What a config file may set; unset values leave the defaults (or the flags) alone."""

    model_config = ConfigDict(extra="forbid")

    api_key: str | None = Field(default=None, min_length=1, repr=False)
    boot_seconds: float | None = Field(default=None, ge=0)
    delete_seconds: float | None = Field(default=None, ge=0)
    data_file: Path | None = None
    faults: FaultConfig = Field(default_factory=FaultConfig)
    capacity: list[CapacitySetting] = Field(default_factory=list)
    volumes: list[SeededVolume] = Field(default_factory=list)
    ssh_keys: list[SeededSshKey] = Field(default_factory=list)


class SeededVolume(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: str = Field(min_length=1)
    cloud: str = Field(min_length=1)
    region: str = Field(min_length=1)
    name: str = Field(min_length=1)
    size_in_gb: int = Field(default=500, gt=0)

    def seed(self) -> SeedVolume:
        return SeedVolume(**self.model_dump())


class SeededSshKey(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: str = Field(min_length=1)
    name: str = Field(min_length=1)
    public_key: str = Field(min_length=1)

    def seed(self) -> SeedSshKey:
        return SeedSshKey(**self.model_dump())


def load_settings(path: Path) -> EmulatorSettings:
    """Read and check a config file; every problem is reported as a :class:`UsageError`."""
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise UsageError(f"cannot read emulator config {path}: {exc.strerror}") from exc
    except yaml.YAMLError as exc:
        raise UsageError(f"emulator config {path} is not valid YAML or JSON: {exc}") from exc
    if raw is None:
        raw = {}
    try:
        settings = EmulatorSettings.model_validate(raw)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or '(top level)'}: {e['msg']}"
            for e in exc.errors(include_url=False, include_input=False)
        )
        raise UsageError(f"emulator config {path}: {problems}") from None
    if settings.data_file is not None and not settings.data_file.is_absolute():
        settings.data_file = path.parent / settings.data_file
    return settings
