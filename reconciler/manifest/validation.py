"""Validating data against the manifest models and locating every error in the source.

Pydantic reports errors by model location (``('instances', 0, 'launch_configuration',
'docker', 'docker_configuration')``, where ``'docker'`` is a union tag); we walk that
location through the data to find the key the user wrote, its line and column, and rewrite
the message in the manifest's terms ("unknown key 'imgae'; did you mean 'image'?").
Messages never repeat input values, so a secret cannot leak through them.
"""

from __future__ import annotations

from difflib import get_close_matches
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError
from pydantic_core import ErrorDetails

from reconciler.errors import ManifestIssue
from reconciler.manifest.source import Document, FieldPath
from reconciler.models.manifest import NAME_PATTERN, model_fields_at

ModelT = TypeVar("ModelT", bound=BaseModel)

_QUOTE_HINT = "; YAML read this as a {kind}, so quote it"


def validate_part(
    model: type[ModelT], data: Any, document: Document, prefix: FieldPath = ()
) -> tuple[ModelT | None, list[ManifestIssue]]:
    """Validate ``data`` (found at ``prefix`` in ``document``) as ``model``."""
    try:
        return model.model_validate(data), []
    except ValidationError as exc:
        return None, [_issue(error, model, document, prefix) for error in exc.errors()]


def _issue(
    error: ErrorDetails, model: type[BaseModel], document: Document, prefix: FieldPath
) -> ManifestIssue:
    loc = tuple(error["loc"])
    kind = error["type"]
    path, rest = _locate(document.data, prefix, loc)
    extra = ""
    message = _message(error)
    if kind == "missing" and rest:
        extra = str(rest[-1])
        message = "required field is missing"
    elif kind == "extra_forbidden":
        key = str(loc[-1])
        allowed = model_fields_at(model, loc[:-1])
        close = get_close_matches(key, allowed, n=1)
        message = f"unknown key '{key}'" + (f"; did you mean '{close[0]}'?" if close else "")
        if not close and allowed:
            message += f" (expected one of: {', '.join(allowed)})"
    elif kind == "union_tag_not_found":
        extra, message = "type", "required field is missing: 'docker' or 'script'"
    elif kind == "union_tag_invalid":
        node = _at(document.data, path)
        if isinstance(node, dict) and "type" in node:
            path = (*path, "type")
        message = "type must be 'docker' or 'script'"
    return document.issue(path, message, extra_field=extra)


def _message(error: ErrorDetails) -> str:
    kind = error["type"]
    if kind == "value_error":
        return str(error["msg"]).removeprefix("Value error, ")
    if kind in ("model_type", "model_attributes_type", "dict_type"):
        return "expected a mapping"
    if kind in ("list_type", "tuple_type"):
        return "expected a list"
    if kind == "string_pattern_mismatch" and error.get("ctx", {}).get("pattern") == NAME_PATTERN:
        return (
            "use lowercase letters, digits and hyphens, starting and ending with a letter or digit"
        )
    message = str(error["msg"])
    value = error.get("input")
    if kind == "string_type" and isinstance(value, bool | int | float):
        message += _QUOTE_HINT.format(kind="boolean" if isinstance(value, bool) else "number")
    return message


def _locate(data: Any, prefix: FieldPath, loc: tuple[Any, ...]) -> tuple[FieldPath, FieldPath]:
    """The data path the error points at, and the loc elements left over (e.g. missing key)."""
    current = _at(data, prefix)
    path = list(prefix)
    rest: list[Any] = []
    tag_consumed = False
    for element in loc:
        if isinstance(current, dict) and not tag_consumed and current.get("type") == element:
            tag_consumed = True  # a discriminated union's tag, e.g. launch_configuration's
        elif isinstance(current, dict) and isinstance(element, str) and element in current:
            tag_consumed = False
            current = current[element]
            path.append(element)
        elif isinstance(current, list) and isinstance(element, int) and 0 <= element < len(current):
            tag_consumed = False
            current = current[element]
            path.append(element)
        else:
            rest.append(element)  # a union tag, or a key that is missing
    return tuple(path), tuple(rest)


def _at(data: Any, path: FieldPath) -> Any:
    for element in path:
        if isinstance(data, dict) and isinstance(element, str):
            data = data.get(element)
        elif isinstance(data, list) and isinstance(element, int) and element < len(data):
            data = data[element]
        else:
            return None
    return data
