"""Field-level diffs between comparable specs; deepdiff's only home.

deepdiff's results are converted at once into our :class:`FieldChange` objects. Lists are
reported whole (``tags: [a, b] -> [a, c]``) because a list diff by index reads badly in review.
"""

from __future__ import annotations

import re
from typing import Any

from deepdiff import DeepDiff

from reconciler.engine.comparable import compared_view, is_fingerprint
from reconciler.models.plan import FieldChange

_PATH_TOKEN = re.compile(r"\[('(?:[^'\\]|\\.)*'|\d+)\]")


def _path_parts(deepdiff_path: str) -> list[str | int]:
    parts: list[str | int] = []
    for token in _PATH_TOKEN.findall(deepdiff_path):
        parts.append(token[1:-1] if token.startswith("'") else int(token))
    return parts


def _truncate_at_list(parts: list[str | int]) -> tuple[str, ...]:
    out: list[str] = []
    for part in parts:
        if isinstance(part, int):
            break
        out.append(part)
    return tuple(out)


def _get(data: Any, parts: tuple[str, ...]) -> Any:
    for part in parts:
        if not isinstance(data, dict) or part not in data:
            return None
        data = data[part]
    return data


def _contains_secret(value: Any) -> bool:
    if is_fingerprint(value):
        return True
    if isinstance(value, dict):
        return any(_contains_secret(v) for v in value.values())
    if isinstance(value, list):
        return any(_contains_secret(v) for v in value)
    return False


def path_matches(path: str, patterns: tuple[str, ...] | frozenset[str]) -> bool:
    """Whether ``path`` equals a pattern or lies under it (``a.b`` matches ``a`` and ``a.b``)."""
    return any(path == p or path.startswith(p + ".") for p in patterns)


def diff_specs(
    before: dict[str, Any],
    after: dict[str, Any],
    *,
    updatable: frozenset[str],
    ignore: tuple[str, ...] = (),
) -> tuple[FieldChange, ...]:
    """Changes from ``before`` to ``after`` (comparable specs), sorted by path.

    A change to a top-level field outside ``updatable`` (the kind's in-place allow-list)
    forces a replacement. Fields under ``ignore`` (``lifecycle.ignore_changes``) are left out
    entirely.
    """
    old, new = compared_view(before), compared_view(after)
    if old == new:
        return ()  # the common case (no-op plans of large fleets): skip deepdiff's walk
    raw = DeepDiff(old, new, ignore_order=False, verbose_level=0, view="tree")
    paths: set[tuple[str, ...]] = set()
    for report in raw.values():
        for level in report:
            parts = _truncate_at_list(_path_parts(level.path()))
            if parts:
                paths.add(parts)
    changes = []
    for parts in sorted(paths):
        path = ".".join(parts)
        if path_matches(path, ignore):
            continue
        b, a = _get(old, parts), _get(new, parts)
        if b == a:
            continue
        changes.append(
            FieldChange(
                path=path,
                before=b,
                after=a,
                forces_replacement=parts[0] not in updatable,
                sensitive=_contains_secret(b) or _contains_secret(a),
            )
        )
    return _drop_nested(changes)


def _drop_nested(changes: list[FieldChange]) -> tuple[FieldChange, ...]:
    """Keep the outermost change when both ``a`` and ``a.b`` were reported."""
    kept: list[FieldChange] = []
    for change in changes:
        if not any(change.path.startswith(k.path + ".") for k in kept):
            kept.append(change)
    return tuple(kept)
