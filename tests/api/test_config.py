from __future__ import annotations

import pytest

from reconciler.api import DEFAULT_BASE_URL, ApiSettings, ShadeformClient, validate_base_url
from reconciler.errors import UsageError
from tests.api.conftest import API_KEY


def test_settings_read_key_and_default_url() -> None:
    settings = ApiSettings.from_env(environ={"SHADEFORM_API_KEY": API_KEY})
    assert settings.api_key.get_secret_value() == API_KEY
    assert settings.base_url == DEFAULT_BASE_URL == "https://api.shadeform.ai/v1"


def test_settings_take_the_url_from_the_environment() -> None:
    settings = ApiSettings.from_env(
        environ={"SHADEFORM_API_KEY": API_KEY, "SHADEFORM_API_URL": "http://127.0.0.1:8787/v1/"}
    )
    assert settings.base_url == "http://127.0.0.1:8787/v1"


@pytest.mark.parametrize("environ", [{}, {"SHADEFORM_API_KEY": ""}, {"SHADEFORM_API_KEY": "  "}])
def test_missing_key_is_a_usage_error_that_says_how_to_fix_it(environ: dict[str, str]) -> None:
    with pytest.raises(UsageError) as caught:
        ApiSettings.from_env(environ=environ)
    message = str(caught.value)
    assert "SHADEFORM_API_KEY is not set" in message
    assert "export SHADEFORM_API_KEY" in message
    assert "reconciler emulator" in message
    assert caught.value.exit_code == 64


def test_settings_repr_masks_the_key() -> None:
    settings = ApiSettings.from_env(environ={"SHADEFORM_API_KEY": API_KEY})
    assert API_KEY not in repr(settings)
    assert API_KEY not in str(settings)
    assert API_KEY not in settings.model_dump_json()


@pytest.mark.parametrize(
    "url",
    [
        "https://api.shadeform.ai/v1",
        "https://example.com:8443/v1",
        "http://127.0.0.1:8787/v1",
        "http://127.9.8.7/v1",
        "http://localhost:8787/v1",
        "http://LOCALHOST/v1",
        "http://[::1]:8787/v1",
    ],
)
def test_https_anywhere_and_http_only_to_loopback(url: str) -> None:
    assert validate_base_url(url) == url


@pytest.mark.parametrize(
    ("url", "complaint"),
    [
        ("http://api.shadeform.ai/v1", "plain http"),
        ("http://10.0.0.5/v1", "plain http"),
        ("http://128.0.0.1/v1", "plain http"),
        ("http://localhost.evil.com/v1", "plain http"),
        ("http://[::2]/v1", "plain http"),
        ("ftp://api.shadeform.ai/v1", "not an http(s) URL"),
        ("api.shadeform.ai/v1", "not an http(s) URL"),
        ("https://api.shadeform.ai/v1?key=abc", "query string"),
        ("http://[::1/v1", "not a valid URL"),
    ],
)
def test_unsafe_or_malformed_urls_are_refused(url: str, complaint: str) -> None:
    with pytest.raises(UsageError, match=complaint.replace("(", r"\(").replace(")", r"\)")):
        validate_base_url(url)


def test_credentials_in_the_url_are_refused_without_echoing_them() -> None:
    with pytest.raises(UsageError) as caught:
        validate_base_url("https://user:hunter2@api.shadeform.ai/v1")
    assert "hunter2" not in str(caught.value)
    assert "SHADEFORM_API_KEY" in str(caught.value)


def test_the_client_refuses_plain_http_to_a_remote_host() -> None:
    with pytest.raises(UsageError, match="plain http"):
        ShadeformClient(API_KEY, "http://api.shadeform.ai/v1")
