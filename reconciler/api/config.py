"""Where the Shadeform API is and how to authenticate: settings read from the environment.

::

    settings = ApiSettings.from_env(environ=os.environ)
    client = ShadeformClient(settings.api_key, settings.base_url)

``SHADEFORM_API_KEY`` is required; ``SHADEFORM_API_URL`` defaults to Shadeform's production
API. Plain ``http`` is refused except to loopback (the local emulator).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from urllib.parse import urlsplit

import httpx
from pydantic import BaseModel, ConfigDict, SecretStr

from reconciler.errors import UsageError

API_KEY_ENV = "SHADEFORM_API_KEY"
API_URL_ENV = "SHADEFORM_API_URL"
DEFAULT_BASE_URL = "https://api.shadeform.ai/v1"
DEFAULT_TIMEOUT = httpx.Timeout(connect=5.0, read=30.0, write=30.0, pool=30.0)

_MISSING_KEY_HELP = (
    f"{API_KEY_ENV} is not set. Create an API key in the Shadeform console "
    f"(https://platform.shadeform.ai/settings/api) and export it: "
    f"`export {API_KEY_ENV}=...`. To try the reconciler without a Shadeform account, start "
    f"the local emulator (`reconciler emulator`) and point {API_URL_ENV} at the URL it "
    f"prints, with {API_KEY_ENV} set to its sandbox key (see `reconciler emulator --help`)."
)


def is_loopback_host(host: str) -> bool:
    """True for ``localhost``, 127.0.0.0/8 and ``::1``."""
    host = host.strip("[]").lower()
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def validate_base_url(url: str) -> str:
    """The URL without a trailing slash, or :class:`UsageError` saying what is wrong with it."""
    cleaned = url.strip().rstrip("/")
    try:
        parts = urlsplit(cleaned)
    except ValueError:
        raise UsageError(f"The Shadeform API URL {cleaned!r} is not a valid URL.") from None
    if parts.username or parts.password:
        raise UsageError(
            "The Shadeform API URL must not contain credentials; "
            f"put the API key in {API_KEY_ENV} instead."
        )
    where = f"The Shadeform API URL {cleaned!r}"
    if parts.scheme not in ("https", "http") or not parts.hostname:
        raise UsageError(
            f"{where} is not an http(s) URL; expected something like {DEFAULT_BASE_URL}."
        )
    if parts.query or parts.fragment:
        raise UsageError(f"{where} must not have a query string or fragment.")
    if parts.scheme == "http" and not is_loopback_host(parts.hostname):
        raise UsageError(
            f"{where} uses plain http, which would send the API key unencrypted. "
            "Use https, or http only to a loopback address (127.0.0.1, ::1, localhost) "
            "such as the local emulator."
        )
    return cleaned


class ApiSettings(BaseModel):
    """The API key (masked in every repr) and the validated base URL."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    api_key: SecretStr
    base_url: str = DEFAULT_BASE_URL

    @classmethod
    def from_env(cls, environ: Mapping[str, str]) -> ApiSettings:
        key = environ.get(API_KEY_ENV, "").strip()
        if not key:
            raise UsageError(_MISSING_KEY_HELP)
        url = environ.get(API_URL_ENV, "").strip() or DEFAULT_BASE_URL
        return cls(api_key=SecretStr(key), base_url=validate_base_url(url))
