"""Fakes and helpers for the emulator tests: a fake clock, a recording sleep and a synchronous
caller over ``httpx.ASGITransport`` that can check every exchange against the OpenAPI spec."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from reconciler.emulator import SANDBOX_API_KEY, Emulator, EmulatorConfig

BASE_URL = "http://emulator.test/v1"
MakeEmulator = Callable[..., Emulator]


@dataclass
class FakeClock:
    now: float = 1_700_000_000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@dataclass
class RecordingSleep:
    """Stands in for asyncio.sleep: remembers each wait and returns at once."""

    waits: list[float] = field(default_factory=list)

    async def __call__(self, seconds: float) -> None:
        self.waits.append(seconds)


class Api:
    """Blocking calls into an emulator's ASGI app (one private event loop per caller).

    With ``exchanges`` set, every request/response pair is appended for contract checks.
    """

    def __init__(self, emulator: Emulator, api_key: str = SANDBOX_API_KEY) -> None:
        self._loop = asyncio.new_event_loop()
        self._client = httpx.AsyncClient(
            transport=httpx.ASGITransport(app=emulator.app),
            base_url=BASE_URL,
            headers={"X-API-KEY": api_key},
        )
        self.exchanges: list[httpx.Response] = []

    def request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        response = self._loop.run_until_complete(self._client.request(method, path, **kwargs))
        self.exchanges.append(response)
        return response

    def get(self, path: str, **kwargs: Any) -> httpx.Response:
        return self.request("GET", path, **kwargs)

    def post(self, path: str, **kwargs: Any) -> httpx.Response:
        return self.request("POST", path, **kwargs)

    def close(self) -> None:
        self._loop.run_until_complete(self._client.aclose())
        self._loop.close()


def create_body(**overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "cloud": "hyperstack",
        "region": "canada-1",
        "shade_instance_type": "A6000",
        "shade_cloud": True,
        "name": "web-0",
    }
    body.update(overrides)
    return body


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def sleep() -> RecordingSleep:
    return RecordingSleep()


@pytest.fixture
def make_emulator(clock: FakeClock, sleep: RecordingSleep) -> Iterator[MakeEmulator]:
    made: list[Emulator] = []

    def make(**config: Any) -> Emulator:
        config.setdefault("clock", clock)
        config.setdefault("sleep", sleep)
        config.setdefault("boot_seconds", 10.0)
        config.setdefault("delete_seconds", 1.0)
        emulator = Emulator(EmulatorConfig(**config))
        made.append(emulator)
        return emulator

    yield make
    for emulator in made:
        emulator.close()


@pytest.fixture
def emulator(make_emulator: MakeEmulator) -> Emulator:
    return make_emulator()


@pytest.fixture
def api(emulator: Emulator) -> Iterator[Api]:
    caller = Api(emulator)
    yield caller
    caller.close()


@pytest.fixture
def data_file(tmp_path: Path) -> Path:
    return tmp_path / "cloud.json"
