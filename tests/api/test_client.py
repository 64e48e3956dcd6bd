"""ShadeformClient: endpoints, bodies, parsing, concurrency and error translation."""

from __future__ import annotations

import asyncio
import json
import ssl

import httpx
import pytest
from pydantic import SecretStr

from reconciler.api import ShadeformClient
from reconciler.api.client import _verifying_tls_context
from reconciler.errors import (
    ApiValidationError,
    AuthError,
    NotFoundError,
    ServerError,
)
from reconciler.models.api import (
    AddSshKeyRequest,
    CreateRequest,
    CreateVolumeRequest,
    Env,
    Thresholds,
    UpdateRequest,
)
from tests.api.conftest import (
    API_KEY,
    ScriptedTransport,
    instance_body,
    instance_type_body,
    json_response,
    make_client,
    ssh_key_body,
    volume_body,
)

pytestmark = pytest.mark.anyio


def _body(request: httpx.Request) -> object:
    return json.loads(request.content) if request.content else None


async def test_every_request_carries_the_api_key_header_and_a_user_agent() -> None:
    transport = ScriptedTransport(json_response(200, {"instances": []}))
    async with make_client(transport) as client:
        await client.list_instances()
    request = transport.requests[0]
    assert request.headers["X-API-KEY"] == API_KEY
    assert request.headers["User-Agent"].startswith("shadeform-reconciler/")
    assert str(request.url) == "https://api.shadeform.ai/v1/instances"


async def test_list_instances_parses_each_instance() -> None:
    transport = ScriptedTransport(
        json_response(
            200, {"instances": [instance_body("a"), instance_body("b", status="pending")]}
        )
    )
    async with make_client(transport) as client:
        instances = await client.list_instances()
    assert [(i.id, i.status) for i in instances] == [("a", "active"), ("b", "pending")]
    assert instances[0].configuration and instances[0].configuration.os == (
        "ubuntu22.04_cuda12.2_shade_os"
    )


async def test_get_instance_quotes_the_id_into_the_path() -> None:
    transport = ScriptedTransport(json_response(200, instance_body("x")))
    async with make_client(transport) as client:
        await client.get_instance("../delete me")
    assert transport.requests[0].url.raw_path == b"/v1/instances/..%2Fdelete%20me/info"


async def test_get_instance_raises_not_found_with_the_api_message() -> None:
    transport = ScriptedTransport(json_response(404, {"error": "instance not found"}))
    async with make_client(transport) as client:
        with pytest.raises(NotFoundError) as caught:
            await client.get_instance("gone")
    assert caught.value.status == 404
    assert caught.value.endpoint == "/instances/gone/info"
    assert caught.value.api_message == "instance not found"
    assert len(transport.requests) == 1  # 404 is an answer, not a transient failure


async def test_get_instances_maps_each_id_and_none_for_missing_in_input_order() -> None:
    def answer(request: httpx.Request) -> httpx.Response:
        instance_id = request.url.path.split("/")[-2]
        if instance_id.startswith("gone"):
            return json_response(404, {"error": "not found"})
        return json_response(200, instance_body(instance_id))

    transport = ScriptedTransport(answer)
    async with make_client(transport, parallelism=3) as client:
        infos = await client.get_instances(["b", "gone-1", "a", "b", "c", "gone-2"])
    assert list(infos) == ["b", "gone-1", "a", "c", "gone-2"]
    assert {k: v.id if v else None for k, v in infos.items()} == {
        "b": "b",
        "gone-1": None,
        "a": "a",
        "c": "c",
        "gone-2": None,
    }
    assert len(transport.requests) == 5  # duplicates fetched once


async def test_get_instances_of_nothing_sends_nothing() -> None:
    transport = ScriptedTransport(json_response(200, {}))
    async with make_client(transport) as client:
        assert await client.get_instances([]) == {}
    assert transport.requests == []


class GatedTransport(httpx.AsyncBaseTransport):
    """Holds each request for a few event-loop turns and records the peak in flight."""

    def __init__(self) -> None:
        self.in_flight = 0
        self.peak = 0
        self.count = 0

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.in_flight += 1
        self.count += 1
        self.peak = max(self.peak, self.in_flight)
        for _ in range(20):
            await asyncio.sleep(0)
        self.in_flight -= 1
        instance_id = request.url.path.split("/")[-2]
        return httpx.Response(200, json=instance_body(instance_id), request=request)


@pytest.mark.parametrize("parallelism", [1, 8])
async def test_get_instances_runs_concurrently_up_to_the_parallelism(parallelism: int) -> None:
    transport = GatedTransport()
    async with make_client(transport, parallelism=parallelism) as client:
        infos = await client.get_instances([f"i-{n}" for n in range(50)])
    assert len(infos) == 50 and transport.count == 50
    assert transport.peak == parallelism


