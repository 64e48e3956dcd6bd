"""Comparable form of a desired spec: plain JSON with secrets replaced by keyed fingerprints.

This is what the state records as the applied spec, what plans show, and what the diff compares.
A fingerprint is ``(sensitive:<first 16 hex of HMAC-SHA256(key, value)>)``; the key is the
state's random ``fingerprint_key``, so equal secrets in two states do not correlate and no
fingerprint can be looked up in a precomputed table.
"""

from __future__ import annotations

import hashlib
import hmac
from typing import Any

from pydantic import BaseModel, SecretStr

from reconciler.models.plan import SENSITIVE_PREFIX
from reconciler.models.spec import InstanceSpec

# Keys of InstanceSpec that identify or steer the reconciler rather than describe the instance.
NON_COMPARED_KEYS = frozenset({"address", "fleet", "source", "lifecycle"})


def fingerprint(value: str, key: str) -> str:
    digest = hmac.new(bytes.fromhex(key), value.encode(), hashlib.sha256).hexdigest()
    return f"{SENSITIVE_PREFIX}{digest[:16]})"


def is_fingerprint(value: Any) -> bool:
    return isinstance(value, str) and value.startswith(SENSITIVE_PREFIX)


def _to_plain(value: Any, key: str) -> Any:
    if isinstance(value, SecretStr):
        return fingerprint(value.get_secret_value(), key)
    if isinstance(value, BaseModel):
        return {
            name: _to_plain(getattr(value, name), key)
            for name in type(value).model_fields
            if getattr(value, name) is not None
        }
    if isinstance(value, tuple | list):
        return [_to_plain(v, key) for v in value]
    return value


def comparable_spec(spec: InstanceSpec, key: str) -> dict[str, Any]:
    """The spec as JSON-safe data: ``None`` fields dropped, secrets fingerprinted.

    ``lifecycle`` is kept (the state needs ``prevent_destroy`` for instances that left the
    manifest) but the diff ignores it, like ``address``, ``fleet`` and ``source``.
    """
    plain = _to_plain(spec, key)
    assert isinstance(plain, dict)
    plain.pop("source", None)
    return plain


def compared_view(plain: dict[str, Any]) -> dict[str, Any]:
    """The part of a comparable spec that the diff looks at."""
    return {k: v for k, v in plain.items() if k not in NON_COMPARED_KEYS}
