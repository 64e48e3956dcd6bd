"""``reconciler apply``, ``destroy``, ``refresh`` and ``import``."""

from __future__ import annotations

import os
import signal
import sys
from collections.abc import Callable
from contextlib import nullcontext
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import click

from reconciler.cli import signals
from reconciler.cli.app import AppContext, cli, pass_app
from reconciler.cli.options import DURATION
from reconciler.cli.plan import (
    DEFAULT_INTENT_GRACE,
    DEFAULT_PATHS,
    PlanRun,
    color_enabled,
    fail_without_capacity,
    live_terminal,
    plan_options,
    planned,
    prepare_plan_run,
    read_plan_file,
    refuse_data_loss,
)
from reconciler.cli.refresh import apply_refresh_only, refreshed
from reconciler.cli.session import (
    ApiTarget,
    FleetStores,
    api_target,
    command_line,
    confirm_or_abort,
    connection_options,
    locked_states,
    plan_digest,
)
from reconciler.cli.signals import current_guard, exit_code_for
from reconciler.cli.validate import load_from_cli, manifest_options
from reconciler.engine.cancel import CancelToken
from reconciler.engine.comparable import comparable_spec
from reconciler.engine.executor import ApplyReport, Executor, ExecutorOptions
from reconciler.engine.failpoints import FailPoints
from reconciler.engine.kinds import kind_of_address
from reconciler.engine.kinds.anchored import AnchoredKind
from reconciler.engine.kinds.instance_apply import waits_until_serving
from reconciler.engine.placement import with_placement_of
from reconciler.engine.planner import PlanOptions
from reconciler.engine.recorder import StateRecorder
from reconciler.engine.refresh import to_live_instance
from reconciler.engine.workflow import check_plan_fresh
from reconciler.errors import ApplyError, NotFoundError, PolicyError, RunCancelled, UsageError
from reconciler.models.api import UpdateRequest
from reconciler.models.live import FLEET_TAG, OWNERSHIP_PREFIX, ownership_tags
from reconciler.models.plan import Action, PendingCreate, Plan
from reconciler.models.spec import Fleet, InstanceSpec
from reconciler.models.state import FleetState, InstanceRecord, ResourceRecord
from reconciler.readiness import run_readiness_command
from reconciler.views import render_plan_human
from reconciler.views.apply_view import LineProgress, LiveProgress, render_apply_summary

FAILPOINT_ENV = "RECONCILER_FAILPOINT"


def _now() -> datetime:
    return datetime.now(UTC)


def _iso() -> str:
    return _now().isoformat().replace("+00:00", "Z")


def executor_options(command: Callable[..., Any]) -> Callable[..., Any]:
    command = click.option("--auto-approve", is_flag=True, help="Apply without asking.")(command)
    command = click.option(
        "--fail-fast", is_flag=True, help="Stop starting new actions after the first failure."
    )(command)
    command = click.option(
        "--wait-timeout",
        type=DURATION,
        default=None,
        metavar="DURATION",
        help="How long to wait for new instances (default: from boot time).",
    )(command)
    command = click.option(
        "--no-wait",
        is_flag=True,
        help="Do not wait for new instances to become active (a rollout still waits).",
    )(command)
    command = click.option(
        "--allow-readiness-commands",
        is_flag=True,
        help="Run the manifests' readiness commands (review them first: they run here).",
    )(command)
    return command


def _looks_like_plan_file(paths: tuple[Path, ...]) -> bool:
    if len(paths) != 1 or not paths[0].is_file():
        return False
    try:
        with paths[0].open("rb") as stream:
            head = stream.read(4096).lstrip()
    except OSError:
        return False
    return head.startswith(b"{") and b"reconciler-plan" in head


