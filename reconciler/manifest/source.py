"""Reading one YAML file into plain Python data, remembering where every value came from.

This is the only place that imports ``yaml``. We compose documents ourselves from libyaml's
event stream (``CSafeLoader`` when available) instead of using ``yaml.safe_load`` because we
need what ``safe_load`` throws away or gets wrong for a strict language:

- a line and column for every mapping key and sequence item (``Document.positions``);
- duplicate keys reported (PyYAML silently keeps the last one);
- alias bombs refused (aliases are shared, and their expanded size is budgeted);
- a nesting limit (libyaml's own composer recurses in C and crashes on deep input);
- mapping keys kept as the text the user wrote (``on:`` stays ``"on"``, not ``True``);
- plain scalars resolved by the YAML 1.2 core schema, not PyYAML's YAML 1.1 rules: only
  ``true``/``false`` are booleans (``yes``, ``no``, ``on`` and ``off`` stay text, which a
  boolean field then refuses), ``1:20`` is text rather than sexagesimal 80, ``1_000`` is text;
- explicit tags refused, every one of them (``!!python/object/apply:...``, ``!!str``,
  ``!custom``, ``!``): a manifest is data, and a tag it relies on would be silently dropped.

Timestamps stay strings (the manifest language wants RFC3339 text); ``<<`` merge keys work.
"""

from __future__ import annotations

import os
import re
import stat
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NoReturn

import yaml
from yaml.events import (
    AliasEvent,
    DocumentStartEvent,
    Event,
    MappingEndEvent,
    MappingStartEvent,
    ScalarEvent,
    SequenceEndEvent,
    SequenceStartEvent,
    StreamEndEvent,
)

from reconciler.errors import ManifestIssue

MAX_FILE_BYTES = 1024 * 1024
MAX_DEPTH = 64
ALIAS_BUDGET = 100_000  # expanded nodes that aliases may add, on top of 10x the written nodes

FieldPath = tuple[str | int, ...]

_Loader: Any = getattr(yaml, "CSafeLoader", None) or yaml.SafeLoader
_TAG = "tag:yaml.org,2002:"
_MERGE_KEY = "<<"
# The YAML 1.2 core schema (https://yaml.org/spec/1.2.2/#1032-tag-resolution).
_CORE_NULL = frozenset({"", "~", "null", "Null", "NULL"})
_CORE_BOOL = {"true": True, "True": True, "TRUE": True, "false": False, "False": False}
_CORE_BOOL["FALSE"] = False
_CORE_INT = re.compile(r"[-+]?[0-9]+")
_CORE_OCTAL = re.compile(r"0o[0-7]+")
_CORE_HEX = re.compile(r"0x[0-9a-fA-F]+")
_CORE_FLOAT = re.compile(r"[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?")
_CORE_INF = re.compile(r"[-+]?\.(inf|Inf|INF)")
_CORE_NAN = frozenset({".nan", ".NaN", ".NAN"})
# First characters with which a plain scalar may resolve to something other than a string.
_RESOLVABLE = frozenset("~nNtTfF0123456789+-.")


def resolve_core_scalar(text: str) -> Any:
    """A plain (unquoted, untagged) scalar's value under the YAML 1.2 core schema."""
    if not text:
        return None
    if text[0] not in _RESOLVABLE:
        return text
    if text in _CORE_NULL:
        return None
    if text in _CORE_BOOL:
        return _CORE_BOOL[text]
    if _CORE_INT.fullmatch(text):
        return int(text)
    if _CORE_OCTAL.fullmatch(text):
        return int(text[2:], 8)
    if _CORE_HEX.fullmatch(text):
        return int(text[2:], 16)
    if _CORE_FLOAT.fullmatch(text):
        return float(text)
    if _CORE_INF.fullmatch(text):
        return float("-inf") if text.startswith("-") else float("inf")
    if text in _CORE_NAN:
        return float("nan")
    return text


@dataclass(frozen=True, slots=True)
class Position:
    """1-based line and column."""

    line: int
    column: int


