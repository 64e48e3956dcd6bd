"""Pure placement: which approved offers an instance may use, and which one it gets now."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from reconciler.models.catalog import Catalog, Offer, dollars_to_cents
from reconciler.models.plan import PlacementChoice
from reconciler.models.spec import InstanceSpec, PlacementRequirements


def _meets(offer: Offer, req: PlacementRequirements) -> bool:
    if req.gpu_type is not None and offer.gpu_type != req.gpu_type:
        return False
    if req.num_gpus is not None and offer.num_gpus != req.num_gpus:
        return False
    if req.min_vram_per_gpu_in_gb is not None and (
        offer.vram_per_gpu_in_gb is None or offer.vram_per_gpu_in_gb < req.min_vram_per_gpu_in_gb
    ):
        return False
    if req.max_hourly_price is not None:
        ceiling = dollars_to_cents(req.max_hourly_price)
        if ceiling is not None and offer.hourly_price_cents > ceiling:
            return False
    if req.clouds and offer.cloud not in req.clouds:
        return False
    if req.regions and offer.region not in req.regions:
        return False
    return offer.rental_type in req.rental_types


@dataclass(frozen=True)
class Envelope:
    """The approved offers for one instance, in preference order (available or not)."""

    offers: tuple[Offer, ...]
    strategy: str
    unknown: tuple[str, ...] = ()  # named candidates the catalog does not list
    unknown_keys: tuple[tuple[str | None, str | None, str | None, str], ...] = ()

    def contains(self, cloud: object, region: object, kind: object, rental: object) -> bool:
        return any(o.key == (cloud, region, kind, rental) for o in self.offers)

    def choose(self) -> PlacementChoice | None:
        available = [o for o in self.offers if o.available]
        if not available:
            return None
        return PlacementChoice(
            strategy=self.strategy, chosen=available[0], fallbacks=tuple(available[1:])
        )


def envelope_for(spec: InstanceSpec, catalog: Catalog) -> Envelope:
    """The offers ``spec`` may be placed on; a fixed spec's envelope is its one offer."""
    unknown: list[str] = []
    unknown_keys: list[tuple[str | None, str | None, str | None, str]] = []
    offers: list[Offer] = []
    placement = spec.placement
    if placement is None:
        wanted = [(spec.cloud, spec.region, spec.shade_instance_type, spec.rental_type)]
        strategy = "fixed"
    else:
        wanted = [
            (c.cloud, c.region, c.shade_instance_type, c.rental_type) for c in placement.candidates
        ]
        strategy = placement.strategy
    for cloud, region, kind, rental in wanted:
        offer = catalog.find(cloud, region, kind, rental)
        if offer is None:
            unknown.append(f"{kind} {rental} in {cloud}/{region}")
            unknown_keys.append((cloud, region, kind, rental))
        elif offer not in offers:
            offers.append(offer)
    if placement is not None and placement.requirements is not None:
        matching = sorted(
            (o for o in catalog.offers if _meets(o, placement.requirements) and o not in offers),
            key=lambda o: (o.hourly_price_cents, o.key),
        )
        offers.extend(matching)
    if placement is not None and placement.strategy == "cheapest":
        offers.sort(key=lambda o: o.hourly_price_cents)  # stable: ties keep the declared order
    return Envelope(
        offers=tuple(offers),
        strategy=strategy,
        unknown=tuple(unknown),
        unknown_keys=tuple(unknown_keys),
    )


PLACEMENT_KEYS = ("cloud", "region", "shade_instance_type", "rental_type")


def with_placement_of(applied: dict[str, Any], source: dict[str, Any] | None) -> dict[str, Any]:
    """``applied`` (a comparable spec) with the placement fields ``source`` has."""
    if not source:
        return applied
    placed = dict(applied)
    placed.update({k: source[k] for k in PLACEMENT_KEYS if k in source})
    return placed


def apply_offer(spec: InstanceSpec, offer: Offer) -> InstanceSpec:
    """The concrete spec to create on ``offer``."""
    return spec.model_copy(
        update={
            "cloud": offer.cloud,
            "region": offer.region,
            "shade_instance_type": offer.shade_instance_type,
            "rental_type": offer.rental_type,
        }
    )
