"""ShadeformClient retries: what is retried, how long it waits, and when a create is ambiguous."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

import httpx
import pytest

from reconciler.api import ShadeformClient
from reconciler.errors import (
    AmbiguousCreateError,
    ApiValidationError,
    RateLimitedError,
    ServerError,
    TransportError,
)
from reconciler.models.api import (
    AddSshKeyRequest,
    CreateRequest,
    CreateVolumeRequest,
    UpdateRequest,
)
from tests.api.conftest import (
    FakeClock,
    ScriptedTransport,
    instance_body,
    json_response,
    make_client,
)

pytestmark = pytest.mark.anyio

CREATE = CreateRequest(
    cloud="hyperstack", region="canada-1", shade_instance_type="A6000", shade_cloud=True, name="t"
)
OK_LIST = json_response(200, {"instances": [instance_body()]})
CREATED = json_response(200, {"id": "new-id"})


def _read_timeout() -> httpx.ReadTimeout:
    return httpx.ReadTimeout("timed out")


# --- reads, updates and deletes are retried ----------------------------------------------------


@pytest.mark.parametrize("status", [429, 500, 502, 503, 504])
async def test_reads_are_retried_on_transient_statuses(status: int) -> None:
    clock = FakeClock()
    transport = ScriptedTransport(json_response(status, {"error": "busy"}), OK_LIST)
    async with make_client(transport, clock) as client:
        instances = await client.list_instances()
    assert len(instances) == 1
    assert len(transport.requests) == 2
    assert clock.sleeps == [0.125]  # random 0.5 x base 0.25


@pytest.mark.parametrize(
    "failure",
    [
        httpx.ConnectError("refused"),
        httpx.ConnectTimeout("slow"),
        httpx.ReadTimeout("slow"),
        httpx.RemoteProtocolError("dropped"),
        httpx.ReadError("reset"),
    ],
)
async def test_reads_are_retried_on_connection_failures(failure: Exception) -> None:
    transport = ScriptedTransport(failure, OK_LIST)
    async with make_client(transport) as client:
        assert len(await client.list_instances()) == 1
    assert len(transport.requests) == 2


async def test_backoff_grows_exponentially_with_jitter() -> None:
    clock = FakeClock()
    transport = ScriptedTransport(*[httpx.Response(503)] * 4, OK_LIST)
    async with make_client(transport, clock, max_attempts=5) as client:
        await client.list_instances()
    assert clock.sleeps == [0.125, 0.25, 0.5, 1.0]


async def test_retry_after_is_honoured() -> None:
    clock = FakeClock()
    transport = ScriptedTransport(
        json_response(429, {"error": "slow down"}, headers={"Retry-After": "7"}), OK_LIST
    )
    async with make_client(transport, clock) as client:
        await client.list_instances()
    assert clock.sleeps == [7.0]


async def test_attempts_are_bounded() -> None:
    clock = FakeClock()
    transport = ScriptedTransport(json_response(502, {"error": "bad gateway"}))
    async with make_client(transport, clock, max_attempts=4) as client:
        with pytest.raises(ServerError) as caught:
            await client.list_instances()
    assert len(transport.requests) == 4
    assert len(clock.sleeps) == 3
    assert "after 4 attempts" in str(caught.value)
    assert caught.value.status == 502


async def test_total_time_is_bounded_even_with_attempts_left() -> None:
    clock = FakeClock()

    def slow_failure(request: httpx.Request) -> httpx.Response:
        clock.now += 25  # each attempt takes 25 s before failing
        return httpx.Response(503, request=request)

    transport = ScriptedTransport(slow_failure)
    async with make_client(transport, clock, max_attempts=50) as client:
        with pytest.raises(ServerError):
            await client.list_instances()
    assert len(transport.requests) == 3  # 25 + 25 + 25 > the 60 s budget
    assert clock.now < 80


async def test_a_retry_after_beyond_the_budget_gives_up_at_once() -> None:
    clock = FakeClock()
    transport = ScriptedTransport(httpx.Response(429, headers={"Retry-After": "3600"}))
    async with make_client(transport, clock) as client:
        with pytest.raises(RateLimitedError):
            await client.list_instances()
    assert clock.sleeps == []
    assert len(transport.requests) == 1


async def test_persistent_connection_failure_becomes_a_transport_error() -> None:
    transport = ScriptedTransport(httpx.ConnectError("refused"))
    async with make_client(transport, max_attempts=3) as client:
        with pytest.raises(TransportError, match="could not connect after 3 attempts") as caught:
            await client.list_instances()
    assert isinstance(caught.value.__cause__, httpx.ConnectError)
    assert len(transport.requests) == 3


@pytest.mark.parametrize(
    "call",
    [
        lambda c: c.update_instance("i-1", UpdateRequest(name="n")),
        lambda c: c.delete_instance("i-1"),
        lambda c: c.delete_volume("v-1"),
        lambda c: c.delete_ssh_key("k-1"),
    ],
    ids=["update", "delete", "delete_volume", "delete_ssh_key"],
)
async def test_updates_and_deletes_are_retried_even_after_sending(
    call: Callable[[ShadeformClient], Awaitable[None]],
) -> None:
    transport = ScriptedTransport(
        _read_timeout(), httpx.Response(500), httpx.Response(503), httpx.Response(200)
    )
    async with make_client(transport) as client:
        await call(client)
    assert len(transport.requests) == 4


@pytest.mark.parametrize(
    "call",
    [
        lambda c: c.list_instances(),
        lambda c: c.get_instance("i-1"),
        lambda c: c.list_instance_types(),
    ],
    ids=["list", "info", "types"],
)
async def test_every_safe_read_is_retried_on_500(
    call: Callable[[ShadeformClient], Awaitable[object]],
) -> None:
    transport = ScriptedTransport(
        json_response(500, {"error": "internal"}),
        json_response(500, {"error": "internal"}),
        lambda request: (
            OK_LIST
            if request.url.path.endswith("/instances")
            else json_response(200, {"instance_types": []})
            if request.url.path.endswith("/types")
            else json_response(200, instance_body())
        ),
    )
    async with make_client(transport) as client:
        await call(client)
    assert len(transport.requests) == 3


async def test_a_create_answered_500_is_never_resent() -> None:
    transport = ScriptedTransport(json_response(500, {"error": "internal"}), CREATED)
    async with make_client(transport) as client:
        with pytest.raises(AmbiguousCreateError):
            await client.create_instance(CREATE)
    assert len(transport.requests) == 1


# --- creates are never resent once they may have arrived -----------------------------------


@pytest.mark.parametrize(
    ("failure", "reason"),
    [
        (httpx.ReadTimeout("slow"), "timed out waiting for the response"),
        (httpx.WriteTimeout("slow"), "timed out sending the request"),
        (httpx.RemoteProtocolError("dropped"), "closed the connection"),
        (httpx.ReadError("reset"), "failed while reading"),
        (json_response(500, {"error": "internal"}), "HTTP 500"),
        (json_response(502, {"error": "bad gateway"}), "HTTP 502"),
        (httpx.Response(503), "HTTP 503"),
        (httpx.Response(504), "HTTP 504"),
        (httpx.Response(200, text="not json"), "could not be read"),
        (json_response(200, {"no_id": True}), "could not be read"),
    ],
)
async def test_a_create_that_may_have_arrived_is_ambiguous_and_not_resent(
    failure: httpx.Response | Exception, reason: str
) -> None:
    clock = FakeClock()
    transport = ScriptedTransport(failure, CREATED)
    async with make_client(transport, clock) as client:
        with pytest.raises(AmbiguousCreateError) as caught:
            await client.create_instance(CREATE)
    assert len(transport.requests) == 1
    assert clock.sleeps == []
    assert reason in str(caught.value)
    assert "Look for the instance (by its tags)" in str(caught.value)
    assert caught.value.endpoint == "/instances/create"
    assert caught.value.exit_code == 6


@pytest.mark.parametrize(
    "unsent",
    [httpx.ConnectError("refused"), httpx.ConnectTimeout("slow"), httpx.PoolTimeout("busy")],
)
async def test_a_create_that_provably_never_left_is_retried(unsent: Exception) -> None:
    transport = ScriptedTransport(unsent, CREATED)
    async with make_client(transport) as client:
        assert await client.create_instance(CREATE) == "new-id"
    assert len(transport.requests) == 2


async def test_a_rate_limited_create_is_retried_after_retry_after() -> None:
    clock = FakeClock()
    transport = ScriptedTransport(
        json_response(429, {"error": "rate limited"}, headers={"Retry-After": "2"}), CREATED
    )
    async with make_client(transport, clock) as client:
        assert await client.create_instance(CREATE) == "new-id"
    assert clock.sleeps == [2.0]


async def test_a_create_rate_limited_until_the_end_is_rate_limited_not_ambiguous() -> None:
    transport = ScriptedTransport(json_response(429, {"error": "rate limited"}))
    async with make_client(transport, max_attempts=3) as client:
        with pytest.raises(RateLimitedError) as caught:
            await client.create_instance(CREATE)
    assert not isinstance(caught.value, AmbiguousCreateError)
    assert len(transport.requests) == 3


async def test_a_create_rejected_outright_is_not_ambiguous() -> None:
    transport = ScriptedTransport(json_response(409, {"error": "capacity exhausted"}))
    async with make_client(transport) as client:
        with pytest.raises(ApiValidationError, match="capacity exhausted"):
            await client.create_instance(CREATE)
    assert len(transport.requests) == 1


async def test_volume_and_ssh_key_creates_are_ambiguous_too() -> None:
    transport = ScriptedTransport(_read_timeout())
    async with make_client(transport) as client:
        with pytest.raises(AmbiguousCreateError, match="Look for the volume"):
            await client.create_volume(
                CreateVolumeRequest(cloud="hyperstack", region="canada-1", size_in_gb=1, name="v")
            )
        with pytest.raises(AmbiguousCreateError, match="Look for the SSH key"):
            await client.add_ssh_key(AddSshKeyRequest(name="k", public_key="ssh-ed25519 AA"))
    assert len(transport.requests) == 2


# --- restart is sent at most once when its outcome is unknown -----------------------------


@pytest.mark.parametrize(
    ("failure", "kind"),
    [(httpx.ReadTimeout("slow"), TransportError), (httpx.Response(503), ServerError)],
)
async def test_restart_is_not_repeated_after_an_unknown_outcome(
    failure: httpx.Response | Exception, kind: type[Exception]
) -> None:
    transport = ScriptedTransport(failure, httpx.Response(200))
    async with make_client(transport) as client:
        with pytest.raises(kind):
            await client.restart_instance("i-1")
    assert len(transport.requests) == 1


async def test_restart_is_retried_when_it_never_left() -> None:
    transport = ScriptedTransport(httpx.ConnectError("refused"), httpx.Response(200))
    async with make_client(transport) as client:
        await client.restart_instance("i-1")
    assert len(transport.requests) == 2


# --- pacing and logging ---------------------------------------------------------------------


async def test_client_side_rate_limit_paces_requests() -> None:
    clock = FakeClock()
    transport = ScriptedTransport(OK_LIST)
    async with make_client(transport, clock, rate_limit_per_second=5) as client:
        for _ in range(5 + 10):
            await client.list_instances()
    assert clock.now == pytest.approx(10 / 5)


async def test_retries_are_logged_at_debug(caplog: pytest.LogCaptureFixture) -> None:
    transport = ScriptedTransport(httpx.Response(503), OK_LIST)
    with caplog.at_level(logging.DEBUG, logger="reconciler.api.client"):
        async with make_client(transport) as client:
            await client.list_instances()
    retries = [r for r in caplog.records if r.name == "reconciler.api.client"]
    assert len(retries) == 1
    assert retries[0].levelno == logging.DEBUG
    assert "retrying GET /instances after HTTP 503 (attempt 1 of 5)" in retries[0].getMessage()


async def test_an_undecodable_body_is_translated_never_leaked() -> None:
    def garbled(request: httpx.Request) -> httpx.Response:
        return httpx.Response(
            200,
            headers={"Content-Encoding": "gzip"},
            stream=httpx.ByteStream(b"not gzip"),
            request=request,
        )

    transport = ScriptedTransport(garbled)
    async with make_client(transport, max_attempts=2) as client:
        with pytest.raises(TransportError, match="could not be decoded"):
            await client.list_instances()
        with pytest.raises(AmbiguousCreateError, match="could not be decoded"):
            await client.create_instance(CREATE)
