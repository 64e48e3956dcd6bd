"""Secret hygiene: the API key (and env secrets) never reach exception text, reprs or logs."""

from __future__ import annotations

import logging
import traceback
from collections.abc import Awaitable, Callable

import httpx
import pytest
from pydantic import SecretStr

from reconciler.api import ShadeformClient
from reconciler.errors import ApiError
from reconciler.models.api import CreateRequest, Env
from tests.api.conftest import API_KEY, ScriptedTransport, instance_body, json_response, make_client

pytestmark = pytest.mark.anyio

ENV_SECRET = "hf_env_secret_value_42"
CREATE = CreateRequest(
    cloud="hyperstack",
    region="canada-1",
    shade_instance_type="A6000",
    shade_cloud=True,
    name="t",
    envs=(Env(name="HF_TOKEN", value=SecretStr(ENV_SECRET)),),
)

FAILURES: list[httpx.Response | Exception] = [
    json_response(401, {"error": f"invalid key {API_KEY}"}),
    httpx.Response(403, text=f"forbidden for {API_KEY}"),
    json_response(404, {"message": "missing"}),
    json_response(422, {"error": "bad"}),
    httpx.Response(429, headers={"Retry-After": "1"}),
    json_response(500, {"error": "boom"}),
    httpx.Response(502),
    httpx.ConnectError("refused"),
    httpx.ReadTimeout("slow"),
    httpx.RemoteProtocolError("dropped"),
    httpx.Response(200, text="garbage"),
    json_response(
        200, {"instances": [instance_body(status="??", envs=[{"name": "X", "value": ENV_SECRET}])]}
    ),
]

CALLS: dict[str, Callable[[ShadeformClient], Awaitable[object]]] = {
    "list": lambda c: c.list_instances(),
    "info": lambda c: c.get_instance("i-1"),
    "create": lambda c: c.create_instance(CREATE),
    "delete": lambda c: c.delete_instance("i-1"),
}


def _everything_printed_about(error: BaseException) -> str:
    chain = "".join(traceback.format_exception(error))
    parts = [chain]
    current: BaseException | None = error
    while current is not None:
        parts += [str(current), repr(current), repr(vars(current))]
        current = current.__cause__ or current.__context__
    return "\n".join(parts)


@pytest.mark.parametrize("failure", FAILURES, ids=lambda f: repr(f)[:40])
@pytest.mark.parametrize("call", list(CALLS))
async def test_no_error_path_reveals_the_key(
    failure: httpx.Response | Exception, call: str, caplog: pytest.LogCaptureFixture
) -> None:
    transport = ScriptedTransport(failure)
    caplog.set_level(logging.DEBUG)
    async with make_client(transport, max_attempts=2) as client:
        try:
            await CALLS[call](client)
        except ApiError as error:
            printed = _everything_printed_about(error)
            assert API_KEY not in printed
            assert ENV_SECRET not in printed
        # (a garbage body for delete succeeds: delete ignores the body)
    logged = "\n".join(
        [r.getMessage() for r in caplog.records] + [repr(r.__dict__) for r in caplog.records]
    )
    assert API_KEY not in logged
    assert ENV_SECRET not in logged
    assert API_KEY in transport.requests[0].headers["X-API-KEY"]  # it was really sent


def test_client_repr_and_vars_hide_the_key() -> None:
    client = ShadeformClient(SecretStr(API_KEY), transport=ScriptedTransport(httpx.Response(200)))
    assert API_KEY not in repr(client)
    assert API_KEY not in str(client)


def test_create_request_repr_hides_env_values() -> None:
    assert ENV_SECRET not in repr(CREATE)
    assert ENV_SECRET not in str(CREATE)
    assert ENV_SECRET not in CREATE.model_dump_json()
