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

from pydantic import SecretStr

from reconciler.models.plan import SENSITIVE_PREFIX, is_fingerprint
from reconciler.models.spec import InstanceSpec

__all__ = ["comparable_spec", "compared_view", "fingerprint", "is_fingerprint"]

# Keys of InstanceSpec that identify or steer the reconciler rather than describe the instance.
# (A placement envelope is compared through the cloud/region/type it leads to, not itself.)
NON_COMPARED_KEYS = frozenset({"address", "fleet", "source", "lifecycle", "placement"})
# How a change of the instance rolls out, not what it is: never recorded, never a diff.
ROLLOUT_KEYS = frozenset({"group", "update_strategy", "readiness"})


def fingerprint(value: str, key: str) -> str:
    digest = hmac.new(bytes.fromhex(key), value.encode(), hashlib.sha256).hexdigest()
    return f"{SENSITIVE_PREFIX}{digest[:16]})"


def _fingerprint_secrets(dumped: list[dict[str, Any]], models: tuple[Any, ...], key: str) -> None:
    for plain, model in zip(dumped, models, strict=True):
        for name, value in model:
            if isinstance(value, SecretStr):
                plain[name] = fingerprint(value.get_secret_value(), key)


def comparable_spec(spec: InstanceSpec, key: str) -> dict[str, Any]:
    """The spec as JSON-safe data: ``None`` fields dropped, secrets fingerprinted.

    ``lifecycle`` is kept (the state needs ``prevent_destroy`` for instances that left the
    manifest) but the diff ignores it, like ``address``, ``fleet`` and ``source``. Secrets can
    only sit in ``envs`` and the docker configuration's ``envs`` and ``registry_credentials``
    (the spec's types say so); those are patched after pydantic's fast JSON dump.
    """
    excluded = {"source", *ROLLOUT_KEYS}
    if not spec.volumes:
        excluded.add("volumes")  # unset references stay out: v1 applied specs compare equal
    plain: dict[str, Any] = spec.model_dump(mode="json", exclude_none=True, exclude=excluded)
    _fingerprint_secrets(plain.get("envs", []), spec.envs, key)
    launch = spec.launch_configuration
    docker = launch.docker_configuration if launch else None
    if docker is not None:
        docker_plain = plain["launch_configuration"]["docker_configuration"]
        _fingerprint_secrets(docker_plain.get("envs", []), docker.envs, key)
        if docker.registry_credentials is not None:
            _fingerprint_secrets(
                [docker_plain["registry_credentials"]], (docker.registry_credentials,), key
            )
    return plain


def compared_view(plain: dict[str, Any]) -> dict[str, Any]:
    """The part of a comparable spec that the diff looks at."""
    return {k: v for k, v in plain.items() if k not in NON_COMPARED_KEYS}
