"""``reconciler plan`` and ``reconciler show``."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import click

from reconciler.cli import signals
from reconciler.cli.app import AppContext, cli, pass_app
from reconciler.cli.options import SECONDS, state_dir_option
from reconciler.cli.refresh import refreshed, show_drift
from reconciler.cli.session import (
    ApiTarget,
    FleetStores,
    api_target,
    backend_location,
    command_line,
    connection_options,
    locked_states,
    running_in_ci,
    store_for_command,
)
from reconciler.cli.validate import load_from_cli, manifest_options
from reconciler.engine.planner import PlanOptions
from reconciler.engine.refresh import RefreshOptions
from reconciler.engine.workflow import refresh_and_plan, refresh_and_plan_settled
from reconciler.errors import CapacityError, PolicyError, UsageError
from reconciler.models.plan import Action, Plan
from reconciler.models.spec import Fleet
from reconciler.models.state import FleetState
from reconciler.state.store import is_fleet_name
from reconciler.views import (
    plan_from_json,
    render_plan_human,
    render_plan_json,
    render_plan_markdown,
)
from reconciler.views.apply_view import PendingWait
from reconciler.views.state_view import render_states_human, render_states_json

DEFAULT_PATHS = ("specs",)
DEFAULT_INTENT_GRACE = 60.0


def plan_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """Options every planning command shares (plan, apply, destroy)."""
    command = click.option(
        "--intent-grace",
        type=SECONDS,
        default=DEFAULT_INTENT_GRACE,
        show_default=True,
        metavar="SECONDS",
        help="How long an unanswered create is looked for before it is considered never made.",
    )(command)
    command = click.option(
        "--allow-data-loss",
        is_flag=True,
        help="Allow deleting or replacing volumes, which destroys their data (destroy keeps "
        "volumes without it; apply refuses such a plan without it).",
    )(command)
    command = click.option(
        "--allow-over-budget",
        is_flag=True,
        help="Accept a plan that breaks the fleet's budget; the plan records the override.",
    )(command)
    command = click.option(
        "--exclude",
        "excludes",
        multiple=True,
        metavar="ADDRESS",
        help="Leave an address, a replica group or a fleet out of the plan (the inverse of "
        "--target). Repeatable.",
    )(command)
    command = click.option(
        "--target",
        "targets",
        multiple=True,
        metavar="ADDRESS",
        help="Limit the plan to an address, a replica group (fleet/name) or a fleet. Repeatable.",
    )(command)
    return manifest_options(connection_options(command))


def refuse_data_loss(plan: Plan, *, allowed: bool) -> None:
    """A plan that destroys data (a volume deleted or replaced) is applied only with an
    explicit word: ``--allow-data-loss`` now, or in the saved plan (exit 8 otherwise)."""
    lost = plan.data_loss
    if not lost or allowed or plan.allow_data_loss:
        return
    listed = "; ".join(
        f"{c.address} ({c.resource_id}) would be "
        + ("deleted" if c.action is Action.DELETE else "replaced by an empty one")
        for c in lost
    )
    raise PolicyError(
        f"This plan destroys the data on {len(lost)} volume(s): {listed}. Nothing was changed. "
        "If that is what you mean, run again with --allow-data-loss; to keep a volume, leave it "
        "in the manifest (or `reconciler state rm` it to stop managing it)."
    )


def fail_without_capacity(plan: Plan) -> None:
    """A plan with instances that no approved offer can host fails (after it was shown)."""
    missing = plan.no_capacity
    if missing:
        raise CapacityError(
            f"No capacity for {len(missing)} instance(s): "
            + "; ".join(f"{b.address}: {b.message}" for b in missing)
            + ". Widen the placement envelope or try again later."
        )


def color_enabled(app: AppContext) -> bool:
    return not app.no_color and sys.stdout.isatty()


def live_terminal() -> bool:
    """Whether to draw live progress: standard output is a terminal that can redraw (not
    ``TERM=dumb``) and this is not CI (``CI=true`` gives plain lines even on a TTY)."""
    dumb = os.environ.get("TERM", "").strip().lower() in ("dumb", "")
    return sys.stdout.isatty() and not dumb and not running_in_ci()


@dataclass(frozen=True)
class PlanRun:
    """How a command plans: where, against what, and with which options."""

    paths: tuple[str, ...]
    sandbox: bool
    state_dir: Path
    lock_timeout: float
    parallelism: int
    intent_grace: float
    options: PlanOptions
    wait_for_pending: bool = False
    """apply and destroy wait (bounded by the grace) for creates an earlier run left pending."""


def prepare_plan_run(
    paths: tuple[Path, ...],
    *,
    vars: tuple[str, ...],  # noqa: A002 - named after --var
    var_files: tuple[Path, ...],
    sandbox: bool,
    state_dir: Path,
    lock_timeout: float,
    parallelism: int,
    intent_grace: float,
    options: PlanOptions,
    wait_for_pending: bool = False,
) -> tuple[list[Fleet], PlanRun]:
    """Load the manifests (default ``specs/``) and describe the planning run over them."""
    chosen = paths or tuple(Path(p) for p in DEFAULT_PATHS)
    fleets = load_from_cli(chosen, vars=vars, var_files=var_files, state_dir=state_dir)
    run = PlanRun(
        paths=tuple(str(p) for p in chosen),
        sandbox=sandbox,
        state_dir=state_dir,
        lock_timeout=lock_timeout,
        parallelism=parallelism,
        intent_grace=intent_grace,
        options=options,
        wait_for_pending=wait_for_pending,
    )
    return fleets, run


@dataclass
class PlannedSession:
    """A plan made under the fleets' locks, with what is needed to carry it out."""

    target: ApiTarget
    stores: FleetStores
    states: dict[str, FleetState]
    plan: Plan


