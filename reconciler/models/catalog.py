"""The offer catalog: what Shadeform rents, where, at what price (a pure planner input)."""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from difflib import get_close_matches
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

HOURS_PER_30_DAYS = 720

Cents = int | float
"""Money in cents: whole for instances (Shadeform's prices are whole cents an hour), a fraction
for storage (``price_per_gb_per_hour`` is fractional)."""


def round_cents(value: Cents) -> Cents:
    """``value`` rounded to 1e-6 cent (sums of fractions stay readable); ints stay ints."""
    if isinstance(value, int):
        return value
    rounded = round(value, 6)
    return int(rounded) if rounded.is_integer() else rounded


class Offer(BaseModel):
    """One rentable (cloud, region, type, rental type) with its price in cents per hour."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    cloud: str
    region: str
    shade_instance_type: str
    rental_type: Literal["on_demand", "spot"] = "on_demand"
    hourly_price_cents: int
    available: bool = True
    boot_seconds_max: int | None = None
    gpu_type: str | None = None
    num_gpus: int | None = None
    vram_per_gpu_in_gb: int | None = None

    @property
    def key(self) -> tuple[str, str, str, str]:
        return (self.cloud, self.region, self.shade_instance_type, self.rental_type)

    def describe(self) -> str:
        rental = " spot" if self.rental_type == "spot" else ""
        return f"{self.shade_instance_type}{rental} in {self.cloud}/{self.region}"


class VolumePrice(BaseModel):
    """What storage costs in one cloud and region (``/volumes/types``)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    cloud: str
    region: str
    price_per_gb_per_hour: str = Field(description="Dollars, as the API gives it")


class Catalog(BaseModel):
    """Every offer, looked up once per run from ``/instances/types``, and storage prices
    (``/volumes/types``) when a fleet has volumes."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    offers: tuple[Offer, ...] = ()
    volume_prices: tuple[VolumePrice, ...] = ()

    def volume_price(self, cloud: str, region: str) -> VolumePrice | None:
        for price in self.volume_prices:
            if price.cloud == cloud and price.region == region:
                return price
        return None

    def find(
        self,
        cloud: str | None,
        region: str | None,
        shade_instance_type: str | None,
        rental_type: str,
    ) -> Offer | None:
        for offer in self.offers:
            if offer.key == (cloud, region, shade_instance_type, rental_type):
                return offer
        return None


def dollars_to_cents(text: str) -> int | None:
    """``"40.00"`` -> 4000; ``None`` for text that is not a decimal amount."""
    try:
        return int((Decimal(text) * 100).to_integral_value())
    except (InvalidOperation, ValueError):
        return None


def format_cents(cents: Cents | None) -> str:
    """4000 -> ``$40.00``; 2.8 -> ``$0.03`` (to the nearest cent); None -> ``$?``."""
    if cents is None:
        return "$?"
    whole = int(Decimal(str(cents)).quantize(Decimal(1), rounding=ROUND_HALF_UP))
    sign = "-" if whole < 0 else ""
    whole = abs(whole)
    return f"{sign}${whole // 100:,}.{whole % 100:02d}"


def storage_cents_per_hour(size_in_gb: int, price_per_gb_per_hour: str) -> Cents | None:
    """A volume's cost: ``size_in_gb`` times the dollar price per GB-hour, in cents."""
    try:
        cents = Decimal(size_in_gb) * Decimal(price_per_gb_per_hour) * 100
    except (InvalidOperation, ValueError):
        return None
    if not cents.is_finite() or cents < 0:
        return None
    return round_cents(float(cents)) if cents != cents.to_integral_value() else int(cents)


def unknown_offer_problem(
    catalog: Catalog, cloud: str | None, region: str | None, kind: str | None, rental: str
) -> tuple[str, str]:
    """(the field at fault, a message with "did you mean") for an offer the catalog does not
    list at all: a typo in the manifest, not a capacity problem."""
    clouds = sorted({o.cloud for o in catalog.offers})
    if cloud not in clouds:
        return "cloud", f"unknown cloud '{cloud}'{_hint(cloud, clouds, 'clouds')}"
    in_cloud = [o for o in catalog.offers if o.cloud == cloud]
    kinds = sorted({o.shade_instance_type for o in in_cloud})
    if kind not in kinds:
        return (
            "shade_instance_type",
            f"{cloud} does not offer instance type '{kind}'{_hint(kind, kinds, 'types')}",
        )
    of_kind = [o for o in in_cloud if o.shade_instance_type == kind]
    regions = sorted({o.region for o in of_kind})
    if region not in regions:
        return (
            "region",
            f"{kind} on {cloud} is not offered in region '{region}'"
            f"{_hint(region, regions, 'regions')}",
        )
    rentals = sorted({o.rental_type for o in of_kind if o.region == region})
    return (
        "rental_type",
        f"{kind} in {cloud}/{region} is not offered as {rental} (only {', '.join(rentals)})",
    )


def _hint(given: str | None, choices: list[str], what: str) -> str:
    close = get_close_matches(given or "", choices, n=1, cutoff=0.6)
    if close:
        return f"; did you mean '{close[0]}'?"
    shown = ", ".join(choices[:12]) + (", ..." if len(choices) > 12 else "")
    return f" ({what}: {shown})" if choices else ""
