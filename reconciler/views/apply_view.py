"""How an apply looks: live progress (rich on a terminal, timestamped lines in CI) and its summary."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime
from typing import TextIO

from rich.console import Console, Group
from rich.live import Live
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from reconciler.models.apply import ApplyReport
from reconciler.models.plan import Action, Blocked, PendingCreate
from reconciler.models.progress import ActionEvent, InstanceWait, Phase

_PAST = {
    Action.CREATE: "created",
    Action.UPDATE: "updated",
    Action.REPLACE: "replaced",
    Action.DELETE: "deleted",
    Action.NOOP: "adopted",
    Action.FORGET: "forgotten",
}


def format_elapsed(seconds: float) -> str:
    """``75`` -> ``1m15s``; ``3725`` -> ``1h02m``."""
    seconds = max(0, int(seconds))
    if seconds >= 3600:
        return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"
    if seconds >= 60:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    return f"{seconds}s"


def expected_boot(wait: InstanceWait) -> str:
    if not wait.boot_seconds_max:
        return ""
    minutes = max(1, round(wait.boot_seconds_max / 60))
    return f"expected ≤{minutes} min"


def _wait_text(wait: InstanceWait) -> str:
    expected = expected_boot(wait)
    of = f" of {expected}" if expected else ""
    return f"{wait.status}, {format_elapsed(wait.waited_seconds)}{of}"


class LineProgress:
    """Plain, timestamped lines: what CI logs (and pipes, and TERM=dumb) should show.

    While instances boot it writes a line whenever one's Shadeform status changes (creating,
    pending_provider, pending, active) and a summary at least every ``every_seconds``, so a
    15-minute GPU boot reads as alive without flooding the log."""

    def __init__(
        self,
        stream: TextIO,
        clock: Callable[[], datetime] | None = None,
        *,
        every_seconds: float = 30.0,
    ) -> None:
        self.stream = stream
        self.clock = clock or (lambda: datetime.now(UTC))
        self.every_seconds = every_seconds
        self._statuses: dict[str, str] = {}
        self._last_summary: datetime | None = None

    def __call__(self, event: ActionEvent) -> None:
        now = self.clock()
        stamp = now.strftime("%Y-%m-%dT%H:%M:%SZ")
        if event.waits:
            self._waits(stamp, now, event.waits)
            return
        subject = f"{event.address}: " if event.address else ""
        detail = f": {event.message}" if event.message else ""
        self.stream.write(f"{stamp} {subject}{event.action} {event.phase.value}{detail}\n")
        self.stream.flush()

    def _waits(self, stamp: str, now: datetime, waits: tuple[InstanceWait, ...]) -> None:
        for wait in waits:
            if self._statuses.get(wait.instance_id) != wait.status:
                self._statuses[wait.instance_id] = wait.status
                self.stream.write(f"{stamp} {wait.address}: {_wait_text(wait)}\n")
        due = self._last_summary is None or (
            (now - self._last_summary).total_seconds() >= self.every_seconds
        )
        if due:
            self._last_summary = now
            shown = "; ".join(f"{w.address} {w.status}" for w in waits[:6])
            more = f"; and {len(waits) - 6} more" if len(waits) > 6 else ""
            longest = max(w.waited_seconds for w in waits)
            self.stream.write(
                f"{stamp} waiting {format_elapsed(longest)} for "
                f"{len(waits)} instance(s) to become active: {shown}{more}\n"
            )
        self.stream.flush()

    def __enter__(self) -> LineProgress:
        return self

    def __exit__(self, *exc: object) -> None:
        return None


class _Booting:
    """A live table of the instances being waited for, with a running clock each."""

    def __init__(self, clock: Callable[[], float]) -> None:
        self.clock = clock
        self.rows: dict[str, tuple[InstanceWait, float]] = {}  # id -> (last seen, at)

    def update(self, waits: tuple[InstanceWait, ...], *, complete: bool) -> None:
        now = self.clock()
        for wait in waits:
            self.rows[wait.instance_id] = (wait, now)
        if complete:  # the executor lists every instance still waiting
            seen = {w.instance_id for w in waits}
            for instance_id in [i for i in self.rows if i not in seen]:
                del self.rows[instance_id]

    def finished(self, address: str) -> None:
        for instance_id in [i for i, (w, _) in self.rows.items() if w.address == address]:
            del self.rows[instance_id]

    def __rich__(self) -> Table:
        table = Table.grid(padding=(0, 2))
        now = self.clock()
        for wait, at in sorted(self.rows.values(), key=lambda r: r[0].address):
            running = wait.waited_seconds + (now - at)  # the clock runs between polls
            table.add_row(
                f"  [cyan]{wait.address}[/]",
                wait.status,
                format_elapsed(running),
                expected_boot(wait),
            )
        return table


class LiveProgress:
    """A rich progress bar with finished actions printed above it and, while instances boot,
    one row each with its Shadeform status, a running clock and the expected boot time."""

    def __init__(
        self,
        stream: TextIO,
        total: int,
        *,
        color: bool,
        clock: Callable[[], float] | None = None,
        verb: str = "Applying",
        boots_counted: bool = True,
    ) -> None:
        import time

        self.boots_counted = boots_counted
        self.console = Console(
            file=stream, force_terminal=True, no_color=not color, highlight=False
        )
        self.progress = Progress(
            TextColumn(f"[bold]{verb}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            TextColumn("{task.description}"),
            console=self.console,
        )
        self.task = self.progress.add_task("", total=total)
        self.booting = _Booting(clock or time.monotonic)
        self.live = Live(
            Group(self.progress, self.booting),
            console=self.console,
            refresh_per_second=4,
            transient=True,
        )

    def __call__(self, event: ActionEvent) -> None:
        """The bar counts actions and then boots (``total`` includes both), so it fills up
        only when every new instance is active and its clock runs while they boot."""
        if event.phase is Phase.SUCCEEDED:
            self.console.print(f"[green]✓[/] {event.address}: {event.message}")
            self.progress.advance(self.task)
        elif event.phase is Phase.FAILED:
            self.console.print(f"[red]✗[/] {event.address}: {event.message}")
            self.booting.finished(event.address)
            # A create that failed before its instance booted leaves its boot slot unused.
            unused = (
                self.boots_counted
                and not event.boot_finished
                and event.action
                in (
                    "create",
                    "replace",
                )
            )
            self.progress.advance(self.task, 2 if unused else 1)
        elif event.boot_finished:
            self.console.print(f"[green]✓[/] {event.address}: {event.message}")
            self.booting.finished(event.address)
            self.progress.advance(self.task)
        elif event.waits:
            self.booting.update(event.waits, complete=event.action == "wait")
            self.progress.update(self.task, description=event.message)
        elif event.phase is Phase.PROGRESS:
            self.progress.update(self.task, description=event.message)

    def __enter__(self) -> LiveProgress:
        self.live.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.live.stop()


class PendingWait:
    """The countdown while apply waits for creates sent by an earlier run to resolve.

    On a terminal one line is rewritten in place; in CI logs a line is written at the start
    and then every ``every_seconds``, so a log shows the run is alive but stays short."""

    def __init__(
        self,
        stream: TextIO,
        *,
        interactive: bool,
        clock: Callable[[], float] | None = None,
        every_seconds: float = 10.0,
    ) -> None:
        import time

        self.stream = stream
        self.interactive = interactive
        self.clock = clock or time.monotonic
        self.every_seconds = every_seconds
        self._last: float | None = None

    def __call__(self, pending: tuple[Blocked, ...], seconds_left: float) -> None:
        count = len(pending)
        text = (
            f"Waiting for {count} create(s) sent by an earlier run "
            f"({', '.join(b.address for b in pending[:3])}{', ...' if count > 3 else ''}): "
            f"adopted when they appear in Shadeform, else released and created in "
            f"{seconds_left:.0f}s (--intent-grace)"
        )
        now = self.clock()
        if self.interactive:
            self.stream.write("\r\x1b[K" + text)
        elif self._last is None or now - self._last >= self.every_seconds:
            self.stream.write(text + "\n")
        else:
            return
        self._last = now
        self.stream.flush()

    def done(self) -> None:
        if self.interactive and self._last is not None:
            self.stream.write("\r\x1b[K")
            self.stream.flush()


def render_apply_summary(
    report: ApplyReport,
    stream: TextIO,
    *,
    pending: tuple[PendingCreate, ...] = (),
    verb: str = "Apply",
) -> None:
    """What the apply (or destroy) did, what failed, what never started, and which creates
    are still unresolved (a cancel, or an ambiguous answer) with when they resolve."""
    done = Counter(r.action for r in report.succeeded)
    parts = [
        f"{done[action]} {_PAST[action]}"
        for action in (Action.CREATE, Action.UPDATE, Action.REPLACE, Action.DELETE)
    ]
    for action in (Action.NOOP, Action.FORGET):
        if done[action]:
            parts.append(f"{done[action]} {_PAST[action]}")
    failed = report.failed
    if report.cancelled:
        head = f"{verb} cancelled ({report.cancelled})"
    elif failed or report.blocked or report.not_started:
        head = f"{verb} finished with problems"
    else:
        head = f"{verb} complete"
    stream.write(f"\n{head}: {', '.join(parts)}.\n")
    if failed:
        stream.write(f"\n{len(failed)} action(s) failed:\n")
        for result in failed:
            stream.write(f"  {result.action.value} {result.address}: {result.message}\n")
    skipped = report.not_started
    if skipped:
        stream.write(f"\n{len(skipped)} action(s) not started:\n")
        for result in skipped:
            stream.write(f"  {result.action.value} {result.address}: {result.message}\n")
    if report.not_waited_for:
        stream.write(
            f"\nNot waited for: {len(report.not_waited_for)} new instance(s) created and "
            f"recorded but still booting ({', '.join(report.not_waited_for[:5])}"
            f"{', ...' if len(report.not_waited_for) > 5 else ''}); `reconciler plan` shows "
            "them once active, and replaces any that fail.\n"
        )
    if report.blocked:
        stream.write(f"\n{len(report.blocked)} address(es) left alone:\n")
        for line in report.blocked:
            stream.write(f"  {line}\n")
    if pending:
        stream.write(
            f"\n{len(pending)} create(s) may have reached Shadeform without an answer; their "
            "intents are in the state:\n"
        )
        for item in pending:
            stream.write(
                f"  {item.address}: the next apply adopts the instance if it appears, or "
                f"releases the intent at {item.resolves_at} (--intent-grace) and creates it\n"
            )
    stream.flush()
