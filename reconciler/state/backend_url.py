"""Backend URLs: which state backend a URL names, and how to show one without its password.

Accepted forms::

    state/  or  /abs/dir                 the local file backend (a plain path)
    file://state  or  file:///abs/dir    the same, spelled as a URL
    postgresql://user:pw@host:5432/db    the PostgreSQL backend (any libpq URL; postgres://
                                         works too), plus two query parameters of our own:
        ?schema=NAME                     the schema holding the tables (default: reconciler)
        &lease_ttl=SECONDS               how long a lock lease lives without a heartbeat
                                         (default 30; at least 1)

Parsing is pure (no I/O, no driver import), so the CLI can validate and redact a URL
without PostgreSQL support installed.

Example::

    parse_backend_url("postgresql://ci:hunter2@db/fleet?schema=gpu")
    # PostgresBackend(url='postgresql://ci:***@db/fleet?schema=gpu', schema='gpu', ...)
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import unquote, urlsplit, urlunsplit

from reconciler.errors import UsageError
from reconciler.models.backend import file_url_directory

POSTGRES_SCHEMES = ("postgresql", "postgres")
DEFAULT_SCHEMA = "reconciler"
DEFAULT_LEASE_TTL = 30.0
MIN_LEASE_TTL = 1.0
REDACTED = "***"

_OUR_PARAMETERS = ("schema", "lease_ttl")
_SCHEMA_NAME = re.compile(r"[a-z_][a-z0-9_]{0,62}")
_SCHEME = re.compile(r"([A-Za-z][A-Za-z0-9+.-]*)://")
_USERINFO_PASSWORD = re.compile(r"(?P<head>[A-Za-z][A-Za-z0-9+.-]*://[^:/@\s]*):[^@/\s]*@")
_QUERY_PASSWORD = re.compile(r"(?P<head>[?&]password=)[^&\s]*", re.IGNORECASE)


@dataclass(frozen=True)
class FileBackend:
    """The local file backend in ``directory``."""

    directory: Path

    @property
    def display(self) -> str:
        return str(self.directory)


@dataclass(frozen=True)
class PostgresBackend:
    """A PostgreSQL database; ``conninfo`` is the libpq URL without our own parameters."""

    conninfo: str = field(repr=False)
    display: str
    schema: str = DEFAULT_SCHEMA
    lease_ttl: float = DEFAULT_LEASE_TTL
    secrets: tuple[str, ...] = field(default=(), repr=False)

    def scrub(self, text: str) -> str:
        """``text`` with the URL's password (in any spelling we know) replaced by ``***``."""
        for secret in self.secrets:
            text = text.replace(secret, REDACTED)
        return redact_urls(text)


Backend = FileBackend | PostgresBackend


def parse_backend_url(url: str, *, base_dir: Path | None = None) -> Backend:
    """What ``url`` names; relative file paths are taken from ``base_dir`` when given.

    Raises :class:`UsageError` for an unknown scheme or a bad parameter, naming the URL
    with its password redacted.
    """
    text = url.strip()
    if not text:
        raise UsageError("The state backend URL is empty: give a directory or postgresql://...")
    scheme_match = _SCHEME.match(text)
    if scheme_match is None:
        _refuse_url_lookalike(text)
        return FileBackend(_local_path(text, base_dir))
    scheme = scheme_match.group(1).lower()
    if scheme == "file":
        directory = file_url_directory(text)
        if not directory:
            raise UsageError(f"{redact_urls(text)} names no directory: write file://DIR.")
        return FileBackend(_local_path(directory, base_dir))
    if scheme in POSTGRES_SCHEMES:
        return _postgres(text)
    raise UsageError(
        f"{redact_urls(text)} is not a state backend this reconciler knows: use a directory "
        "(or file://DIR) for local state files, or postgresql://USER@HOST/DATABASE."
    )