@dataclass(frozen=True)
class Document:
    """One parsed file: plain data (dicts, lists, str, int, float, bool, None) plus positions."""

    file: str
    data: Any
    positions: Mapping[FieldPath, Position] = field(repr=False)

    def position_of(self, path: FieldPath) -> Position:
        """Where ``path`` was written, or its nearest ancestor (values inside aliases)."""
        for end in range(len(path), -1, -1):
            found = self.positions.get(path[:end])
            if found is not None:
                return found
        return Position(1, 1)

    def issue(self, path: FieldPath, message: str, *, extra_field: str = "") -> ManifestIssue:
        where = self.position_of(path)
        name = render_path(path)
        if extra_field:
            name = f"{name}.{extra_field}" if name else extra_field
        return ManifestIssue(self.file, where.line, where.column, name, message)


def render_path(path: FieldPath) -> str:
    """``('instances', 0, 'name')`` -> ``instances[0].name``."""
    out = ""
    for element in path:
        if isinstance(element, int):
            out += f"[{element}]"
        else:
            out += f".{element}" if out else element
    return out


def read_text(path: Path, display: str, *, max_bytes: int = MAX_FILE_BYTES) -> str:
    """The file's text; raises ``FileProblem`` for unreadable, too large or non-UTF-8 files."""
    try:
        # Without blocking, and only a regular file: a FIFO or a device would hang the run.
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except FileNotFoundError:
        raise FileProblem(ManifestIssue(display, None, None, "", "file not found")) from None
    except IsADirectoryError:
        raise FileProblem(ManifestIssue(display, None, None, "", "is a directory")) from None
    except OSError as exc:
        message = f"cannot read the file: {exc.strerror or exc}"
        raise FileProblem(ManifestIssue(display, None, None, "", message)) from None
    try:
        mode = os.fstat(fd).st_mode
        if stat.S_ISDIR(mode):
            raise FileProblem(ManifestIssue(display, None, None, "", "is a directory"))
        if not stat.S_ISREG(mode):
            message = "is not a regular file (a FIFO, socket or device)"
            raise FileProblem(ManifestIssue(display, None, None, "", message))
        with os.fdopen(os.dup(fd), "rb") as stream:
            raw = stream.read(max_bytes + 1)
    except OSError as exc:
        message = f"cannot read the file: {exc.strerror or exc}"
        raise FileProblem(ManifestIssue(display, None, None, "", message)) from None
    finally:
        os.close(fd)
    if len(raw) > max_bytes:
        message = f"file is larger than the {max_bytes // 1024} KiB limit"
        raise FileProblem(ManifestIssue(display, 1, 1, "", message))
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw.count(b"\n", 0, exc.start) + 1
        column = exc.start - (raw.rfind(b"\n", 0, exc.start) + 1) + 1
        message = f"file is not valid UTF-8 (byte 0x{raw[exc.start]:02x})"
        raise FileProblem(ManifestIssue(display, line, column, "", message)) from None


class FileProblem(Exception):
    """A file could not be read or parsed at all; carries the one issue to report."""

    def __init__(self, issue: ManifestIssue) -> None:
        super().__init__(issue.render())
        self.issue = issue


def parse_document(text: str, display: str) -> tuple[Document, list[ManifestIssue]]:
    """Compose one YAML document. Raises ``FileProblem`` when nothing usable came out."""
    composer = _Composer(display)
    loader = _Loader(text)
    try:
        while (event := loader.get_event()) is not None and type(event) is not StreamEndEvent:
            composer.feed(event)
    except yaml.YAMLError as exc:
        raise FileProblem(_yaml_issue(exc, display, text)) from None
    except _Abort as abort:
        raise FileProblem(abort.issue) from None
    except UnicodeError:
        raise FileProblem(ManifestIssue(display, 1, 1, "", "file is not valid text")) from None
    finally:
        loader.dispose()
    if composer.root is None or composer.root.value is None:
        raise FileProblem(
            ManifestIssue(display, 1, 1, "", "file is empty (expected a mapping with 'fleet')")
        )
    document = Document(display, composer.root.value, composer.positions)
    return document, composer.issues


def read_document(path: Path, display: str) -> tuple[Document, list[ManifestIssue]]:
    """Read and compose ``path``; ``display`` is how the file is named in messages."""
    return parse_document(read_text(path, display), display)


