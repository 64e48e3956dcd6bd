"""An in-process loop for engine tests: the emulator over ASGI, a memory state store."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime

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


def make_client(emulator: Emulator, **kwargs: object) -> ShadeformClient:
    kwargs.setdefault("retry", RetryPolicy(max_attempts=6, base_delay=0.001, max_delay=0.01))
    return ShadeformClient(
        SANDBOX_API_KEY,
        "http://127.0.0.1/v1",
        transport=httpx.ASGITransport(app=emulator.app),
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

    def state(self, fleet: Fleet):  # type: ignore[no-untyped-def]
        return self.store.read(fleet.name) or new_state(fleet.name)

    async def plan(self, fleet: Fleet, options: PlanOptions = PlanOptions()) -> Plan:
        async with make_client(self.emulator) as client:
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
        async with make_client(self.emulator) as client:
            executor = Executor(client, options=self.options, **executor_kw)  # type: ignore[arg-type]
            return await executor.apply(
                plan, fleets={fleet.name: fleet}, recorders={fleet.name: recorder}
            )

    def live_for(self, address: str) -> list[dict]:
        tag = f"reconciler:address={address}"
        return [i for i in self.emulator.live_instances() if tag in i.get("tags", [])]
