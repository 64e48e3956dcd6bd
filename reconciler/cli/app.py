"""The click group, its context object and the CLI's single error boundary."""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass, field
from typing import Any

import click

from reconciler import __version__
from reconciler.cli.signals import Interrupted, current_guard, guarded
from reconciler.errors import ReconcilerError, RunCancelled
from reconciler.redaction import SECRETS, ScrubbingFilter, ScrubbingStream, scrub

# Environment values that are secrets whether or not a manifest uses them.
SECRET_ENVIRONMENT = ("SHADEFORM_API_KEY", "PGPASSWORD")


@dataclass
class AppContext:
    """Typed object passed to every command through ``click.Context.obj``."""

    no_color: bool = False
    detailed_exitcode: bool = False
    extra: dict[str, Any] = field(default_factory=dict)


pass_app = click.make_pass_decorator(AppContext, ensure=True)


# Which module defines each command: a command's module (and what it imports: httpx, rich,
# the emulator, psycopg...) is loaded only when that command runs, so `reconciler --version`
# and `reconciler validate` start fast. tests/cli/test_startup.py keeps this map complete.
COMMAND_MODULES: dict[str, str] = {
    "apply": "apply",
    "backend": "backend",
    "cost": "cost",
    "destroy": "apply",
    "emulator": "emulator",
    "force-unlock": "state",
    "import": "apply",
    "output": "output",
    "plan": "plan",
    "refresh": "refresh",
    "schema": "validate",
    "show": "plan",
    "ssh": "output",
    "state": "state",
    "validate": "validate",
    "watch": "watch",
}


class ReconcilerGroup(click.Group):
    """Maps our exceptions to exit codes; no Python traceback ever reaches the user.

    Commands are loaded lazily (:data:`COMMAND_MODULES`)."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(set(COMMAND_MODULES) | set(self.commands))

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in self.commands and cmd_name in COMMAND_MODULES:
            import importlib

            importlib.import_module(f"reconciler.cli.{COMMAND_MODULES[cmd_name]}")
        return self.commands.get(cmd_name)

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        ctx.meta["raw_args"] = list(args)
        return super().parse_args(ctx, _global_flags_first(args))

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except RunCancelled as exc:
            click.echo(str(exc), err=True)
            ctx.exit(exc.exit_code)
        except ReconcilerError as exc:
            app = ctx.find_object(AppContext)
            click.echo(f"Error: {exc}", err=True)
            detailed = bool(app and app.detailed_exitcode)
            ctx.exit(1 if detailed else exc.exit_code)
        except Interrupted as exc:
            guard = current_guard()
            if exc.forced and guard is not None and guard.applying_started:
                click.echo(
                    f"Stopped at once by a second signal ({exc}): actions in flight were "
                    "abandoned. The state holds everything recorded so far, and the next run "
                    "finds the rest by its tags. Locks released.",
                    err=True,
                )
            else:
                click.echo(f"Cancelled: nothing was changed ({exc}; locks released).", err=True)
            ctx.exit(exc.exit_code)
        except click.exceptions.UsageError as exc:
            # click's own usage errors exit 2, which -detailed-exitcode reserves for "changes";
            # under --detailed-exitcode every error is 1, as in Terraform.
            exc.show()
            detailed = "--detailed-exitcode" in ctx.meta.get("raw_args", ())
            ctx.exit(1 if detailed else 64)
        except KeyboardInterrupt:
            click.echo("Interrupted.", err=True)
            ctx.exit(130)


GLOBAL_FLAGS = ("--no-color",)


def _global_flags_first(args: list[str]) -> list[str]:
    """``reconciler plan --no-color`` works as ``reconciler --no-color plan``: the group's
    flags may be written anywhere before a ``--``."""
    end = args.index("--") if "--" in args else len(args)
    moved = [a for a in args[:end] if a in GLOBAL_FLAGS]
    kept = [a for a in args[:end] if a not in GLOBAL_FLAGS]
    return [*moved, *kept, *args[end:]]


@click.group(cls=ReconcilerGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--no-color", is_flag=True, help="Disable colour (also: NO_COLOR env var).")
@click.version_option(version=__version__, prog_name="reconciler")
@click.pass_context
def cli(ctx: click.Context, no_color: bool) -> None:
    """Declarative reconciler for GPU fleets on Shadeform."""
    ctx.obj = AppContext(no_color=no_color or bool(os.environ.get("NO_COLOR")))
    guard_output(ctx)
    ctx.with_resource(guarded())  # SIGTERM/SIGINT: clean cancels (reconciler.cli.signals)


def register_backend_secrets(url: str | None) -> None:
    """Remember the password(s) of a backend URL (any spelling) as secrets of this run."""
    if not url:
        return
    from reconciler.state import PostgresBackend, parse_backend_url

    try:
        backend = parse_backend_url(url)
    except ReconcilerError:
        return  # reported where it is used; its message is redacted
    if isinstance(backend, PostgresBackend):
        SECRETS.add_all(backend.secrets)


def guard_output(ctx: click.Context) -> None:
    """Scrub every secret this run knows from everything it prints or logs, at one place
    (:mod:`reconciler.redaction`): standard output and error are wrapped for the command's
    lifetime, and log records are filtered."""
    SECRETS.add_all(os.environ.get(name) for name in SECRET_ENVIRONMENT)
    register_backend_secrets(os.environ.get("RECONCILER_BACKEND"))
    if isinstance(sys.stdout, ScrubbingStream):
        return
    original = sys.stdout, sys.stderr
    sys.stdout = ScrubbingStream(original[0])
    sys.stderr = ScrubbingStream(original[1])
    # Log records reach the console through the wrapped stderr (logging's last-resort handler
    # writes to sys.stderr when it emits); handlers someone configured get the filter too.
    # logging is imported only when something already uses it (start-up stays light).
    logging = sys.modules.get("logging")
    log_filter = ScrubbingFilter()
    root = logging.getLogger() if logging is not None else None
    if root is not None:
        root.addFilter(log_filter)
        for handler in root.handlers:
            handler.addFilter(log_filter)

    def restore() -> None:
        for stream in (sys.stdout, sys.stderr):
            if isinstance(stream, ScrubbingStream):
                stream.flush()
        sys.stdout, sys.stderr = original
        if root is not None:
            root.removeFilter(log_filter)
            for handler in root.handlers:
                handler.removeFilter(log_filter)

    ctx.call_on_close(restore)


def _register_commands() -> None:
    """Load every command module now (tests, docs checks); the CLI loads them on demand."""
    from reconciler.cli import commands  # noqa: F401


def main(argv: list[str] | None = None) -> None:
    # pydantic plugins would see every validated value, the secrets in manifests included, and
    # discovering them scans every installed package at start-up: the CLI runs without them
    # (set PYDANTIC_DISABLE_PLUGINS yourself to choose otherwise).
    os.environ.setdefault("PYDANTIC_DISABLE_PLUGINS", "__all__")
    with guarded():  # first: a cancel during start-up is clean too
        _main(argv)


def _main(argv: list[str] | None) -> None:
    try:
        cli.main(args=argv, prog_name="reconciler", standalone_mode=True)
    except SystemExit:
        raise
    except Interrupted as exc:  # before a command ran (loading the commands)
        click.echo(f"Cancelled ({exc}): nothing was changed.", err=True)
        sys.exit(exc.exit_code)
    except Exception as exc:  # last resort: never a traceback, never a secret
        click.echo(scrub(f"Internal error: {type(exc).__name__}: {exc}"), err=True)
        sys.exit(70)
