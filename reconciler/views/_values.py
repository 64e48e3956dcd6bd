"""Display forms of plan values, shared by the human and Markdown views.

Everything user-controlled passes through :func:`clean_text` (control and bidi characters shown
as escapes, so no value can colour a terminal or reorder a line) and every secret fingerprint,
wherever it sits in a value, prints as ``(sensitive)``.
"""

from __future__ import annotations

import json
import re
from typing import Any

from reconciler.models.plan import is_fingerprint

SENSITIVE = "(sensitive)"
MAX_STRING = 120  # longer strings (say a base64 script) print shortened, with their length

_UNSAFE = re.compile("[\x00-\x1f\x7f-\x9f\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]")


def _escape(match: re.Match[str]) -> str:
    code = ord(match.group())
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def clean_text(text: str) -> str:
    """``text`` on one line with every control or bidi character written as an escape."""
    return _UNSAFE.sub(_escape, text)


def format_value(value: Any) -> str:
    """A JSON-like, single-line rendering with fingerprints shown as ``(sensitive)``."""
    if is_fingerprint(value):
        return SENSITIVE
    if isinstance(value, str):
        if len(value) > MAX_STRING:
            head = json.dumps(value[: MAX_STRING // 2], ensure_ascii=False)[:-1]
            return clean_text(f'{head}..." ({len(value)} characters)')
        return clean_text(json.dumps(value, ensure_ascii=False))
    if isinstance(value, dict):
        items = (f"{format_value(str(k))}: {format_value(v)}" for k, v in value.items())
        return "{" + ", ".join(items) + "}"
    if isinstance(value, list | tuple):
        return "[" + ", ".join(format_value(v) for v in value) + "]"
    if value is None or isinstance(value, bool | int | float):
        return json.dumps(value)
    return clean_text(repr(value))


def _bare(value: Any) -> str:
    """A short value without JSON quotes (for composed fields such as cloud/region/type)."""
    if is_fingerprint(value):
        return SENSITIVE
    return clean_text(str(value)) if isinstance(value, str) else format_value(value)


def _envs_text(envs: Any) -> str | None:
    """``HF_TOKEN=(sensitive), LOG_LEVEL="info"``: every variable by name, secrets hidden."""
    if not isinstance(envs, list) or not envs:
        return None
    shown = []
    for env in envs:
        if isinstance(env, dict) and "name" in env:
            shown.append(f"{_bare(str(env['name']))}={format_value(env.get('value'))}")
    return ", ".join(shown) or None


def _thresholds_text(value: Any) -> str | None:
    if not isinstance(value, dict):
        return None
    parts = []
    if value.get("date_threshold"):
        parts.append(f"at {_bare(str(value['date_threshold']))}")
    if value.get("spend_threshold"):
        parts.append(f"after ${_bare(str(value['spend_threshold']))} spent")
    return " or ".join(parts) or None


def key_fields(spec: dict[str, Any]) -> list[tuple[str, str]]:
    """What a reviewer needs to see of a new (or deleted) instance: where it runs, what it
    runs (image and args, or script), its ports, OS, thresholds, volume, SSH key, tags and
    environment (variables by name, secret values as ``(sensitive)``)."""
    fields: list[tuple[str, str]] = []
    if "name" in spec:
        fields.append(("name", format_value(spec["name"])))
    if "size_in_gb" in spec:  # a volume
        fields.append(
            ("cloud/region", f"{_bare(str(spec.get('cloud')))}/{_bare(str(spec.get('region')))}")
        )
        fields.append(("size", f"{format_value(spec['size_in_gb'])} GB"))
        return fields
    if "fingerprint" in spec:  # an SSH key: its fingerprint, never the key
        fields.append(("fingerprint", _bare(str(spec["fingerprint"]))))
        return fields
    placement = [spec.get(k) for k in ("cloud", "region", "shade_instance_type")]
    if any(p is not None for p in placement):
        fields.append(("cloud/region/type", "/".join(_bare(p or "?") for p in placement)))
    if "rental_type" in spec:
        fields.append(("rental_type", format_value(spec["rental_type"])))
    if spec.get("os"):
        fields.append(("os", format_value(spec["os"])))
    launch = spec.get("launch_configuration")
    if isinstance(launch, dict):
        docker = launch.get("docker_configuration")
        script = launch.get("script_configuration")
        if isinstance(docker, dict) and "image" in docker:
            fields.append(("image", format_value(docker["image"])))
            if docker.get("args"):
                fields.append(("args", format_value(docker["args"])))
            ports = docker.get("port_mappings") or []
            mapped = [
                f"{p.get('host_port')}->{p.get('container_port')}"
                for p in ports
                if isinstance(p, dict)
            ]
            if mapped:
                fields.append(("ports", ", ".join(mapped) + " (host->container)"))
            container_envs = _envs_text(docker.get("envs"))
            if container_envs:
                fields.append(("container envs", container_envs))
            credentials = docker.get("registry_credentials")
            if isinstance(credentials, dict) and credentials:
                fields.append(("registry login", format_value(credentials.get("username"))))
        elif isinstance(script, dict) and isinstance(script.get("base64_script"), str):
            size = len(script["base64_script"])
            fields.append(("script", f"(base64, {size} characters)"))
    for name in ("auto_delete", "alert"):
        text = _thresholds_text(spec.get(name))
        if text:
            fields.append((name, text))
    if spec.get("volumes"):
        fields.append(("volumes", format_value(spec["volumes"])))
    if spec.get("volume_ids"):
        fields.append(("volume_ids", format_value(spec["volume_ids"])))
    if spec.get("ssh_key"):
        fields.append(("ssh_key", format_value(spec["ssh_key"])))
    if spec.get("ssh_key_id"):
        fields.append(("ssh_key_id", format_value(spec["ssh_key_id"])))
    if "tags" in spec:
        fields.append(("tags", format_value(spec["tags"])))
    envs = _envs_text(spec.get("envs"))
    if envs:
        fields.append(("envs", envs))
    return fields
