"""The HTTP surface: auth, routing, error shapes and the instance-type filters."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from reconciler.emulator import Emulator

from .conftest import Api, MakeEmulator


def test_requests_without_the_key_get_401_without_echoing_it(emulator: Emulator) -> None:
    for key in ("", "wrong-key-123"):
        caller = Api(emulator, api_key=key)
        response = caller.get("/instances")
        caller.close()
        assert response.status_code == 401
        assert response.json() == {"error": "unauthorized: missing or invalid X-API-KEY header"}
        assert "wrong-key-123" not in response.text


def test_a_custom_key_replaces_the_sandbox_key(make_emulator: MakeEmulator) -> None:
    emulator = make_emulator(api_key="my-key")
    assert Api(emulator).get("/instances").status_code == 401
    assert Api(emulator, api_key="my-key").get("/instances").status_code == 200


def test_unknown_routes_and_methods_answer_json(api: Api) -> None:
    missing = api.get("/clusters")
    assert missing.status_code == 404 and missing.json() == {"error": "not found: /v1/clusters"}
    wrong_method = api.get("/instances/create")
    assert wrong_method.status_code == 405 and "error" in wrong_method.json()
    assert wrong_method.headers["Allow"] == "POST"


@pytest.mark.parametrize(
    ("method", "path"), [("GET", "/clusters"), ("GET", "/instances/create"), ("PUT", "/volumes")]
)
def test_an_unauthenticated_caller_gets_401_before_404_or_405(
    emulator: Emulator, method: str, path: str
) -> None:
    caller = Api(emulator, api_key="")
    response = caller.request(method, path)
    caller.close()
    assert response.status_code == 401
    assert "Allow" not in response.headers


def types(api: Api, **params: str) -> list[dict[str, Any]]:
    response = api.get("/instances/types", params=params)
    assert response.status_code == 200, response.text
    found: list[dict[str, Any]] = response.json()["instance_types"]
    return found


def test_instance_types_lists_every_offer_with_spot_entries(api: Api) -> None:
    all_types = types(api)
    assert len(all_types) == 16
    a6000 = next(
        t for t in all_types if (t["cloud"], t["shade_instance_type"]) == ("hyperstack", "A6000")
    )
    assert a6000["hourly_price"] == 80
    assert a6000["configuration"]["os_options"][0] == "ubuntu22.04_cuda12.2_shade_os"
    spot = [e for e in a6000["availability"] if e["rental_type"] == "spot"]
    assert spot == [
        {
            "region": "canada-1",
            "display_name": "Canada, Montreal",
            "available": True,
            "rental_type": "spot",
            "hourly_price": "0.40",
        }
    ]


@pytest.mark.parametrize(
    ("params", "check"),
    [
        ({"cloud": "nebius"}, lambda t: t["cloud"] == "nebius"),
        ({"num_gpus": "8"}, lambda t: t["configuration"]["num_gpus"] == 8),
        ({"gpu_type": "H100"}, lambda t: t["configuration"]["gpu_type"] == "H100"),
        ({"shade_instance_type": "H200"}, lambda t: t["shade_instance_type"] == "H200"),
        (
            {"region": "canada-1"},
            lambda t: {e["region"] for e in t["availability"]} == {"canada-1"},
        ),
        ({"available": "false"}, lambda t: not any(e["available"] for e in t["availability"])),
    ],
)
def test_instance_type_filters(
    api: Api, params: dict[str, str], check: Callable[[dict[str, Any]], bool]
) -> None:
    found = types(api, **params)
    assert found
    assert all(check(t) for t in found)


def test_available_filter_applies_per_entry(api: Api) -> None:
    # datacrunch FIN-02 sells A100_80G on demand, but its spot entry has no capacity
    query = {"cloud": "datacrunch", "shade_instance_type": "A100_80G"}
    available = types(api, available="true", **query)[0]["availability"]
    assert [e["rental_type"] for e in available] == ["on_demand"]
    unavailable = types(api, available="false", **query)[0]["availability"]
    assert [e["rental_type"] for e in unavailable] == ["spot"]
    found = types(api, available="true", cloud="hyperstack", shade_instance_type="H100")
    assert [e["region"] for e in found[0]["availability"]] == ["canada-1"]


def test_sort_by_price(api: Api) -> None:
    prices = [t["hourly_price"] for t in types(api, sort="price")]
    assert prices == sorted(prices)


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"num_gpus": "eight"}, "num_gpus must be a whole number"),
        ({"available": "yes"}, "available must be true or false"),
        ({"sort": "name"}, "sort must be 'price'"),
    ],
)
def test_bad_instance_type_filters_are_400(api: Api, params: dict[str, str], message: str) -> None:
    response = api.get("/instances/types", params=params)
    assert response.status_code == 400
    assert message in response.json()["error"]


def test_capacity_changes_show_in_instance_types(emulator: Emulator, api: Api) -> None:
    emulator.set_capacity("lambdalabs", "us-east-1", "H100", available=False)
    found = types(api, cloud="lambdalabs", shade_instance_type="H100", region="us-east-1")
    assert [e["available"] for e in found[0]["availability"]] == [False]


def test_volume_types(api: Api) -> None:
    volume_types = api.get("/volumes/types").json()["volume_types"]
    assert {
        "cloud": "hyperstack",
        "region": "canada-1",
        "supports_multi_mount": False,
        "fixed_size": True,
        "price_per_gb_per_hour": "0.0001",
    } in volume_types
