"""The typed, async Shadeform API client: the project's only user of httpx.

::

    async with ShadeformClient(settings.api_key, settings.base_url) as client:
        instances = await client.list_instances()
        infos = await client.get_instances([i.id for i in instances])  # concurrent, bounded
        new_id = await client.create_instance(CreateRequest(...))

Concurrency is bounded by ``parallelism`` (requests in flight, spread over small connection
pools; see :mod:`reconciler.api.pools`) and optionally paced by a client-side token bucket. Failures are retried per :class:`RetryPolicy` only when that is
safe: reads, updates and deletes on 429/500/502/503/504 and connection failures; creates only
when Shadeform provably did not act (a connection that never opened, or a 429). A create
that may have reached the server raises :class:`AmbiguousCreateError` and is never resent.

Tests plug in at the transport seam: ``ShadeformClient(..., transport=httpx.MockTransport(h))``.
"""

from __future__ import annotations

import asyncio
import enum
import functools
import logging
import ssl
from collections.abc import Iterable, Mapping
from types import TracebackType
from typing import Any, TypeVar
from urllib.parse import quote

import httpx
from pydantic import BaseModel, SecretStr, ValidationError

from reconciler import __version__
from reconciler.api.config import DEFAULT_BASE_URL, DEFAULT_TIMEOUT, validate_base_url
from reconciler.api.pools import ConnectionSlots
from reconciler.api.ratelimit import TokenBucket
from reconciler.api.retry import RetryPolicy, parse_retry_after
from reconciler.api.translate import (
    ambiguous_create,
    api_message,
    describe_transport_error,
    error_for_status,
    error_for_transport,
    unreadable_response,
)
from reconciler.errors import ApiError, NotFoundError
from reconciler.models.api import (
    AddSshKeyRequest,
    AddSshKeyResponse,
    CreateRequest,
    CreateResponse,
    CreateVolumeRequest,
    CreateVolumeResponse,
    Instance,
    InstanceInfo,
    InstancesResponse,
    InstanceType,
    InstanceTypesResponse,
    SshKey,
    SshKeysResponse,
    UpdateRequest,
    Volume,
    VolumesResponse,
    VolumeType,
    VolumeTypesResponse,
)

logger = logging.getLogger(__name__)

ModelT = TypeVar("ModelT", bound=BaseModel)

# Failures raised before a single byte of the request left the client.
_UNSENT_ERRORS: tuple[type[httpx.TransportError], ...] = (
    httpx.ConnectError,
    httpx.ConnectTimeout,
    httpx.PoolTimeout,
)


class Replay(enum.Enum):
    """How safe it is to send a request again after a failure of unknown outcome."""

    SAFE = "safe"  # reads, updates, deletes: repeat on any retryable failure
    CREATE = "create"  # repeat only unsent failures and 429; otherwise AmbiguousCreateError
    ONCE = "once"  # like CREATE, but report an unknown outcome as a plain error


