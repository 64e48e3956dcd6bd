"""The watcher's HTTP side, in process: ``/metrics``, ``/healthz``, the status page and
``/status.json``, read over ``httpx.ASGITransport`` from a WatchStatus built by hand."""

from __future__ import annotations

import asyncio
import io
import json
import socket

import httpx
import pytest
from starlette.applications import Starlette

from reconciler.controller.events import EventLog
from reconciler.controller.metrics import CONTENT_TYPE_LATEST, WatchMetrics
from reconciler.controller.server import HEALTHY_INTERVALS, build_app, serve
from reconciler.controller.watcher import FleetStatus, InstanceStatus, WatchStatus
from reconciler.errors import UsageError

INTERVAL = 10.0
STARTED = 1_000_000.0


class Clock:
    """A clock the test moves by hand."""

    def __init__(self, now: float = STARTED) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


class Caller:
    """Synchronous requests to the app over the ASGI transport (no socket, no thread)."""

    def __init__(self, app: Starlette) -> None:
        self.app = app

    def request(self, method: str, path: str) -> httpx.Response:
        async def send() -> httpx.Response:
            transport = httpx.ASGITransport(app=self.app)
            async with httpx.AsyncClient(transport=transport, base_url="http://watch") as client:
                return await client.request(method, path)

        return asyncio.run(send())

    def get(self, path: str) -> httpx.Response:
        return self.request("GET", path)


def client_for(
    status: WatchStatus,
    *,
    events: EventLog | None = None,
    metrics: WatchMetrics | None = None,
    clock: Clock | None = None,
) -> Caller:
    app = build_app(
        status=status,
        events=events or EventLog(io.StringIO()),
        metrics=metrics or WatchMetrics(),
        interval=INTERVAL,
        clock=clock or Clock(),
    )
    return Caller(app)


def inference_status() -> WatchStatus:
    return WatchStatus(
        started_at=STARTED,
        cycles=3,
        last_cycle_at=STARTED + 20,
        last_success_at=STARTED + 20,
        fleets={
            "inference": FleetStatus(
                fleet="inference",
                desired=2,
                instances=[
                    InstanceStatus("inference/mistral-0", "i-111", "active", 80.0),
                    InstanceStatus("inference/mistral-1", None, "missing", None),
                ],
                burn_cents=80.0,
                pending_changes=1,
            )
        },
    )


# -- /metrics ----------------------------------------------------------------------------------


def test_metrics_are_the_prometheus_text_format_with_the_watchers_metric_names() -> None:
    metrics = WatchMetrics()
    metrics.desired.labels(fleet="inference").set(2)
    metrics.burn.labels(fleet="inference").set(0.8)
    metrics.cycles.labels(result="ok").inc()
    metrics.actions.labels(fleet="inference", kind="instance", action="create", result="ok").inc()
    metrics.cycle_seconds.observe(0.25)
    answer = client_for(inference_status(), metrics=metrics).get("/metrics")
    assert answer.status_code == 200
    assert answer.headers["content-type"] == CONTENT_TYPE_LATEST
    assert answer.headers["content-type"].startswith("text/plain; version=")
    text = answer.text
    for name in (
        "reconciler_fleet_desired_instances",
        "reconciler_fleet_live_instances",
        "reconciler_fleet_pending_instances",
        "reconciler_fleet_blocked_addresses",
        "reconciler_fleet_burn_dollars_per_hour",
        "reconciler_watch_cycle_duration_seconds",
        "reconciler_watch_cycles_total",
        "reconciler_watch_actions_total",
        "reconciler_watch_locked_skips_total",
        "reconciler_watch_last_successful_cycle_timestamp_seconds",
        "reconciler_watch_heal_latency_seconds",
    ):
        assert f"# TYPE {name} " in text, name
    assert 'reconciler_fleet_desired_instances{fleet="inference"} 2.0' in text
    assert 'reconciler_fleet_burn_dollars_per_hour{fleet="inference"} 0.8' in text
    assert 'reconciler_watch_cycles_total{result="ok"} 1.0' in text
    assert "reconciler_watch_cycle_duration_seconds_count 1.0" in text
    # Its own registry: nothing of the process-wide default one (python_gc_..., process_...).
    assert "python_gc_" not in text and "process_cpu" not in text


# -- /healthz ----------------------------------------------------------------------------------


