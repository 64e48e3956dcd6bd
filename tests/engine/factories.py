"""Plain builders for planner inputs: specs, states and live snapshots."""

from __future__ import annotations

from typing import Any

from pydantic import SecretStr

from reconciler.engine.comparable import comparable_spec
from reconciler.manifest.public_keys import fingerprint_of
from reconciler.models.live import Health, LiveInstance, LiveSnapshot, ownership_tags
from reconciler.models.spec import (
    Env,
    Fleet,
    InstanceSpec,
    SshKeySpec,
    VolumeSpec,
    ssh_key_address,
    volume_address,
)
from reconciler.models.state import FleetState, InstanceRecord

KEY = "00" * 32
FLEET = "inference"


def spec(name: str = "vllm-0", **overrides: Any) -> InstanceSpec:
    fields: dict[str, Any] = {
        "address": f"{FLEET}/{name}",
        "fleet": FLEET,
        "name": name,
        "cloud": "hyperstack",
        "region": "canada-1",
        "shade_instance_type": "A6000",
        "shade_cloud": True,
        "os": "ubuntu22.04_cuda12.2_shade_os",
        "tags": ("team-ml",),
    }
    fields.update(overrides)
    return InstanceSpec(**fields)


PUBLIC_KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIPenzzDzy8N96p2k2wGYn8frzCDilM2PBqpub6pYniC2 one"
OTHER_PUBLIC_KEY = (
    "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOkcB45Nq3DT5w/PUEqM3M/ej5Nt0D6W7s70kHOwXfvT two"
)


def volume(name: str = "data", **overrides: Any) -> VolumeSpec:
    fields: dict[str, Any] = {
        "address": volume_address(FLEET, name),
        "fleet": FLEET,
        "name": name,
        "cloud": "hyperstack",
        "region": "canada-1",
        "size_in_gb": 100,
    }
    fields.update(overrides)
    return VolumeSpec(**fields)


def ssh_key(name: str = "deploy", public_key: str = PUBLIC_KEY) -> SshKeySpec:
    return SshKeySpec(
        address=ssh_key_address(FLEET, name),
        fleet=FLEET,
        name=name,
        public_key=public_key,
        fingerprint=fingerprint_of(public_key),
    )


def secret_env(value: str) -> Env:
    return Env(name="HF_TOKEN", value=SecretStr(value))


def fleet(
    *specs: InstanceSpec,
    volumes: tuple[VolumeSpec, ...] = (),
    ssh_keys: tuple[SshKeySpec, ...] = (),
    digest: str = "d" * 64,
) -> Fleet:
    return Fleet(
        name=FLEET,
        source="specs/inference.yaml",
        instances=tuple(sorted(specs, key=lambda s: s.address)),
        volumes=volumes,
        ssh_keys=ssh_keys,
        digest=digest,
    )


def state(*records: InstanceRecord, serial: int = 3) -> FleetState:
    return FleetState(
        fleet=FLEET,
        lineage="lineage-1",
        serial=serial,
        fingerprint_key=KEY,
        instances={r.address: r for r in records},
    )


def record(s: InstanceSpec, instance_id: str) -> InstanceRecord:
    return InstanceRecord(
        address=s.address,
        instance_id=instance_id,
        applied_spec=comparable_spec(s, KEY),
        created_at="2026-11-27T10:00:00Z",
        updated_at="2026-11-27T10:00:00Z",
    )


def live(
    s: InstanceSpec,
    instance_id: str,
    *,
    health: Health = Health.HEALTHY,
    status: str | None = None,
    status_details: str | None = None,
    owned: bool = True,
    extra_tags: tuple[str, ...] = (),
    **observed_overrides: Any,
) -> LiveInstance:
    tags = (*s.tags, *(ownership_tags(FLEET, s.address) if owned else ()), *extra_tags)
    observed: dict[str, Any] = {
        "name": s.name,
        "tags": list(s.tags),
        "cloud": s.cloud,
        "region": s.region,
        "shade_instance_type": s.shade_instance_type,
    }
    observed.update(observed_overrides)
    default_status = {
        Health.HEALTHY: "active",
        Health.IN_PROGRESS: "pending",
        Health.BROKEN: "error",
        Health.GONE: "deleting",
    }[health]
    return LiveInstance(
        id=instance_id,
        name=observed["name"],
        status=status or default_status,
        status_details=status_details,
        health=health,
        tags=tags,
        observed=observed,
        created_at="2026-11-27T10:00:00Z",
    )


def snapshot(
    *instances: LiveInstance, orphans: tuple[LiveInstance, ...] = (), **kw: Any
) -> LiveSnapshot:
    return LiveSnapshot(fleet=FLEET, by_id={i.id: i for i in instances}, orphans=orphans, **kw)
