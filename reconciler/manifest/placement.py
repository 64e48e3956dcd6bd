"""Where an instance runs: one fixed offer, or a placement envelope, never both.

The fixed form is ``cloud``, ``region`` and ``shade_instance_type`` (plus ``rental_type``);
the envelope is ``placement``. Rules, applied when ``defaults`` are merged into an instance:

- An instance that sets ``placement`` does not inherit the defaults' ``cloud``, ``region``,
  ``shade_instance_type`` or ``rental_type``; an instance that sets any of ``cloud``,
  ``region`` or ``shade_instance_type`` does not inherit the defaults' ``placement``. What an
  instance says about where it runs replaces what the defaults say, whichever form each uses.
- After merging, an instance with a placement must have none of the fixed keys: not from
  the same block, and not ``rental_type`` (rental types belong to the envelope: a candidate's
  ``rental_type`` or ``requirements.rental_types``).
- Spot anywhere in the envelope needs ``shade_cloud: true``, like a fixed spot instance.

Example::

    skipped = defaults_replaced_by(entry)   # defaults' keys this instance does not inherit
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from reconciler.errors import ManifestIssue
from reconciler.manifest.source import Document, FieldPath
from reconciler.models import manifest as lang

OFFER_FIELDS = ("cloud", "region", "shade_instance_type")
FIXED_FIELDS = (*OFFER_FIELDS, "rental_type")
_FOR_PLACEMENT = frozenset(FIXED_FIELDS)
_FOR_OFFER = frozenset({"placement"})
_NOTHING: frozenset[str] = frozenset()

PathOf = Callable[[str], FieldPath]


def defaults_replaced_by(entry: lang.InstanceEntry) -> frozenset[str]:
    """The defaults' keys ``entry`` does not inherit, because it says where it runs itself."""
    own = {name for name in entry.model_fields_set if getattr(entry, name) is not None}
    if "placement" in own:
        return _FOR_PLACEMENT
    if own.intersection(OFFER_FIELDS):
        return _FOR_OFFER
    return _NOTHING


def placement_issues(
    values: Mapping[str, Any], path_of: PathOf, document: Document
) -> list[ManifestIssue]:
    """Problems with where a merged instance runs (``path_of`` locates a merged key)."""
    placement = values.get("placement")
    if placement is None:
        return _fixed_issues(values, path_of, document)
    issues = [
        document.issue(path_of(name), _conflict_message(name))
        for name in FIXED_FIELDS
        if values.get(name) is not None
    ]
    if values.get("shade_cloud") is False and placement.allows_spot():
        issues.append(document.issue(_spot_path(placement, path_of), _SPOT_MESSAGE))
    return issues


_SPOT_MESSAGE = "spot needs shade_cloud: true"


def _fixed_issues(
    values: Mapping[str, Any], path_of: PathOf, document: Document
) -> list[ManifestIssue]:
    issues: list[ManifestIssue] = []
    if values.get("rental_type") == "spot" and values.get("shade_cloud") is False:
        issues.append(document.issue(path_of("rental_type"), f"rental_type {_SPOT_MESSAGE}"))
    return issues


def missing_offer_fields(values: Mapping[str, Any]) -> list[str]:
    """The fixed keys still missing after merging, or none when a placement decides."""
    if values.get("placement") is not None:
        return []
    return [name for name in OFFER_FIELDS if values.get(name) is None]


def _conflict_message(name: str) -> str:
    if name == "rental_type":
        return (
            "rental_type does not apply with placement: rental types belong to the envelope"
            " (a candidate's rental_type, or requirements.rental_types)"
        )
    return (
        f"{name} cannot be combined with placement: name the offer as a placement candidate,"
        " or drop placement"
    )


def _spot_path(placement: lang.Placement, path_of: PathOf) -> FieldPath:
    base = path_of("placement")
    for index, candidate in enumerate(placement.candidates):
        if candidate.rental_type == "spot":
            return (*base, "candidates", index, "rental_type")
    return (*base, "requirements", "rental_types")
