"""The account's storage volumes and SSH keys.

Owned by :class:`~reconciler.emulator.cloud.Cloud`, which shares its lock and tells us
which live instances use a volume or a key. Every account starts with a Shadeform-managed
SSH key that is also the default; it can never be deleted (400). The current default key
and a key or volume a live instance uses cannot be deleted either, for now: those answer
409 (:class:`~reconciler.emulator.problems.Conflict`), since the delete succeeds once
another key is the default or the instance is gone. An instance counts as live until it is
gone, so also while it is ``deleting``.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

from reconciler.emulator.catalog import VolumeType, cents_to_dollars
from reconciler.emulator.problems import BadRequest, CloudProblem, Conflict, UnknownResource
from reconciler.emulator.request_models import AddSshKeyRequest, CreateVolumeRequest
from reconciler.emulator.store import CloudStore, Tables

JsonDict = dict[str, Any]
MANAGED_KEY_NAME = "Shadeform Managed Key"
_MANAGED_PUBLIC_KEY = (
    "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGVtdWxhdGVkLXNoYWRlZm9ybS1tYW5hZ2VkLWtleQ "
    "shadeform-managed"
)
_SECONDS_PER_HOUR = 3600.0


@dataclass(slots=True)
class VolumeRecord:
    id: str
    cloud: str
    region: str
    name: str
    size_in_gb: int
    fixed_size: bool
    supports_multi_mount: bool
    price_per_gb_per_hour: str
    cloud_assigned_id: str
    created_at: float


@dataclass(slots=True)
class SshKeyRecord:
    id: str
    name: str
    public_key: str


class Accounts:
    """Volumes and SSH keys. Callers outside the cloud go through its methods."""

    def __init__(
        self,
        *,
        tables: Tables,
        store: CloudStore,
        clock: Callable[[], float],
        lock: threading.RLock,
        volume_users: Callable[[str], list[str]],
        key_in_use: Callable[[str], bool],
    ) -> None:
        self._store = store
        self._clock = clock
        self._lock = lock
        self._volume_users = volume_users
        self._key_in_use = key_in_use
        self._volumes = {k: VolumeRecord(**v) for k, v in tables.get("volume", {}).items()}
        self._keys = {k: SshKeyRecord(**v) for k, v in tables.get("ssh_key", {}).items()}
        meta = tables.get("meta", {})
        self._managed_key_id: str = meta.get("managed_ssh_key_id") or self._add_managed_key()
        self._default_key_id: str = meta.get("default_ssh_key_id") or self._managed_key_id

    # -- volumes ------------------------------------------------------------------------

    def list_volumes(self) -> list[JsonDict]:
        with self._lock:
            return [self._render_volume(v) for v in self._volumes.values()]

    def volume_info(self, volume_id: str) -> JsonDict:
        with self._lock:
            return self._render_volume(self._volume(volume_id))

    def create_volume(
        self, request: CreateVolumeRequest, volume_type: VolumeType, *, volume_id: str | None = None
    ) -> str:
        """Create a volume; ``volume_id`` (seeded volumes) keeps an existing one as it is."""
        with self._lock:
            if volume_id is not None and volume_id in self._volumes:
                return volume_id
            record = VolumeRecord(
                id=volume_id or str(uuid.uuid4()),
                cloud=request.cloud,
                region=request.region,
                name=request.name,
                size_in_gb=request.size_in_gb,
                fixed_size=volume_type.fixed_size,
                supports_multi_mount=volume_type.supports_multi_mount,
                price_per_gb_per_hour=volume_type.price_per_gb_per_hour,
                cloud_assigned_id=f"vol-{uuid.uuid4().hex[:16]}",
                created_at=self._clock(),
            )
            self._volumes[record.id] = record
            self._store.put("volume", record.id, asdict(record))
            return record.id

    def delete_volume(self, volume_id: str) -> None:
        with self._lock:
            self._volume(volume_id)
            users = self._volume_users(volume_id)
            if users:
                raise Conflict(
                    f"volume {volume_id} is mounted by instance {users[0]}; "
                    "delete the instance first"
                )
            del self._volumes[volume_id]
            self._store.remove("volume", volume_id)

    def check_mountable(self, volume_id: str, cloud: str, region: str) -> None:
        """Raise :class:`BadRequest` unless a new instance in cloud/region may mount it."""
        with self._lock:
            volume = self._volume(volume_id, missing=BadRequest)
            if (volume.cloud, volume.region) != (cloud, region):
                raise BadRequest(
                    f"volume {volume_id} is in {volume.region} ({volume.cloud}); "
                    f"an instance in {region} ({cloud}) cannot mount it"
                )
            users = self._volume_users(volume_id)
            if users and not volume.supports_multi_mount:
                raise BadRequest(f"volume {volume_id} is already mounted by instance {users[0]}")

    # -- SSH keys -----------------------------------------------------------------------

    def list_ssh_keys(self) -> list[JsonDict]:
        with self._lock:
            return [self._render_key(k) for k in self._keys.values()]

    def ssh_key_info(
        self, key_id: str, *, missing: type[CloudProblem] = UnknownResource
    ) -> JsonDict:
        with self._lock:
            key = self._keys.get(key_id)
            if key is None:
                raise missing(f"ssh key {key_id} not found")
            return self._render_key(key)

    def add_ssh_key(self, request: AddSshKeyRequest, *, key_id: str | None = None) -> str:
        """Add a key; ``key_id`` (seeded keys) keeps an existing one as it is."""
        with self._lock:
            if key_id is not None and key_id in self._keys:
                return key_id
            key = SshKeyRecord(
                key_id or str(uuid.uuid4()), request.name, request.public_key.strip()
            )
            self._keys[key.id] = key
            self._store.put("ssh_key", key.id, asdict(key))
            return key.id

    def delete_ssh_key(self, key_id: str) -> None:
        with self._lock:
            self.ssh_key_info(key_id)
            if key_id == self._managed_key_id:
                raise BadRequest("the Shadeform managed SSH key cannot be deleted")
            if key_id == self._default_key_id:
                raise Conflict(
                    f"ssh key {key_id} is the default key and cannot be deleted; "
                    "set another default first"
                )
            if self._key_in_use(key_id):
                raise Conflict(
                    f"ssh key {key_id} is in use by an instance; delete the instance first"
                )
            del self._keys[key_id]
            self._store.remove("ssh_key", key_id)

    def set_default_ssh_key(self, key_id: str) -> None:
        with self._lock:
            self.ssh_key_info(key_id)
            self._default_key_id = key_id
            self._store.put("meta", "default_ssh_key_id", key_id)

    # -- internals ----------------------------------------------------------------------

    def _add_managed_key(self) -> str:
        key = SshKeyRecord(str(uuid.uuid4()), MANAGED_KEY_NAME, _MANAGED_PUBLIC_KEY)
        self._keys[key.id] = key
        self._store.put("ssh_key", key.id, asdict(key))
        self._store.put("meta", "managed_ssh_key_id", key.id)
        return key.id

    def _volume(
        self, volume_id: str, *, missing: type[CloudProblem] = UnknownResource
    ) -> VolumeRecord:
        volume = self._volumes.get(volume_id)
        if volume is None:
            raise missing(f"volume {volume_id} not found")
        return volume

    def _render_volume(self, volume: VolumeRecord) -> JsonDict:
        hours = max(0.0, self._clock() - volume.created_at) / _SECONDS_PER_HOUR
        cost_cents = volume.size_in_gb * float(volume.price_per_gb_per_hour) * 100 * hours
        users = self._volume_users(volume.id)
        return {
            "id": volume.id,
            "cloud": volume.cloud,
            "cloud_assigned_id": volume.cloud_assigned_id,
            "region": volume.region,
            "name": volume.name,
            "fixed_size": volume.fixed_size,
            "size_in_gb": volume.size_in_gb,
            "cost_estimate": cents_to_dollars(cost_cents),
            "supports_multi_mount": volume.supports_multi_mount,
            "mounted_by": users[0] if users else "",
        }

    def _render_key(self, key: SshKeyRecord) -> JsonDict:
        return {
            "id": key.id,
            "name": key.name,
            "public_key": key.public_key,
            "is_default": key.id == self._default_key_id,
        }
