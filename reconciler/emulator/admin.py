"""HTTP admin routes under ``/_admin``: out-of-band changes for tests in another process.

They mirror the Python admin API of :class:`~reconciler.emulator.Emulator`, need the same
``X-API-KEY`` as the API and are never subject to injected faults.

=======  =====================================  =========================================
Method   Path                                   Body / answer
=======  =====================================  =========================================
GET      /_admin/instances                      ``{"instances": [<info>...]}`` (not deleted)
POST     /_admin/instances/{id}/delete          ``{"immediate": false}`` (optional body)
POST     /_admin/instances/{id}/rename          ``{"name": "..."}``
POST     /_admin/instances/{id}/retag           ``{"tags": ["..."]}``
POST     /_admin/instances/{id}/fail            ``{"details": "..."}`` (optional body)
POST     /_admin/instances/{id}/preempt         -
GET      /_admin/create-counts                  ``{"create_counts": {"name": 2}}``
GET      /_admin/create-counts/{name}           ``{"name": "...", "count": 2}``
POST     /_admin/capacity                       ``{"cloud", "region", "shade_instance_type",
                                                "available", "rental_type"}``
GET      /_admin/timeline                       ``{"now": t, "instances": [<period>...]}``: every
                                                instance since start, gone ones included,
                                                with created/active/gone times
GET      /_admin/faults                         the live fault configuration
PUT      /_admin/faults                         a whole new fault configuration
=======  =====================================  =========================================
"""

from __future__ import annotations

from dataclasses import asdict

from pydantic import BaseModel, ConfigDict, Field
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from reconciler.emulator.app import ApiGuard, Handler, empty_ok, error_response, json_response
from reconciler.emulator.app import read_body as _read_body
from reconciler.emulator.cloud import Cloud
from reconciler.emulator.config import CapacitySetting, FaultConfig
from reconciler.emulator.faults import FaultInjector
from reconciler.emulator.problems import CloudProblem

ADMIN_PREFIX = "/_admin"
DEFAULT_FAILURE = "the instance failed (injected by the emulator)"


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class DeleteBody(_Body):
    immediate: bool = False


class RenameBody(_Body):
    name: str = Field(min_length=1)


class RetagBody(_Body):
    tags: list[str]


class FailBody(_Body):
    details: str = DEFAULT_FAILURE


async def _optional_body(request: Request, model: type[_Body]) -> _Body:
    if not await request.body():
        return model()
    return await _read_body(request, model)


class AdminHandlers:
    def __init__(self, cloud: Cloud, injector: FaultInjector) -> None:
        self._cloud = cloud
        self._injector = injector

    def routes(self) -> list[tuple[str, str, Handler]]:
        return [
            ("GET", "/instances", self.instances),
            ("POST", "/instances/{id}/delete", self.delete),
            ("POST", "/instances/{id}/rename", self.rename),
            ("POST", "/instances/{id}/retag", self.retag),
            ("POST", "/instances/{id}/fail", self.fail),
            ("POST", "/instances/{id}/preempt", self.preempt),
            ("GET", "/create-counts", self.create_counts),
            ("GET", "/create-counts/{name}", self.create_count),
            ("POST", "/capacity", self.capacity),
            ("GET", "/timeline", self.timeline),
            ("GET", "/faults", self.get_faults),
            ("PUT", "/faults", self.put_faults),
        ]

    async def instances(self, request: Request) -> Response:
        return json_response({"instances": self._cloud.live_instances()})

    async def delete(self, request: Request) -> Response:
        body = await _optional_body(request, DeleteBody)
        assert isinstance(body, DeleteBody)
        instance_id = request.path_params["id"]
        if body.immediate:
            self._cloud.remove_instance_now(instance_id)
        else:
            self._cloud.delete_instance(instance_id)
        return empty_ok()

    async def rename(self, request: Request) -> Response:
        body = await _read_body(request, RenameBody)
        self._cloud.rename_instance(request.path_params["id"], body.name)
        return empty_ok()

    async def retag(self, request: Request) -> Response:
        body = await _read_body(request, RetagBody)
        self._cloud.retag_instance(request.path_params["id"], body.tags)
        return empty_ok()

    async def fail(self, request: Request) -> Response:
        body = await _optional_body(request, FailBody)
        assert isinstance(body, FailBody)
        self._cloud.fail_instance(request.path_params["id"], body.details)
        return empty_ok()

    async def preempt(self, request: Request) -> Response:
        self._cloud.preempt_instance(request.path_params["id"])
        return empty_ok()

    async def create_counts(self, request: Request) -> Response:
        return json_response({"create_counts": self._cloud.create_counts()})

    async def create_count(self, request: Request) -> Response:
        name = request.path_params["name"]
        return json_response({"name": name, "count": self._cloud.create_count(name)})

    async def capacity(self, request: Request) -> Response:
        self._cloud.set_capacity(await _read_body(request, CapacitySetting))
        return empty_ok()

    async def timeline(self, request: Request) -> Response:
        periods = [asdict(p) for p in self._cloud.timeline()]
        return json_response({"now": self._cloud.now(), "instances": periods})

    async def get_faults(self, request: Request) -> Response:
        return json_response(self._injector.config.model_dump(mode="json"))

    async def put_faults(self, request: Request) -> Response:
        self._injector.config = await _read_body(request, FaultConfig)
        return empty_ok()


def _admin_wrap(guard: ApiGuard, handler: Handler) -> Handler:
    async def guarded(request: Request) -> Response:
        if not guard.authorized(request):
            return guard.unauthorized()
        try:
            return await handler(request)
        except CloudProblem as problem:
            return error_response(problem.status, problem.message)

    return guarded


def admin_routes(handlers: AdminHandlers, guard: ApiGuard) -> list[BaseRoute]:
    return [
        Route(ADMIN_PREFIX + path, _admin_wrap(guard, handler), methods=[method])
        for method, path, handler in handlers.routes()
    ]