def test_healthz_is_ok_while_starting_and_while_a_cycle_succeeded_within_three_intervals() -> None:
    clock = Clock()
    status = WatchStatus(started_at=STARTED)
    client = client_for(status, clock=clock)
    starting = client.get("/healthz")
    assert starting.status_code == 200 and starting.text == "ok: starting\n"
    assert starting.headers["content-type"].startswith("text/plain")

    status.cycles, status.last_success_at = 1, STARTED + 5
    clock.now = STARTED + 5 + HEALTHY_INTERVALS * INTERVAL  # exactly three intervals: still ok
    fresh = client.get("/healthz")
    assert fresh.status_code == 200
    assert fresh.text == f"ok: last successful cycle {HEALTHY_INTERVALS * INTERVAL:.0f}s ago\n"


def test_healthz_fails_with_the_reason_after_three_intervals_without_a_successful_cycle() -> None:
    clock = Clock()
    status = WatchStatus(started_at=STARTED, cycles=1, last_success_at=STARTED)
    client = client_for(status, clock=clock)
    assert client.get("/healthz").status_code == 200

    # The cycles go on failing: the last success ages past three intervals.
    status.cycles, status.last_error = 5, "Shadeform answered 502 for GET /instances"
    clock.now = STARTED + HEALTHY_INTERVALS * INTERVAL + 1
    stale = client.get("/healthz")
    assert stale.status_code == 503
    assert "no successful cycle for 31s (more than 3 intervals)" in stale.text
    assert "last error: Shadeform answered 502 for GET /instances" in stale.text

    # A successful cycle makes it healthy again.
    status.last_success_at, status.last_error = clock.now, None
    assert client.get("/healthz").status_code == 200


def test_healthz_fails_when_no_cycle_ever_succeeded_within_three_intervals() -> None:
    clock = Clock(STARTED + HEALTHY_INTERVALS * INTERVAL + 0.5)
    status = WatchStatus(started_at=STARTED, cycles=3, last_error="cannot read the manifests")
    answer = client_for(status, clock=clock).get("/healthz")
    assert answer.status_code == 503
    assert answer.text == (
        "no successful cycle since the start; last error: cannot read the manifests\n"
    )


# -- the status page ---------------------------------------------------------------------------


def test_the_page_lists_fleets_instances_with_status_and_price_and_the_last_events() -> None:
    events = EventLog(io.StringIO())
    events("heal", "healing: deleted out of band", fleet="inference", address="inference/m-1")
    events("healed", "created i-222", fleet="inference", address="inference/m-1")
    clock = Clock(STARTED + 27)
    answer = client_for(inference_status(), events=events, clock=clock).get("/")
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("text/html")
    page = answer.text
    assert page.startswith("<!doctype html>") and "<script" not in page.lower()
    assert "<h2>inference</h2>" in page
    assert "2 desired · $0.80/h · 1 change(s) pending · 0 blocked" in page
    assert (
        "<td class='address'>inference/mistral-0</td><td>i-111</td>"
        "<td class='status active'>active</td><td class='money'>$0.80/h</td>"
    ) in page
    assert "<td class='status missing'>missing</td><td class='money'></td>" in page
    assert "3 cycle(s); last successful 7s ago" in page
    # The newest event first.
    healed = page.index("<b>healed</b> inference/m-1: created i-222")
    heal = page.index("<b>heal</b> inference/m-1: healing: deleted out of band")
    assert healed < heal


def test_the_page_escapes_html_in_names_statuses_and_event_messages() -> None:
    status = WatchStatus(
        started_at=STARTED,
        fleets={
            "<i>f</i>": FleetStatus(
                fleet="<i>f</i>",
                desired=1,
                instances=[InstanceStatus("<i>f</i>/<b>web</b>", "i-<1>", "act'ive\" x='1", 50.0)],
            )
        },
    )
    events = EventLog(io.StringIO())
    events("error", "<script>alert('owned')</script>", address="a&<b>")
    page = client_for(status, events=events).get("/").text
    assert "<script" not in page.lower() and "<b>web</b>" not in page and "<i>f</i>" not in page
    assert "&lt;script&gt;alert(&#x27;owned&#x27;)&lt;/script&gt;" in page
    assert "a&amp;&lt;b&gt;" in page
    assert "<h2>&lt;i&gt;f&lt;/i&gt;</h2>" in page
    assert "id='fleet-&lt;i&gt;f&lt;/i&gt;'" in page
    assert "<td class='address'>&lt;i&gt;f&lt;/i&gt;/&lt;b&gt;web&lt;/b&gt;</td>" in page
    assert "<td>i-&lt;1&gt;</td>" in page
    # A quote cannot close the class attribute.
    assert "class='status act&#x27;ive&quot; x=&#x27;1'" in page


