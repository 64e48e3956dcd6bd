"""Turning HTTP failures into the project's exceptions (``reconciler.errors``).

Every error names the method, the endpoint path (never a query string, host credentials or
headers) and, when Shadeform said something, its message. The API key is scrubbed from any
text that came from the network, in case a server echoes it back.
"""

from __future__ import annotations

import json

import httpx
from pydantic import ValidationError

from reconciler.api.config import DEFAULT_BASE_URL
from reconciler.errors import (
    AmbiguousCreateError,
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

MAX_MESSAGE_CHARS = 300

_CREATED = {
    "/instances/create": "instance (by its tags)",
    "/volumes/create": "volume (by its name)",
    "/sshkeys/add": "SSH key (by its name)",
}
REDACTED = "[redacted]"
_COLLECTIONS = frozenset(
    {"/instances", "/instances/types", "/volumes", "/volumes/types", "/sshkeys"}
)

_TRANSPORT_DESCRIPTIONS: tuple[tuple[type[httpx.RequestError], str], ...] = (
    (httpx.ConnectTimeout, "timed out connecting"),
    (httpx.ReadTimeout, "timed out waiting for the response"),
    (httpx.WriteTimeout, "timed out sending the request"),
    (httpx.PoolTimeout, "timed out waiting for a free connection"),
    (httpx.ConnectError, "could not connect"),
    (httpx.ReadError, "the connection failed while reading the response"),
    (httpx.WriteError, "the connection failed while sending the request"),
    (httpx.RemoteProtocolError, "the server closed the connection without a valid response"),
    (httpx.ProxyError, "the proxy failed"),
    (httpx.DecodingError, "the response body could not be decoded"),
)


def scrub(text: str, secret: str) -> str:
    return text.replace(secret, REDACTED) if secret else text


def _shorten(text: str) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= MAX_MESSAGE_CHARS else flat[: MAX_MESSAGE_CHARS - 1] + "…"


# Error codes that mean "this offer has no capacity right now". The spec is silent on error
# bodies; third-party Shadeform clients see 409 with {"error": {"code": "OUT_OF_STOCK"}}, and
# the other spellings are accepted leniently. Only a create can be refused for capacity; any
# other 409 (e.g. the emulator's RESOURCE_IN_USE on a delete) is a ConflictError.
CAPACITY_ERROR_CODES = frozenset(
    {
        "OUT_OF_STOCK",
        "OUT_OF_CAPACITY",
        "NO_CAPACITY",
        "INSUFFICIENT_CAPACITY",
        "CAPACITY_UNAVAILABLE",
    }
)
_CREATE_ENDPOINTS = frozenset(_CREATED)


def _json_body(response: httpx.Response) -> object:
    try:
        text = response.text
    except (UnicodeDecodeError, LookupError):
        return None
    try:
        return json.loads(text) if text.strip() else None
    except ValueError:
        return None


def api_message(response: httpx.Response, *, secret: str) -> str | None:
    """The ``error``/``message`` field of a JSON body (also ``{"error": {"message": ...}}``),
    else a short excerpt of the text."""
    try:
        text = response.text
    except (UnicodeDecodeError, LookupError):
        return None
    if not text.strip():
        return None
    body = _json_body(response)
    if isinstance(body, dict):
        for key in ("error", "message", "detail"):
            value = body.get(key)
            if isinstance(value, dict):
                value = value.get("message") or value.get("detail") or value.get("code")
            if isinstance(value, str) and value.strip():
                return scrub(_shorten(value), secret)
    return scrub(_shorten(text), secret)


def api_error_code(response: httpx.Response) -> str | None:
    """The machine-readable error code of a JSON error body, upper-cased: ``error.code``,
    ``code`` or ``error_code``; ``None`` when the body has none."""
    body = _json_body(response)
    if not isinstance(body, dict):
        return None
    error = body.get("error")
    candidates = [error.get("code") if isinstance(error, dict) else None]
    candidates += [body.get("code"), body.get("error_code")]
    for code in candidates:
        if isinstance(code, str) and code.strip():
            return code.strip().upper()
    return None


def is_delete_endpoint(endpoint: str) -> bool:
    """``/instances/{id}/delete``, ``/volumes/{id}/delete`` or ``/sshkeys/{id}/delete``."""
    return endpoint.endswith("/delete")


def is_capacity_refusal(status: int, code: str | None, *, endpoint: str) -> bool:
    """A create refused for capacity: a known capacity error code, or a bare 409 (no code),
    which is how Shadeform reports an offer that sold out. Only a create endpoint can refuse
    for capacity; a delete (or any other call) never does, whatever its status or code."""
    if endpoint not in _CREATE_ENDPOINTS:
        return False
    if code is not None:
        return code in CAPACITY_ERROR_CODES
    return status == 409


def describe_transport_error(exc: httpx.RequestError) -> str:
    for kind, description in _TRANSPORT_DESCRIPTIONS:
        if isinstance(exc, kind):
            return description
    return "the request failed in transit"


def attempts_note(attempts: int) -> str:
    return f" after {attempts} attempts" if attempts > 1 else ""


def error_for_status(
    response: httpx.Response,
    *,
    method: str,
    endpoint: str,
    attempts: int,
    secret: str,
    base_url: str | None = None,
) -> ApiError:
    """The exception for a non-success HTTP response."""
    status = response.status_code
    said = api_message(response, secret=secret)
    code = api_error_code(response)
    tried = attempts_note(attempts)
    kind: type[ApiError]
    if status == 401:
        kind, message = AuthError, "Shadeform rejected the API key; check SHADEFORM_API_KEY."
    elif status == 403:
        kind, message = AuthError, "Shadeform refused this request for the API key in use."
    elif status == 404:
        kind, message = NotFoundError, "Not found on Shadeform."
        if base_url and endpoint in _COLLECTIONS:
            # A top-level path is never "not found" on the real API: the URL is off.
            hint = "" if base_url.rstrip("/").endswith("/v1") else " (is /v1 missing?)"
            message = (
                f"Shadeform's API has no {endpoint} at {base_url}{hint}. Check "
                f"SHADEFORM_API_URL; it should look like {DEFAULT_BASE_URL}."
            )
    elif status in (400, 409, 422) or (400 <= status < 500 and code in CAPACITY_ERROR_CODES):
        if is_capacity_refusal(status, code, endpoint=endpoint):
            kind, message = CapacityRefusedError, "Shadeform has no capacity for this offer now."
        elif status == 409 and is_delete_endpoint(endpoint):
            kind, message = ConflictError, "Shadeform refused the delete: it is still in use."
        elif status == 409:
            kind = ConflictError
            message = "Shadeform refused the request: it conflicts with the resource's state."
        else:
            kind, message = ApiValidationError, "Shadeform rejected the request."
    elif status == 429:
        kind, message = RateLimitedError, f"Shadeform kept rate-limiting the client{tried}."
    elif status >= 500:
        kind, message = ServerError, f"Shadeform had a server error{tried}."
    else:
        kind, message = ApiError, f"Shadeform answered with unexpected HTTP status {status}."
    return kind(message, status=status, method=method, endpoint=endpoint, api_message=said)


def error_for_transport(
    exc: httpx.RequestError, *, method: str, endpoint: str, base_url: str, attempts: int
) -> TransportError:
    """Names the full base URL and the setting it comes from, so a wrong port or host is
    obvious (the sandbox's URL is the reconciler's own and cannot be wrong)."""
    return TransportError(
        f"Could not reach Shadeform at {base_url}: {describe_transport_error(exc)}"
        f"{attempts_note(attempts)}. The URL comes from SHADEFORM_API_URL (default "
        f"{DEFAULT_BASE_URL}); check it and the network.",
        method=method,
        endpoint=endpoint,
    )


def ambiguous_create(
    *, reason: str, method: str, endpoint: str, status: int | None, api_message: str | None
) -> AmbiguousCreateError:
    return AmbiguousCreateError(
        f"The create request may have reached Shadeform but its outcome is unknown ({reason}). "
        f"Look for the {_CREATED.get(endpoint, 'resource')} before creating it again.",
        status=status,
        method=method,
        endpoint=endpoint,
        api_message=api_message,
    )


def unreadable_response(
    exc: ValidationError | ValueError, *, method: str, endpoint: str, status: int
) -> ServerError:
    """A 2xx body that does not match the expected shape. Input values (which may hold
    secrets such as env values) are never quoted, only field locations and reasons."""
    if isinstance(exc, ValidationError):
        problems = [
            f"{'.'.join(str(part) for part in err['loc']) or '(body)'}: {err['msg']}"
            for err in exc.errors(include_input=False, include_url=False)[:5]
        ]
        detail = "; ".join(problems)
    else:
        detail = "the body is not valid JSON"
    return ServerError(
        f"Shadeform returned a response the client could not read ({detail}).",
        status=status,
        method=method,
        endpoint=endpoint,
    )
