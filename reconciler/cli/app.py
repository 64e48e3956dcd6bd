"""The click group, its context object and the CLI's single error boundary."""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass, field
from typing import Any

import click

from reconciler.errors import ReconcilerError


@dataclass
class AppContext:
    """Typed object passed to every command through ``click.Context.obj``."""

    no_color: bool = False
    detailed_exitcode: bool = False
    extra: dict[str, Any] = field(default_factory=dict)


pass_app = click.make_pass_decorator(AppContext, ensure=True)


class ReconcilerGroup(click.Group):
    """Maps our exceptions to exit codes; no Python traceback ever reaches the user."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        ctx.meta["raw_args"] = list(args)
        return super().parse_args(ctx, args)

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except ReconcilerError as exc:
            app = ctx.find_object(AppContext)
            click.echo(f"Error: {exc}", err=True)
            detailed = bool(app and app.detailed_exitcode)
            ctx.exit(1 if detailed else exc.exit_code)
        except click.exceptions.UsageError as exc:
            # click's own usage errors exit 2, which -detailed-exitcode reserves for "changes";
            # under --detailed-exitcode every error is 1, as in Terraform.
            exc.show()
            detailed = "--detailed-exitcode" in ctx.meta.get("raw_args", ())
            ctx.exit(1 if detailed else 64)
        except KeyboardInterrupt:
            click.echo("Interrupted.", err=True)
            ctx.exit(130)


@click.group(cls=ReconcilerGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--no-color", is_flag=True, help="Disable colour (also: NO_COLOR env var).")
@click.version_option(package_name="shadeform-reconciler", prog_name="reconciler")
@click.pass_context
def cli(ctx: click.Context, no_color: bool) -> None:
    """Declarative reconciler for GPU fleets on Shadeform."""
    ctx.obj = AppContext(no_color=no_color or bool(os.environ.get("NO_COLOR")))


def _register_commands() -> None:
    # Imported here so each command module can import ``cli``/``pass_app`` from this module.
    from reconciler.cli import commands  # noqa: F401


def main(argv: list[str] | None = None) -> None:
    _register_commands()
    try:
        cli.main(args=argv, prog_name="reconciler", standalone_mode=True)
    except SystemExit:
        raise
    except Exception as exc:  # last resort: never a traceback
        click.echo(f"Internal error: {type(exc).__name__}: {exc}", err=True)
        sys.exit(70)
