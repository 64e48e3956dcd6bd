"""How an apply looks: live progress (rich on a terminal, timestamped lines in CI) and its summary."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime
from typing import TextIO

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from reconciler.engine.events import ActionEvent, Phase
from reconciler.engine.executor import ApplyReport
from reconciler.models.plan import Action, Blocked, PendingCreate

_PAST = {
    Action.CREATE: "created",
    Action.UPDATE: "updated",
    Action.REPLACE: "replaced",
    Action.DELETE: "deleted",
    Action.NOOP: "adopted",
    Action.FORGET: "forgotten",
}


class LineProgress:
    """Plain, timestamped lines: what CI logs should show."""

    def __init__(self, stream: TextIO, clock: Callable[[], datetime] | None = None) -> None:
        self.stream = stream
        self.clock = clock or (lambda: datetime.now(UTC))

    def __call__(self, event: ActionEvent) -> None:
        stamp = self.clock().strftime("%Y-%m-%dT%H:%M:%SZ")
        subject = f"{event.address}: " if event.address else ""
        detail = f": {event.message}" if event.message else ""
        self.stream.write(f"{stamp} {subject}{event.action} {event.phase.value}{detail}\n")
        self.stream.flush()

    def __enter__(self) -> LineProgress:
        return self

    def __exit__(self, *exc: object) -> None:
        return None


class LiveProgress:
    """A rich progress bar with finished actions printed above it (interactive terminals)."""

    def __init__(self, stream: TextIO, total: int, *, color: bool) -> None:
        self.console = Console(
            file=stream, force_terminal=True, no_color=not color, highlight=False
        )
        self.progress = Progress(
            TextColumn("[bold]Applying"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            TextColumn("{task.description}"),
            console=self.console,
            transient=True,
        )
        self.task = self.progress.add_task("", total=total)

    def __call__(self, event: ActionEvent) -> None:
        if event.phase is Phase.SUCCEEDED:
            self.progress.console.print(f"[green]✓[/] {event.address}: {event.message}")
            self.progress.advance(self.task)
        elif event.phase is Phase.FAILED:
            self.progress.console.print(f"[red]✗[/] {event.address}: {event.message}")
            if event.action != "create" or "went to" not in event.message:
                self.progress.advance(self.task)
        elif event.phase is Phase.PROGRESS:
            self.progress.update(self.task, description=event.message)

    def __enter__(self) -> LiveProgress:
        self.progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.progress.stop()


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
