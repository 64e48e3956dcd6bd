"""Where the emulated cloud keeps its tables: in memory only, or in a data file.

The data file is a JSON snapshot written atomically (temp file, fsync, rename) plus a
journal beside it (``<file>.journal``, one JSON line per change, flushed at once). Each
change costs one appended line, so creating thousands of instances stays cheap; the journal
is folded into a fresh snapshot when it grows past the live data, and on every start. A torn
last journal line (the process was killed mid-write) is ignored. Replaying is idempotent:
every line carries a whole value, last write wins.

Both files are created owner-only (0600): instances hold env values and registry passwords.
Tables are ``kind -> key -> JSON value``; the cloud decides what kinds exist.
"""

from __future__ import annotations

import contextlib
import json
import os
from pathlib import Path
from typing import IO, Any, Protocol

FORMAT = "shadeform-emulator"
FORMAT_VERSION = 1
Tables = dict[str, dict[str, Any]]


class DataFileError(Exception):
    """The data file exists but is not an emulator data file (or is corrupt)."""


class CloudStore(Protocol):
    def load(self) -> Tables: ...

    def put(self, kind: str, key: str, value: Any) -> None: ...

    def remove(self, kind: str, key: str) -> None: ...

    def close(self) -> None: ...


class MemoryStore:
    """Keeps nothing: the cloud's own dicts are the only copy."""

    def load(self) -> Tables:
        return {}

    def put(self, kind: str, key: str, value: Any) -> None:
        pass

    def remove(self, kind: str, key: str) -> None:
        pass

    def close(self) -> None:
        pass


class FileStore:
    """Snapshot + journal persistence; callers serialise access (the cloud holds a lock)."""

    def __init__(self, path: Path, *, min_compact_lines: int = 1000) -> None:
        self.path = path
        self.journal_path = path.with_name(path.name + ".journal")
        self._min_compact_lines = min_compact_lines
        self._tables: Tables = {}
        self._journal_lines = 0
        self._journal: IO[str] | None = None

    def load(self) -> Tables:
        self._tables = self._read_snapshot()
        for change in self._read_journal():
            self._apply(change)
        self._compact()
        return {kind: dict(rows) for kind, rows in self._tables.items()}

    def put(self, kind: str, key: str, value: Any) -> None:
        self._record({"kind": kind, "key": key, "value": value})

    def remove(self, kind: str, key: str) -> None:
        self._record({"kind": kind, "key": key, "removed": True})

    def close(self) -> None:
        if self._journal is not None:
            self._journal.close()
            self._journal = None

    def _record(self, change: dict[str, Any]) -> None:
        self._apply(change)
        journal = self._open_journal()
        journal.write(json.dumps(change, separators=(",", ":")) + "\n")
        journal.flush()
        self._journal_lines += 1
        live = sum(len(rows) for rows in self._tables.values())
        if self._journal_lines > max(self._min_compact_lines, 2 * live):
            self._compact()

    def _apply(self, change: dict[str, Any]) -> None:
        rows = self._tables.setdefault(change["kind"], {})
        if change.get("removed"):
            rows.pop(change["key"], None)
        else:
            rows[change["key"]] = change["value"]

    def _open_journal(self) -> IO[str]:
        if self._journal is None:
            self._journal = _private_file(self.journal_path, os.O_APPEND)
        return self._journal

    def _read_snapshot(self) -> Tables:
        try:
            text = self.path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return {}
        except OSError as exc:
            raise DataFileError(f"cannot read {self.path}: {exc.strerror}") from exc
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise DataFileError(f"{self.path} is not valid JSON ({exc.msg})") from exc
        if not isinstance(data, dict) or data.get("format") != FORMAT:
            raise DataFileError(f"{self.path} is not a Shadeform emulator data file")
        if data.get("version") != FORMAT_VERSION:
            raise DataFileError(
                f"{self.path} has format version {data.get('version')!r}; "
                f"this emulator reads version {FORMAT_VERSION}"
            )
        tables = data.get("tables")
        if not isinstance(tables, dict):
            raise DataFileError(f"{self.path} has no tables")
        return tables

    def _read_journal(self) -> list[dict[str, Any]]:
        try:
            lines = self.journal_path.read_text(encoding="utf-8").splitlines()
        except FileNotFoundError:
            return []
        changes = []
        for number, line in enumerate(lines, start=1):
            try:
                change = json.loads(line)
            except json.JSONDecodeError:
                if number == len(lines):
                    break  # torn final write: the change never completed
                raise DataFileError(f"{self.journal_path}:{number} is corrupt") from None
            changes.append(change)
        return changes

    def _compact(self) -> None:
        self.close()
        body = {"format": FORMAT, "version": FORMAT_VERSION, "tables": self._tables}
        self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        temp = self.path.with_name(f".{self.path.name}.{os.getpid()}.tmp")
        try:
            with _private_file(temp, os.O_TRUNC) as handle:
                json.dump(body, handle, separators=(",", ":"))
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(temp, self.path)
        finally:
            with contextlib.suppress(FileNotFoundError):
                temp.unlink()
        _private_file(self.journal_path, os.O_TRUNC).close()
        self._journal_lines = 0


def _private_file(path: Path, mode_flag: int) -> IO[str]:
    """Open for writing, readable by the owner only: instances carry env values and registry
    passwords, as Shadeform stores them."""
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | mode_flag, 0o600)
    return os.fdopen(descriptor, "w", encoding="utf-8")
