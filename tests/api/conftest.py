"""Fakes for the API client tests: a fake clock, a scripted transport and sample bodies."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest

from reconciler.api import RetryPolicy, ShadeformClient

API_KEY = "sk-test-Zq81-VERY-SECRET-KEY"
BASE_URL = "https://api.shadeform.ai/v1"


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@dataclass
class FakeClock:
    """A monotonic clock that only moves when someone sleeps (or a test advances it)."""

    now: float = 0.0
    sleeps: list[float] = field(default_factory=list)

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


Step = httpx.Response | Exception | Callable[[httpx.Request], httpx.Response]


class ScriptedTransport(httpx.AsyncBaseTransport):
    """Answers each request with the next scripted step (a response, an exception to raise,
    or a function of the request); the last step repeats. Records every request."""

    def __init__(self, *steps: Step) -> None:
        self.steps = list(steps)
        self.requests: list[httpx.Request] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        await request.aread()
        self.requests.append(request)
        step = self.steps.pop(0) if len(self.steps) > 1 else self.steps[0]
        if isinstance(step, Exception):
            raise step
        if isinstance(step, httpx.Response):
            return httpx.Response(
                step.status_code, headers=step.headers, content=step.content, request=request
            )
        return step(request)


def make_client(
    transport: httpx.AsyncBaseTransport,
    clock: FakeClock | None = None,
    *,
    max_attempts: int = 5,
    **kwargs: Any,
) -> ShadeformClient:
    clock = clock or FakeClock()
    policy = RetryPolicy(
        max_attempts=max_attempts, sleep=clock.sleep, clock=clock, random=lambda: 0.5
    )
    return ShadeformClient(API_KEY, BASE_URL, retry=policy, transport=transport, **kwargs)


def json_response(status: int, body: Any, headers: dict[str, str] | None = None) -> httpx.Response:
    return httpx.Response(status, json=body, headers=headers)


def instance_body(
    instance_id: str = "d290f1ee-6c54-4b01-90e6-d701748f0851", **overrides: Any
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "id": instance_id,
        "cloud": "hyperstack",
        "region": "canada-1",
        "shade_instance_type": "A6000",
        "cloud_instance_type": "gpu_1x_a6000",
        "cloud_assigned_id": "13b057d7-e266-4869-985f-760fe75a78b3",
        "shade_cloud": True,
        "name": "trainer-0",
        "configuration": {
            "memory_in_gb": 58,
            "storage_in_gb": 256,
            "vcpus": 8,
            "num_gpus": 1,
            "gpu_type": "A6000",
            "interconnect": "pcie",
            "nvlink": False,
            "vram_per_gpu_in_gb": 48,
            "gpu_manufacturer": "nvidia",
            "os": "ubuntu22.04_cuda12.2_shade_os",
        },
        "ip": "1.0.0.1",
        "ssh_user": "shadeform",
        "ssh_port": 22,
        "status": "active",
        "cost_estimate": "1.23",
        "hourly_price": 80,
        "tags": ["team:ml"],
        "created_at": "2024-05-01T10:00:00Z",
        "active_at": "2024-05-01T10:02:00Z",
        "deleted_at": None,
    }
    body.update(overrides)
    return body


def instance_type_body(**overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "cloud": "hyperstack",
        "shade_instance_type": "A6000",
        "cloud_instance_type": "gpu_1x_a6000",
        "configuration": {
            "memory_in_gb": 58,
            "storage_in_gb": 256,
            "vcpus": 8,
            "num_gpus": 1,
            "gpu_type": "A6000",
            "interconnect": "pcie",
            "nvlink": False,
            "os_options": ["ubuntu22.04_cuda12.2_shade_os", "ubuntu20.04_cuda12.0_shade_os"],
            "vram_per_gpu_in_gb": 48,
            "gpu_manufacturer": "nvidia",
        },
        "hourly_price": 80,
        "deployment_type": "vm",
        "availability": [
            {
                "region": "canada-1",
                "available": True,
                "display_name": "Canada",
                "rental_type": "on_demand",
            },
            {
                "region": "canada-1",
                "available": True,
                "display_name": "Canada",
                "rental_type": "spot",
                "hourly_price": "0.40",
            },
        ],
        "boot_time": {"min_boot_in_sec": 180, "max_boot_in_sec": 300},
    }
    body.update(overrides)
    return body


def volume_body(**overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "id": "78a0dd5a-dbb1-4568-b55c-5e7e0a8b0c40",
        "cloud": "hyperstack",
        "cloud_assigned_id": "13b057d7",
        "region": "canada-1",
        "name": "datasets",
        "fixed_size": True,
        "size_in_gb": 100,
        "cost_estimate": "1.00",
        "supports_multi_mount": False,
        "mounted_by": "",
    }
    body.update(overrides)
    return body


def ssh_key_body(**overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "id": "78a0dd5a-dbb1-4568-b55c-5e7e0a8b0c41",
        "name": "laptop",
        "public_key": "ssh-ed25519 AAAAC3Nza laptop",
        "is_default": True,
    }
    body.update(overrides)
    return body
