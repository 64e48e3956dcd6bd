"""What a ``file://`` backend URL names, read one way by everyone who reads it.

The manifest loader checks that a manifest's ``file://`` backend stays in the manifest's tree,
and the state package opens it; both must agree on the directory exactly (percent-escapes,
``file://localhost/...``), or a URL could pass the check and open somewhere else.
"""

from __future__ import annotations

import re
from urllib.parse import unquote

_FILE_SCHEME = re.compile(r"file://", re.IGNORECASE)


def file_url_directory(url: str) -> str | None:
    """The directory a ``file://`` URL names, as text (percent-escapes decoded;
    ``file://localhost/x`` is ``/x``), ``""`` for ``file://`` alone, or None for other URLs."""
    text = url.strip()
    if not _FILE_SCHEME.match(text):
        return None
    rest = text[len("file://") :]
    if rest.startswith("localhost/"):
        rest = rest[len("localhost") :]
    return unquote(rest)