async def test_parallelism_also_bounds_separate_concurrent_calls() -> None:
    transport = GatedTransport()
    async with make_client(transport, parallelism=4) as client:
        await asyncio.gather(*(client.get_instance(f"i-{n}") for n in range(30)))
    assert transport.peak == 4


async def test_get_instances_raises_the_first_real_failure_and_stops() -> None:
    def answer(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/bad/info"):
            return json_response(401, {"error": "invalid api key"})
        return json_response(200, instance_body(request.url.path.split("/")[-2]))

    transport = ScriptedTransport(answer)
    async with make_client(transport, parallelism=2) as client:
        with pytest.raises(AuthError):
            await client.get_instances(["a", "bad", *[f"i-{n}" for n in range(100)]])
    assert len(transport.requests) < 20


async def test_create_instance_sends_the_body_without_nulls_and_reveals_secrets() -> None:
    transport = ScriptedTransport(json_response(200, {"id": "new-id"}))
    request = CreateRequest(
        cloud="hyperstack",
        region="canada-1",
        shade_instance_type="A6000",
        shade_cloud=True,
        name="trainer-0",
        tags=("a", "b"),
        envs=(Env(name="TOKEN", value=SecretStr("hf_secret")),),
    )
    async with make_client(transport) as client:
        assert await client.create_instance(request) == "new-id"
    sent = transport.requests[0]
    assert (sent.method, sent.url.path) == ("POST", "/v1/instances/create")
    assert sent.headers["Content-Type"] == "application/json"
    assert _body(sent) == {
        "cloud": "hyperstack",
        "region": "canada-1",
        "shade_instance_type": "A6000",
        "shade_cloud": True,
        "name": "trainer-0",
        "tags": ["a", "b"],
        "envs": [{"name": "TOKEN", "value": "hf_secret"}],
    }


async def test_create_rejected_by_validation_is_a_validation_error() -> None:
    transport = ScriptedTransport(json_response(400, {"error": "unknown region moon-1"}))
    request = CreateRequest(
        cloud="hyperstack", region="moon-1", shade_instance_type="A6000", shade_cloud=True, name="x"
    )
    async with make_client(transport) as client:
        with pytest.raises(ApiValidationError, match="unknown region moon-1"):
            await client.create_instance(request)


@pytest.mark.parametrize(
    ("update", "expected"),
    [
        (UpdateRequest(name="renamed"), {"name": "renamed"}),
        (UpdateRequest(auto_delete=None), {"auto_delete": None}),
        (UpdateRequest(tags=None, alert=None), {"tags": None, "alert": None}),
        (
            UpdateRequest(alert=Thresholds(spend_threshold="5.00")),
            {"alert": {"spend_threshold": "5.00"}},
        ),
        (
            # a nested None is a key nobody set: never sent (the spec has no nullable keys)
            UpdateRequest(alert=Thresholds(spend_threshold="5.00", date_threshold=None)),
            {"alert": {"spend_threshold": "5.00"}},
        ),
        (UpdateRequest(tags=()), {"tags": []}),
    ],
)
async def test_update_omits_unset_fields_and_sends_null_for_deletes(
    update: UpdateRequest, expected: dict[str, object]
) -> None:
    transport = ScriptedTransport(httpx.Response(200))
    async with make_client(transport) as client:
        await client.update_instance("i-1", update)
    sent = transport.requests[0]
    assert (sent.method, sent.url.path) == ("POST", "/v1/instances/i-1/update")
    assert _body(sent) == expected


async def test_delete_and_restart_post_to_their_endpoints() -> None:
    transport = ScriptedTransport(httpx.Response(200))
    async with make_client(transport) as client:
        await client.delete_instance("i-1")
        await client.restart_instance("i-2")
    assert [(r.method, r.url.path) for r in transport.requests] == [
        ("POST", "/v1/instances/i-1/delete"),
        ("POST", "/v1/instances/i-2/restart"),
    ]


async def test_delete_of_a_missing_instance_is_not_found() -> None:
    transport = ScriptedTransport(json_response(404, {"error": "not found"}))
    async with make_client(transport) as client:
        with pytest.raises(NotFoundError):
            await client.delete_instance("gone")


async def test_instance_type_filters_become_query_parameters() -> None:
    transport = ScriptedTransport(json_response(200, {"instance_types": [instance_type_body()]}))
    async with make_client(transport) as client:
        types = await client.list_instance_types(
            cloud="hyperstack", num_gpus=8, available=True, sort="price"
        )
        await client.list_instance_types(available=False)
        await client.list_instance_types()
    assert types[0].shade_instance_type == "A6000"
    assert [dict(r.url.params) for r in transport.requests] == [
        {"cloud": "hyperstack", "num_gpus": "8", "available": "true", "sort": "price"},
        {"available": "false"},
        {},
    ]


async def test_volume_endpoints() -> None:
    transport = ScriptedTransport(
        json_response(200, {"volumes": [volume_body()]}),
        json_response(200, volume_body(name="one")),
        json_response(200, {"id": "vol-new"}),
        httpx.Response(200),
        json_response(
            200,
            {
                "volume_types": [
                    {
                        "cloud": "hyperstack",
                        "region": "canada-1",
                        "supports_multi_mount": False,
                        "fixed_size": True,
                        "price_per_gb_per_hour": "0.0001",
                    }
                ]
            },
        ),
    )
    async with make_client(transport) as client:
        assert (await client.list_volumes())[0].name == "datasets"
        assert (await client.get_volume("v-1")).name == "one"
        new_id = await client.create_volume(
            CreateVolumeRequest(cloud="hyperstack", region="canada-1", size_in_gb=100, name="d")
        )
        await client.delete_volume("v-1")
        types = await client.list_volume_types()
    assert new_id == "vol-new"
    assert types[0].price_per_gb_per_hour == "0.0001"
    assert [(r.method, r.url.path) for r in transport.requests] == [
        ("GET", "/v1/volumes"),
        ("GET", "/v1/volumes/v-1/info"),
        ("POST", "/v1/volumes/create"),
        ("POST", "/v1/volumes/v-1/delete"),
        ("GET", "/v1/volumes/types"),
    ]
    assert _body(transport.requests[2]) == {
        "cloud": "hyperstack",
        "region": "canada-1",
        "size_in_gb": 100,
        "name": "d",
    }


async def test_ssh_key_endpoints() -> None:
    transport = ScriptedTransport(
        json_response(200, {"ssh_keys": [ssh_key_body()]}),
        json_response(200, ssh_key_body(name="one")),
        json_response(200, {"id": "key-new"}),
        httpx.Response(200),
    )
    async with make_client(transport) as client:
        assert (await client.list_ssh_keys())[0].name == "laptop"
        assert (await client.get_ssh_key("k-1")).name == "one"
        new_id = await client.add_ssh_key(AddSshKeyRequest(name="ci", public_key="ssh-ed25519 AA"))
        await client.delete_ssh_key("k-1")
    assert new_id == "key-new"
    assert [(r.method, r.url.path) for r in transport.requests] == [
        ("GET", "/v1/sshkeys"),
        ("GET", "/v1/sshkeys/k-1/info"),
        ("POST", "/v1/sshkeys/add"),
        ("POST", "/v1/sshkeys/k-1/delete"),
    ]


async def test_a_response_of_the_wrong_shape_is_a_server_error_naming_the_field() -> None:
    transport = ScriptedTransport(json_response(200, {"instances": [{"id": "x"}]}))
    async with make_client(transport) as client:
        with pytest.raises(ServerError, match=r"instances\.0\.status: Field required"):
            await client.list_instances()


async def test_a_non_json_success_body_is_a_server_error() -> None:
    transport = ScriptedTransport(httpx.Response(200, text="<html>gateway</html>"))
    async with make_client(transport) as client:
        with pytest.raises(ServerError, match="could not read"):
            await client.list_instances()


async def test_forbidden_is_an_auth_error() -> None:
    transport = ScriptedTransport(json_response(403, {"message": "forbidden"}))
    async with make_client(transport) as client:
        with pytest.raises(AuthError, match="Shadeform said: forbidden"):
            await client.list_ssh_keys()


async def test_a_non_retryable_server_error_is_not_retried() -> None:
    transport = ScriptedTransport(json_response(501, {"error": "boom"}))
    async with make_client(transport) as client:
        with pytest.raises(ServerError, match="boom"):
            await client.list_instances()
    assert len(transport.requests) == 1


def test_repr_shows_where_not_the_key() -> None:
    client = ShadeformClient(API_KEY, transport=ScriptedTransport(httpx.Response(200)))
    assert repr(client) == (
        "ShadeformClient(base_url='https://api.shadeform.ai/v1', parallelism=64)"
    )


def test_parallelism_must_be_positive() -> None:
    with pytest.raises(ValueError):
        ShadeformClient(API_KEY, parallelism=0)


def test_tls_verification_is_on() -> None:
    context = _verifying_tls_context()
    assert context.verify_mode == ssl.CERT_REQUIRED
    assert context.check_hostname is True
