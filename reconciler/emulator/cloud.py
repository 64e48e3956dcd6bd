"""The emulated cloud: instances, capacity and the account's volumes and SSH keys.

One :class:`Cloud` owns every table behind one re-entrant lock, so uvicorn's thread and a
test thread calling the admin API can share it. Every change goes to the store at once.
Reads never wait on time: statuses are derived from timestamps (see ``lifecycle``).

Operations raise :mod:`reconciler.emulator.problems` exceptions; the app renders them.
"""

from __future__ import annotations

import hashlib
import threading
import uuid
from collections.abc import Callable
from typing import Any

from reconciler.emulator import rendering
from reconciler.emulator.accounts import Accounts
from reconciler.emulator.catalog import ON_DEMAND, SPOT, Catalog, InstanceOffer, RegionOffer
from reconciler.emulator.config import CapacitySetting, FaultConfig
from reconciler.emulator.lifecycle import (
    PREEMPTED,
    InstanceRecord,
    Observation,
    observe,
    preempt_if_due,
    start_deleting,
)
from reconciler.emulator.problems import BadRequest, NoCapacity, UnknownResource
from reconciler.emulator.request_models import (
    CreateInstanceRequest,
    CreateVolumeRequest,
    UpdateInstanceRequest,
)
from reconciler.emulator.store import CloudStore
from reconciler.emulator.timeline import InstancePeriod, period_of

JsonDict = dict[str, Any]
_IP_PREFIX = {"hyperstack": "38.80", "lambdalabs": "129.213", "datacrunch": "65.108"}


def _ip_for(cloud: str, instance_id: str) -> str:
    digest = hashlib.sha256(instance_id.encode()).digest()
    prefix = _IP_PREFIX.get(cloud, "195.242")
    return f"{prefix}.{digest[0]}.{digest[1] % 254 + 1}"


