"""The manifest loader: YAML fleet manifests in, resolved :class:`Fleet` specs out.

The only home of ``yaml`` in the project. Public surface::

    from reconciler.manifest import load_fleets
    fleets = load_fleets([Path("specs")], variables={"model": "m"}, environ={})

Errors: every problem in every file is raised at once as
:class:`reconciler.errors.ManifestError` (exit code 3), each issue rendered as
``file:line:col: field.path: message``.
"""

from reconciler.manifest.digest import fleet_digest
from reconciler.manifest.loader import MANIFEST_SUFFIXES, discover_manifests, load_fleets
from reconciler.manifest.source import MAX_FILE_BYTES

__all__ = [
    "MANIFEST_SUFFIXES",
    "MAX_FILE_BYTES",
    "discover_manifests",
    "fleet_digest",
    "load_fleets",
]
