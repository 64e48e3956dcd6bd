"""The emulated Shadeform API as a Starlette ASGI app, under ``/v1`` like the real one.

Every API route goes through :class:`ApiGuard`, which applies, in order: injected latency,
the ``X-API-KEY`` check (401), the rate limiter (429 with ``Retry-After``), injected 5xx
errors (the request has no effect), the handler itself, then a lost answer (the request
*did* take effect) or a hang (the answer is held back). Errors are ``{"error": "..."}``.

Clusters and templates are not emulated (404).
"""

from __future__ import annotations

import asyncio
import hmac
import json
import math
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route
from starlette.types import Receive, Scope, Send

from reconciler.emulator import rendering
from reconciler.emulator.cloud import Cloud
from reconciler.emulator.faults import Endpoint, FaultInjector
from reconciler.emulator.problems import BadRequest, CloudProblem
from reconciler.emulator.request_models import (
    AddSshKeyRequest,
    CreateInstanceRequest,
    CreateVolumeRequest,
    UpdateInstanceRequest,
    describe_validation_error,
)

API_PREFIX = "/v1"
API_KEY_HEADER = "x-api-key"
Handler = Callable[[Request], Awaitable[Response]]
_Model = TypeVar("_Model", bound=BaseModel)
_INJECTED = {
    500: "internal server error",
    502: "bad gateway",
    503: "service temporarily unavailable",
    504: "gateway timeout",
}