# --- the composer -------------------------------------------------------------------------------


class _Abort(Exception):
    def __init__(self, issue: ManifestIssue) -> None:
        super().__init__(issue.render())
        self.issue = issue


@dataclass(slots=True)
class _Built:
    value: Any
    size: int  # nodes after alias expansion


@dataclass(slots=True)
class _Frame:
    path: FieldPath
    anchor: str | None
    is_mapping: bool
    items: list[Any] = field(default_factory=list)
    mapping: dict[str, Any] = field(default_factory=dict)
    key_lines: dict[str, int] = field(default_factory=dict)
    merges: list[tuple[dict[str, Any], Position]] = field(default_factory=list)
    pending_key: str | None = None
    pending_position: Position | None = None
    size: int = 1


class _Composer:
    def __init__(self, display: str) -> None:
        self.display = display
        self.positions: dict[FieldPath, Position] = {(): Position(1, 1)}
        self.issues: list[ManifestIssue] = []
        self.root: _Built | None = None
        self.stack: list[_Frame] = []
        self.anchors: dict[str, _Built] = {}
        self.documents = 0
        self.written = 0
        self.expanded_by_aliases = 0

    def feed(self, event: Event) -> None:
        kind = type(event)
        if kind is MappingEndEvent or kind is SequenceEndEvent:
            frame = self.stack.pop()
            value = self._finish_mapping(frame) if frame.is_mapping else frame.items
            built = _Built(value, frame.size)
            self._remember(frame.anchor, built)
            self._add(built, None)
            return
        mark = event.start_mark
        position = Position(mark.line + 1, mark.column + 1) if mark else Position(1, 1)
        if kind is ScalarEvent:
            assert isinstance(event, ScalarEvent)
            self.written += 1
            if self._awaiting_key():
                self._key(event, position)
                return
            built = _Built(self._scalar(event, position), 1)
            self._remember(event.anchor, built)
            self._add(built, position)
        elif isinstance(event, AliasEvent):
            self._alias(event.anchor or "", position)
        elif isinstance(event, MappingStartEvent | SequenceStartEvent):
            self.written += 1
            if self._awaiting_key():
                self._abort(position, "mapping keys must be plain strings")
            if len(self.stack) >= MAX_DEPTH:
                self._abort(position, f"nesting is deeper than {MAX_DEPTH} levels")
            path = self._child_path(position)
            if event.tag is not None:
                self._tag_issue(path, position, event.tag)
            self.stack.append(
                _Frame(path, event.anchor, is_mapping=isinstance(event, MappingStartEvent))
            )
        elif isinstance(event, DocumentStartEvent):
            self.documents += 1
            if self.documents > 1:
                self._abort(position, "a manifest file holds one YAML document; found a second")

    # - structure

    def _awaiting_key(self) -> bool:
        return bool(self.stack) and self.stack[-1].is_mapping and self.stack[-1].pending_key is None

    def _child_path(self, position: Position) -> FieldPath:
        if not self.stack:
            return ()
        parent = self.stack[-1]
        if parent.is_mapping:
            key = parent.pending_key
            assert key is not None
            return (*parent.path, key)
        path = (*parent.path, len(parent.items))
        self.positions[path] = position
        return path

    def _key(self, event: ScalarEvent, position: Position) -> None:
        frame = self.stack[-1]
        plain = event.implicit[0] and event.tag is None
        key = _MERGE_KEY if plain and event.value == _MERGE_KEY else str(event.value)
        if key != _MERGE_KEY:
            self.positions.setdefault((*frame.path, key), position)
        if event.tag is not None:
            self._tag_issue((*frame.path, key), position, event.tag)
        frame.pending_key = key
        frame.pending_position = position

    def _add(self, built: _Built, position: Position | None) -> None:
        if not self.stack:
            self.root = built
            return
        parent = self.stack[-1]
        parent.size += built.size
        if not parent.is_mapping:
            if position is not None:
                self.positions[(*parent.path, len(parent.items))] = position
            parent.items.append(built.value)
            return
        key, key_position = parent.pending_key, parent.pending_position
        assert key is not None and key_position is not None
        parent.pending_key = parent.pending_position = None
        if key == _MERGE_KEY:
            self._merge(parent, built.value, key_position)
        elif key in parent.mapping:
            first = parent.key_lines[key]
            self.issues.append(
                ManifestIssue(
                    self.display,
                    key_position.line,
                    key_position.column,
                    render_path((*parent.path, key)),
                    f"duplicate key '{key}' (first set on line {first})",
                )
            )
        else:
            parent.mapping[key] = built.value
            parent.key_lines[key] = key_position.line

    def _merge(self, frame: _Frame, value: Any, position: Position) -> None:
        sources = value if isinstance(value, list) else [value]
        if not all(isinstance(s, dict) for s in sources):
            self._abort(position, "'<<' expects a mapping or a list of mappings")
        frame.merges.extend((source, position) for source in sources)

    def _finish_mapping(self, frame: _Frame) -> dict[str, Any]:
        if not frame.merges:
            return frame.mapping
        merged: dict[str, Any] = {}
        for source, position in frame.merges:  # earlier sources win, explicit keys win over all
            for key, value in source.items():
                if key not in merged:
                    merged[key] = value
                    self.positions.setdefault((*frame.path, key), position)
        merged.update(frame.mapping)
        return merged

    # - scalars, anchors and aliases

    def _scalar(self, event: ScalarEvent, position: Position) -> Any:
        if event.tag is not None:
            self._issue(position, _tag_message(event.tag))
            return event.value
        if not event.implicit[0]:  # quoted, or a block scalar: always text
            return event.value
        return resolve_core_scalar(event.value)

    def _tag_issue(self, path: FieldPath, position: Position, tag: str) -> None:
        self.issues.append(
            ManifestIssue(
                self.display, position.line, position.column, render_path(path), _tag_message(tag)
            )
        )

    def _remember(self, anchor: str | None, built: _Built) -> None:
        if anchor is not None:
            self.anchors[anchor] = built

    def _alias(self, anchor: str, position: Position) -> None:
        built = self.anchors.get(anchor)
        if built is None:
            self._abort(position, f"alias *{anchor} names no anchor defined before it")
        self.expanded_by_aliases += built.size
        if self.expanded_by_aliases > ALIAS_BUDGET + 10 * self.written:
            self._abort(position, "aliases expand to too many values (an alias bomb?)")
        if self._awaiting_key():
            self._abort(position, "mapping keys must be plain strings")
        self._add(built, position)

    def _issue(self, position: Position, message: str) -> None:
        path = self._child_path(position) if self.stack else ()
        self.issues.append(
            ManifestIssue(self.display, position.line, position.column, render_path(path), message)
        )

    def _abort(self, position: Position, message: str) -> NoReturn:
        raise _Abort(ManifestIssue(self.display, position.line, position.column, "", message))


def _tag_message(tag: str) -> str:
    short = "!!" + tag[len(_TAG) :] if tag.startswith(_TAG) else tag
    return (
        f"explicit YAML tags are not allowed ('{short}'): a manifest is plain data; "
        "quote the value to make it text"
    )


def _yaml_issue(exc: yaml.YAMLError, display: str, text: str) -> ManifestIssue:
    if isinstance(exc, yaml.reader.ReaderError):  # a character offset, no mark
        offset = max(0, min(exc.position, len(text)))
        line = text.count("\n", 0, offset) + 1
        column = offset - (text.rfind("\n", 0, offset) + 1) + 1
        character = exc.character if isinstance(exc.character, str) else chr(exc.character)
        message = f"invalid YAML: character #x{ord(character):04x} is not allowed"
        return ManifestIssue(display, line, column, "", message)
    mark = getattr(exc, "problem_mark", None)
    problem = getattr(exc, "problem", None) or str(exc)
    context = getattr(exc, "context", None)
    message = f"invalid YAML: {problem}"
    if context:
        message += f" ({context})"
    if mark is None:
        return ManifestIssue(display, None, None, "", message)
    return ManifestIssue(display, mark.line + 1, mark.column + 1, "", message)
