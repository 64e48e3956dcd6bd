from __future__ import annotations

import httpx
import pytest

from reconciler.api.translate import (
    MAX_MESSAGE_CHARS,
    api_message,
    error_for_status,
    error_for_transport,
)
from reconciler.errors import (
    ApiError,
    ApiValidationError,
    AuthError,
    CapacityRefusedError,
    ConflictError,
    NotFoundError,
    RateLimitedError,
    ServerError,
    TransportError,
)

SECRET = "sk-secret-123"


def _response(status: int, **kwargs: object) -> httpx.Response:
    return httpx.Response(status, **kwargs)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("status", "kind"),
    [
        (400, ApiValidationError),
        (401, AuthError),
        (403, AuthError),
        (404, NotFoundError),
        (409, ConflictError),
        (422, ApiValidationError),
        (429, RateLimitedError),
        (500, ServerError),
        (503, ServerError),
        (418, ApiError),
    ],
)
def test_each_status_maps_to_its_exception(status: int, kind: type[ApiError]) -> None:
    error = error_for_status(
        _response(status, json={"error": "nope"}),
        method="GET",
        endpoint="/instances",
        attempts=1,
        secret=SECRET,
    )
    assert type(error) is kind
    assert error.status == status
    assert error.method == "GET"
    assert error.endpoint == "/instances"
    assert error.api_message == "nope"
    assert f"(GET /instances -> {status})" in str(error)
    assert error.exit_code == 6


def test_auth_error_tells_the_user_which_setting_to_check() -> None:
    error = error_for_status(
        _response(401), method="GET", endpoint="/instances", attempts=1, secret=SECRET
    )
    assert "SHADEFORM_API_KEY" in str(error)


def test_retried_errors_say_how_many_attempts_were_made() -> None:
    error = error_for_status(_response(503), method="GET", endpoint="/x", attempts=5, secret=SECRET)
    assert "after 5 attempts" in str(error)


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ({"json": {"error": "capacity exhausted"}}, "capacity exhausted"),
        ({"json": {"message": "bad region"}}, "bad region"),
        ({"json": {"other": 1}}, '{"other":1}'),
        ({"text": "upstream   connect error\n"}, "upstream connect error"),
        ({"text": ""}, None),
    ],
)
def test_api_message_prefers_error_then_message_then_text(
    body: dict[str, object], expected: str | None
) -> None:
    assert api_message(_response(400, **body), secret=SECRET) == expected


def test_api_message_is_shortened() -> None:
    message = api_message(_response(500, text="x" * 5000), secret=SECRET)
    assert message is not None and len(message) == MAX_MESSAGE_CHARS


def test_api_message_scrubs_an_echoed_key() -> None:
    message = api_message(_response(401, json={"error": f"bad key {SECRET}"}), secret=SECRET)
    assert message == "bad key [redacted]"


@pytest.mark.parametrize(
    ("exc", "description"),
    [
        (httpx.ConnectError("refused"), "could not connect"),
        (httpx.ConnectTimeout("t"), "timed out connecting"),
        (httpx.ReadTimeout("t"), "timed out waiting for the response"),
        (httpx.RemoteProtocolError("x"), "closed the connection"),
    ],
)
def test_transport_errors_describe_what_happened(
    exc: httpx.TransportError, description: str
) -> None:
    error = error_for_transport(
        exc, method="GET", endpoint="/instances", base_url="http://127.0.0.1:8081/v1", attempts=3
    )
    assert isinstance(error, TransportError)
    assert description in str(error)
    assert "Could not reach Shadeform at http://127.0.0.1:8081/v1:" in str(error)  # port too
    assert "SHADEFORM_API_URL" in str(error)
    assert "after 3 attempts" in str(error)


@pytest.mark.parametrize(
    ("base_url", "hint"),
    [("http://127.0.0.1:8081", "(is /v1 missing?)"), ("http://127.0.0.1:8081/api/v1", "")],
)
def test_a_404_of_a_top_level_path_says_the_url_is_off(base_url: str, hint: str) -> None:
    error = error_for_status(
        _response(404, json={"detail": "Not Found"}),
        method="GET",
        endpoint="/instances",
        attempts=1,
        secret=SECRET,
        base_url=base_url,
    )
    assert isinstance(error, NotFoundError)
    assert f"Shadeform's API has no /instances at {base_url}{' ' + hint if hint else ''}." in str(
        error
    )
    assert "SHADEFORM_API_URL" in str(error)
    single = error_for_status(
        _response(404), method="GET", endpoint="/instances/i-1/info", attempts=1, secret=SECRET
    )
    assert "Not found on Shadeform." in str(single)  # a missing instance is just missing


