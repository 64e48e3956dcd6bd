"""Check a `reconciler ...` invocation against the real click command tree."""

from __future__ import annotations

import click

from tests.examples.snippets import Invocation

# Commands and options that other work is still adding, as ("group", "command") tuples and
# option names. While one is missing from the command tree, invocations of it are accepted
# unchecked; once it exists it is checked like any other. Empty now: cost, backend, state
# history/migrate, --backend, --serial and --to have all landed.
PENDING_COMMANDS: frozenset[tuple[str, ...]] = frozenset()
PENDING_OPTIONS: frozenset[str] = frozenset()

_PLACEHOLDER_TOKENS = ("[", "<", "{", "…")


def command_tree() -> click.Group:
    from reconciler.cli.app import _register_commands, cli

    _register_commands()
    return cli


def problems(invocation: Invocation, root: click.Group) -> list[str]:
    """What is wrong with ``invocation``: unknown commands or options, unparsable values."""
    args = list(invocation.args)
    command: click.Command = root
    path: list[str] = []
    while True:
        args = _skip_options(command, args)
        if not isinstance(command, click.Group) or not args or args[0].startswith("-"):
            break
        name = args[0]
        if _is_placeholder(name):
            return []  # `reconciler COMMAND ...` in prose
        alternatives = name.split("/")  # `state list/show/rm/mv` in prose
        missing = [alt for alt in alternatives if alt not in command.commands]
        if missing:
            if tuple([*path, missing[0]]) in PENDING_COMMANDS:
                return []
            return [f"{invocation}: no command {' '.join([*path, missing[0]])!r}"]
        path.append(alternatives[0])
        command = command.commands[alternatives[0]]
        args = args[1:]
    return _option_problems(invocation, command, path, args)


def _option_problems(
    invocation: Invocation, command: click.Command, path: list[str], args: list[str]
) -> list[str]:
    found: list[str] = []
    options = {
        opt: param
        for param in command.params
        if isinstance(param, click.Option)
        for opt in [*param.opts, *param.secondary_opts]
    }
    help_names = {"--help", "-h"}
    index = 0
    while index < len(args):
        token = args[index]
        index += 1
        if token == "--":
            break
        if not token.startswith("-") or token == "-":
            continue
        name, equals, inline_value = token.partition("=")
        option = options.get(name)
        if option is None:
            if name not in PENDING_OPTIONS and name not in help_names:
                found.append(f"{invocation}: `reconciler {' '.join(path)}` has no option {name}")
            continue
        if option.is_flag or option.count:
            continue
        value = inline_value if equals else (args[index] if index < len(args) else None)
        if not equals:
            index += 1
        if value is None:
            found.append(f"{invocation}: {name} needs a value")
        elif _is_literal(value):
            try:
                option.type.convert(value, option, None)
            except click.BadParameter as exc:
                found.append(f"{invocation}: {name} {value!r}: {exc.message}")
    return found


def _skip_options(command: click.Command, args: list[str]) -> list[str]:
    """Leading options of a group (e.g. `reconciler --no-color plan`)."""
    if not isinstance(command, click.Group):
        return args
    known = {opt for param in command.params for opt in param.opts}
    while args and args[0] in known:
        args = args[1:]
    return args


def _is_literal(value: str) -> bool:
    return "$" not in value and not _is_placeholder(value)


def _is_placeholder(token: str) -> bool:
    return token.isupper() or token.startswith(_PLACEHOLDER_TOKENS) or set(token) == {"."}
