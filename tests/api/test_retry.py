from __future__ import annotations

from datetime import UTC, datetime

import pytest

from reconciler.api import RetryPolicy, parse_retry_after


def test_backoff_is_full_jitter_under_an_exponential_ceiling() -> None:
    top = RetryPolicy(base_delay=0.5, max_delay=100, random=lambda: 1.0)
    bottom = RetryPolicy(base_delay=0.5, max_delay=100, random=lambda: 0.0)
    assert [top.backoff(n) for n in (1, 2, 3, 4)] == [0.5, 1.0, 2.0, 4.0]
    assert [bottom.backoff(n) for n in (1, 2, 3, 4)] == [0.0, 0.0, 0.0, 0.0]


def test_backoff_ceiling_is_capped_at_max_delay() -> None:
    policy = RetryPolicy(base_delay=1, max_delay=3, random=lambda: 1.0)
    assert policy.backoff(10) == 3


def test_next_delay_stops_after_max_attempts() -> None:
    policy = RetryPolicy(max_attempts=3, random=lambda: 1.0)
    assert policy.next_delay(1, elapsed=0, retry_after=None) is not None
    assert policy.next_delay(2, elapsed=0, retry_after=None) is not None
    assert policy.next_delay(3, elapsed=0, retry_after=None) is None


def test_next_delay_honours_retry_after_over_backoff() -> None:
    policy = RetryPolicy(base_delay=0.1, max_delay=0.2, random=lambda: 1.0)
    assert policy.next_delay(1, elapsed=0, retry_after=7.0) == 7.0


def test_next_delay_gives_up_when_the_wait_would_exceed_the_total_budget() -> None:
    policy = RetryPolicy(total_seconds=10, random=lambda: 1.0)
    assert policy.next_delay(1, elapsed=5, retry_after=4.0) == 4.0
    assert policy.next_delay(1, elapsed=5, retry_after=6.0) is None
    assert policy.next_delay(1, elapsed=10.1, retry_after=None) is None


def test_never_makes_one_attempt() -> None:
    assert RetryPolicy.never().next_delay(1, elapsed=0, retry_after=None) is None


def test_invalid_policies_are_rejected() -> None:
    with pytest.raises(ValueError):
        RetryPolicy(max_attempts=0)
    with pytest.raises(ValueError):
        RetryPolicy(base_delay=-1)


@pytest.mark.parametrize(
    ("header", "seconds"),
    [
        ("3", 3.0),
        ("0.5", 0.5),
        (" 12 ", 12.0),
        ("-4", 0.0),
        ("", None),
        (None, None),
        ("soon", None),
    ],
)
def test_parse_retry_after_seconds(header: str | None, seconds: float | None) -> None:
    assert parse_retry_after(header) == seconds


def test_parse_retry_after_http_date() -> None:
    now = datetime(2024, 5, 1, 10, 0, 0, tzinfo=UTC)
    assert parse_retry_after("Wed, 01 May 2024 10:00:30 GMT", now=now) == 30.0
    assert parse_retry_after("Wed, 01 May 2024 09:00:00 GMT", now=now) == 0.0
