"""Turn ``GET /instances/types`` into our :class:`Catalog` of priced offers (one call a run)."""

from __future__ import annotations

from collections.abc import Iterable

from reconciler.api import ShadeformClient
from reconciler.models.api import InstanceType
from reconciler.models.catalog import Catalog, Offer


def catalog_from_types(types: Iterable[InstanceType]) -> Catalog:
    """One offer per availability entry; spot entries carry their own price."""
    offers = []
    for kind in types:
        config = kind.configuration
        boot = kind.boot_time.max_boot_in_sec if kind.boot_time else None
        for entry in kind.availability:
            price = kind.hourly_price
            if entry.rental_type == "spot":
                spot = entry.spot_price_cents
                if spot is None:
                    continue  # a spot entry without a price cannot be budgeted
                price = spot
            offers.append(
                Offer(
                    cloud=kind.cloud,
                    region=entry.region,
                    shade_instance_type=kind.shade_instance_type,
                    rental_type=entry.rental_type,
                    hourly_price_cents=price,
                    available=entry.available,
                    boot_seconds_max=boot,
                    gpu_type=config.gpu_type,
                    num_gpus=config.num_gpus,
                    vram_per_gpu_in_gb=config.vram_per_gpu_in_gb,
                )
            )
    offers.sort(key=lambda o: o.key)
    return Catalog(offers=tuple(offers))


async def fetch_catalog(client: ShadeformClient) -> Catalog:
    return catalog_from_types(await client.list_instance_types())
