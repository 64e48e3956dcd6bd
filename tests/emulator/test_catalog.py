"""The catalog contract the manifest examples and other tests rely on."""

from __future__ import annotations

import pytest

from reconciler.emulator.catalog import SHAPES, Catalog, cents_to_dollars

ON_DEMAND_OFFERS = [
    ("hyperstack", "canada-1", "A6000"),
    ("hyperstack", "canada-1", "H100"),
    ("hyperstack", "us-1", "A100_80G"),
    ("lambdalabs", "us-east-1", "A100_80G"),
    ("lambdalabs", "us-east-1", "H100"),
    ("lambdalabs", "us-east-1", "8xH100"),
    ("datacrunch", "FIN-01", "H100"),
    ("datacrunch", "FIN-01", "H200"),
    ("nebius", "eu-north1", "8xB200"),
    ("nebius", "eu-north1", "B200"),
]
SPOT_OFFERS = [
    ("hyperstack", "canada-1", "A6000"),
    ("datacrunch", "FIN-01", "H100"),
    ("lambdalabs", "us-east-1", "A100_80G"),
]


def test_shade_instance_types_are_the_contracted_ones() -> None:
    one = {"A6000", "A100_80G", "H100", "H200", "B200"}
    eight = {"8xA100_80G", "8xH100", "8xH200", "8xB200"}
    assert set(SHAPES) == one | eight
    assert all(SHAPES[t].num_gpus == 1 for t in one)
    assert all(SHAPES[t].num_gpus == 8 and SHAPES[t].nvlink for t in eight)


@pytest.mark.parametrize(("cloud", "region", "shade_type"), ON_DEMAND_OFFERS)
def test_contracted_offers_are_available_on_demand(
    cloud: str, region: str, shade_type: str
) -> None:
    offer = Catalog().offer(cloud, shade_type)
    assert offer is not None
    found = offer.region(region)
    assert found is not None and found.available


@pytest.mark.parametrize(("cloud", "region", "shade_type"), SPOT_OFFERS)
def test_spot_offers_cost_40_to_60_percent_of_on_demand(
    cloud: str, region: str, shade_type: str
) -> None:
    offer = Catalog().offer(cloud, shade_type)
    assert offer is not None
    found = offer.region(region)
    assert found is not None and found.spot_price is not None and found.spot_available
    assert 0.4 <= found.spot_price / offer.hourly_price <= 0.6


def test_prices_are_integer_cents_in_the_contracted_range() -> None:
    catalog = Catalog()
    prices = {(o.cloud, o.shade_instance_type): o.hourly_price for o in catalog.offers}
    assert prices["hyperstack", "A6000"] == 80
    assert prices["lambdalabs", "H100"] == 249
    assert prices["lambdalabs", "8xH100"] == 1992
    assert all(isinstance(o.hourly_price, int) and o.hourly_price > 0 for o in catalog.offers)


def test_every_offer_has_both_contracted_os_options() -> None:
    for offer in Catalog().offers:
        assert offer.os_options[0] == "ubuntu22.04_cuda12.2_shade_os"
        assert "ubuntu20.04_cuda12.0_shade_os" in offer.os_options


def test_some_offers_are_out_of_capacity_for_realism() -> None:
    regions = [r for o in Catalog().offers for r in o.regions]
    assert any(not r.available for r in regions)
    assert any(r.spot_price is not None and not r.spot_available for r in regions)


def test_lookups_answer_none_for_unknown_offers() -> None:
    catalog = Catalog()
    assert catalog.offer("lambdalabs", "B200") is None
    assert catalog.offer("aws", "H100") is None
    assert catalog.volume_type("hyperstack", "norway-1") is None
    assert catalog.clouds() == ["datacrunch", "hyperstack", "lambdalabs", "nebius"]


def test_cents_render_as_dollar_strings() -> None:
    assert cents_to_dollars(249) == "2.49"
    assert cents_to_dollars(0) == "0.00"
    assert cents_to_dollars(1992) == "19.92"
