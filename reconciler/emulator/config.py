"""How an emulator is configured: lifecycle timings, the API key and the fault knobs.

:class:`EmulatorConfig` is fixed for an emulator's life. :class:`FaultConfig` is a mutable
pydantic model (assignments are validated) that tests change at run time through
``Emulator.faults``; the same shape is read from the ``faults:`` section of a config file
and from ``PUT /_admin/faults``.

Per-endpoint overrides live in ``FaultConfig.endpoints``, keyed by the spec's operationId
(``InstancesCreate``), by ``"METHOD /path-glob"`` (``"GET /v1/instances/*/info"``) or by a
path glob alone (``/v1/volumes*``). The first key that matches wins; every field left unset
(``None``) falls back to the global value.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

SANDBOX_API_KEY = "sandbox-key"
"""The key a sandbox emulator expects in ``X-API-KEY`` unless told otherwise."""

Rate = float
ErrorStatus = Literal[500, 502, 503, 504]
LostResponseMode = Literal["502", "drop"]


class _FaultModel(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class EndpointFaults(_FaultModel):
    """Fault knobs for one endpoint; ``None`` means "use the global value"."""

    latency_ms: float | None = Field(default=None, ge=0)
    jitter_ms: float | None = Field(default=None, ge=0)
    error_rate: Rate | None = Field(default=None, ge=0, le=1)
    error_statuses: tuple[ErrorStatus, ...] | None = Field(default=None, min_length=1)
    rate_limit_rps: float | None = Field(
        default=None, gt=0, description="A separate token bucket for this endpoint"
    )
    rate_limit_burst: int | None = Field(default=None, ge=1)
    hang_rate: Rate | None = Field(default=None, ge=0, le=1)
    hang_seconds: float | None = Field(default=None, ge=0)
    lost_response_rate: Rate | None = Field(
        default=None, ge=0, le=1, description="The request takes effect, the answer is lost"
    )


class FaultConfig(_FaultModel):
    """Every fault the emulator can inject. All off by default."""

    seed: int | None = Field(default=None, description="Seeds the fault dice for reproducible runs")
    latency_ms: float = Field(default=0.0, ge=0, description="Added to every API request")
    jitter_ms: float = Field(default=0.0, ge=0, description="Plus uniform(0, jitter_ms)")
    error_rate: Rate = Field(default=0.0, ge=0, le=1, description="Chance of an injected 5xx")
    error_statuses: tuple[ErrorStatus, ...] = Field(default=(500, 502, 503), min_length=1)
    rate_limit_rps: float | None = Field(
        default=None, gt=0, description="Account-wide token bucket; over it answers 429"
    )
    rate_limit_burst: int | None = Field(
        default=None, ge=1, description="Bucket size; defaults to max(1, rate_limit_rps)"
    )
    hang_rate: Rate = Field(
        default=0.0, ge=0, le=1, description="Chance the answer is held back hang_seconds"
    )
    hang_seconds: float = Field(default=30.0, ge=0)
    lost_create_rate: Rate = Field(
        default=0.0, ge=0, le=1, description="Chance a create happens but its answer is lost"
    )
    lost_response_mode: LostResponseMode = Field(
        default="502",
        description="'502': an empty 502 (works in-process); 'drop': the connection is cut "
        "mid-response (needs a real server)",
    )
    boot_failure_rate: Rate = Field(
        default=0.0, ge=0, le=1, description="Chance a new instance ends in 'error' at boot"
    )
    preempt_spot_after_seconds: float | None = Field(
        default=None, ge=0, description="Spot instances are reclaimed this long after creation"
    )
    endpoints: dict[str, EndpointFaults] = Field(default_factory=dict)


class CapacitySetting(_FaultModel):
    """Capacity of one offer: ``available: false`` makes creates fail with 409."""

    cloud: str
    region: str
    shade_instance_type: str
    available: bool
    rental_type: Literal["on_demand", "spot"] = "on_demand"


@dataclass(frozen=True, kw_only=True)
class SeedVolume:
    """A volume the emulated account has from the start (kept if it already exists)."""

    id: str
    cloud: str
    region: str
    name: str
    size_in_gb: int = 500


@dataclass(frozen=True, kw_only=True)
class SeedSshKey:
    """An SSH key the emulated account has from the start (kept if it already exists)."""

    id: str
    name: str
    public_key: str


SANDBOX_VOLUMES: tuple[SeedVolume, ...] = (
    SeedVolume(
        id="6f1c2b7e-3d4a-4e8f-9b21-5a7c0d9e8f13",
        cloud="lambdalabs",
        region="us-east-1",
        name="sandbox-checkpoints",
        size_in_gb=2000,
    ),
)
"""The sandbox's ready-made volumes, so the example training fleet can mount one."""


def _system_clock() -> float:
    return time.time()


@dataclass(kw_only=True)
class EmulatorConfig:
    """Everything an :class:`~reconciler.emulator.Emulator` needs to start.

    ``clock`` returns seconds since the epoch (``time.time`` by default); pass a fake to
    drive the instance lifecycle by hand; ``sleep`` (``asyncio.sleep`` by default) is how
    injected latency and hangs wait, so tests can record them instead of waiting. ``capacity`` is applied at every start (over
    what a data file remembers). With ``boot_seconds=0`` instances are active at
    once; with ``delete_seconds=0`` a deleted instance is gone at once.

    Example::

        config = EmulatorConfig(boot_seconds=0, faults=FaultConfig(latency_ms=20))
    """

    api_key: str = field(default=SANDBOX_API_KEY, repr=False)
    boot_seconds: float = 2.0
    delete_seconds: float = 1.0
    data_file: Path | None = None
    faults: FaultConfig = field(default_factory=FaultConfig)
    clock: Callable[[], float] | None = None
    sleep: Callable[[float], Awaitable[None]] | None = None
    capacity: tuple[CapacitySetting, ...] = ()
    volumes: tuple[SeedVolume, ...] = ()
    ssh_keys: tuple[SeedSshKey, ...] = ()

    def __post_init__(self) -> None:
        if not self.api_key:
            raise ValueError("api_key must not be empty")
        if self.boot_seconds < 0 or self.delete_seconds < 0:
            raise ValueError("boot_seconds and delete_seconds must not be negative")

    def now(self) -> Callable[[], float]:
        """The clock to use: the injected one or the system clock."""
        return self.clock or _system_clock

    def sleeper(self) -> Callable[[float], Awaitable[None]]:
        """How injected latency and hangs wait: the injected coroutine or asyncio.sleep."""
        return self.sleep or asyncio.sleep
