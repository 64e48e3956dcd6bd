"""reconciler.redaction: secrets are scrubbed from text, streams, log records and errors."""

from __future__ import annotations

import io
import logging

import pytest
from pydantic import SecretStr

from reconciler.errors import ApiValidationError, ReconcilerError
from reconciler.redaction import (
    REDACTED,
    SECRETS,
    ScrubbingFilter,
    ScrubbingStream,
    SecretRegistry,
    scrub,
)


def test_every_spelling_of_a_secret_is_scrubbed() -> None:
    registry = SecretRegistry()
    registry.add(SecretStr('p@ss "word"/1'))
    text = 'raw p@ss "word"/1, json p@ss \\"word\\"/1, url p%40ss%20%22word%22%2F1'
    assert registry.scrub(text) == f"raw {REDACTED}, json {REDACTED}, url {REDACTED}"


def test_short_values_are_not_scrubbed_from_free_text() -> None:
    registry = SecretRegistry()
    registry.add("none")
    registry.add(None)
    assert registry.scrub("none of it") == "none of it"
    assert len(registry) == 0


def test_the_longest_secret_wins_when_one_contains_another() -> None:
    registry = SecretRegistry()
    registry.add_all(["secret-1", "secret-1-and-more"])
    assert registry.scrub("x secret-1-and-more y") == f"x {REDACTED} y"


def test_a_stream_scrubs_a_secret_written_in_pieces() -> None:
    registry = SecretRegistry()
    registry.add("hf_s3cr3t_token")
    inner = io.StringIO()
    stream = ScrubbingStream(inner, registry)
    stream.write("token: hf_s3c")
    stream.write("r3t_token\nnext line")
    assert inner.getvalue() == f"token: {REDACTED}\n"
    stream.flush()
    assert inner.getvalue() == f"token: {REDACTED}\nnext line"
    with pytest.raises(TypeError):
        stream.write(b"bytes")  # type: ignore[arg-type]


def test_log_records_are_scrubbed() -> None:
    registry = SecretRegistry()
    registry.add("sk-live-123456")
    record = logging.LogRecord(
        "x", logging.WARNING, __file__, 1, "key %s", ("sk-live-123456",), None
    )
    assert ScrubbingFilter(registry).filter(record)
    assert record.getMessage() == f"key {REDACTED}"


def test_errors_never_show_a_secret_even_one_registered_later() -> None:
    error = ApiValidationError(
        "Shadeform rejected the request.", status=400, api_message='{"value": "registry-pw-42"}'
    )
    SECRETS.add("registry-pw-42")
    assert "registry-pw-42" not in str(error)
    late = ReconcilerError("echo: registry-pw-42")
    assert str(late) == f"echo: {REDACTED}"
    assert error.api_message is not None and "registry-pw-42" not in scrub(error.api_message)
