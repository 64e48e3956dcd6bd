"""Format upgrades: bring a stored state document from an older format to the current one.

Each entry of :data:`UPGRADES` turns a JSON document of format ``n`` into format ``n + 1``;
:func:`upgrade_document` chains them. Version 1 is the first released format; version 2 adds
``resources`` (volumes and SSH keys) and the ``kind``/``anchor`` of intents (tested with a v1
fixture written by the last format-1 release, ``tests/state/fixtures/v1``).

Documents are plain dicts (what ``json.loads`` returned): upgrades work below the pydantic
models, because the models only describe the current format.

Example::

    document = upgrade_document(json.loads(text), fleet="inference")
    state = FleetState.model_validate(document)
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from reconciler.errors import StateError
from reconciler.models.state import STATE_FORMAT_VERSION

Document = dict[str, Any]
Upgrade = Callable[[Document], Document]


def _v1_to_v2(document: Document) -> Document:
    """Format 1 knew instances only: no resources yet, and every intent was an instance's."""
    upgraded = dict(document)
    upgraded["format_version"] = 2
    upgraded.setdefault("resources", {})
    intents = upgraded.get("intents")
    if isinstance(intents, dict):
        upgraded["intents"] = {
            key: {"kind": "instance", "anchor": {}, **value} if isinstance(value, dict) else value
            for key, value in intents.items()
        }
    return upgraded


UPGRADES: Mapping[int, Upgrade] = {1: _v1_to_v2}


def format_version_of(document: Document, *, fleet: str) -> int:
    """The document's ``format_version``; a missing or odd value is a corrupt state."""
    version = document.get("format_version")
    if not isinstance(version, int) or isinstance(version, bool) or version < 0:
        raise StateError(
            f"The state of fleet {fleet!r} has no valid format_version ({version!r}); "
            "it is not a reconciler state or it is damaged."
        )
    return version


def upgrade_document(
    document: Document,
    *,
    fleet: str,
    upgrades: Mapping[int, Upgrade] = UPGRADES,
    target: int = STATE_FORMAT_VERSION,
) -> Document:
    """Return ``document`` in format ``target``, applying each step of ``upgrades`` in turn.

    Raises :class:`StateError` for a newer format than ``target`` (written by a newer
    reconciler) or for an older one with no upgrade path.
    """
    version = format_version_of(document, fleet=fleet)
    if version > target:
        raise StateError(
            f"The state of fleet {fleet!r} is in format version {version}, newer than the "
            f"{target} this reconciler understands. Upgrade the reconciler; refusing to touch it."
        )
    while version < target:
        step = upgrades.get(version)
        if step is None:
            raise StateError(
                f"The state of fleet {fleet!r} is in format version {version}, and this "
                f"reconciler has no upgrade from it to version {target}."
            )
        document = step(dict(document))
        upgraded = format_version_of(document, fleet=fleet)
        if upgraded != version + 1:
            raise StateError(
                f"Internal error: the upgrade of fleet {fleet!r}'s state from format {version} "
                f"produced format {upgraded} instead of {version + 1}."
            )
        version = upgraded
    return document
