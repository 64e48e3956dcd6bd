"""Emulated resources rendered as the JSON shapes of Shadeform's OpenAPI spec.

``deleted_at`` is required and not nullable in the spec; like Shadeform's Go backend we
send the zero time (``0001-01-01T00:00:00Z``) until an instance is deleted. ``active_at`` is
left out until the instance has been active. ``ip`` is ``""`` until then.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any

from reconciler.emulator.catalog import (
    ON_DEMAND,
    SPOT,
    InstanceOffer,
    RegionOffer,
    cents_to_dollars,
)
from reconciler.emulator.lifecycle import InstanceRecord, Observation

JsonDict = dict[str, Any]
ZERO_TIME = "0001-01-01T00:00:00Z"
_SECONDS_PER_HOUR = 3600.0


@lru_cache(maxsize=1 << 16)
def iso_time(epoch_seconds: float) -> str:
    """``1.5`` -> ``"1970-01-01T00:00:01.500Z"`` (cached: lists render the same times often)."""
    moment = datetime.fromtimestamp(epoch_seconds, tz=UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def instance_configuration(offer: InstanceOffer, os: str) -> JsonDict:
    shape = offer.shape
    return {
        "memory_in_gb": offer.memory_in_gb,
        "storage_in_gb": offer.storage_in_gb,
        "vcpus": offer.vcpus,
        "num_gpus": shape.num_gpus,
        "gpu_type": shape.gpu_type,
        "interconnect": shape.interconnect,
        "nvlink": shape.nvlink,
        "vram_per_gpu_in_gb": shape.vram_per_gpu_in_gb,
        "gpu_manufacturer": "nvidia",
        "os": os,
    }


def boot_time(offer: InstanceOffer) -> JsonDict:
    return {"min_boot_in_sec": offer.min_boot_in_sec, "max_boot_in_sec": offer.max_boot_in_sec}


def instance(
    record: InstanceRecord, seen: Observation, offer: InstanceOffer, *, detailed: bool
) -> JsonDict:
    """The ``Instance`` shape (list) or, with ``detailed``, ``InstanceInfoResponse`` (info)."""
    cost_cents = record.hourly_price * seen.billed_seconds / _SECONDS_PER_HOUR
    body: JsonDict = {
        "id": record.id,
        "cloud": record.cloud,
        "region": record.region,
        "shade_instance_type": record.shade_instance_type,
        "cloud_instance_type": record.cloud_instance_type,
        "cloud_assigned_id": record.cloud_assigned_id,
        "shade_cloud": record.shade_cloud,
        "name": record.name,
        "configuration": instance_configuration(offer, record.os),
        "ip": record.ip if seen.active_at is not None else "",
        "ssh_user": "shadeform",
        "ssh_port": record.ssh_port,
        "status": seen.status,
        "cost_estimate": cents_to_dollars(cost_cents if record.shade_cloud else 0),
        "hourly_price": record.hourly_price,
        "rental_terms": {
            "rental_type": record.rental_type,
            "hourly_price": cents_to_dollars(record.hourly_price),
            "ending_at": None,
        },
        "tags": list(record.tags),
        "port_mappings": [],
        "created_at": iso_time(record.created_at),
        "deleted_at": ZERO_TIME,
        "boot_time": boot_time(offer),
    }
    if seen.details is not None:
        body["status_details"] = seen.details
    if seen.active_at is not None:
        body["active_at"] = iso_time(seen.active_at)
    if record.launch_configuration is not None:
        body["launch_configuration"] = record.launch_configuration
    if detailed:
        body["volume_ids"] = list(record.volume_ids)
        body["envs"] = list(record.envs)
        for key in ("ssh_key_id", "auto_delete", "alert", "volume_mount"):
            value = getattr(record, key)
            if value is not None:
                body[key] = value
    return body


@dataclass(frozen=True, slots=True)
class InstanceTypeQuery:
    """The filters of ``GET /instances/types``."""

    cloud: str | None = None
    region: str | None = None
    num_gpus: int | None = None
    gpu_type: str | None = None
    shade_instance_type: str | None = None
    available: bool | None = None
    sort_by_price: bool = False

    def wants_offer(self, offer: InstanceOffer) -> bool:
        return (
            (self.cloud is None or offer.cloud == self.cloud)
            and (self.num_gpus is None or offer.shape.num_gpus == self.num_gpus)
            and (self.gpu_type is None or offer.shape.gpu_type == self.gpu_type)
            and (
                self.shade_instance_type is None
                or offer.shade_instance_type == self.shade_instance_type
            )
        )


IsAvailable = Callable[[InstanceOffer, RegionOffer, str], bool]


def _availability(offer: InstanceOffer, is_available: IsAvailable) -> list[JsonDict]:
    entries: list[JsonDict] = []
    for region in offer.regions:
        base = {"region": region.region, "display_name": region.display_name}
        entries.append(
            {**base, "available": is_available(offer, region, ON_DEMAND), "rental_type": ON_DEMAND}
        )
        if region.spot_price is not None:
            entries.append(
                {
                    **base,
                    "available": is_available(offer, region, SPOT),
                    "rental_type": SPOT,
                    "hourly_price": cents_to_dollars(region.spot_price),
                }
            )
    return entries


def instance_types(
    offers: tuple[InstanceOffer, ...], query: InstanceTypeQuery, is_available: IsAvailable
) -> list[JsonDict]:
    """The ``InstanceType`` list for ``query``; offers left with no entries are dropped."""
    filtering_entries = query.region is not None or query.available is not None
    result: list[JsonDict] = []
    for offer in offers:
        if not query.wants_offer(offer):
            continue
        entries = [
            e
            for e in _availability(offer, is_available)
            if (query.region is None or e["region"] == query.region)
            and (query.available is None or e["available"] == query.available)
        ]
        if filtering_entries and not entries:
            continue
        config = instance_configuration(offer, offer.os_options[0])
        del config["os"]
        config["os_options"] = list(offer.os_options)
        result.append(
            {
                "cloud": offer.cloud,
                "shade_instance_type": offer.shade_instance_type,
                "cloud_instance_type": offer.cloud_instance_type,
                "configuration": config,
                "hourly_price": offer.hourly_price,
                "deployment_type": offer.deployment_type,
                "availability": entries,
                "boot_time": boot_time(offer),
            }
        )
    if query.sort_by_price:
        result.sort(key=lambda t: int(t["hourly_price"]))
    return result
