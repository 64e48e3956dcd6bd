"""A faithful local emulator of the Shadeform API, for tests, the sandbox and benchmarks.

::

    from reconciler.emulator import Emulator, EmulatorConfig, FaultConfig, SANDBOX_API_KEY

    emu = Emulator(EmulatorConfig(boot_seconds=0, faults=FaultConfig(latency_ms=20)))
    emu.app                                   # ASGI app, e.g. for httpx.ASGITransport
    with emu.serve_in_thread() as base_url:   # real uvicorn server on 127.0.0.1
        ...

See ``docs/emulator.md`` for the behaviour, the admin API and every fault knob.
"""

from reconciler.emulator.catalog import Catalog
from reconciler.emulator.config import (
    SANDBOX_API_KEY,
    SANDBOX_VOLUMES,
    CapacitySetting,
    EmulatorConfig,
    EndpointFaults,
    FaultConfig,
    SeedVolume,
)
from reconciler.emulator.emulator import Emulator
from reconciler.emulator.problems import (
    BadRequest,
    CloudProblem,
    Conflict,
    NoCapacity,
    UnknownResource,
)

__all__ = [
    "SANDBOX_API_KEY",
    "SANDBOX_VOLUMES",
    "SeedVolume",
    "BadRequest",
    "CapacitySetting",
    "Catalog",
    "CloudProblem",
    "Conflict",
    "Emulator",
    "EmulatorConfig",
    "EndpointFaults",
    "FaultConfig",
    "NoCapacity",
    "UnknownResource",
]
