"""The emulated Shadeform catalog: GPU instance offers per cloud and region, and volume types.

Prices are integer cents per hour, as in Shadeform's ``hourly_price``. Each offer lists its
regions; a region may also sell spot capacity at a discount. Availability here is the
*baseline*; the cloud layers capacity changes (``set_capacity``) on top.

The catalog contract the rest of the project relies on (manifest examples, tests) is pinned
by ``tests/emulator/test_catalog.py``.
"""

from __future__ import annotations

from dataclasses import dataclass

OS_UBUNTU_22 = "ubuntu22.04_cuda12.2_shade_os"
OS_UBUNTU_20 = "ubuntu20.04_cuda12.0_shade_os"
OS_UBUNTU_24 = "ubuntu24.04_cuda12.8_shade_os"
DEFAULT_OS_OPTIONS = (OS_UBUNTU_22, OS_UBUNTU_20)

RentalType = str  # "on_demand" | "spot"
ON_DEMAND = "on_demand"
SPOT = "spot"


@dataclass(frozen=True, slots=True)
class GpuShape:
    """What a Shade instance type is, independent of who sells it."""

    shade_instance_type: str
    gpu_type: str
    num_gpus: int
    vram_per_gpu_in_gb: int
    interconnect: str
    nvlink: bool


@dataclass(frozen=True, slots=True)
class RegionOffer:
    region: str
    display_name: str
    available: bool = True
    spot_price: int | None = None
    spot_available: bool = True


@dataclass(frozen=True, slots=True)
class InstanceOffer:
    """One cloud's instance type and the regions that sell it."""

    cloud: str
    shape: GpuShape
    cloud_instance_type: str
    hourly_price: int
    vcpus: int
    memory_in_gb: int
    storage_in_gb: int
    regions: tuple[RegionOffer, ...]
    deployment_type: str = "vm"
    min_boot_in_sec: int = 180
    max_boot_in_sec: int = 420
    os_options: tuple[str, ...] = DEFAULT_OS_OPTIONS

    @property
    def shade_instance_type(self) -> str:
        return self.shape.shade_instance_type

    def region(self, name: str) -> RegionOffer | None:
        return next((r for r in self.regions if r.region == name), None)


@dataclass(frozen=True, slots=True)
class VolumeType:
    cloud: str
    region: str
    supports_multi_mount: bool
    fixed_size: bool
    price_per_gb_per_hour: str  # dollars, as the API shows it


def _shape(name: str, gpu: str, gpus: int, vram: int, link: str) -> GpuShape:
    return GpuShape(name, gpu, gpus, vram, link, nvlink=gpus > 1)


SHAPES = {
    s.shade_instance_type: s
    for s in (
        _shape("A6000", "A6000", 1, 48, "pcie"),
        _shape("A100_80G", "A100_80G", 1, 80, "pcie"),
        _shape("H100", "H100", 1, 80, "pcie"),
        _shape("H200", "H200", 1, 141, "sxm5"),
        _shape("B200", "B200", 1, 180, "sxm6"),
        _shape("8xA100_80G", "A100_80G", 8, 80, "sxm4"),
        _shape("8xH100", "H100", 8, 80, "sxm5"),
        _shape("8xH200", "H200", 8, 141, "sxm5"),
        _shape("8xB200", "B200", 8, 180, "sxm6"),
    )
}

_HS = {
    "canada-1": "Canada, Montreal",
    "us-1": "US, Chicago, IL",
    "norway-1": "Norway, Oslo",
}
_LL = {
    "us-east-1": "US, Washington DC",
    "us-west-1": "US, Berkeley, CA",
    "us-south-1": "US, Dallas, TX",
}
_DC = {"FIN-01": "Finland, Helsinki", "FIN-02": "Finland, Helsinki", "ICE-01": "Iceland"}
_NB = {"eu-north1": "Finland, Mantsala", "us-central1": "US, Kansas City, MO"}


def _offer(
    cloud: str,
    shade_type: str,
    cloud_type: str,
    price: int,
    cpu_mem_disk: tuple[int, int, int],
    regions: tuple[RegionOffer, ...],
    boot: tuple[int, int] = (180, 420),
    deployment_type: str = "vm",
    os_options: tuple[str, ...] = DEFAULT_OS_OPTIONS,
) -> InstanceOffer:
    vcpus, memory, storage = cpu_mem_disk
    return InstanceOffer(
        cloud=cloud,
        shape=SHAPES[shade_type],
        cloud_instance_type=cloud_type,
        hourly_price=price,
        vcpus=vcpus,
        memory_in_gb=memory,
        storage_in_gb=storage,
        regions=regions,
        deployment_type=deployment_type,
        min_boot_in_sec=boot[0],
        max_boot_in_sec=boot[1],
        os_options=os_options,
    )


def _in(
    table: dict[str, str],
    region: str,
    *,
    available: bool = True,
    spot_price: int | None = None,
    spot_available: bool = True,
) -> RegionOffer:
    return RegionOffer(region, table[region], available, spot_price, spot_available)


_B200_OS = (OS_UBUNTU_22, OS_UBUNTU_20, OS_UBUNTU_24)