def _execute(
    target: ApiTarget,
    plan: Plan,
    fleets: list[Fleet],
    stores: FleetStores,
    states: dict[str, FleetState],
    *,
    parallelism: int,
    options: ExecutorOptions,
    color: bool,
    intent_grace: float = DEFAULT_INTENT_GRACE,
    verb: str = "Apply",
) -> ApplyReport:
    refuse_readiness_commands(plan, fleets, allowed=options.run_readiness, wait=options.wait)
    digest = plan_digest(plan)  # recorded in the state history (PostgreSQL backend)
    recorders = {
        name: StateRecorder(stores.stores[name], state, plan_digest=digest)
        for name, state in states.items()
    }
    actions = [
        c for f in plan.fleets for c in f.changes if c.is_change or c.action is Action.FORGET
    ]
    boots = sum(1 for c in actions if c.action in (Action.CREATE, Action.REPLACE))
    # The bar counts each action, then each new instance's boot (unless --no-wait).
    total = len(actions) + (boots if options.wait else 0)
    sink = (
        LiveProgress(
            sys.stdout,
            total,
            color=color,
            verb="Destroying" if verb == "Destroy" else "Applying",
            boots_counted=options.wait,
        )
        if live_terminal()
        else LineProgress(sys.stdout)
    )
    guard = current_guard()

    async def run(cancel: CancelToken | None) -> ApplyReport:
        async with target.client(parallelism=parallelism) as client:
            executor = Executor(
                client,
                options=options,
                progress=sink,
                failpoints=FailPoints(os.environ.get(FAILPOINT_ENV)),
                cancel=cancel,
                readiness=run_readiness_command if options.run_readiness else None,
            )
            return await executor.apply(
                plan, fleets={f.name: f for f in fleets}, recorders=recorders
            )

    with sink, guard.cancellable() if guard else nullcontext() as token:
        report = signals.run(run(token))
    pending = _pending_creates(recorders, intent_grace)
    render_apply_summary(report, sys.stdout, pending=pending, verb=verb)
    if report.cancelled:
        signum = guard.first if guard and guard.first else signal.SIGINT
        raise RunCancelled(
            f"Cancelled ({report.cancelled}): {len(report.succeeded)} action(s) finished, "
            f"{len(report.not_started)} not started, {len(pending)} create(s) pending (see "
            "above). The state holds everything learned; locks released. Run apply again to "
            "finish.",
            exit_code=exit_code_for(signum),
        )
    if report.failed or report.blocked:
        raise ApplyError(
            f"{len(report.failed)} action(s) failed and {len(report.blocked)} address(es) were "
            "left alone; see above. Run apply again once the cause is fixed."
        )
    return report


def _pending_creates(
    recorders: dict[str, StateRecorder], intent_grace: float
) -> tuple[PendingCreate, ...]:
    """Intents left in the states: creates whose outcome the next run resolves."""
    found = []
    for recorder in recorders.values():
        for intent in recorder.state.intents.values():
            recorded = datetime.fromisoformat(intent.created_at.replace("Z", "+00:00"))
            resolves = recorded + timedelta(seconds=intent_grace)
            found.append(
                PendingCreate(
                    address=intent.address,
                    intent_id=intent.intent_id,
                    resolves_at=resolves.isoformat(timespec="seconds").replace("+00:00", "Z"),
                )
            )
    return tuple(sorted(found, key=lambda p: p.address))


def _plan_and_apply(
    app: AppContext,
    fleets: list[Fleet],
    run: PlanRun,
    *,
    executor_opts: ExecutorOptions,
    auto_approve: bool,
    question: str,
) -> None:
    color = color_enabled(app)
    with planned(fleets, run) as session:
        plan = session.plan
        render_plan_human(plan, sys.stdout, color=color)
        fail_without_capacity(plan)
        refuse_data_loss(plan, allowed=run.options.allow_data_loss)
        refuse_readiness_commands(
            plan, fleets, allowed=executor_opts.run_readiness, wait=executor_opts.wait
        )
        if not any(f.has_work for f in plan.fleets):
            if any(f.blocked for f in plan.fleets):
                raise ApplyError("Some addresses are blocked; see above.")
            return
        if plan.has_changes:
            confirm_or_abort(question, auto_approve=auto_approve)
        _execute(
            session.target,
            plan,
            fleets,
            session.stores,
            session.states,
            parallelism=run.parallelism,
            options=executor_opts,
            color=color,
            intent_grace=run.intent_grace,
            verb="Destroy" if run.options.destroy else "Apply",
        )


def _executor_options(
    parallelism: int,
    no_wait: bool,
    wait_timeout: float | None,
    fail_fast: bool,
    allow_readiness_commands: bool = False,
) -> ExecutorOptions:
    return ExecutorOptions(
        parallelism=parallelism,
        wait=not no_wait,
        wait_timeout=wait_timeout,
        fail_fast=fail_fast,
        run_readiness=allow_readiness_commands,
    )