@contextmanager
def planned(fleets: list[Fleet], run: PlanRun) -> Iterator[PlannedSession]:
    """Lock the fleets, read their states, refresh and plan; locks held for the ``with`` block."""
    stores = FleetStores.for_fleets(fleets, run.state_dir)
    with (
        api_target(sandbox=run.sandbox, state_dir=run.state_dir) as target,
        locked_states(
            stores, [f.name for f in fleets], timeout=run.lock_timeout, command=command_line()
        ) as states,
    ):
        waiting = PendingWait(sys.stdout, interactive=live_terminal())

        async def make() -> Plan:
            async with target.client(parallelism=run.parallelism) as client:
                refresh_options = RefreshOptions(intent_grace_seconds=run.intent_grace)
                if not run.wait_for_pending:
                    return await refresh_and_plan(
                        client,
                        fleets,
                        states,
                        now=datetime.now(UTC),
                        options=run.options,
                        refresh_options=refresh_options,
                    )
                return await refresh_and_plan_settled(
                    client,
                    fleets,
                    states,
                    clock=lambda: datetime.now(UTC),
                    options=run.options,
                    refresh_options=refresh_options,
                    on_wait=waiting,
                )

        try:
            made = signals.run(make())
        finally:
            waiting.done()
        plan = made.model_copy(update={"paths": run.paths, "sandbox": run.sandbox})
        yield PlannedSession(target, stores, states, plan)