OFFERS: tuple[InstanceOffer, ...] = (
    # hyperstack
    _offer("hyperstack", "A6000", "n3-RTX-A6000x1", 80, (28, 58, 200),
           (_in(_HS, "canada-1", spot_price=40), _in(_HS, "norway-1", available=False))),
    _offer("hyperstack", "A100_80G", "n3-A100x1", 135, (28, 120, 200),
           (_in(_HS, "us-1"), _in(_HS, "canada-1"))),
    _offer("hyperstack", "H100", "n3-H100x1", 249, (28, 180, 200),
           (_in(_HS, "canada-1"), _in(_HS, "norway-1", available=False))),
    _offer("hyperstack", "8xH100", "n3-H100x8", 1992, (192, 1800, 32000),
           (_in(_HS, "canada-1"),), boot=(420, 900)),
    # lambdalabs
    _offer("lambdalabs", "A6000", "gpu_1x_a6000", 80, (14, 46, 512),
           (_in(_LL, "us-west-1"), _in(_LL, "us-east-1", available=False)), boot=(240, 600)),
    _offer("lambdalabs", "A100_80G", "gpu_1x_a100_sxm4_80gb", 179, (30, 200, 512),
           (_in(_LL, "us-east-1", spot_price=89), _in(_LL, "us-west-1")), boot=(240, 600)),
    _offer("lambdalabs", "H100", "gpu_1x_h100_pcie", 249, (26, 200, 1024),
           (_in(_LL, "us-east-1"), _in(_LL, "us-south-1")), boot=(240, 600)),
    _offer("lambdalabs", "8xA100_80G", "gpu_8x_a100_80gb_sxm4", 1432, (240, 1800, 20000),
           (_in(_LL, "us-east-1"), _in(_LL, "us-south-1", available=False)), boot=(300, 900)),
    _offer("lambdalabs", "8xH100", "gpu_8x_h100_sxm5", 1992, (208, 1800, 24000),
           (_in(_LL, "us-east-1"),), boot=(300, 900)),
    # datacrunch
    _offer("datacrunch", "A100_80G", "1A100.80S.22V", 159, (22, 120, 100),
           (_in(_DC, "FIN-02", spot_price=70, spot_available=False),), boot=(120, 300)),
    _offer("datacrunch", "H100", "1H100.80S.30V", 229, (30, 120, 100),
           (_in(_DC, "FIN-01", spot_price=115), _in(_DC, "ICE-01")), boot=(120, 300)),
    _offer("datacrunch", "H200", "1H200.141S.44V", 329, (44, 185, 100),
           (_in(_DC, "FIN-01"), _in(_DC, "ICE-01", available=False)), boot=(120, 300)),
    _offer("datacrunch", "8xH200", "8H200.141S.176V", 2632, (176, 1450, 800),
           (_in(_DC, "ICE-01"),), boot=(300, 600)),
    # nebius
    _offer("nebius", "H200", "gpu-h200-sxm.1gpu-16vcpu-200gb", 359, (16, 200, 1280),
           (_in(_NB, "eu-north1"), _in(_NB, "us-central1", available=False)), boot=(300, 720)),
    _offer("nebius", "B200", "gpu-b200-sxm.1gpu-20vcpu-224gb", 549, (20, 224, 1280),
           (_in(_NB, "eu-north1"),), boot=(300, 720), os_options=_B200_OS),
    _offer("nebius", "8xB200", "gpu-b200-sxm.8gpu-160vcpu-1792gb", 4392, (160, 1792, 10240),
           (_in(_NB, "eu-north1"), _in(_NB, "us-central1")), boot=(600, 1200), os_options=_B200_OS),
)  # fmt: skip

VOLUME_TYPES: tuple[VolumeType, ...] = (
    VolumeType("hyperstack", "canada-1", False, True, "0.0001"),
    VolumeType("hyperstack", "us-1", False, True, "0.0001"),
    VolumeType("lambdalabs", "us-east-1", True, False, "0.00028"),
    VolumeType("datacrunch", "FIN-01", False, True, "0.00027"),
    VolumeType("nebius", "eu-north1", True, True, "0.00011"),
)


class Catalog:
    """Read-only look-ups over the offers and volume types."""

    def __init__(
        self,
        offers: tuple[InstanceOffer, ...] = OFFERS,
        volume_types: tuple[VolumeType, ...] = VOLUME_TYPES,
    ) -> None:
        self.offers = offers
        self.volume_types = volume_types
        self._by_key = {(o.cloud, o.shade_instance_type): o for o in offers}
        self._volume_types = {(v.cloud, v.region): v for v in volume_types}

    def clouds(self) -> list[str]:
        return sorted({o.cloud for o in self.offers})

    def types_of(self, cloud: str) -> list[str]:
        return sorted(o.shade_instance_type for o in self.offers if o.cloud == cloud)

    def offer(self, cloud: str, shade_instance_type: str) -> InstanceOffer | None:
        return self._by_key.get((cloud, shade_instance_type))

    def volume_type(self, cloud: str, region: str) -> VolumeType | None:
        return self._volume_types.get((cloud, region))


def cents_to_dollars(cents: int | float) -> str:
    """``249`` -> ``"2.49"``: how Shadeform writes prices as strings."""
    return f"{cents / 100:.2f}"
