"""The one place secrets are scrubbed from text: messages, log lines, exceptions, output.

Every secret value a run knows is registered here once: the API key, every value a manifest
took from ``${env:...}`` into a secret field, registry usernames and passwords, state backend
passwords (in ``--backend``, ``RECONCILER_BACKEND``, a manifest's ``backend:``, or
``PGPASSWORD``). Then, whatever path a secret takes back towards a person (an API that echoes
the request in its error answer, a database driver quoting its connection string, a log
record, a traceback's message), it is replaced by ``[redacted]``:

- :class:`~reconciler.errors.ReconcilerError` scrubs its message when it is made and when it
  is shown;
- the CLI wraps standard output and standard error in a :class:`ScrubbingStream`, so every
  line any layer prints (views, rich progress, click, the error boundary) passes through
  :func:`scrub`;
- :class:`ScrubbingFilter` does the same for log records.

Each secret is also recognised as it appears inside JSON (escaped) and inside URLs (percent
encoded). Values shorter than :data:`MIN_SECRET_CHARS` are not scrubbed from free text: they
would mangle ordinary words and numbers everywhere (they are still never written by the
reconciler itself, which prints fingerprints, never values).

Example::

    SECRETS.add("hf_s3cr3t")
    scrub('Shadeform said: {"value": "hf_s3cr3t"}')  # -> 'Shadeform said: {"value": "[redacted]"}'
"""

from __future__ import annotations

import io
import json
import re
import threading
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any, TextIO
from urllib.parse import quote

if TYPE_CHECKING:
    import logging

    from pydantic import SecretStr

REDACTED = "[redacted]"
MIN_SECRET_CHARS = 6


class SecretRegistry:
    """Known secret values and the spellings to look for; thread-safe."""

    def __init__(self) -> None:
        self._values: set[str] = set()
        self._pattern: re.Pattern[str] | None = None
        self._lock = threading.Lock()

    def add(self, value: str | SecretStr | None) -> None:
        """Remember ``value`` (a plain string or a :class:`SecretStr`); short ones are skipped."""
        if value is not None and not isinstance(value, str):
            value = value.get_secret_value() if _is_secret(value) else None
        if value and value != value.strip():
            self.add(value.strip())  # as used: settings strip keys read from the environment
        if not value or len(value) < MIN_SECRET_CHARS:
            return
        spellings = {value, json.dumps(value)[1:-1], quote(value, safe=""), quote(value)}
        with self._lock:
            if spellings <= self._values:
                return
            self._values |= {s for s in spellings if len(s) >= MIN_SECRET_CHARS}
            self._pattern = None

    def add_all(self, values: Iterable[str | SecretStr | None]) -> None:
        for value in values:
            self.add(value)

    def scrub(self, text: str) -> str:
        """``text`` with every known secret spelling replaced by ``[redacted]``."""
        if not self._values or not text:
            return text
        pattern = self._pattern
        if pattern is None:
            with self._lock:
                ordered = sorted(self._values, key=len, reverse=True)  # longest first
                pattern = self._pattern = re.compile("|".join(map(re.escape, ordered)))
        return pattern.sub(REDACTED, text)

    def clear(self) -> None:
        """Forget every secret (tests; a fresh process starts empty)."""
        with self._lock:
            self._values.clear()
            self._pattern = None

    def __len__(self) -> int:
        return len(self._values)


SECRETS = SecretRegistry()
"""The registry of this process: the CLI fills it, everything that shows text reads it."""


def scrub(text: str) -> str:
    """:meth:`SecretRegistry.scrub` of the process registry."""
    return SECRETS.scrub(text)


def secrets_in(value: Any) -> list[SecretStr]:
    """Every :class:`SecretStr` inside ``value`` (pydantic models, mappings, sequences)."""
    found: list[SecretStr] = []
    seen: set[int] = set()

    def walk(item: Any) -> None:
        if _is_secret(item):
            found.append(item)
        elif isinstance(item, str | bytes | int | float | bool) or item is None:
            return
        elif id(item) in seen:
            return
        elif hasattr(item, "__pydantic_fields__"):
            seen.add(id(item))
            for name in type(item).__pydantic_fields__:
                walk(getattr(item, name, None))
        elif isinstance(item, dict):
            seen.add(id(item))
            for child in item.values():
                walk(child)
        elif isinstance(item, list | tuple | set | frozenset):
            seen.add(id(item))
            for child in item:
                walk(child)

    walk(value)
    return found


def _is_secret(value: object) -> bool:
    """A pydantic ``SecretStr``, recognised without importing pydantic (this module loads
    on every command, ``reconciler --version`` included, and must stay light)."""
    return type(value).__name__ == "SecretStr" and hasattr(value, "get_secret_value")


class ScrubbingStream(io.TextIOBase):
    """A text stream that scrubs what passes through it before the underlying stream sees it.

    Text is held back until a newline (or ``flush``), so a secret written in two pieces is
    still recognised; terminals still see every line as soon as it ends.
    """

    def __init__(self, inner: TextIO, registry: SecretRegistry = SECRETS) -> None:
        super().__init__()
        self.inner = inner
        self.registry = registry
        self._pending = ""

    def write(self, text: str) -> int:
        if not isinstance(text, str):  # click probes text streams with write(b"")
            raise TypeError(f"write() argument must be str, not {type(text).__name__}")
        self._pending += text
        cut = self._pending.rfind("\n")
        if cut >= 0:
            ready, self._pending = self._pending[: cut + 1], self._pending[cut + 1 :]
            self.inner.write(self.registry.scrub(ready))
        return len(text)

    def flush(self) -> None:
        if self._pending:
            ready, self._pending = self._pending, ""
            self.inner.write(self.registry.scrub(ready))
        self.inner.flush()

    def isatty(self) -> bool:
        return self.inner.isatty()

    def fileno(self) -> int:
        return self.inner.fileno()

    @property
    def encoding(self) -> str:  # type: ignore[override]
        return getattr(self.inner, "encoding", "utf-8")

    @property
    def errors(self) -> str | None:  # type: ignore[override]
        return getattr(self.inner, "errors", None)

    def writable(self) -> bool:
        return True

    def readable(self) -> bool:
        return False

    @property
    def buffer(self) -> Any:
        """Binary writes (click uses them for bytes) go through a scrubbing adapter too."""
        return _ScrubbingBuffer(self)


class _ScrubbingBuffer:
    def __init__(self, stream: ScrubbingStream) -> None:
        self._stream = stream

    def write(self, data: bytes) -> int:
        self._stream.write(data.decode(self._stream.encoding or "utf-8", "replace"))
        return len(data)

    def flush(self) -> None:
        self._stream.flush()


class ScrubbingFilter:
    """Scrubs a log record's message (its arguments merged in) before any handler sees it.

    A plain object with ``filter(record)``, which is all :mod:`logging` asks of a filter, so
    this module does not import logging (it loads on every command)."""

    def __init__(self, registry: SecretRegistry = SECRETS) -> None:
        self.registry = registry

    def filter(self, record: logging.LogRecord) -> bool:
        if len(self.registry):
            message = record.getMessage()
            cleaned = self.registry.scrub(message)
            if cleaned != message:
                record.msg, record.args = cleaned, None
            if record.exc_info and record.exc_info[1] is not None:
                import logging

                record.exc_text = self.registry.scrub(
                    logging.Formatter().formatException(record.exc_info)
                )
        return True
