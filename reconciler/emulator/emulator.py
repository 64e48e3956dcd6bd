"""The :class:`Emulator`: one emulated Shadeform account, its ASGI app and its admin API."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from starlette.applications import Starlette

from reconciler.emulator import server
from reconciler.emulator.admin import AdminHandlers, admin_routes
from reconciler.emulator.app import ApiGuard, ApiHandlers, api_routes, build_app
from reconciler.emulator.catalog import Catalog
from reconciler.emulator.cloud import Cloud
from reconciler.emulator.config import CapacitySetting, EmulatorConfig, FaultConfig
from reconciler.emulator.faults import FaultInjector
from reconciler.emulator.request_models import AddSshKeyRequest, CreateVolumeRequest
from reconciler.emulator.store import CloudStore, FileStore, MemoryStore
from reconciler.emulator.timeline import InstancePeriod

JsonDict = dict[str, Any]


class Emulator:
    """A local Shadeform: mount ``emu.app`` in-process or serve it on a real socket.

    Example::

        emu = Emulator(EmulatorConfig(boot_seconds=0))
        transport = httpx.ASGITransport(app=emu.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://emu/v1") as c:
            await c.get("/instances", headers={"X-API-KEY": SANDBOX_API_KEY})

        with emu.serve_in_thread() as base_url:   # "http://127.0.0.1:54321/v1"
            ...

    The admin methods change the cloud behind the reconciler's back; unknown (or already
    deleted) instance ids raise :class:`~reconciler.emulator.problems.UnknownResource`.
    With a ``data_file``, call :meth:`close` (or use the emulator as a context manager)
    when done; every change is on disk already, closing only releases the file.
    """

    def __init__(self, config: EmulatorConfig | None = None, *, catalog: Catalog | None = None):
        self.config = config or EmulatorConfig()
        clock = self.config.now()
        self._injector = FaultInjector(self.config.faults, clock)
        store: CloudStore = (
            FileStore(self.config.data_file) if self.config.data_file else MemoryStore()
        )
        self._cloud = Cloud(
            catalog=catalog or Catalog(),
            store=store,
            clock=clock,
            faults=lambda: self._injector.config,
            boot_seconds=self.config.boot_seconds,
            delete_seconds=self.config.delete_seconds,
        )
        for setting in self.config.capacity:
            self._cloud.set_capacity(setting)
        for volume in self.config.volumes:
            self._cloud.create_volume(
                CreateVolumeRequest(
                    cloud=volume.cloud,
                    region=volume.region,
                    name=volume.name,
                    size_in_gb=volume.size_in_gb,
                ),
                volume_id=volume.id,
            )
        for key in self.config.ssh_keys:
            self._cloud.accounts.add_ssh_key(
                AddSshKeyRequest(name=key.name, public_key=key.public_key), key_id=key.id
            )
        guard = ApiGuard(self.config.api_key, self._injector, self.config.sleeper())
        self.app: Starlette = build_app(
            api_routes(ApiHandlers(self._cloud, self._injector), guard)
            + admin_routes(AdminHandlers(self._cloud, self._injector), guard),
            guard,
        )

    def __enter__(self) -> Emulator:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        self._cloud.close()

    @property
    def faults(self) -> FaultConfig:
        """The live fault configuration; change its fields or assign a new one."""
        return self._injector.config

    @faults.setter
    def faults(self, config: FaultConfig) -> None:
        self._injector.config = config

    @contextmanager
    def serve_in_thread(self, host: str = "127.0.0.1", port: int = 0) -> Iterator[str]:
        """Serve under uvicorn in a background thread; yields the base URL ending in /v1."""
        with server.serve_in_thread(self.app, host, port) as base_url:
            yield base_url

    # -- out-of-band changes ------------------------------------------------------------

    def delete_instance_out_of_band(self, instance_id: str, *, immediate: bool = False) -> None:
        """Delete as if from Shadeform's console: deleting, then gone (at once if immediate)."""
        if immediate:
            self._cloud.remove_instance_now(instance_id)
        else:
            self._cloud.delete_instance(instance_id)

    def rename_instance(self, instance_id: str, name: str) -> None:
        self._cloud.rename_instance(instance_id, name)

    def retag_instance(self, instance_id: str, tags: list[str]) -> None:
        self._cloud.retag_instance(instance_id, tags)

    def fail_instance(
        self, instance_id: str, details: str = "the instance failed (injected by the emulator)"
    ) -> None:
        self._cloud.fail_instance(instance_id, details)

    def preempt_instance(self, instance_id: str) -> None:
        """Reclaim the instance: deleting with ``status_details: preempted``, then gone."""
        self._cloud.preempt_instance(instance_id)

    def create_count(self, name: str) -> int:
        """How many instances were ever created with this name (duplicates show as > 1)."""
        return self._cloud.create_count(name)

    def live_instances(self) -> list[JsonDict]:
        """Every instance not yet deleted (``deleting`` included), as ``/info`` returns it."""
        return self._cloud.live_instances()

    def timeline(self) -> list[InstancePeriod]:
        """Every instance since the emulator started, gone ones included, with when it was
        created, active and gone (see :mod:`reconciler.emulator.timeline`)."""
        return self._cloud.timeline()

    def now(self) -> float:
        """The emulator's clock."""
        return self._cloud.now()

    def set_capacity(
        self,
        cloud: str,
        region: str,
        shade_instance_type: str,
        available: bool,
        rental_type: str = "on_demand",
    ) -> None:
        """Open or exhaust capacity for one offer; creates against it fail with 409."""
        self._cloud.set_capacity(
            CapacitySetting.model_validate(
                {
                    "cloud": cloud,
                    "region": region,
                    "shade_instance_type": shade_instance_type,
                    "available": available,
                    "rental_type": rental_type,
                }
            )
        )
