"""The watcher's Prometheus metrics (``prometheus_client``), in a registry of its own."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

__all__ = ["CONTENT_TYPE_LATEST", "WatchMetrics"]

_HEAL_BUCKETS = (1, 2, 5, 10, 30, 60, 120, 300, 600, 1800, 3600)


class WatchMetrics:
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry if registry is not None else CollectorRegistry()
        r = self.registry
        self.desired = Gauge(
            "reconciler_fleet_desired_instances", "Instances the manifests declare", ["fleet"],
            registry=r,
        )  # fmt: skip
        self.live = Gauge(
            "reconciler_fleet_live_instances", "Recorded instances that are active", ["fleet"],
            registry=r,
        )  # fmt: skip
        self.pending = Gauge(
            "reconciler_fleet_pending_instances",
            "Recorded instances still booting (creating, pending)",
            ["fleet"],
            registry=r,
        )
        self.blocked = Gauge(
            "reconciler_fleet_blocked_addresses",
            "Addresses the plan leaves alone (pending creates, no capacity, blocked)",
            ["fleet"],
            registry=r,
        )
        self.unapplied = Gauge(
            "reconciler_fleet_unapplied_changes",
            "Planned changes the watcher leaves for a reviewed apply (drift it only reports)",
            ["fleet"],
            registry=r,
        )
        self.burn = Gauge(
            "reconciler_fleet_burn_dollars_per_hour",
            "What the fleet's resources cost now, in dollars per hour",
            ["fleet"],
            registry=r,
        )
        self.cycle_seconds = Histogram(
            "reconciler_watch_cycle_duration_seconds", "Duration of one watch cycle", registry=r
        )
        self.cycles = Counter(
            "reconciler_watch_cycles_total", "Watch cycles, by result", ["result"], registry=r
        )
        self.actions = Counter(
            "reconciler_watch_actions_total",
            "Actions the watcher carried out or refused, by kind and result",
            ["fleet", "kind", "action", "result"],
            registry=r,
        )
        self.skipped = Counter(
            "reconciler_watch_locked_skips_total",
            "Cycles a fleet was skipped because someone else held its lock",
            ["fleet"],
            registry=r,
        )
        self.last_success = Gauge(
            "reconciler_watch_last_successful_cycle_timestamp_seconds",
            "Unix time of the last cycle that refreshed and planned every fleet",
            registry=r,
        )
        self.heal_seconds = Histogram(
            "reconciler_watch_heal_latency_seconds",
            "Seconds from detecting a broken instance to its replacement being created",
            buckets=_HEAL_BUCKETS,
            registry=r,
        )

    def exposition(self) -> bytes:
        """The Prometheus text format."""
        return generate_latest(self.registry)