def write_plan_file(plan: Plan, out: Path) -> None:
    """Write the saved plan atomically, mode 0600 whatever the umask (it names the fleet's
    instances and their settings; secrets appear only as fingerprints)."""
    out.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.tmp-{os.getpid()}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)
    try:
        os.fchmod(fd, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as stream:
            render_plan_json(plan, stream)
        tmp.replace(out)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def render(plan: Plan, *, as_json: bool, as_markdown: bool, color: bool) -> None:
    if as_json and as_markdown:
        raise UsageError("Choose one of --json and --markdown.")
    if as_json:
        render_plan_json(plan, sys.stdout)
    elif as_markdown:
        render_plan_markdown(plan, sys.stdout)
    else:
        render_plan_human(plan, sys.stdout, color=color)


@cli.command()
@click.argument("paths", nargs=-1, type=click.Path(path_type=Path))
@plan_options
@click.option(
    "--replace",
    "replace",
    multiple=True,
    metavar="ADDRESS",
    help="Plan a replacement of this address even if nothing changed. Repeatable.",
)
@click.option("--json", "as_json", is_flag=True, help="Print the versioned JSON plan.")
@click.option("--markdown", "as_markdown", is_flag=True, help="Print a pull-request comment.")
@click.option(
    "--out",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Save the plan for `reconciler apply FILE`.",
)
@click.option(
    "--detailed-exitcode",
    is_flag=True,
    help="Exit 0 when nothing changes, 2 when there are changes, 1 on error.",
)
@click.option(
    "--destroy",
    "destroy",
    is_flag=True,
    help="Preview `reconciler destroy`: plan the deletion of everything the fleets own.",
)
@click.option(
    "--refresh-only",
    is_flag=True,
    help="Show only how Shadeform differs from the state (drift), proposing no changes.",
)
@pass_app
def plan(
    app: AppContext,
    paths: tuple[Path, ...],
    destroy: bool,
    refresh_only: bool,
    replace: tuple[str, ...],
    as_json: bool,
    as_markdown: bool,
    out: Path | None,
    detailed_exitcode: bool,
    targets: tuple[str, ...],
    excludes: tuple[str, ...],
    allow_over_budget: bool,
    allow_data_loss: bool,
    intent_grace: float,
    sandbox: bool,
    parallelism: int,
    state_dir: Path,
    lock_timeout: float,
    vars: tuple[str, ...],  # noqa: A002 - named after --var
    var_files: tuple[Path, ...],
) -> None:
    """Show what apply would change to make Shadeform match the manifests."""
    app.detailed_exitcode = detailed_exitcode
    if refresh_only:
        given = [
            name
            for name, value in (
                ("--destroy", destroy),
                ("--markdown", as_markdown),
                ("--out", out),
                ("--replace", replace),
                ("--target", targets),
                ("--exclude", excludes),
                ("--allow-data-loss", allow_data_loss),
            )
            if value
        ]
        if given:
            raise UsageError(f"--refresh-only shows drift only; it does not go with {given[0]}.")
        chosen = paths or tuple(Path(p) for p in DEFAULT_PATHS)
        loaded = load_from_cli(chosen, vars=vars, var_files=var_files, state_dir=state_dir)
        with refreshed(
            loaded,
            sandbox=sandbox,
            state_dir=state_dir,
            lock_timeout=lock_timeout,
            parallelism=parallelism,
            intent_grace=intent_grace,
        ) as done:
            report = show_drift(done, as_json=as_json)
        if detailed_exitcode and report.has_drift:
            sys.exit(2)
        return
    if destroy and replace:
        raise UsageError(
            "--destroy plans the deletion of everything; it does not go with --replace."
        )
    fleets, run = prepare_plan_run(
        paths,
        vars=vars,
        var_files=var_files,
        sandbox=sandbox,
        state_dir=state_dir,
        lock_timeout=lock_timeout,
        parallelism=parallelism,
        intent_grace=intent_grace,
        options=PlanOptions(
            targets=targets,
            excludes=excludes,
            replace=replace,
            destroy=destroy,
            allow_over_budget=allow_over_budget,
            allow_data_loss=allow_data_loss,
        ),
    )
    with planned(fleets, run) as session:
        result = session.plan
    render(result, as_json=as_json, as_markdown=as_markdown, color=color_enabled(app))
    if out is not None:
        write_plan_file(result, out)
        click.echo(
            f"\nSaved the plan to {out}. Apply exactly this plan with: reconciler apply {out}",
            err=as_json or as_markdown,
        )
    fail_without_capacity(result)
    if detailed_exitcode and not result.in_sync:
        sys.exit(2)  # changes, or addresses blocked or waiting: the fleets do not match


def read_plan_file(path: Path) -> Plan:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise UsageError(f"Cannot read the plan file {path}: {exc.strerror}.") from exc
    return plan_from_json(text, source=str(path))


@cli.command()
@click.argument("target", required=False)
@click.option("--json", "as_json", is_flag=True, help="Print the plan (or state) as JSON.")
@click.option("--markdown", "as_markdown", is_flag=True, help="Print a pull-request comment.")
@state_dir_option
@pass_app
def show(
    app: AppContext, target: str | None, as_json: bool, as_markdown: bool, state_dir: Path
) -> None:
    """Render a saved plan file, or show a fleet's state.

    TARGET is a plan file saved with `plan --out`, or a fleet name; without it, every fleet
    in the state directory (or --backend) is shown. Secrets appear only as fingerprints.
    """
    if target is not None and Path(target).is_file():
        render(
            read_plan_file(Path(target)),
            as_json=as_json,
            as_markdown=as_markdown,
            color=color_enabled(app),
        )
        return
    if as_markdown:
        raise UsageError("--markdown renders saved plans; a state is shown as text or --json.")
    store = store_for_command(state_dir)
    if target is None:
        names = store.list_fleets()
    else:
        if not is_fleet_name(target):
            raise UsageError(f"{target} is neither a saved plan file nor a fleet name.")
        names = [target]
    states = []
    for name in names:
        state = store.read(name)
        if state is None:
            where = backend_location(state_dir)
            raise UsageError(f"Fleet {name} has no state in {where} (and {name} is no file).")
        states.append(state)
    if as_json:
        render_states_json(states, sys.stdout)
    else:
        render_states_human(states, sys.stdout)
