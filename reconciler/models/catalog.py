"""The offer catalog: what Shadeform rents, where, at what price (a pure planner input)."""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from typing import Literal

from pydantic import BaseModel, ConfigDict

HOURS_PER_30_DAYS = 720


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


class Catalog(BaseModel):
    """Every offer, looked up once per run from ``/instances/types``."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    offers: tuple[Offer, ...] = ()

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


def format_cents(cents: int | None) -> str:
    """4000 -> ``$40.00``; None -> ``$?``."""
    if cents is None:
        return "$?"
    sign = "-" if cents < 0 else ""
    cents = abs(cents)
    return f"{sign}${cents // 100:,}.{cents % 100:02d}"
