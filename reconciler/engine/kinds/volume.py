"""Storage volumes: ``<fleet>/volume.<name>``, owned by record, anchored by name, cloud, region.

Deleting or replacing a volume destroys its data: such changes carry ``destroys_data``, apply
refuses them without ``--allow-data-loss``, and destroy keeps volumes unless given it. A volume
is replaced destroy-first (it mounts on one machine and its name is its anchor).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from reconciler.engine.kinds.anchored import AnchoredKind
from reconciler.engine.plan_context import PlanContext
from reconciler.errors import NotFoundError
from reconciler.models.api import CreateVolumeRequest, Volume
from reconciler.models.catalog import Cents, storage_cents_per_hour
from reconciler.models.live import LiveResource
from reconciler.models.spec import VOLUME_PREFIX, Fleet, VolumeSpec

if TYPE_CHECKING:
    from reconciler.api import ShadeformClient


def to_live_volume(volume: Volume) -> LiveResource:
    return LiveResource(
        id=volume.id,
        kind=VolumeKind.name,
        name=volume.name,
        observed={
            "name": volume.name,
            "cloud": volume.cloud,
            "region": volume.region,
            "size_in_gb": volume.size_in_gb,
        },
        in_use_by=(volume.mounted_by,) if volume.mounted_by else (),
    )


class VolumeKind(AnchoredKind):
    name = "volume"
    noun = "volume"
    address_prefix = VOLUME_PREFIX
    destroys_data = True
    replace_creates_first = False

    def specs(self, fleet: Fleet) -> Sequence[VolumeSpec]:
        return fleet.volumes

    def anchor(self, spec: Any) -> dict[str, str]:
        return {"name": spec.name, "cloud": spec.cloud, "region": spec.region}

    def describe(self, data: dict[str, Any]) -> str:
        size = data.get("size_in_gb")
        return f"{size} GB in {data.get('cloud')}/{data.get('region')}"

    def hourly_cents(self, ctx: PlanContext, data: dict[str, Any]) -> Cents | None:
        if ctx.catalog is None:
            return None
        price = ctx.catalog.volume_price(str(data.get("cloud")), str(data.get("region")))
        size = data.get("size_in_gb")
        if price is None or not isinstance(size, int):
            return None
        return storage_cents_per_hour(size, price.price_per_gb_per_hour)

    async def list_live(self, client: ShadeformClient) -> list[LiveResource]:
        return [to_live_volume(v) for v in await client.list_volumes()]

    async def get_live(self, client: ShadeformClient, resource_id: str) -> LiveResource | None:
        try:
            return to_live_volume(await client.get_volume(resource_id))
        except NotFoundError:
            return None

    async def send_create(self, client: ShadeformClient, spec: Any) -> str:
        return await client.create_volume(
            CreateVolumeRequest(
                cloud=spec.cloud, region=spec.region, size_in_gb=spec.size_in_gb, name=spec.name
            )
        )

    async def send_delete(self, client: ShadeformClient, resource_id: str) -> None:
        await client.delete_volume(resource_id)
