"""The emulator over a real socket: serve_in_thread, dropped connections and hangs."""

from __future__ import annotations

import httpx
import pytest

from reconciler.emulator import (
    SANDBOX_API_KEY,
    Emulator,
    EmulatorConfig,
    EndpointFaults,
    FaultConfig,
)
from reconciler.emulator.server import bind_socket, is_loopback

from .conftest import create_body

HEADERS = {"X-API-KEY": SANDBOX_API_KEY}


@pytest.mark.parametrize(
    ("host", "loopback"),
    [
        ("127.0.0.1", True),
        ("127.8.0.1", True),
        ("::1", True),
        ("localhost", True),
        ("0.0.0.0", False),
        ("10.0.0.5", False),
        ("example.com", False),
        ("::", False),
    ],
)
def test_is_loopback(host: str, loopback: bool) -> None:
    assert is_loopback(host) is loopback


def test_serve_in_thread_answers_over_http() -> None:
    emulator = Emulator(EmulatorConfig(boot_seconds=0))
    with emulator.serve_in_thread() as base_url:
        assert base_url.startswith("http://127.0.0.1:") and base_url.endswith("/v1")
        assert not base_url.endswith(":0/v1")
        with httpx.Client(base_url=base_url, headers=HEADERS) as client:
            created = client.post("/instances/create", json=create_body())
            assert created.status_code == 200
            assert client.get("/instances").json()["instances"][0]["status"] == "active"
    with pytest.raises(httpx.ConnectError), httpx.Client() as client:
        client.get(base_url + "/instances", headers=HEADERS)


def test_a_busy_port_is_an_os_error() -> None:
    sock = bind_socket("127.0.0.1", 0)
    try:
        with pytest.raises(OSError):
            bind_socket("127.0.0.1", sock.getsockname()[1]).close()
    finally:
        sock.close()


def test_drop_mode_cuts_the_connection_after_creating() -> None:
    faults = FaultConfig(lost_create_rate=1.0, lost_response_mode="drop")
    emulator = Emulator(EmulatorConfig(boot_seconds=0, faults=faults))
    with (
        emulator.serve_in_thread() as base_url,
        httpx.Client(base_url=base_url, headers=HEADERS) as client,
    ):
        with pytest.raises(httpx.RemoteProtocolError):
            client.post("/instances/create", json=create_body())
        assert emulator.create_count("web-0") == 1
        assert client.get("/instances").status_code == 200  # other requests are unaffected


def test_a_hang_outlasts_the_client_timeout_but_the_create_happened() -> None:
    faults = FaultConfig(
        endpoints={"InstancesCreate": EndpointFaults(hang_rate=1.0, hang_seconds=30)}
    )
    emulator = Emulator(EmulatorConfig(boot_seconds=0, faults=faults))
    with (
        emulator.serve_in_thread() as base_url,
        httpx.Client(base_url=base_url, headers=HEADERS, timeout=0.3) as client,
    ):
        with pytest.raises(httpx.ReadTimeout):
            client.post("/instances/create", json=create_body())
        assert emulator.create_count("web-0") == 1