def refuse_readiness_commands(
    plan: Plan, fleets: list[Fleet], *, allowed: bool, wait: bool = True
) -> None:
    """A manifest's readiness command runs on this machine, and manifests may come from a
    pull request: it runs only with a person's word (exit 8 otherwise), before anything
    changes. Only changes that wait for a new replica to serve run it."""
    if allowed:
        return
    specs = {s.address: s for f in fleets for s in f.instances}
    waiting: dict[tuple[str, str], list[str]] = {}
    for fleet_plan in plan.fleets:
        for change in fleet_plan.changes:
            spec = specs.get(change.address)
            if spec is None or spec.readiness is None:
                continue
            if waits_until_serving(change, wait=wait):
                source = spec.source.file if spec.source else "its manifest"
                waiting.setdefault((" ".join(spec.readiness.command), source), []).append(
                    change.address
                )
    if not waiting:
        return
    listed = "; ".join(
        f"`{command}` from {source} (for {', '.join(addresses)})"
        for (command, source), addresses in sorted(waiting.items())
    )
    raise PolicyError(
        f"This plan waits for new replicas to pass their readiness command: {listed}. A "
        "manifest's command runs on this machine, so it runs only when you say so. Nothing "
        "was changed. Review the command, then run again with --allow-readiness-commands."
    )


@cli.command()
@click.argument("paths", nargs=-1, type=click.Path(path_type=Path))
@plan_options
@click.option(
    "--replace",
    "replace",
    multiple=True,
    metavar="ADDRESS",
    help="Replace this address even if nothing changed. Repeatable.",
)
@click.option(
    "--refresh-only",
    is_flag=True,
    help="Record in the state what exists now (after showing the drift and asking).",
)
@executor_options
@pass_app
def apply(
    app: AppContext,
    paths: tuple[Path, ...],
    refresh_only: bool,
    replace: tuple[str, ...],
    targets: tuple[str, ...],
    excludes: tuple[str, ...],
    allow_over_budget: bool,
    allow_data_loss: bool,
    intent_grace: float,
    sandbox: bool,
    parallelism: int,
    state_dir: Path,
    lock_timeout: float,
    auto_approve: bool,
    fail_fast: bool,
    wait_timeout: float | None,
    no_wait: bool,
    allow_readiness_commands: bool,
    vars: tuple[str, ...],  # noqa: A002 - named after --var
    var_files: tuple[Path, ...],
) -> None:
    """Make Shadeform match the manifests (PATHS), or apply a saved plan file exactly."""
    opts = _executor_options(
        parallelism, no_wait, wait_timeout, fail_fast, allow_readiness_commands
    )
    if refresh_only:
        given = [
            name
            for name, value in (
                ("--target", targets),
                ("--exclude", excludes),
                ("--replace", replace),
                ("--allow-over-budget", allow_over_budget),
                ("--allow-data-loss", allow_data_loss),
                ("a saved plan file", _looks_like_plan_file(paths)),
            )
            if value
        ]
        if given:
            raise UsageError(
                f"--refresh-only records what exists now; it does not go with {given[0]}."
            )
        chosen = paths or tuple(Path(p) for p in DEFAULT_PATHS)
        fleets = load_from_cli(chosen, vars=vars, var_files=var_files, state_dir=state_dir)
        with refreshed(
            fleets,
            sandbox=sandbox,
            state_dir=state_dir,
            lock_timeout=lock_timeout,
            parallelism=parallelism,
            intent_grace=intent_grace,
        ) as done:
            apply_refresh_only(done, auto_approve=auto_approve)
        return
    if _looks_like_plan_file(paths):
        _apply_saved(
            app,
            paths[0],
            sandbox=sandbox,
            state_dir=state_dir,
            lock_timeout=lock_timeout,
            parallelism=parallelism,
            options=opts,
            allow_data_loss=allow_data_loss,
            vars=vars,
            var_files=var_files,
        )
        return
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
            allow_over_budget=allow_over_budget,
            allow_data_loss=allow_data_loss,
        ),
        wait_for_pending=True,
    )
    _plan_and_apply(
        app,
        fleets,
        run,
        executor_opts=opts,
        auto_approve=auto_approve,
        question="Apply these changes?",
    )


