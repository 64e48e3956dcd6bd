"""The watcher's HTTP side (``--listen``): ``/metrics``, ``/healthz`` and a status page.

- ``/metrics``: Prometheus text format;
- ``/healthz``: 200 while a cycle succeeded within the last three intervals (or the watcher
  is younger than that), else 503 with why: for a liveness probe;
- ``/``: a small read-only HTML page (no script, so any browser renders it): the fleets, their
  instances with status and $/hour, and the last events;
- ``/status.json``: the same as JSON.

It runs in the watcher's own event loop (uvicorn, without its signal handlers: the watcher
owns SIGTERM and SIGINT). Nothing here changes anything.
"""

from __future__ import annotations

import asyncio
import contextlib
import html
import socket
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from reconciler.controller.events import EventLog
from reconciler.controller.metrics import CONTENT_TYPE_LATEST, WatchMetrics
from reconciler.controller.watcher import WatchStatus
from reconciler.errors import UsageError
from reconciler.models.catalog import format_cents

HEALTHY_INTERVALS = 3
SHUTDOWN_SECONDS = 1
"""How long a request still running when the watcher stops may take to finish."""


def health(status: WatchStatus, interval: float, now: float) -> tuple[bool, str]:
    """Alive while a cycle succeeded within the last three intervals."""
    window = HEALTHY_INTERVALS * interval
    progress = status.last_progress_at
    if (
        progress is not None
        and now - progress <= window
        and (status.last_success_at is None or progress > status.last_success_at)
    ):
        # A long action (a rollout's wave, a wait until gone) is under way and moving.
        return True, f"ok: acting, last progress {now - progress:.0f}s ago"
    if status.last_success_at is not None:
        age = now - status.last_success_at
        if age <= window:
            return True, f"ok: last successful cycle {age:.0f}s ago"
        return False, (
            f"no successful cycle for {age:.0f}s (more than {HEALTHY_INTERVALS} intervals); "
            f"last error: {status.last_error or 'none'}"
        )
    if now - status.started_at <= window:
        return True, "ok: starting"
    return False, f"no successful cycle since the start; last error: {status.last_error or 'none'}"


def status_page(status: WatchStatus, events: EventLog, now: float) -> str:
    e = html.escape
    rows = []
    for fleet in sorted(status.fleets.values(), key=lambda f: f.fleet):
        instances = "".join(
            "<tr>"
            f"<td class='address'>{e(i.address)}</td>"
            f"<td>{e(i.instance_id or '')}</td>"
            f"<td class='status {e(i.status)}'>{e(i.status)}</td>"
            f"<td class='money'>{e(format_cents(i.hourly_cents) + '/h') if i.hourly_cents is not None else ''}</td>"  # noqa: E501
            "</tr>"
            for i in fleet.instances
        )
        rows.append(
            f"<section class='fleet' id='fleet-{e(fleet.fleet)}'>"
            f"<h2>{e(fleet.fleet)}</h2>"
            f"<p>{fleet.desired} desired · {format_cents(fleet.burn_cents)}/h · "
            f"{fleet.pending_changes} change(s) pending · {fleet.blocked} blocked</p>"
            "<table><thead><tr><th>address</th><th>id</th><th>status</th><th>$/h</th></tr>"
            f"</thead><tbody>{instances}</tbody></table></section>"
        )
    recent = "".join(
        f"<li><time>{e(ev.at)}</time> <b>{e(ev.event)}</b> "
        f"{e(ev.address or ev.fleet or '')}: {e(ev.message)}</li>"
        for ev in reversed(list(events.recent)[-50:])
    )
    last = (
        f"{now - status.last_success_at:.0f}s ago"
        if status.last_success_at is not None
        else "not yet"
    )
    return (
        "<!doctype html><html lang='en'><head><meta charset='utf-8'>"
        "<title>reconciler watch</title><style>"
        "body{font-family:system-ui,sans-serif;margin:2em;color:#222}"
        "table{border-collapse:collapse}td,th{padding:.2em .8em;border-bottom:1px solid #ddd;"
        "text-align:left}.active{color:#137333}.error,.missing{color:#b3261e}"
        ".money{text-align:right}li{margin:.2em 0}</style></head><body>"
        "<h1>reconciler watch</h1>"
        f"<p id='summary'>{status.cycles} cycle(s); last successful {e(last)}</p>"
        + "".join(rows)
        + f"<h2>Last events</h2><ol id='events'>{recent}</ol></body></html>"
    )


def status_json(status: WatchStatus, events: EventLog) -> dict[str, Any]:
    return {
        **asdict(status),
        "events": [asdict(ev) for ev in list(events.recent)[-50:]],
    }


def build_app(
    *,
    status: WatchStatus,
    events: EventLog,
    metrics: WatchMetrics,
    interval: float,
    clock: Callable[[], float] = time.time,
) -> Starlette:
    async def metrics_endpoint(request: Request) -> Response:
        return Response(metrics.exposition(), media_type=CONTENT_TYPE_LATEST)

    async def healthz(request: Request) -> Response:
        ok, why = health(status, interval, clock())
        return PlainTextResponse(why + "\n", status_code=200 if ok else 503)

    async def page(request: Request) -> Response:
        return HTMLResponse(status_page(status, events, clock()))

    async def as_json(request: Request) -> Response:
        return JSONResponse(status_json(status, events))

    return Starlette(
        routes=[
            Route("/metrics", metrics_endpoint),
            Route("/healthz", healthz),
            Route("/", page),
            Route("/status.json", as_json),
        ]
    )


def listening_socket(host: str, port: int) -> socket.socket:
    """A TCP socket bound to ``host:port`` (port 0: a free one), or a :class:`UsageError`
    saying why not (the port is taken, the address is not this machine's...).

    Bound here rather than by uvicorn, which answers a failed bind with ``sys.exit``."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    where = f"[{host}]:{port}" if family == socket.AF_INET6 else f"{host}:{port}"
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise UsageError(
            f"--listen {where}: cannot listen there ({exc.strerror or exc}); choose another "
            "address or port (port 0 picks a free one)."
        ) from exc
    return sock


async def serve(app: Starlette, host: str, port: int, *, started: Callable[[int], None]) -> None:
    """Serve ``app`` until cancelled; ``started`` gets the port (0 picks a free one).

    Raises :class:`UsageError` at once when ``host:port`` cannot be listened on. Cancelled, it
    shuts uvicorn down (stop listening, close the connections; a request still running gets
    :data:`SHUTDOWN_SECONDS`), so the port is free again."""
    import uvicorn

    class OwnSignals(uvicorn.Server):
        @contextlib.contextmanager
        def capture_signals(self) -> Iterator[None]:
            yield  # the watcher handles SIGTERM and SIGINT, not uvicorn

    sock = listening_socket(host, port)
    config = uvicorn.Config(
        app, log_level="warning", lifespan="off", timeout_graceful_shutdown=SHUTDOWN_SECONDS
    )
    server = OwnSignals(config)
    task = asyncio.create_task(server.serve(sockets=[sock]))
    try:
        while not server.started:
            if task.done():
                task.result()
                raise RuntimeError("the status server did not start")
            await asyncio.sleep(0.01)
        started(sock.getsockname()[1])
        await asyncio.wait({task})  # unlike `await task`, a cancel stays out of uvicorn's loop
        task.result()
    finally:
        server.should_exit = True  # its main loop notices within 0.1 s and shuts down
        try:
            if not task.done():
                await asyncio.wait({task}, timeout=SHUTDOWN_SECONDS + 1)
            if not task.done():
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)
        finally:
            for listener in getattr(server, "servers", []):
                listener.close()
            sock.close()