def reveal_secrets(value: Any) -> Any:
    """A JSON-ready copy of ``value`` with every :class:`SecretStr` revealed."""
    if isinstance(value, SecretStr):
        return value.get_secret_value()
    if isinstance(value, Mapping):
        return {key: reveal_secrets(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [reveal_secrets(item) for item in value]
    return value


def wire_body(request: BaseModel, *, omit_unset: bool = False) -> dict[str, Any]:
    """The JSON body for a request model: ``None`` fields dropped, or with ``omit_unset``
    only unset top-level fields dropped (so an explicit top-level ``None`` is sent as
    ``null``, which the update endpoint reads as "delete"). Inside nested objects a ``None``
    is always left out: the spec's schemas have no nullable properties, and a key the caller
    never set must not appear in the body."""
    if omit_unset:
        data = {
            name: None if value is None else _without_nones(value)
            for name, value in request.model_dump(mode="python", exclude_unset=True).items()
        }
    else:
        data = request.model_dump(mode="python", exclude_none=True)
    revealed: dict[str, Any] = reveal_secrets(data)
    return revealed


def _without_nones(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {k: _without_nones(v) for k, v in value.items() if v is not None}
    if isinstance(value, list | tuple):
        return [_without_nones(item) for item in value]
    return value


@functools.cache
def _verifying_tls_context() -> ssl.SSLContext:
    """One certificate-verifying TLS context for every pool (building one costs ~40 ms)."""
    return httpx.create_ssl_context(verify=True)


def _path(template: str, resource_id: str) -> str:
    if not resource_id:
        raise ValueError("resource id must not be empty")
    return template.format(id=quote(resource_id, safe=""))


def _query(filters: Mapping[str, str | int | bool | None]) -> dict[str, str]:
    query: dict[str, str] = {}
    for key, value in filters.items():
        if value is None:
            continue
        query[key] = ("true" if value else "false") if isinstance(value, bool) else str(value)
    return query


class ShadeformClient:
    """Typed async access to the Shadeform API. Use as an async context manager."""

    def __init__(
        self,
        api_key: str | SecretStr,
        base_url: str = DEFAULT_BASE_URL,
        *,
        parallelism: int = 64,
        rate_limit_per_second: float | None = None,
        retry: RetryPolicy = RetryPolicy(),  # noqa: B008 (frozen, safe to share)
        timeout: httpx.Timeout | float | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        if parallelism < 1:
            raise ValueError("parallelism must be at least 1")
        self._api_key = api_key if isinstance(api_key, SecretStr) else SecretStr(api_key)
        self.base_url = validate_base_url(base_url)
        self.parallelism = parallelism
        self.retry = retry
        self._bucket = (
            TokenBucket(rate_limit_per_second, clock=retry.clock, sleep=retry.sleep)
            if rate_limit_per_second
            else None
        )
        headers = {
            "X-API-KEY": self._api_key.get_secret_value(),
            "Accept": "application/json",
            "User-Agent": f"shadeform-reconciler/{__version__}",
        }
        resolved_timeout = DEFAULT_TIMEOUT if timeout is None else timeout
        tls = None if transport is not None else _verifying_tls_context()

        def make_http(connections: int) -> httpx.AsyncClient:
            return httpx.AsyncClient(
                base_url=self.base_url,
                headers=headers,
                timeout=resolved_timeout,
                limits=httpx.Limits(
                    max_connections=connections, max_keepalive_connections=connections
                ),
                transport=transport,
                follow_redirects=False,
                verify=tls if tls is not None else True,
            )

        self._slots = ConnectionSlots(
            parallelism, make_http, shared_transport=transport is not None
        )

    def __repr__(self) -> str:
        return f"ShadeformClient(base_url={self.base_url!r}, parallelism={self.parallelism})"

    async def __aenter__(self) -> ShadeformClient:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._slots.aclose()

    # --- the one place requests are sent --------------------------------------------------

    async def _send(
        self,
        method: str,
        path: str,
        *,
        replay: Replay,
        params: Mapping[str, str] | None = None,
        body: dict[str, Any] | None = None,
    ) -> httpx.Response:
        secret = self._api_key.get_secret_value()
        started = self.retry.clock()
        attempt = 0
        while True:
            attempt += 1
            if self._bucket is not None:
                await self._bucket.acquire()
            retry_after: float | None = None
            try:
                async with self._slots.take() as http:
                    response = await http.request(method, path, params=params, json=body)
            except httpx.RequestError as exc:  # transport failures, undecodable bodies
                unsent = isinstance(exc, _UNSENT_ERRORS)
                if not unsent and replay is Replay.CREATE:
                    raise ambiguous_create(
                        reason=describe_transport_error(exc),
                        method=method,
                        endpoint=path,
                        status=None,
                        api_message=None,
                    ) from exc
                failure: ApiError = error_for_transport(
                    exc, method=method, endpoint=path, base_url=self.base_url, attempts=attempt
                )
                if not unsent and replay is Replay.ONCE:
                    raise failure from exc
                reason = describe_transport_error(exc)
                cause: BaseException = exc
            else:
                status = response.status_code
                if response.is_success:
                    return response
                retryable = status in self.retry.retry_statuses
                if replay is not Replay.SAFE and status != 429:
                    retryable = False
                    if replay is Replay.CREATE and status >= 500:
                        raise ambiguous_create(
                            reason=f"HTTP {status}",
                            method=method,
                            endpoint=path,
                            status=status,
                            api_message=api_message(response, secret=secret),
                        )
                failure = error_for_status(
                    response,
                    method=method,
                    endpoint=path,
                    attempts=attempt,
                    secret=secret,
                    base_url=self.base_url,
                )
                if not retryable:
                    raise failure
                retry_after = parse_retry_after(response.headers.get("Retry-After"))
                reason = f"HTTP {status}"
                cause = failure
            delay = self.retry.next_delay(attempt, self.retry.clock() - started, retry_after)
            if delay is None:
                failure.retry_after = retry_after
                raise failure from (cause if cause is not failure else None)
            logger.debug(
                "retrying %s %s after %s (attempt %d of %d) in %.2fs",
                method,
                path,
                reason,
                attempt,
                self.retry.max_attempts,
                delay,
            )
            await self.retry.sleep(delay)

    async def _call(
        self,
        model: type[ModelT],
        method: str,
        path: str,
        *,
        replay: Replay = Replay.SAFE,
        params: Mapping[str, str] | None = None,
        body: dict[str, Any] | None = None,
    ) -> ModelT:
        response = await self._send(method, path, replay=replay, params=params, body=body)
        try:
            return model.model_validate_json(response.content)
        except ValidationError as exc:
            if replay is Replay.CREATE:
                raise ambiguous_create(
                    reason="the response could not be read",
                    method=method,
                    endpoint=path,
                    status=response.status_code,
                    api_message=None,
                ) from None
            raise unreadable_response(
                exc, method=method, endpoint=path, status=response.status_code
            ) from None

    # --- instances ---------------------------------------------------------------------------

    async def list_instances(self) -> list[Instance]:
        """All non-deleted instances (``deleting`` ones included)."""
        return list((await self._call(InstancesResponse, "GET", "/instances")).instances)

    async def get_instance(self, instance_id: str) -> InstanceInfo:
        """One instance's details; :class:`NotFoundError` when it is gone."""
        return await self._call(InstanceInfo, "GET", _path("/instances/{id}/info", instance_id))

    async def get_instances(self, instance_ids: Iterable[str]) -> dict[str, InstanceInfo | None]:
        """Details for many instances at once (``None`` = not found), at most ``parallelism``
        requests in flight. Any other failure cancels the rest and is raised."""
        unique = list(dict.fromkeys(instance_ids))
        found: dict[str, InstanceInfo | None] = {}
        pending = iter(unique)
        failed = False

        async def worker() -> None:
            nonlocal failed
            for instance_id in pending:
                if failed:
                    return
                try:
                    found[instance_id] = await self.get_instance(instance_id)
                except NotFoundError:
                    found[instance_id] = None
                except BaseException:
                    failed = True  # stop the other workers taking more ids
                    raise

        workers = [asyncio.create_task(worker()) for _ in range(min(self.parallelism, len(unique)))]
        try:
            await asyncio.gather(*workers)
        finally:
            for task in workers:
                task.cancel()
            await asyncio.gather(*workers, return_exceptions=True)
        return {instance_id: found[instance_id] for instance_id in unique}

    async def create_instance(self, request: CreateRequest) -> str:
        """Launch an instance; returns its id. Raises :class:`AmbiguousCreateError` when the
        request may have reached Shadeform without an answer (never resent)."""
        created = await self._call(
            CreateResponse,
            "POST",
            "/instances/create",
            replay=Replay.CREATE,
            body=wire_body(request),
        )
        return created.id

    async def update_instance(self, instance_id: str, request: UpdateRequest) -> None:
        """Change mutable fields; unset fields stay, fields set to ``None`` are deleted."""
        path = _path("/instances/{id}/update", instance_id)
        await self._send("POST", path, replay=Replay.SAFE, body=wire_body(request, omit_unset=True))

    async def delete_instance(self, instance_id: str) -> None:
        """Start deleting an instance; :class:`NotFoundError` when it is already gone."""
        await self._send("POST", _path("/instances/{id}/delete", instance_id), replay=Replay.SAFE)

    async def restart_instance(self, instance_id: str) -> None:
        """Restart an instance (not repeated when the outcome of an attempt is unknown)."""
        await self._send("POST", _path("/instances/{id}/restart", instance_id), replay=Replay.ONCE)

    async def list_instance_types(
        self,
        *,
        cloud: str | None = None,
        region: str | None = None,
        num_gpus: int | None = None,
        gpu_type: str | None = None,
        shade_instance_type: str | None = None,
        available: bool | None = None,
        sort: str | None = None,
    ) -> list[InstanceType]:
        """The catalog, filtered server-side by the spec's query parameters."""
        params = _query(
            {
                "cloud": cloud,
                "region": region,
                "num_gpus": num_gpus,
                "gpu_type": gpu_type,
                "shade_instance_type": shade_instance_type,
                "available": available,
                "sort": sort,
            }
        )
        listing = await self._call(
            InstanceTypesResponse, "GET", "/instances/types", params=params or None
        )
        return list(listing.instance_types)

    # --- volumes -----------------------------------------------------------------------------

    async def list_volumes(self) -> list[Volume]:
        return list((await self._call(VolumesResponse, "GET", "/volumes")).volumes)

    async def get_volume(self, volume_id: str) -> Volume:
        return await self._call(Volume, "GET", _path("/volumes/{id}/info", volume_id))

    async def create_volume(self, request: CreateVolumeRequest) -> str:
        created = await self._call(
            CreateVolumeResponse,
            "POST",
            "/volumes/create",
            replay=Replay.CREATE,
            body=wire_body(request),
        )
        return created.id

    async def delete_volume(self, volume_id: str) -> None:
        await self._send("POST", _path("/volumes/{id}/delete", volume_id), replay=Replay.SAFE)

    async def list_volume_types(self) -> list[VolumeType]:
        return list((await self._call(VolumeTypesResponse, "GET", "/volumes/types")).volume_types)

    # --- SSH keys ----------------------------------------------------------------------------

    async def list_ssh_keys(self) -> list[SshKey]:
        return list((await self._call(SshKeysResponse, "GET", "/sshkeys")).ssh_keys)

    async def get_ssh_key(self, ssh_key_id: str) -> SshKey:
        return await self._call(SshKey, "GET", _path("/sshkeys/{id}/info", ssh_key_id))

    async def add_ssh_key(self, request: AddSshKeyRequest) -> str:
        added = await self._call(
            AddSshKeyResponse, "POST", "/sshkeys/add", replay=Replay.CREATE, body=wire_body(request)
        )
        return added.id

    async def delete_ssh_key(self, ssh_key_id: str) -> None:
        await self._send("POST", _path("/sshkeys/{id}/delete", ssh_key_id), replay=Replay.SAFE)
