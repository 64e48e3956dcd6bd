"""An in-process loop for engine tests: the emulator over ASGI, a memory state store."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import httpx

from reconciler.api import RetryPolicy, ShadeformClient
from reconciler.emulator import SANDBOX_API_KEY, Emulator, EmulatorConfig, FaultConfig
from reconciler.engine.executor import ApplyReport, Executor, ExecutorOptions
from reconciler.engine.planner import PlanOptions
from reconciler.engine.recorder import StateRecorder
from reconciler.engine.refresh import RefreshOptions
from reconciler.engine.workflow import refresh_and_plan
from reconciler.models.plan import Plan
from reconciler.models.spec import Fleet
from reconciler.state import MemoryStateStore, StateStore, new_state


def make_emulator(**config: object) -> Emulator:
    defaults: dict[str, object] = {
        "boot_seconds": 0.0,
        "delete_seconds": 0.0,
        "faults": FaultConfig(seed=7),
    }
    defaults.update(config)
    return Emulator(EmulatorConfig(api_key=SANDBOX_API_KEY, **defaults))  # type: ignore[arg-type]


@dataclass(frozen=True)
class SeenRequest:
    """One request as the emulator received it, in arrival order."""

    method: str
    path: str
    body: Any
    status: int


class RecordingApp:
    """ASGI middleware: what the emulator saw (method, path, JSON body) and answered."""

    def __init__(self, app: Any, seen: list[SeenRequest]) -> None:
        self.app = app
        self.seen = seen

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        chunks: list[bytes] = []

        async def recording_receive() -> Any:
            message = await receive()
            if message["type"] == "http.request":
                chunks.append(message.get("body", b""))
            return message

        status = 0

        async def recording_send(message: Any) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        await self.app(scope, recording_receive, recording_send)
        raw = b"".join(chunks)
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            body = raw
        path = scope["path"].removeprefix("/v1")
        self.seen.append(SeenRequest(scope["method"], path, body, status))


Watch = Callable[[httpx.Request], None]
"""Called with each request as the client sends it, before the emulator sees it."""


class InProcessTransport(httpx.AsyncBaseTransport):
    """The emulator's app over ASGI, with the read timeout a socket would have.

    httpx's ``ASGITransport`` ignores timeouts, so an injected hang would only slow a test
    down; here an answer held back longer than the client's read timeout raises
    ``httpx.ReadTimeout``, as over the network, and what the request did stays done.
    """

    def __init__(self, app: Any, *, watch: Watch | None = None) -> None:
        self._inner = httpx.ASGITransport(app=app)
        self._watch = watch

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if self._watch is not None:
            self._watch(request)
        read_timeout = request.extensions.get("timeout", {}).get("read")
        try:
            return await asyncio.wait_for(self._inner.handle_async_request(request), read_timeout)
        except TimeoutError:
            raise httpx.ReadTimeout("no answer within the read timeout", request=request) from None


def make_client(
    emulator: Emulator,
    *,
    seen: list[SeenRequest] | None = None,
    watch: Watch | None = None,
    **kwargs: object,
) -> ShadeformClient:
    kwargs.setdefault("retry", RetryPolicy(max_attempts=6, base_delay=0.001, max_delay=0.01))
    app: Any = emulator.app if seen is None else RecordingApp(emulator.app, seen)
    return ShadeformClient(
        SANDBOX_API_KEY,
        "http://127.0.0.1/v1",
        transport=InProcessTransport(app, watch=watch),
        **kwargs,  # type: ignore[arg-type]
    )


@dataclass
class Loop:
    emulator: Emulator
    store: StateStore = field(default_factory=MemoryStateStore)
    options: ExecutorOptions = field(
        default_factory=lambda: ExecutorOptions(poll_interval=0.01, ambiguous_lookup_delay=0.01)
    )
    intent_grace: float = 0.0
    seen: list[SeenRequest] | None = None
    """When set, every request the emulator receives is appended here."""
    watch: Watch | None = None
    """When set, called with every request as it is sent."""
    client_options: dict[str, Any] = field(default_factory=dict)
    """More keyword arguments for the client (``retry``, ``timeout``)."""

    def client(self) -> ShadeformClient:
        return make_client(self.emulator, seen=self.seen, watch=self.watch, **self.client_options)

    def state(self, fleet: Fleet):  # type: ignore[no-untyped-def]
        return self.store.read(fleet.name) or new_state(fleet.name)

    async def plan(self, fleet: Fleet, options: PlanOptions = PlanOptions()) -> Plan:
        async with self.client() as client:
            plan = await refresh_and_plan(
                client,
                [fleet],
                {fleet.name: self.state(fleet)},
                now=datetime.now(UTC),
                options=options,
                refresh_options=RefreshOptions(intent_grace_seconds=self.intent_grace),
            )
        return plan

    async def apply(
        self, fleet: Fleet, plan: Plan | None = None, **executor_kw: object
    ) -> ApplyReport:
        plan = plan or await self.plan(fleet)
        recorder = StateRecorder(self.store, self.state(fleet))
        async with self.client() as client:
            executor = Executor(client, options=self.options, **executor_kw)  # type: ignore[arg-type]
            return await executor.apply(
                plan, fleets={fleet.name: fleet}, recorders={fleet.name: recorder}
            )

    def live_for(self, address: str) -> list[dict]:
        tag = f"reconciler:address={address}"
        return [i for i in self.emulator.live_instances() if tag in i.get("tags", [])]
