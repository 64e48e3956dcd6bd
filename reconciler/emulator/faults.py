"""Deciding, request by request, which fault to inject.

The :class:`FaultInjector` reads the live :class:`FaultConfig` on every request (tests may
change it at any time), resolves the per-endpoint overrides, throws the dice from one
``random.Random`` seeded by ``FaultConfig.seed`` and keeps the token buckets of the rate
limiter. It decides; the app acts (sleeps, answers 429/5xx, loses the answer).

Dice are thrown in a fixed order per request (jitter, error, lost answer, hang), each only
when its knob is non-zero, so a seeded run injects the same faults every time.
"""

from __future__ import annotations

import fnmatch
import math
import random
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

from reconciler.emulator.config import EndpointFaults, ErrorStatus, FaultConfig

GLOBAL_BUCKET = "*"
_T = TypeVar("_T")


@dataclass(frozen=True, slots=True)
class Endpoint:
    """What the app knows about a route: the spec's operationId, method and path."""

    operation_id: str
    method: str
    path: str


@dataclass(frozen=True, slots=True)
class EffectiveFaults:
    """Global knobs with one endpoint's overrides applied."""

    latency_ms: float
    jitter_ms: float
    error_rate: float
    error_statuses: tuple[ErrorStatus, ...]
    hang_rate: float
    hang_seconds: float
    lost_response_rate: float
    bucket: str | None
    bucket_rps: float | None
    bucket_burst: int | None


class TokenBucket:
    def __init__(self, rps: float, burst: int, now: float) -> None:
        self.rps = rps
        self.burst = burst
        self._tokens = float(burst)
        self._updated = now

    def take(self, now: float) -> float:
        """Take one token: 0.0 if granted, else the seconds until one is available."""
        elapsed = max(0.0, now - self._updated)
        self._tokens = min(float(self.burst), self._tokens + elapsed * self.rps)
        self._updated = now
        if self._tokens >= 1.0:
            self._tokens -= 1.0
            return 0.0
        return (1.0 - self._tokens) / self.rps


def _burst(rps: float, burst: int | None) -> int:
    return burst if burst is not None else max(1, math.ceil(rps))


class FaultInjector:
    """Thread-safe fault decisions over a replaceable :class:`FaultConfig`."""

    def __init__(self, config: FaultConfig, clock: Callable[[], float]) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._buckets: dict[str, TokenBucket] = {}
        self.config = config

    @property
    def config(self) -> FaultConfig:
        return self._config

    @config.setter
    def config(self, config: FaultConfig) -> None:
        with self._lock:
            self._config = config
            self._seed = config.seed
            self._random = random.Random(config.seed)
            self._buckets.clear()

    def resolve(self, endpoint: Endpoint) -> EffectiveFaults:
        config = self._config
        override, key = self._override_for(config, endpoint)
        lost = override.lost_response_rate
        if lost is None and endpoint.operation_id == "InstancesCreate":
            lost = config.lost_create_rate
        return EffectiveFaults(
            latency_ms=_pick(override.latency_ms, config.latency_ms),
            jitter_ms=_pick(override.jitter_ms, config.jitter_ms),
            error_rate=_pick(override.error_rate, config.error_rate),
            error_statuses=_pick(override.error_statuses, config.error_statuses),
            hang_rate=_pick(override.hang_rate, config.hang_rate),
            hang_seconds=_pick(override.hang_seconds, config.hang_seconds),
            lost_response_rate=lost or 0.0,
            bucket=key if override.rate_limit_rps is not None else None,
            bucket_rps=override.rate_limit_rps,
            bucket_burst=override.rate_limit_burst,
        )

    def latency_seconds(self, faults: EffectiveFaults) -> float:
        if faults.jitter_ms <= 0:
            return faults.latency_ms / 1000
        return (faults.latency_ms + self._uniform(0, faults.jitter_ms)) / 1000

    def retry_after(self, faults: EffectiveFaults) -> float | None:
        """Seconds the caller must wait if rate-limited now, else None (a token was taken)."""
        config = self._config
        with self._lock:
            now = self._clock()
            if config.rate_limit_rps is not None:
                wait = self._bucket(
                    GLOBAL_BUCKET, config.rate_limit_rps, config.rate_limit_burst
                ).take(now)
                if wait > 0:
                    return wait
            if faults.bucket is not None and faults.bucket_rps is not None:
                wait = self._bucket(faults.bucket, faults.bucket_rps, faults.bucket_burst).take(now)
                if wait > 0:
                    return wait
        return None

    def injected_error(self, faults: EffectiveFaults) -> int | None:
        if faults.error_rate <= 0 or not self._hit(faults.error_rate):
            return None
        with self._lock:
            return self._random.choice(faults.error_statuses)

    def lose_response(self, faults: EffectiveFaults) -> bool:
        return faults.lost_response_rate > 0 and self._hit(faults.lost_response_rate)

    def hang_seconds(self, faults: EffectiveFaults) -> float | None:
        if faults.hang_rate > 0 and self._hit(faults.hang_rate):
            return faults.hang_seconds
        return None

    def boot_fails(self) -> bool:
        rate = self._config.boot_failure_rate
        return rate > 0 and self._hit(rate)

    # -- internals ----------------------------------------------------------------------

    def _hit(self, rate: float) -> bool:
        return self._uniform(0.0, 1.0) < rate

    def _uniform(self, low: float, high: float) -> float:
        with self._lock:
            if self._config.seed != self._seed:  # the seed was changed in place
                self._seed = self._config.seed
                self._random.seed(self._seed)
            return self._random.uniform(low, high)

    def _bucket(self, key: str, rps: float, burst: int | None) -> TokenBucket:
        size = _burst(rps, burst)
        bucket = self._buckets.get(key)
        if bucket is None or bucket.rps != rps or bucket.burst != size:
            bucket = self._buckets[key] = TokenBucket(rps, size, self._clock())
        return bucket

    @staticmethod
    def _override_for(config: FaultConfig, endpoint: Endpoint) -> tuple[EndpointFaults, str]:
        exact = config.endpoints.get(endpoint.operation_id)
        if exact is not None:
            return exact, endpoint.operation_id
        request_line = f"{endpoint.method} {endpoint.path}"
        for key, override in config.endpoints.items():
            pattern = key if " " in key else f"* {key}"
            if fnmatch.fnmatchcase(request_line, pattern):
                return override, key
        return _NO_OVERRIDE, endpoint.operation_id


_NO_OVERRIDE = EndpointFaults()


def _pick(override: _T | None, default: _T) -> _T:
    return default if override is None else override