def _create_error(status: int, body: object) -> ApiError:
    return error_for_status(
        _response(status, json=body),
        method="POST",
        endpoint="/instances/create",
        attempts=1,
        secret=SECRET,
    )


@pytest.mark.parametrize(
    ("status", "body"),
    [
        (409, {"error": {"code": "OUT_OF_STOCK"}}),  # what third-party clients see
        (409, {"error": {"code": "out_of_stock", "message": "sold out"}}),
        (400, {"error": {"code": "INSUFFICIENT_CAPACITY", "message": "try later"}}),
        (422, {"code": "NO_CAPACITY", "error": "none left"}),
        (409, {"error": "sold out"}),  # a bare 409 from a create: the offer sold out
    ],
)
def test_a_capacity_refusal_is_recognised_by_status_and_code(status: int, body: object) -> None:
    error = _create_error(status, body)
    assert isinstance(error, CapacityRefusedError)
    assert isinstance(error, ApiValidationError)  # still "Shadeform rejected it"


@pytest.mark.parametrize(
    ("status", "body"),
    [
        (400, {"error": "not enough capacity in the request's volume_ids"}),  # words, no code
        (422, {"error": "out of stock"}),
        (409, {"error": {"code": "NAME_TAKEN", "message": "capacity of names exhausted"}}),
    ],
)
def test_words_in_a_message_never_make_a_capacity_refusal(status: int, body: object) -> None:
    error = _create_error(status, body)
    assert not isinstance(error, CapacityRefusedError)
    assert isinstance(error, ApiValidationError)


def test_a_nested_error_object_gives_its_message() -> None:
    error = _create_error(409, {"error": {"code": "OUT_OF_STOCK", "message": "sold out"}})
    assert error.api_message == "sold out"


def test_a_409_from_an_update_is_a_conflict_not_a_capacity_refusal() -> None:
    error = error_for_status(
        _response(409, json={"error": "conflict"}),
        method="POST",
        endpoint="/instances/i-1/update",
        attempts=1,
        secret=SECRET,
    )
    assert type(error) is ConflictError
    assert isinstance(error, ApiValidationError)  # still "Shadeform rejected it"


def _delete_error(endpoint: str, body: object) -> ApiError:
    return error_for_status(
        _response(409, json=body), method="POST", endpoint=endpoint, attempts=1, secret=SECRET
    )


DELETE_ENDPOINTS = ["/volumes/v-1/delete", "/sshkeys/k-1/delete", "/instances/i-1/delete"]


@pytest.mark.parametrize("endpoint", DELETE_ENDPOINTS)
@pytest.mark.parametrize(
    "body",
    [
        {"error": {"code": "RESOURCE_IN_USE", "message": "volume v-1 is mounted by i-1"}},
        {"error": "volume v-1 is mounted by i-1"},  # a bare 409
        {"error": {"code": "OUT_OF_STOCK", "message": "even a capacity code"}},
    ],
)
def test_a_409_from_a_delete_is_a_conflict_never_a_capacity_refusal(
    endpoint: str, body: object
) -> None:
    error = _delete_error(endpoint, body)
    assert type(error) is ConflictError
    assert str(error).startswith("Shadeform refused the delete: it is still in use.")
    assert f"(POST {endpoint} -> 409)" in str(error)
    assert error.exit_code == 6


def test_a_conflict_says_what_shadeform_said() -> None:
    body = {"error": {"code": "RESOURCE_IN_USE", "message": "volume v-1 is mounted by i-1"}}
    error = _delete_error("/volumes/v-1/delete", body)
    assert error.api_message == "volume v-1 is mounted by i-1"
    assert "Shadeform said: volume v-1 is mounted by i-1" in str(error)


def test_an_in_use_code_on_a_create_is_a_conflict_and_a_bare_409_still_capacity() -> None:
    in_use = _create_error(409, {"error": {"code": "RESOURCE_IN_USE", "message": "in use"}})
    assert type(in_use) is ConflictError
    bare = _create_error(409, {"error": "sold out"})
    assert type(bare) is CapacityRefusedError