def test_the_page_shows_at_most_the_last_fifty_events() -> None:
    events = EventLog(io.StringIO())
    for n in range(60):
        events("cycle", f"event number {n:02d}.")
    page = client_for(WatchStatus(started_at=STARTED), events=events).get("/").text
    assert "event number 59." in page and "event number 10." in page
    assert "event number 09." not in page
    assert "not yet" in page  # no successful cycle


# -- /status.json ------------------------------------------------------------------------------


def test_status_json_holds_the_same_as_the_page() -> None:
    events = EventLog(io.StringIO())
    events("heal", "healing <now>", fleet="inference", address="inference/mistral-1")
    answer = client_for(inference_status(), events=events).get("/status.json")
    assert answer.status_code == 200 and answer.headers["content-type"] == "application/json"
    body = answer.json()
    assert body["cycles"] == 3 and body["last_success_at"] == STARTED + 20
    assert body["last_error"] is None and body["started_at"] == STARTED
    fleet = body["fleets"]["inference"]
    assert fleet["desired"] == 2 and fleet["burn_cents"] == 80.0
    assert fleet["instances"][0] == {
        "address": "inference/mistral-0",
        "instance_id": "i-111",
        "status": "active",
        "hourly_cents": 80.0,
    }
    assert fleet["instances"][1]["status"] == "missing"
    (event,) = body["events"]
    assert event["event"] == "heal" and event["message"] == "healing <now>"  # JSON, not HTML
    assert event["address"] == "inference/mistral-1" and event["at"].endswith("Z")
    json.dumps(body)  # plain data


def test_nothing_here_changes_anything() -> None:
    client = client_for(inference_status())
    for path in ("/", "/metrics", "/healthz", "/status.json"):
        assert client.request("POST", path).status_code == 405, path
        assert client.request("HEAD", path).status_code in (200, 503), path
    assert client.get("/nowhere").status_code == 404


# -- serving on a real socket --------------------------------------------------------------------


def test_serve_reports_the_port_it_picked_serves_there_and_frees_it_when_cancelled() -> None:
    app = build_app(
        status=inference_status(), events=EventLog(io.StringIO()), metrics=WatchMetrics(),
        interval=INTERVAL, clock=Clock(STARTED + 21),
    )  # fmt: skip
    ports: list[int] = []

    async def scenario() -> httpx.Response:
        server = asyncio.create_task(serve(app, "127.0.0.1", 0, started=ports.append))
        while not ports:
            assert not server.done(), server
            await asyncio.sleep(0.01)
        async with httpx.AsyncClient() as client:
            answer = await client.get(f"http://127.0.0.1:{ports[0]}/healthz")
        server.cancel()
        await asyncio.gather(server, return_exceptions=True)
        return answer

    answer = asyncio.run(asyncio.wait_for(scenario(), 10))
    assert answer.status_code == 200 and answer.text == "ok: last successful cycle 1s ago\n"
    (port,) = ports
    assert port > 0
    with socket.socket() as again:  # released: the port can be listened on again
        again.bind(("127.0.0.1", port))


def test_serve_on_a_port_in_use_raises_a_usage_error_instead_of_exiting() -> None:
    """uvicorn answers a failed bind with ``sys.exit(3)`` (a SystemExit escaping the event
    loop, and 3 is the manifest-error exit code); the server binds the socket itself."""
    app = build_app(
        status=inference_status(), events=EventLog(io.StringIO()), metrics=WatchMetrics(),
        interval=INTERVAL,
    )  # fmt: skip
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        started: list[int] = []
        with pytest.raises(UsageError) as caught:
            asyncio.run(asyncio.wait_for(serve(app, "127.0.0.1", port, started=started.append), 10))
    assert str(caught.value) == (
        f"--listen 127.0.0.1:{port}: cannot listen there (Address already in use); choose "
        "another address or port (port 0 picks a free one)."
    )
    assert caught.value.exit_code == 64 and started == []


def test_a_long_action_that_keeps_moving_stays_alive() -> None:
    from reconciler.controller.server import health
    from reconciler.controller.watcher import WatchStatus

    status = WatchStatus(started_at=0.0, last_success_at=10.0, last_progress_at=95.0)
    assert health(status, 10.0, 100.0) == (True, "ok: acting, last progress 5s ago")
    stalled = WatchStatus(started_at=0.0, last_success_at=10.0, last_progress_at=50.0)
    assert not health(stalled, 10.0, 100.0)[0]