def json_response(data: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    body = json.dumps(data, separators=(",", ":")).encode()
    return Response(body, status_code=status, headers=headers, media_type="application/json")


def error_response(status: int, message: str, headers: dict[str, str] | None = None) -> Response:
    return json_response({"error": message}, status, headers)


def problem_response(problem: CloudProblem) -> Response:
    if problem.code is None:
        return error_response(problem.status, problem.message)
    return json_response(
        {"error": {"code": problem.code, "message": problem.message}}, problem.status
    )


def empty_ok() -> Response:
    return Response(b"", status_code=200)


class DroppedResponse(Response):
    """Starts a 200 and cuts the connection mid-body. Only meaningful over a real socket:
    uvicorn closes the connection and the client sees a protocol error."""

    def __init__(self) -> None:
        super().__init__(b"", status_code=200)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        headers = [(b"content-type", b"application/json"), (b"content-length", b"512")]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": b'{"id":"', "more_body": True})


async def read_body(request: Request, model: type[_Model]) -> _Model:
    body = await request.body()
    try:
        return model.model_validate_json(body)
    except ValidationError as exc:
        raise BadRequest(describe_validation_error(exc)) from None


class ApiGuard:
    """Authentication and fault injection around every API handler."""

    def __init__(
        self,
        api_key: str,
        injector: FaultInjector,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self._api_key = api_key.encode()
        self._injector = injector
        self._sleep = sleep

    def authorized(self, request: Request) -> bool:
        given = request.headers.get(API_KEY_HEADER, "").encode()
        return hmac.compare_digest(given, self._api_key)

    def unauthorized(self) -> Response:
        return error_response(401, "unauthorized: missing or invalid X-API-KEY header")

    def wrap(self, endpoint: Endpoint, handler: Handler) -> Handler:
        injector = self._injector

        async def guarded(request: Request) -> Response:
            faults = injector.resolve(endpoint)
            delay = injector.latency_seconds(faults)
            if delay > 0:
                await self._sleep(delay)
            if not self.authorized(request):
                return self.unauthorized()
            wait = injector.retry_after(faults)
            if wait is not None:
                retry_after = str(max(1, math.ceil(wait)))
                return error_response(
                    429, "rate limit exceeded; slow down", {"Retry-After": retry_after}
                )
            status = injector.injected_error(faults)
            if status is not None:
                headers = {"Retry-After": "1"} if status == 503 else None
                return error_response(status, _INJECTED[status], headers)
            try:
                response = await handler(request)
            except CloudProblem as problem:
                response = problem_response(problem)
            if injector.lose_response(faults):
                if injector.config.lost_response_mode == "drop":
                    return DroppedResponse()
                return Response(b"", status_code=502)
            hang = injector.hang_seconds(faults)
            if hang is not None:
                await self._sleep(hang)
            return response

        return guarded


class ApiHandlers:
    """One coroutine per Shadeform endpoint; the cloud does the work."""

    def __init__(self, cloud: Cloud, injector: FaultInjector) -> None:
        self._cloud = cloud
        self._accounts = cloud.accounts
        self._injector = injector

    def routes(self) -> list[tuple[str, str, str, Handler]]:
        """(method, path, operationId, handler) for every emulated endpoint."""
        return [
            ("GET", "/instances", "Instances", self.list_instances),
            ("GET", "/instances/types", "InstancesTypes", self.instance_types),
            ("POST", "/instances/create", "InstancesCreate", self.create_instance),
            ("GET", "/instances/{id}/info", "InstancesInfo", self.instance_info),
            ("POST", "/instances/{id}/update", "InstancesUpdate", self.update_instance),
            ("POST", "/instances/{id}/delete", "InstancesDelete", self.delete_instance),
            ("POST", "/instances/{id}/restart", "InstancesRestart", self.restart_instance),
            ("GET", "/volumes", "Volumes", self.list_volumes),
            ("GET", "/volumes/types", "VolumesTypes", self.volume_types),
            ("POST", "/volumes/create", "VolumesCreate", self.create_volume),
            ("GET", "/volumes/{id}/info", "VolumesInfo", self.volume_info),
            ("POST", "/volumes/{id}/delete", "VolumesDelete", self.delete_volume),
            ("GET", "/sshkeys", "SshKeys", self.list_ssh_keys),
            ("POST", "/sshkeys/add", "SshKeysAdd", self.add_ssh_key),
            ("GET", "/sshkeys/{id}/info", "SshKeysInfo", self.ssh_key_info),
            ("POST", "/sshkeys/{id}/delete", "SshKeysDelete", self.delete_ssh_key),
            ("POST", "/sshkeys/{id}/setdefault", "SshKeysSetDefault", self.set_default_ssh_key),
        ]

    async def list_instances(self, request: Request) -> Response:
        return json_response({"instances": self._cloud.list_instances()})

    async def instance_types(self, request: Request) -> Response:
        query = parse_instance_type_query(dict(request.query_params))
        return json_response({"instance_types": self._cloud.instance_types(query)})

    async def create_instance(self, request: Request) -> Response:
        body = await read_body(request, CreateInstanceRequest)
        boot_fails = self._injector.boot_fails()
        return json_response({"id": self._cloud.create_instance(body, boot_fails=boot_fails)})

    async def instance_info(self, request: Request) -> Response:
        return json_response(self._cloud.instance_info(request.path_params["id"]))

    async def update_instance(self, request: Request) -> Response:
        body = await read_body(request, UpdateInstanceRequest)
        self._cloud.update_instance(request.path_params["id"], body)
        return empty_ok()

    async def delete_instance(self, request: Request) -> Response:
        self._cloud.delete_instance(request.path_params["id"])
        return empty_ok()

    async def restart_instance(self, request: Request) -> Response:
        self._cloud.restart_instance(request.path_params["id"])
        return empty_ok()

    async def list_volumes(self, request: Request) -> Response:
        return json_response({"volumes": self._accounts.list_volumes()})

    async def volume_types(self, request: Request) -> Response:
        return json_response({"volume_types": self._cloud.volume_types()})

    async def create_volume(self, request: Request) -> Response:
        body = await read_body(request, CreateVolumeRequest)
        return json_response({"id": self._cloud.create_volume(body)})

    async def volume_info(self, request: Request) -> Response:
        return json_response(self._accounts.volume_info(request.path_params["id"]))

    async def delete_volume(self, request: Request) -> Response:
        self._accounts.delete_volume(request.path_params["id"])
        return empty_ok()

    async def list_ssh_keys(self, request: Request) -> Response:
        return json_response({"ssh_keys": self._accounts.list_ssh_keys()})

    async def add_ssh_key(self, request: Request) -> Response:
        body = await read_body(request, AddSshKeyRequest)
        return json_response({"id": self._accounts.add_ssh_key(body)})

    async def ssh_key_info(self, request: Request) -> Response:
        return json_response(self._accounts.ssh_key_info(request.path_params["id"]))

    async def delete_ssh_key(self, request: Request) -> Response:
        self._accounts.delete_ssh_key(request.path_params["id"])
        return empty_ok()

    async def set_default_ssh_key(self, request: Request) -> Response:
        self._accounts.set_default_ssh_key(request.path_params["id"])
        return empty_ok()


def parse_instance_type_query(params: dict[str, str]) -> rendering.InstanceTypeQuery:
    """The query string of ``/instances/types``; bad values raise :class:`BadRequest`."""
    num_gpus = params.get("num_gpus")
    if num_gpus is not None and not num_gpus.isdigit():
        raise BadRequest(f"num_gpus must be a whole number, not {num_gpus!r}")
    available = params.get("available")
    if available is not None and available.lower() not in ("true", "false"):
        raise BadRequest(f"available must be true or false, not {available!r}")
    sort = params.get("sort")
    if sort is not None and sort != "price":
        raise BadRequest(f"sort must be 'price', not {sort!r}")
    return rendering.InstanceTypeQuery(
        cloud=params.get("cloud"),
        region=params.get("region"),
        num_gpus=int(num_gpus) if num_gpus is not None else None,
        gpu_type=params.get("gpu_type"),
        shade_instance_type=params.get("shade_instance_type"),
        available=None if available is None else available.lower() == "true",
        sort_by_price=sort == "price",
    )


def _http_error_handler(
    guard: ApiGuard | None,
) -> Callable[[Request, Exception], Awaitable[Response]]:
    """404/405 as JSON. Under ``/v1`` a request without a valid key gets 401 first, as from
    the real API (an unauthenticated caller learns nothing about which routes exist); a 405
    carries ``Allow``."""

    async def handle(request: Request, exc: Exception) -> Response:
        if guard is not None and request.url.path.startswith(API_PREFIX + "/"):
            if not guard.authorized(request):
                return guard.unauthorized()
        status = exc.status_code if isinstance(exc, HTTPException) else 500
        headers = dict(exc.headers or {}) if isinstance(exc, HTTPException) else {}
        messages = {404: "not found", 405: "method not allowed"}
        return error_response(
            status, f"{messages.get(status, 'error')}: {request.url.path}", headers or None
        )

    return handle


def api_routes(handlers: ApiHandlers, guard: ApiGuard) -> list[BaseRoute]:
    routes: list[BaseRoute] = []
    for method, path, operation_id, handler in handlers.routes():
        full_path = API_PREFIX + path
        endpoint = Endpoint(operation_id, method, full_path)
        routes.append(
            Route(
                full_path,
                guard.wrap(endpoint, handler),
                methods=[method],
                name=operation_id,
            )
        )
    return routes


def build_app(routes: list[BaseRoute], guard: ApiGuard | None = None) -> Starlette:
    handler = _http_error_handler(guard)
    return Starlette(routes=routes, exception_handlers={404: handler, 405: handler})