def _apply_saved(
    app: AppContext,
    plan_file: Path,
    *,
    sandbox: bool,
    state_dir: Path,
    lock_timeout: float,
    parallelism: int,
    options: ExecutorOptions,
    allow_data_loss: bool,
    vars: tuple[str, ...],  # noqa: A002 - named after --var
    var_files: tuple[Path, ...],
) -> None:
    plan = read_plan_file(plan_file)
    refuse_data_loss(plan, allowed=allow_data_loss)
    if sandbox and not plan.sandbox:
        raise UsageError(f"{plan_file} was made against the real Shadeform API, not the sandbox.")
    if not plan.paths:
        raise UsageError(f"{plan_file} does not record the manifests it was made from.")
    # Only fleets the plan changes are checked for staleness and locked: applying one fleet must
    # not make every open pull request's plan for the other fleets stale.
    plan = plan.model_copy(update={"fleets": tuple(f for f in plan.fleets if f.has_work)})
    if not plan.fleets:
        click.echo(f"{plan_file} changes nothing; there is nothing to apply.")
        return
    fleets = load_from_cli(
        tuple(Path(p) for p in plan.paths), vars=vars, var_files=var_files, state_dir=state_dir
    )
    names = {f.fleet for f in plan.fleets}
    fleets = [f for f in fleets if f.name in names]
    stores = FleetStores.for_fleets(fleets, state_dir)
    with (
        api_target(sandbox=plan.sandbox, state_dir=state_dir) as target,
        locked_states(
            stores, sorted(names), timeout=lock_timeout, command=command_line()
        ) as states,
    ):
        check_plan_fresh(plan, {f.name: f for f in fleets}, states)
        _execute(
            target,
            plan,
            fleets,
            stores,
            states,
            parallelism=parallelism,
            options=options,
            color=color_enabled(app),
        )


@cli.command()
@click.argument("paths", nargs=-1, type=click.Path(path_type=Path))
@plan_options
@executor_options
@pass_app
def destroy(
    app: AppContext,
    paths: tuple[Path, ...],
    targets: tuple[str, ...],
    excludes: tuple[str, ...],
    allow_over_budget: bool,
    allow_data_loss: bool,
    intent_grace: float,
    sandbox: bool,
    parallelism: int,
    state_dir: Path,
    lock_timeout: float,
    auto_approve: bool,
    fail_fast: bool,
    wait_timeout: float | None,
    no_wait: bool,
    allow_readiness_commands: bool,
    vars: tuple[str, ...],  # noqa: A002 - named after --var
    var_files: tuple[Path, ...],
) -> None:
    """Delete everything the fleets own (honouring lifecycle.prevent_destroy); volumes, and
    their data, are kept unless --allow-data-loss is given."""
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
            destroy=True,
            allow_over_budget=allow_over_budget,
            allow_data_loss=allow_data_loss,
        ),
        wait_for_pending=True,
    )
    _plan_and_apply(
        app,
        fleets,
        run,
        executor_opts=_executor_options(parallelism, no_wait, wait_timeout, fail_fast),
        auto_approve=auto_approve,
        question="Destroy these resources? There is no undo.",
    )


