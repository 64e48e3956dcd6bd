"""The resource kinds a fleet manages, one handler each, in dependency order.

Keys and volumes come first (instances use them), so the planner plans them first and an
instance can tell that what it uses is created anew. Add a kind here and nowhere else in the
planner or the executor (``docs/resource-kinds.md``).
"""

from __future__ import annotations

from reconciler.engine.kinds.base import KindExecutor, Recorded, ResourceKind
from reconciler.engine.kinds.instance import InstanceKind
from reconciler.engine.kinds.ssh_key import SshKeyKind
from reconciler.engine.kinds.volume import VolumeKind

KINDS: tuple[ResourceKind, ...] = (SshKeyKind(), VolumeKind(), InstanceKind())
_BY_NAME = {k.name: k for k in KINDS}
ORDER = {k.name: index for index, k in enumerate(KINDS)}


def kind_named(name: str) -> ResourceKind:
    return _BY_NAME[name]


def kind_of_address(address: str) -> ResourceKind:
    """The kind an address belongs to (``fleet/volume.x`` is a volume's)."""
    for kind in KINDS:
        if kind.address_prefix and kind.owns_address(address):
            return kind
    return next(k for k in KINDS if not k.address_prefix)


__all__ = [
    "KINDS",
    "ORDER",
    "KindExecutor",
    "Recorded",
    "ResourceKind",
    "kind_named",
    "kind_of_address",
]
