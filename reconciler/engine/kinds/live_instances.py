"""Our view of one API instance (:class:`LiveInstance`): health, tags, the spec fields it
reports, and reach details that are safe to put on an ``ssh`` command line."""

from __future__ import annotations

import functools
import ipaddress
import re
from typing import Any

from reconciler.models.api import Instance, InstanceInfo
from reconciler.models.live import OWNERSHIP_PREFIX, Health, LiveInstance

_HEALTH = {
    "creating": Health.IN_PROGRESS,
    "pending_provider": Health.IN_PROGRESS,
    "pending": Health.IN_PROGRESS,
    "active": Health.HEALTHY,
    "error": Health.BROKEN,
    "deleting": Health.GONE,
    "deleted": Health.GONE,
}


def _thresholds(value: Any) -> dict[str, Any] | None:
    if value is None:
        return None
    dumped = {k: v for k, v in value.model_dump().items() if v is not None}
    return dumped or None


def to_live_instance(instance: Instance) -> LiveInstance:
    """Our view of one API instance: health, tags and the spec fields it reports."""
    user_tags = [t for t in instance.tags if not t.startswith(OWNERSHIP_PREFIX)]
    observed: dict[str, Any] = {
        "name": instance.name,
        "tags": user_tags,
        "cloud": instance.cloud,
        "region": instance.region,
        "shade_instance_type": instance.shade_instance_type,
    }
    if instance.shade_cloud is not None:
        observed["shade_cloud"] = instance.shade_cloud
    if instance.rental_terms is not None and instance.rental_terms.rental_type in (
        "on_demand",
        "spot",
    ):
        observed["rental_type"] = instance.rental_terms.rental_type
    if isinstance(instance, InstanceInfo):
        observed["auto_delete"] = _thresholds(instance.auto_delete)
        observed["alert"] = _thresholds(instance.alert)
    return LiveInstance(
        id=instance.id,
        name=instance.name,
        status=str(instance.status),
        status_details=instance.status_details,
        health=_HEALTH.get(str(instance.status), Health.IN_PROGRESS),
        tags=tuple(instance.tags),
        observed=observed,
        hourly_price=instance.hourly_price,
        cost_estimate=instance.cost_estimate,
        created_at=instance.created_at.isoformat() if instance.created_at else None,
        ip=safe_host(instance.ip),
        ssh_user=safe_user(instance.ssh_user),
        ssh_port=instance.ssh_port if instance.ssh_port and 0 < instance.ssh_port < 65536 else None,
    )


_HOSTNAME = re.compile(
    r"^[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$"
)
_USER = re.compile(r"^[A-Za-z_][A-Za-z0-9._-]{0,31}$")


@functools.lru_cache(maxsize=65536)
def safe_host(value: str | None) -> str | None:
    """An IP address or host name as Shadeform reported it, or None when it is anything else.

    These values end up on an ``ssh`` command line and in Ansible inventories: one that
    starts with ``-`` (``-oProxyCommand=...``) would be read as an option and run a command
    on the operator's machine, so only plain addresses and host names pass."""
    if not value:
        return None
    try:
        return str(ipaddress.ip_address(value))
    except ValueError:
        return value if len(value) <= 253 and _HOSTNAME.match(value) else None


def safe_user(value: str | None) -> str | None:
    """A login name of the usual shape, or None (same reason as :func:`safe_host`)."""
    return value if value and _USER.match(value) else None