@cli.command(name="import")
@click.argument("address")
@click.argument("resource_id", metavar="ID")
@click.argument("paths", nargs=-1, type=click.Path(path_type=Path))
@manifest_options
@connection_options
def import_(
    address: str,
    resource_id: str,
    paths: tuple[Path, ...],
    sandbox: bool,
    parallelism: int,
    state_dir: Path,
    lock_timeout: float,
    vars: tuple[str, ...],  # noqa: A002 - named after --var
    var_files: tuple[Path, ...],
) -> None:
    """Adopt an existing resource ID as ADDRESS: an instance (fleet/name, which gets the
    fleet's ownership tags), a volume (fleet/volume.name) or an SSH key (fleet/ssh_key.name)."""
    chosen = paths or tuple(Path(p) for p in DEFAULT_PATHS)
    fleets = load_from_cli(chosen, vars=vars, var_files=var_files, state_dir=state_dir)
    kind = kind_of_address(address)
    declared = {s.address: (f, s) for f in fleets for s in kind.specs(f)}
    if address not in declared:
        raise UsageError(
            f"{address} is not declared in the manifests under {', '.join(map(str, chosen))}; "
            "declare it first so the reconciler knows what it should look like."
        )
    fleet, spec = declared[address]
    stores = FleetStores.for_fleets([fleet], state_dir)
    with (
        api_target(sandbox=sandbox, state_dir=state_dir) as target,
        locked_states(stores, [fleet.name], timeout=lock_timeout, command=command_line()) as states,
    ):
        state = states[fleet.name]
        instance = state.instances.get(address)
        resource = state.resources.get(address)
        if instance is not None or resource is not None:
            current = instance.instance_id if instance else resource.resource_id  # type: ignore[union-attr]
            raise UsageError(
                f"{address} is already in the state ({current}); `reconciler state rm` it first."
            )
        owner = next(
            (r.address for r in state.resources.values() if r.resource_id == resource_id), None
        ) or next(
            (r.address for r in state.instances.values() if r.instance_id == resource_id), None
        )
        if owner is not None:
            raise UsageError(f"{resource_id} is already recorded as {owner} in this fleet.")

        async def run() -> tuple[FleetState, str]:
            async with target.client(parallelism=parallelism) as client:
                if isinstance(spec, InstanceSpec):
                    return await _import_instance(client, stores, state, fleet, spec, resource_id)
                assert isinstance(kind, AnchoredKind)
                return await _import_resource(client, stores, state, kind, spec, resource_id)

        stored, note = signals.run(run())
    click.echo(
        f"Imported {resource_id} as {address} (state serial {stored.serial}). {note}"
        "Run `reconciler plan` to see how it differs from the manifest."
    )


async def _import_instance(
    client: Any,
    stores: FleetStores,
    state: FleetState,
    fleet: Fleet,
    spec: InstanceSpec,
    instance_id: str,
) -> tuple[FleetState, str]:
    address = spec.address
    try:
        current = await client.get_instance(instance_id)
    except NotFoundError as exc:
        raise UsageError(f"Instance {instance_id} does not exist in Shadeform.") from exc
    other = [t for t in current.tags if t.startswith(FLEET_TAG) and t != f"{FLEET_TAG}{fleet.name}"]
    if other:
        raise UsageError(f"Instance {instance_id} belongs to another fleet ({other[0]}).")
    kept = [t for t in current.tags if not t.startswith(OWNERSHIP_PREFIX)]
    await client.update_instance(
        instance_id, UpdateRequest(tags=(*kept, *ownership_tags(fleet.name, address)))
    )
    now = _iso()
    record = InstanceRecord(
        address=address,
        instance_id=instance_id,
        applied_spec=with_placement_of(
            comparable_spec(spec, state.fingerprint_key),
            current.model_dump(include={"cloud", "region", "shade_instance_type"}),
        ),
        live=to_live_instance(current).model_dump(mode="json"),
        created_at=now,
        updated_at=now,
    )
    instances = dict(state.instances)
    instances[address] = record
    stored = stores.stores[fleet.name].write(state.model_copy(update={"instances": instances}))
    return stored, ""


async def _import_resource(
    client: Any,
    stores: FleetStores,
    state: FleetState,
    kind: AnchoredKind,
    spec: Any,
    resource_id: str,
) -> tuple[FleetState, str]:
    """Volumes and keys carry no tags: the state's record is what makes one the fleet's.
    The record holds what exists, so the plan shows any difference from the manifest."""
    current = await kind.get_live(client, resource_id)
    if current is None:
        raise UsageError(f"There is no {kind.noun} {resource_id} in Shadeform.")
    now = _iso()
    applied = {**kind.comparable(spec, state.fingerprint_key)}
    applied.update({k: v for k, v in current.observed.items() if k in applied})
    record = ResourceRecord(
        address=spec.address,
        kind=kind.name,
        resource_id=resource_id,
        applied_spec=applied,
        live=current.model_dump(mode="json"),
        created_at=now,
        updated_at=now,
    )
    resources = dict(state.resources)
    resources[spec.address] = record
    stored = stores.stores[spec.fleet].write(state.model_copy(update={"resources": resources}))
    differs = sorted(
        k for k, v in kind.comparable(spec, state.fingerprint_key).items() if applied.get(k) != v
    )
    note = (
        f"It differs from the manifest in {', '.join(differs)}: a {kind.noun} has no update, "
        "so the next plan replaces it unless the manifest is changed to match. "
        if differs
        else ""
    )
    return stored, note
