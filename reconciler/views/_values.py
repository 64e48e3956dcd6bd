"""Display forms of plan values, shared by the human and Markdown views.

Everything user-controlled passes through :func:`clean_text` (control and bidi characters shown
as escapes, so no value can colour a terminal or reorder a line) and every secret fingerprint,
wherever it sits in a value, prints as ``(sensitive)``.
"""

from __future__ import annotations

import json
import re
from typing import Any

from reconciler.engine.comparable import is_fingerprint

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


def key_fields(spec: dict[str, Any]) -> list[tuple[str, str]]:
    """The fields a reviewer needs to recognise an instance: name, placement, image, tags."""
    fields: list[tuple[str, str]] = []
    if "name" in spec:
        fields.append(("name", format_value(spec["name"])))
    placement = [spec.get(k) for k in ("cloud", "region", "shade_instance_type")]
    if any(p is not None for p in placement):
        fields.append(("cloud/region/type", "/".join(_bare(p or "?") for p in placement)))
    if "rental_type" in spec:
        fields.append(("rental_type", format_value(spec["rental_type"])))
    launch = spec.get("launch_configuration")
    if isinstance(launch, dict):
        docker = launch.get("docker_configuration")
        script = launch.get("script_configuration")
        if isinstance(docker, dict) and "image" in docker:
            fields.append(("image", format_value(docker["image"])))
        elif isinstance(script, dict) and isinstance(script.get("base64_script"), str):
            size = len(script["base64_script"])
            fields.append(("script", f"(base64, {size} characters)"))
    if "tags" in spec:
        fields.append(("tags", format_value(spec["tags"])))
    return fields
