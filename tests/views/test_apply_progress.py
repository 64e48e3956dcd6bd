"""Waiting for GPUs looks alive: per-instance status, a running clock, a line every 30 s."""

from __future__ import annotations

import io
from datetime import UTC, datetime, timedelta

from reconciler.models.progress import ActionEvent, InstanceWait, Phase
from reconciler.views.apply_view import LineProgress, LiveProgress, format_elapsed


def _wait(status: str, waited: float, address: str = "inference/vllm-0") -> InstanceWait:
    return InstanceWait(
        address=address, instance_id="i-1", status=status, waited_seconds=waited,
        boot_seconds_max=420,
    )  # fmt: skip


def _event(*waits: InstanceWait) -> ActionEvent:
    return ActionEvent("", "wait", Phase.PROGRESS, "waiting", waits=waits)


def test_format_elapsed() -> None:
    assert [format_elapsed(s) for s in (0, 59, 75, 3725)] == ["0s", "59s", "1m15s", "1h02m"]


def test_plain_lines_show_each_status_change_and_a_summary_every_30_seconds() -> None:
    now = [datetime(2026, 12, 1, 12, 0, 0, tzinfo=UTC)]
    stream = io.StringIO()
    sink = LineProgress(stream, clock=lambda: now[0])
    timeline = [(0, "creating"), (2, "creating"), (12, "pending_provider"), (20, "pending_provider"),
                (31, "pending_provider"), (45, "pending"), (64, "pending")]  # fmt: skip
    for seconds, status in timeline:
        now[0] = datetime(2026, 12, 1, 12, 0, 0, tzinfo=UTC) + timedelta(seconds=seconds)
        sink(_event(_wait(status, seconds)))
    lines = stream.getvalue().splitlines()
    changes = [line for line in lines if ": " in line and "waiting" not in line]
    assert [line.split(": ", 1)[1] for line in changes] == [
        "creating, 0s of expected ≤7 min",
        "pending_provider, 12s of expected ≤7 min",
        "pending, 45s of expected ≤7 min",
    ]
    summaries = [line for line in lines if " waiting " in line]
    assert [s.split(" ", 1)[1] for s in summaries] == [
        "waiting 0s for 1 instance(s) to become active: inference/vllm-0 creating",
        "waiting 31s for 1 instance(s) to become active: inference/vllm-0 pending_provider",
        "waiting 1m04s for 1 instance(s) to become active: inference/vllm-0 pending",
    ]


def test_the_live_view_keeps_its_clock_running_while_instances_boot() -> None:
    stream = io.StringIO()
    now = [1000.0]
    sink = LiveProgress(stream, total=2, color=False, clock=lambda: now[0])
    sink(ActionEvent("inference/vllm-0", "create", Phase.SUCCEEDED, "created i-1"))
    sink(_event(_wait("pending_provider", 30)))
    now[0] += 95  # between polls the row's clock still runs
    sink.console.print(sink.booting)
    text = stream.getvalue()
    assert "inference/vllm-0" in text and "pending_provider" in text
    assert "2m05s" in text and "expected ≤7 min" in text
    assert not sink.progress.tasks[0].finished  # the bar waits for the boot too
    sink(ActionEvent("inference/vllm-0", "create", Phase.PROGRESS, "i-1 is active",
                     boot_finished=True))  # fmt: skip
    assert sink.progress.tasks[0].finished