_NEAR_SCHEME = re.compile(r"([A-Za-z][A-Za-z0-9+.-]*):")
_KNOWN_SCHEMES = ("file", *POSTGRES_SCHEMES, "pg")
_DSN_PAIR = re.compile(r"(^|\s)[A-Za-z_]+\s*=")


def _refuse_url_lookalike(text: str) -> None:
    """A plain path must look like one: refuse what is a mistyped URL or a libpq DSN, which
    would otherwise silently become a local folder (one named after the password). The value
    is never quoted: without a proper URL shape its password cannot be told apart."""
    hint = "write postgresql://USER@HOST:5432/DATABASE, file://DIR, or a plain directory"
    near = _NEAR_SCHEME.match(text)
    lowered = text.lower()
    if near is not None:
        raise UsageError(
            f"The state backend looks like a URL without '//' after '{near.group(1)}:' "
            f"(the value is not shown: it may hold a password); {hint}."
        )
    if any(lowered.startswith(scheme + "/") for scheme in _KNOWN_SCHEMES):
        scheme = lowered.split("/", 1)[0]
        raise UsageError(
            f"The state backend looks like a URL missing the ':' after '{scheme}' (the value is "
            f"not shown: it may hold a password); {hint}."
        )
    if _DSN_PAIR.search(text):
        raise UsageError(
            "The state backend looks like a libpq connection string (key=value pairs), which "
            f"is not accepted; {hint} (put the password in PGPASSWORD or ~/.pgpass)."
        )
    if "@" in text:
        raise UsageError(
            "The state backend has an '@', as in user@host, but no scheme (the value is not "
            f"shown: it may hold a password); {hint}."
        )


def redact_urls(text: str) -> str:
    """``text`` with every ``scheme://user:password@`` and ``password=`` value hidden."""
    text = _USERINFO_PASSWORD.sub(lambda m: f"{m.group('head')}:{REDACTED}@", text)
    return _QUERY_PASSWORD.sub(lambda m: f"{m.group('head')}{REDACTED}", text)


def _local_path(text: str, base_dir: Path | None) -> Path:
    path = Path(text).expanduser()
    if base_dir is not None and not path.is_absolute():
        path = (base_dir / path).resolve()
    return path


def _postgres(url: str) -> PostgresBackend:
    parts = urlsplit(url)
    kept: list[str] = []
    ours: dict[str, str] = {}
    secrets: list[str] = []
    for piece in parts.query.split("&") if parts.query else []:
        key, _, value = piece.partition("=")
        if key in _OUR_PARAMETERS:
            ours[key] = unquote(value)
            continue
        if key.lower() == "password" and value:
            secrets += [value, unquote(value)]
        kept.append(piece)
    if parts.password:
        secrets += [parts.password, unquote(parts.password)]
    display = redact_urls(url)
    schema = ours.get("schema", DEFAULT_SCHEMA)
    if not _SCHEMA_NAME.fullmatch(schema):
        raise UsageError(
            f"In {display}: schema={schema!r} is not a usable schema name (lower-case letters, "
            "digits and '_', starting with a letter or '_', at most 63 characters)."
        )
    lease_ttl = DEFAULT_LEASE_TTL
    if "lease_ttl" in ours:
        try:
            lease_ttl = float(ours["lease_ttl"].removesuffix("s"))
        except ValueError:
            lease_ttl = -1.0
        if not MIN_LEASE_TTL <= lease_ttl <= 86400:
            raise UsageError(
                f"In {display}: lease_ttl={ours['lease_ttl']!r} is not a lease time: give "
                f"seconds between {MIN_LEASE_TTL:g} and 86400 (e.g. lease_ttl=30)."
            )
    conninfo = urlunsplit(parts._replace(query="&".join(kept)))
    return PostgresBackend(
        conninfo=conninfo,
        display=display,
        schema=schema,
        lease_ttl=lease_ttl,
        secrets=tuple(sorted({s for s in secrets if s}, key=len, reverse=True)),
    )
