"""Statuses derived from timestamps: a table per situation, no clock, no I/O."""

from __future__ import annotations

from typing import Any

import pytest

from reconciler.emulator.lifecycle import (
    InstanceRecord,
    observe,
    preempt_if_due,
    start_deleting,
)

T0 = 1000.0


def record(**overrides: Any) -> InstanceRecord:
    values: dict[str, Any] = {
        "id": "i-1",
        "name": "web-0",
        "cloud": "hyperstack",
        "region": "canada-1",
        "shade_instance_type": "A6000",
        "cloud_instance_type": "n3-RTX-A6000x1",
        "rental_type": "on_demand",
        "shade_cloud": True,
        "os": "ubuntu22.04_cuda12.2_shade_os",
        "cloud_assigned_id": "c-1",
        "ip": "38.80.1.2",
        "hourly_price": 80,
        "created_at": T0,
        "boot_seconds": 100.0,
    }
    values.update(overrides)
    return InstanceRecord(**values)


@pytest.mark.parametrize(
    ("elapsed", "status"),
    [
        (0.0, "creating"),
        (9.9, "creating"),
        (10.0, "pending_provider"),
        (39.9, "pending_provider"),
        (40.0, "pending"),
        (99.9, "pending"),
        (100.0, "active"),
        (10_000.0, "active"),
    ],
)
def test_boot_moves_through_the_phases(elapsed: float, status: str) -> None:
    assert observe(record(), T0 + elapsed).status == status


def test_zero_boot_seconds_is_active_at_once() -> None:
    seen = observe(record(boot_seconds=0.0), T0)
    assert seen.status == "active"
    assert seen.active_at == T0


def test_billing_starts_when_active_and_stops_when_deleting() -> None:
    r = record()
    assert observe(r, T0 + 50).billed_seconds == 0.0
    assert observe(r, T0 + 100 + 3600).billed_seconds == 3600.0
    start_deleting(r, T0 + 100 + 7200, delete_seconds=5.0)
    assert observe(r, T0 + 100 + 7202).billed_seconds == 7200.0


@pytest.mark.parametrize(
    ("elapsed", "status"),
    [(199.9, "active"), (200.0, "deleting"), (204.9, "deleting"), (205.0, "deleted")],
)
def test_delete_goes_through_deleting_to_deleted(elapsed: float, status: str) -> None:
    r = record()
    assert start_deleting(r, T0 + 200, delete_seconds=5.0)
    seen = observe(r, T0 + elapsed)
    assert seen.status == status
    assert seen.gone == (status == "deleted")


def test_deleting_twice_keeps_the_first_deletion() -> None:
    r = record()
    start_deleting(r, T0 + 200, delete_seconds=5.0)
    assert not start_deleting(r, T0 + 203, delete_seconds=5.0)
    assert r.gone_at == T0 + 205


def test_failure_shows_error_with_details_and_is_never_active() -> None:
    r = record(fails_at=T0 + 100, failure_details="provider failed")
    seen = observe(r, T0 + 500)
    assert (seen.status, seen.details, seen.active_at) == ("error", "provider failed", None)


def test_deletion_wins_over_error() -> None:
    r = record(fails_at=T0 + 50)
    start_deleting(r, T0 + 60, delete_seconds=10.0)
    assert observe(r, T0 + 65).status == "deleting"


def test_spot_instances_are_preempted_once_due_and_stay_preempted() -> None:
    r = record(rental_type="spot")
    assert not preempt_if_due(r, T0 + 299, preempt_after=300.0, delete_seconds=5.0)
    assert preempt_if_due(r, T0 + 400, preempt_after=300.0, delete_seconds=5.0)
    assert r.deleting_at == T0 + 300  # preempted when due, not when first observed
    assert observe(r, T0 + 302).details == "preempted"
    assert not preempt_if_due(r, T0 + 500, preempt_after=None, delete_seconds=5.0)
    assert observe(r, T0 + 500).status == "deleted"


def test_on_demand_instances_are_never_preempted() -> None:
    r = record()
    assert not preempt_if_due(r, T0 + 10_000, preempt_after=1.0, delete_seconds=0.0)
    assert observe(r, T0 + 10_000).status == "active"


def test_records_round_trip_through_json() -> None:
    r = record(tags=["a"], envs=[{"name": "X", "value": "1"}], fails_at=T0 + 5)
    assert InstanceRecord.from_json(r.to_json()) == r
