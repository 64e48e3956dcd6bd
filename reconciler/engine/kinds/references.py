"""An instance's edges: the managed volumes and SSH key it uses, by address."""

from __future__ import annotations

from typing import Any

from reconciler.models.spec import (
    SSH_KEY_PREFIX,
    VOLUME_PREFIX,
    InstanceSpec,
    ssh_key_address,
    volume_address,
)


def instance_references(spec: InstanceSpec) -> tuple[str, ...]:
    refs = [volume_address(spec.fleet, v) for v in spec.volumes]
    if spec.ssh_key is not None:
        refs.append(ssh_key_address(spec.fleet, spec.ssh_key))
    return tuple(refs)


def recorded_instance_references(fleet: str, applied: dict[str, Any]) -> tuple[str, ...]:
    refs = [f"{fleet}/{VOLUME_PREFIX}{v}" for v in applied.get("volumes", ()) or ()]
    if applied.get("ssh_key"):
        refs.append(f"{fleet}/{SSH_KEY_PREFIX}{applied['ssh_key']}")
    return tuple(refs)
