"""Turn ``GET /instances/types`` into our :class:`Catalog` of priced offers (one call a run),
with storage prices from ``GET /volumes/types`` when the run has volumes."""

from __future__ import annotations

from collections.abc import Iterable

from reconciler.api import ShadeformClient
from reconciler.engine.concurrency import all_or_nothing
from reconciler.models.api import InstanceType, VolumeType
from reconciler.models.catalog import Catalog, Offer, VolumePrice


def catalog_from_types(
    types: Iterable[InstanceType], volume_types: Iterable[VolumeType] = ()
) -> Catalog:
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
    prices = sorted(
        (
            VolumePrice(
                cloud=v.cloud, region=v.region, price_per_gb_per_hour=v.price_per_gb_per_hour
            )
            for v in volume_types
            if v.price_per_gb_per_hour is not None
        ),
        key=lambda p: (p.cloud, p.region),
    )
    return Catalog(offers=tuple(offers), volume_prices=tuple(prices))


async def fetch_catalog(client: ShadeformClient, *, volumes: bool = False) -> Catalog:
    """The catalog; ``volumes``: also storage prices (one more call, made concurrently)."""
    if not volumes:
        return catalog_from_types(await client.list_instance_types())
    types, volume_types = await all_or_nothing(
        client.list_instance_types(), client.list_volume_types()
    )
    return catalog_from_types(types, volume_types)  # type: ignore[arg-type]
