"""The Shadeform API client: the project's only home for httpx.

::

    from reconciler.api import ApiSettings, ShadeformClient

    settings = ApiSettings.from_env(environ=os.environ)
    async with ShadeformClient(settings.api_key, settings.base_url) as client:
        infos = await client.get_instances(ids)

Request/response models live in :mod:`reconciler.models.api`; errors are the
:class:`reconciler.errors.ApiError` family.
"""

from reconciler.api.client import ShadeformClient
from reconciler.api.config import (
    API_KEY_ENV,
    API_URL_ENV,
    DEFAULT_BASE_URL,
    DEFAULT_TIMEOUT,
    ApiSettings,
    is_loopback_host,
    validate_base_url,
)
from reconciler.api.ratelimit import TokenBucket
from reconciler.api.retry import RetryPolicy, parse_retry_after

__all__ = [
    "API_KEY_ENV",
    "API_URL_ENV",
    "DEFAULT_BASE_URL",
    "DEFAULT_TIMEOUT",
    "ApiSettings",
    "RetryPolicy",
    "ShadeformClient",
    "TokenBucket",
    "is_loopback_host",
    "parse_retry_after",
    "validate_base_url",
]