class Cloud:
    """The state behind the emulated API. All public methods are thread-safe."""

    def __init__(
        self,
        *,
        catalog: Catalog,
        store: CloudStore,
        clock: Callable[[], float],
        faults: Callable[[], FaultConfig],
        boot_seconds: float,
        delete_seconds: float,
    ) -> None:
        self.catalog = catalog
        self._store = store
        self._clock = clock
        self._faults = faults
        self._boot_seconds = boot_seconds
        self._delete_seconds = delete_seconds
        self._lock = threading.RLock()
        tables = store.load()
        self._instances = {
            key: InstanceRecord.from_json(value)
            for key, value in tables.get("instance", {}).items()
        }
        self._create_counts: dict[str, int] = dict(tables.get("create_count", {}))
        self._capacity: dict[str, bool] = dict(tables.get("capacity", {}))
        self._volume_users: dict[str, set[str]] = {}
        for record in self._instances.values():
            self._index_volumes(record)
        self._ever: dict[str, InstanceRecord] = dict(self._instances)
        """Every instance known since start, gone ones included (for the timeline)."""
        self.accounts = Accounts(
            tables=tables,
            store=store,
            clock=clock,
            lock=self._lock,
            volume_users=self._live_volume_users,
            key_in_use=self._key_in_use,
        )

    def close(self) -> None:
        with self._lock:
            self._store.close()

    # -- instances ----------------------------------------------------------------------

    def list_instances(self) -> list[JsonDict]:
        with self._lock:
            return [self._render(r, seen, detailed=False) for r, seen in self._live()]

    def instance_info(self, instance_id: str) -> JsonDict:
        with self._lock:
            record, seen = self._find(instance_id)
            return self._render(record, seen, detailed=True)

    def create_instance(self, request: CreateInstanceRequest, *, boot_fails: bool = False) -> str:
        with self._lock:
            offer, region = self._check_offer(request)
            self._check_attachments(request)
            now = self._clock()
            instance_id = str(uuid.uuid4())
            spot = request.effective_rental_type == SPOT
            price = region.spot_price if spot and region.spot_price else offer.hourly_price
            record = InstanceRecord(
                id=instance_id,
                name=request.name,
                cloud=request.cloud,
                region=request.region,
                shade_instance_type=request.shade_instance_type,
                cloud_instance_type=offer.cloud_instance_type,
                rental_type=request.effective_rental_type,
                shade_cloud=request.shade_cloud,
                os=request.os or offer.os_options[0],
                cloud_assigned_id=str(uuid.uuid4()),
                ip=_ip_for(request.cloud, instance_id),
                hourly_price=price,
                created_at=now,
                boot_seconds=self._boot_seconds,
                launch_configuration=_dump(request.launch_configuration),
                volume_ids=list(request.volume_ids or []),
                ssh_key_id=request.ssh_key_id,
                auto_delete=_dump(request.auto_delete),
                alert=_dump(request.alert),
                volume_mount=_dump(request.volume_mount),
                tags=list(request.tags or []),
                envs=[env.model_dump() for env in request.envs or []],
            )
            if boot_fails:
                record.fails_at = record.boots_at
                record.failure_details = "the provider failed to provision the instance"
            self._instances[instance_id] = record
            self._ever[instance_id] = record
            self._index_volumes(record)
            self._save(record)
            self._create_counts[request.name] = self._create_counts.get(request.name, 0) + 1
            self._store.put("create_count", request.name, self._create_counts[request.name])
            return instance_id

    def update_instance(self, instance_id: str, request: UpdateInstanceRequest) -> None:
        with self._lock:
            record, _ = self._find(instance_id)
            changed = request.model_fields_set
            if "name" in changed and request.name is not None:
                record.name = request.name
            if "tags" in changed:
                record.tags = list(request.tags or [])
            if "auto_delete" in changed:
                record.auto_delete = _dump(request.auto_delete)
            if "alert" in changed:
                record.alert = _dump(request.alert)
            self._save(record)

    def delete_instance(self, instance_id: str, *, details: str | None = None) -> None:
        """Start deleting; deleting an instance that is already deleting changes nothing."""
        with self._lock:
            record, _ = self._find(instance_id)
            if start_deleting(record, self._clock(), self._delete_seconds, details):
                self._save(record)

    def restart_instance(self, instance_id: str) -> None:
        with self._lock:
            record, seen = self._find(instance_id)
            if seen.status != "active":
                raise BadRequest(
                    f"instance {instance_id} is {seen.status}; only active instances restart"
                )
            record.restarted_at = self._clock()
            self._save(record)

    # -- out-of-band changes (admin) ----------------------------------------------------

    def remove_instance_now(self, instance_id: str) -> None:
        with self._lock:
            self._find(instance_id)
            self._purge(instance_id)

    def rename_instance(self, instance_id: str, name: str) -> None:
        with self._lock:
            record, _ = self._find(instance_id)
            record.name = name
            self._save(record)

    def retag_instance(self, instance_id: str, tags: list[str]) -> None:
        with self._lock:
            record, _ = self._find(instance_id)
            record.tags = list(tags)
            self._save(record)

    def fail_instance(self, instance_id: str, details: str) -> None:
        with self._lock:
            record, _ = self._find(instance_id)
            record.fails_at = self._clock()
            record.failure_details = details
            self._save(record)

    def preempt_instance(self, instance_id: str) -> None:
        self.delete_instance(instance_id, details=PREEMPTED)

    def create_count(self, name: str) -> int:
        with self._lock:
            return self._create_counts.get(name, 0)

    def create_counts(self) -> dict[str, int]:
        with self._lock:
            return dict(self._create_counts)

    def live_instances(self) -> list[JsonDict]:
        with self._lock:
            return [self._render(r, seen, detailed=True) for r, seen in self._live()]

    def timeline(self) -> list[InstancePeriod]:
        with self._lock:
            return [period_of(r) for r in self._ever.values()]

    def now(self) -> float:
        return self._clock()

    # -- catalog and capacity -----------------------------------------------------------

    def instance_types(self, query: rendering.InstanceTypeQuery) -> list[JsonDict]:
        with self._lock:
            return rendering.instance_types(self.catalog.offers, query, self._is_available)

    def set_capacity(self, setting: CapacitySetting) -> None:
        with self._lock:
            offer = self._known_offer(setting.cloud, setting.shade_instance_type)
            region = self._known_region(offer, setting.region)
            if setting.rental_type == SPOT and region.spot_price is None:
                raise BadRequest(
                    f"{offer.shade_instance_type} on {offer.cloud} in {region.region} "
                    "has no spot offer"
                )
            key = _capacity_key(offer, region, setting.rental_type)
            self._capacity[key] = setting.available
            self._store.put("capacity", key, setting.available)

    # -- volumes ------------------------------------------------------------------------

    def create_volume(self, request: CreateVolumeRequest, *, volume_id: str | None = None) -> str:
        with self._lock:
            volume_type = self.catalog.volume_type(request.cloud, request.region)
            if volume_type is None:
                valid = ", ".join(f"{v.cloud}/{v.region}" for v in self.catalog.volume_types)
                raise BadRequest(
                    f"volumes are not offered in {request.region} ({request.cloud}); "
                    f"valid cloud/region: {valid}"
                )
            return self.accounts.create_volume(request, volume_type, volume_id=volume_id)

    def volume_types(self) -> list[JsonDict]:
        return [
            {
                "cloud": v.cloud,
                "region": v.region,
                "supports_multi_mount": v.supports_multi_mount,
                "fixed_size": v.fixed_size,
                "price_per_gb_per_hour": v.price_per_gb_per_hour,
            }
            for v in self.catalog.volume_types
        ]

    # -- internals ----------------------------------------------------------------------

    def _index_volumes(self, record: InstanceRecord) -> None:
        for volume_id in record.volume_ids:
            self._volume_users.setdefault(volume_id, set()).add(record.id)

    def _instance_is_live(self, instance_id: str) -> bool:
        record = self._instances.get(instance_id)
        return record is not None and not self._observe(record).gone

    def _live_volume_users(self, volume_id: str) -> list[str]:
        users = self._volume_users.get(volume_id, set())
        return sorted(i for i in users if self._instance_is_live(i))

    def _key_in_use(self, ssh_key_id: str) -> bool:
        return any(
            r.ssh_key_id == ssh_key_id and not self._observe(r).gone
            for r in self._instances.values()
        )

    def _observe(self, record: InstanceRecord) -> Observation:
        now = self._clock()
        preempt_after = self._faults().preempt_spot_after_seconds
        if preempt_if_due(record, now, preempt_after, self._delete_seconds):
            self._save(record)
        return observe(record, now)

    def _live(self) -> list[tuple[InstanceRecord, Observation]]:
        live, gone = [], []
        for record in self._instances.values():
            seen = self._observe(record)
            if seen.gone:
                gone.append(record.id)
            else:
                live.append((record, seen))
        for instance_id in gone:
            self._purge(instance_id)
        return live

    def _find(self, instance_id: str) -> tuple[InstanceRecord, Observation]:
        record = self._instances.get(instance_id)
        if record is not None:
            seen = self._observe(record)
            if not seen.gone:
                return record, seen
            self._purge(instance_id)
        raise UnknownResource(f"instance {instance_id} not found")

    def _purge(self, instance_id: str) -> None:
        record = self._instances.pop(instance_id)
        for volume_id in record.volume_ids:
            self._volume_users.get(volume_id, set()).discard(instance_id)
        self._store.remove("instance", instance_id)

    def _save(self, record: InstanceRecord) -> None:
        self._store.put("instance", record.id, record.to_json())

    def _render(self, record: InstanceRecord, seen: Observation, *, detailed: bool) -> JsonDict:
        offer = self.catalog.offer(record.cloud, record.shade_instance_type)
        assert offer is not None, "instances are only created for catalog offers"
        return rendering.instance(record, seen, offer, detailed=detailed)

    def _is_available(self, offer: InstanceOffer, region: RegionOffer, rental_type: str) -> bool:
        baseline = region.available if rental_type == ON_DEMAND else region.spot_available
        return self._capacity.get(_capacity_key(offer, region, rental_type), baseline)

    def _known_offer(self, cloud: str, shade_instance_type: str) -> InstanceOffer:
        clouds = self.catalog.clouds()
        if cloud not in clouds:
            raise BadRequest(f"unknown cloud {cloud!r}; valid clouds: {', '.join(clouds)}")
        offer = self.catalog.offer(cloud, shade_instance_type)
        if offer is None:
            offered = ", ".join(self.catalog.types_of(cloud))
            raise BadRequest(
                f"cloud {cloud} does not offer shade_instance_type {shade_instance_type!r}; "
                f"it offers: {offered}"
            )
        return offer

    def _known_region(self, offer: InstanceOffer, region_name: str) -> RegionOffer:
        region = offer.region(region_name)
        if region is None:
            valid = ", ".join(r.region for r in offer.regions)
            raise BadRequest(
                f"{offer.shade_instance_type} on {offer.cloud} is not offered in region "
                f"{region_name!r}; valid regions: {valid}"
            )
        return region

    def _check_offer(self, request: CreateInstanceRequest) -> tuple[InstanceOffer, RegionOffer]:
        offer = self._known_offer(request.cloud, request.shade_instance_type)
        region = self._known_region(offer, request.region)
        where = f"{offer.shade_instance_type} in {region.region} ({offer.cloud})"
        if request.os is not None and request.os not in offer.os_options:
            raise BadRequest(
                f"os {request.os!r} is not offered for {where}; "
                f"valid os: {', '.join(offer.os_options)}"
            )
        rental_type = request.effective_rental_type
        if rental_type == SPOT and region.spot_price is None:
            raise BadRequest(f"no spot offer for {where}; use rental_type on_demand")
        if not self._is_available(offer, region, rental_type):
            kind = "spot capacity" if rental_type == SPOT else "capacity"
            raise NoCapacity(f"no {kind} available for {where}")
        return offer, region

    def _check_attachments(self, request: CreateInstanceRequest) -> None:
        if request.template_id is not None:
            raise BadRequest(f"template {request.template_id} not found")
        if request.ssh_key_id is not None:
            self.accounts.ssh_key_info(request.ssh_key_id, missing=BadRequest)
        for volume_id in request.volume_ids or []:
            self.accounts.check_mountable(volume_id, request.cloud, request.region)


def _capacity_key(offer: InstanceOffer, region: RegionOffer, rental_type: str) -> str:
    return f"{offer.cloud}/{region.region}/{offer.shade_instance_type}/{rental_type}"


def _dump(model: Any) -> JsonDict | None:
    return None if model is None else model.model_dump(exclude_none=True)
