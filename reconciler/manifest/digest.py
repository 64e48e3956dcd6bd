"""A fleet's digest: sha256 of the canonical JSON of what the fleet asks for.

What is hashed: the resolved instance specs in address order, ``source`` left out (moving a
manifest does not change what it asks for), and the fleet's ``budget`` when it has one (a
plan approved under one budget is stale under another). The state ``backend`` is not hashed:
moving state elsewhere must not make saved plans stale. Canonical JSON: keys sorted, no
whitespace, UTF-8. Every :class:`~pydantic.SecretStr` is replaced by
``"(sensitive:sha256:<hex of its value>)"``, so the digest changes when a secret changes but
never contains one.

Example::

    digest = fleet_digest(fleet.instances, budget=fleet.budget)
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Sequence
from typing import Any

from pydantic import SecretStr

from reconciler.models.spec import Budget, InstanceSpec, SshKeySpec, VolumeSpec


def comparable_spec(spec: InstanceSpec) -> dict[str, Any]:
    """The spec as plain data for hashing; secrets are still ``SecretStr`` objects here.

    Managed references (``volumes``, ``ssh_key``) are left out while unset, so a fleet that
    uses none hashes as it did before they existed."""
    excluded = {"source", "group"}  # the group follows from the addresses
    for unset in ("update_strategy", "readiness"):
        if getattr(spec, unset) is None:
            excluded.add(unset)
    if not spec.volumes:
        excluded.add("volumes")
    if spec.ssh_key is None:
        excluded.add("ssh_key")
    return spec.model_dump(mode="python", exclude=excluded)


def fleet_digest(
    instances: Sequence[InstanceSpec],
    *,
    budget: Budget | None = None,
    volumes: Sequence[VolumeSpec] = (),
    ssh_keys: Sequence[SshKeySpec] = (),
) -> str:
    """sha256 hex digest of the given specs (sorted by address first), budget and resources."""
    ordered = sorted(instances, key=lambda spec: spec.address)
    others: list[VolumeSpec | SshKeySpec] = sorted((*volumes, *ssh_keys), key=lambda r: r.address)
    return digest_of_comparables(
        (comparable_spec(spec) for spec in ordered),
        budget=budget,
        resources=[r.model_dump(exclude={"source"}) for r in others],
    )


def digest_of_comparables(
    comparables: Iterable[dict[str, Any]],
    *,
    budget: Budget | None = None,
    resources: Sequence[dict[str, Any]] = (),
) -> str:
    """sha256 of already-dumped specs, in the order given, the budget and the fleet's other
    resources (volumes, SSH keys).

    Without a budget or resources the hashed document is the list of specs alone (fleets
    without them hash exactly as they did before they existed).
    """
    specs = list(comparables)
    document: object = specs
    if budget is not None or resources:
        parts: dict[str, Any] = {"instances": specs}
        if budget is not None:
            parts["budget"] = budget.model_dump()
        if resources:
            parts["resources"] = list(resources)
        document = parts
    text = json.dumps(
        document,
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=False,
        default=_fingerprint,
    )
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _fingerprint(value: object) -> str:
    if isinstance(value, SecretStr):
        digest = hashlib.sha256(value.get_secret_value().encode("utf-8")).hexdigest()
        return f"(sensitive:sha256:{digest})"
    raise TypeError(f"cannot hash a {type(value).__name__} into a fleet digest")
