"""``${...}`` interpolation in manifest string values.

Forms (anywhere inside a string value; mapping keys are never interpolated):

- ``${var.NAME}``: a variable. Precedence, lowest first: the manifest's ``variables``,
  ``--var-file`` files in the order given, ``--var NAME=VALUE``.
- ``${env:NAME}``: an environment variable; unset is an error.
- ``${env:NAME:-DEFAULT}``: the default when the variable is unset *or empty* (as in sh).
- ``$${`` writes a literal ``${``.

A variable's value may itself use ``${var.OTHER}`` (and ``${env:...}``): variables are
resolved first, recursively, so no ``${`` from a variable ever reaches a field. A variable
that refers to itself, directly or through others, is refused with the cycle named. A value
that came (even indirectly, through a variable) from ``${env:...}`` is tainted: it may only
land in a secret field.

Expansion is bounded: a resolved variable holds at most ``MAX_VARIABLE_CHARS`` characters,
one document's interpolated strings at most ``MAX_EXPANDED_CHARS`` in all, and variables nest at
most ``MAX_VARIABLE_DEPTH`` deep, and interpolating one document may take at most
``MAX_INTERPOLATION_SECONDS``, so a small manifest cannot make the reconciler build a huge plan
or spend its memory and time.

A string that used ``${env:...}`` inside ``envs[].value`` (instance or container),
``registry_credentials.*`` or the top-level ``backend`` becomes a :class:`~pydantic.SecretStr`,
defaults included: later stages keep it out of plans, state and logs. ``${env:...}`` anywhere
else is refused: CI keeps its secrets in the environment, and any other field is printed in
plans and pull-request comments (use ``--var`` for ordinary values). (The manifest models
make ``backend`` and registry passwords secret even without ``${env:...}``; problems in those
values are reported without quoting them.) Results are always text; the manifest
models turn ``"8080"`` into an integer and ``"true"`` into a boolean where a field wants one.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from difflib import get_close_matches
from typing import Any

from pydantic import SecretStr

from reconciler.errors import ManifestIssue
from reconciler.manifest.source import Document, FieldPath

_TOKEN = re.compile(r"\$\$\{|\$\{([^{}]*)\}|\$\{")
MAX_VARIABLE_CHARS = 1024 * 1024
MAX_EXPANDED_CHARS = 16 * 1024 * 1024
MAX_VARIABLE_DEPTH = 32
MAX_INTERPOLATION_SECONDS = 20.0
_VAR = re.compile(r"^\s*var\.([A-Za-z_][A-Za-z0-9_-]*)\s*$")
_ENV = re.compile(r"^\s*env:([A-Za-z_][A-Za-z0-9_]*)(:-(.*))?$", re.DOTALL)


def variable_text(value: Any) -> str | None:
    """The text a variable value interpolates as (YAML spelling for booleans), or None."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str | int | float):
        return str(value)
    return None


def is_secret_path(path: FieldPath) -> bool:
    """Whether an env-derived value at ``path`` must be kept secret."""
    in_envs = len(path) >= 3 and path[-1] == "value" and path[-3] == "envs"
    in_registry = len(path) >= 2 and path[-2] == "registry_credentials"
    return in_envs or in_registry or is_always_secret_path(path)


def is_always_secret_path(path: FieldPath) -> bool:
    """Whether the value at ``path`` is a secret however it was written (never quote it)."""
    is_password = len(path) >= 2 and path[-2:] == ("registry_credentials", "password")
    return path == ("backend",) or is_password


@dataclass(frozen=True)
class _Resolved:
    """A variable after resolution: its text, whether it used the environment, or why not."""

    text: str = ""
    from_env: bool = False
    problem: str | None = None


class _Budget:
    """Characters and time one document's interpolation may still spend."""

    def __init__(self, limit: int, deadline: float, clock: Callable[[], float]) -> None:
        self.left = limit
        self.deadline = deadline
        self.clock = clock
        self.exceeded = False
        self.too_slow = False
        self.reported = False  # a field already carries the problem
        self._strings = 0

    def spend(self, count: int) -> bool:
        self.left -= count
        self._strings += 1
        if self.left < 0:
            self.exceeded = True
        elif self._strings % 256 == 0 and self.clock() > self.deadline:
            self.exceeded = self.too_slow = True
        return not self.exceeded


class Interpolator:
    """Substitutes variables and environment values into one document's data."""

    def __init__(
        self,
        variables: Mapping[str, str],
        environ: Mapping[str, str],
        *,
        max_expanded_chars: int = MAX_EXPANDED_CHARS,
        max_seconds: float = MAX_INTERPOLATION_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.variables = variables
        self.environ = environ
        self.max_expanded_chars = max_expanded_chars
        self.max_seconds = max_seconds
        self.clock = clock
        self._resolved: dict[str, _Resolved] = {}

    def interpolate(
        self, document: Document, *, skip_keys: frozenset[str] = frozenset()
    ) -> tuple[Any, list[ManifestIssue]]:
        """The document's data with every string interpolated, and the problems found.

        Top-level keys in ``skip_keys`` (``variables``) are left untouched.
        """
        issues: list[ManifestIssue] = []
        data = document.data
        if not isinstance(data, dict):
            return data, issues
        budget = _Budget(self.max_expanded_chars, self.clock() + self.max_seconds, self.clock)
        out = {
            key: value if key in skip_keys else self._walk(value, (key,), document, issues, budget)
            for key, value in data.items()
        }
        if budget.too_slow:
            issues.append(
                document.issue(
                    (),
                    f"interpolating this manifest took longer than {self.max_seconds:g}s and was "
                    "stopped; it has too many or too large ${...} values",
                )
            )
        elif budget.exceeded and not budget.reported:
            limit = self.max_expanded_chars // (1024 * 1024)
            issues.append(
                document.issue(
                    (),
                    f"interpolation expands this manifest beyond {limit} MiB of text (variables "
                    "used many times, or very large ones); use script_file for large scripts",
                )
            )
        return out, issues

    def _walk(
        self,
        value: Any,
        path: FieldPath,
        document: Document,
        issues: list[ManifestIssue],
        budget: _Budget,
    ) -> Any:
        if budget.exceeded:
            return value
        if isinstance(value, str):
            if "$" not in value:
                return value
            result = self._string(value, path, document, issues, budget)
            text = result.get_secret_value() if isinstance(result, SecretStr) else result
            budget.spend(len(text))
            return result
        if isinstance(value, dict):
            return {
                k: self._walk(v, (*path, k), document, issues, budget) for k, v in value.items()
            }
        if isinstance(value, list):
            return [
                self._walk(v, (*path, i), document, issues, budget) for i, v in enumerate(value)
            ]
        return value

    def _string(
        self,
        text: str,
        path: FieldPath,
        document: Document,
        issues: list[ManifestIssue],
        budget: _Budget,
    ) -> str | SecretStr:
        result, used_env, problems = self._expand(
            text, quote=not is_always_secret_path(path), limit=max(0, budget.left)
        )
        for problem in problems:
            issues.append(document.issue(path, problem))
        if any(_TOO_LONG in problem for problem in problems):
            budget.exceeded = budget.reported = True  # stop here: one problem says it all
        if problems:
            return text
        if used_env and is_secret_path(path):
            return SecretStr(result)
        if used_env:
            # Anywhere else the value would be printed in plans and pull-request comments, so an
            # environment (where CI keeps its secrets) is only read into secret fields.
            issues.append(
                document.issue(
                    path,
                    "${env:...} is only allowed in values that are kept secret (envs[].value, "
                    "registry_credentials, backend); here it would be printed in plans and "
                    "pull-request comments (also when it comes through a variable). Pass "
                    "ordinary values with --var NAME=VALUE or --var-file instead",
                )
            )
            return text  # unexpanded: the value never enters the loaded manifest
        return result

    def _expand(
        self, text: str, *, quote: bool, chain: tuple[str, ...] = (), limit: int
    ) -> tuple[str, bool, list[str]]:
        """(text with every ``${...}`` replaced, used the environment, problems).

        Stops as soon as the text would grow past ``limit`` characters: the length is counted
        while the parts are gathered, so a variable used a thousand times is refused before
        a thousand copies are ever built."""
        used_env = False
        problems: list[str] = []
        parts: list[str] = []
        length = 0
        end = 0
        for match in _TOKEN.finditer(text):
            parts.append(text[end : match.start()])
            length += match.start() - end
            end = match.end()
            if length > limit:
                return "", used_env, [_too_long(limit)]
            token = match.group(0)
            if token == "$${":
                parts.append("${")
                continue
            expression = match.group(1)
            if expression is None:
                problems.append("unterminated '${' (write '$${' for a literal)")
                continue
            resolved = self._resolve(expression, quote=quote, chain=chain)
            if resolved.problem is not None:
                problems.append(resolved.problem)
                continue
            used_env = used_env or resolved.from_env
            parts.append(resolved.text)
            length += len(resolved.text)
        length += len(text) - end
        if length > limit:
            return "", used_env, [_too_long(limit)]
        parts.append(text[end:])
        return "".join(parts), used_env, problems

    def _variable(self, name: str, chain: tuple[str, ...]) -> _Resolved:
        """Variable ``name`` resolved through the variables it uses (memoised)."""
        cached = self._resolved.get(name)
        if cached is not None:
            return cached
        if name in chain:
            cycle = " -> ".join((*chain[chain.index(name) :], name))
            return _Resolved(problem=f"variables refer to each other in a cycle: {cycle}")
        if len(chain) >= MAX_VARIABLE_DEPTH:
            return _Resolved(
                problem=f"variables nest more than {MAX_VARIABLE_DEPTH} deep "
                f"({' -> '.join(chain[:3])} -> ...)"
            )
        raw = self.variables[name]
        text, from_env, problems = self._expand(
            raw, quote=True, chain=(*chain, name), limit=MAX_VARIABLE_CHARS
        )
        if problems:
            nested = problems[0].startswith(("variables ", "in variable ", "variable "))
            problem = problems[0] if nested else f"in variable '{name}': {problems[0]}"
            resolved = _Resolved(problem=problem)
        else:
            resolved = _Resolved(text=text, from_env=from_env)
        if not chain or resolved.problem is None or "cycle" not in resolved.problem:
            self._resolved[name] = resolved
        return resolved

    def _resolve(
        self, expression: str, *, quote: bool = True, chain: tuple[str, ...] = ()
    ) -> _Resolved:
        """One ``${...}`` expression; ``quote=False`` keeps a malformed expression out of the
        problem text (it may be part of a password)."""
        var = _VAR.match(expression)
        if var:
            name = var.group(1)
            if name in self.variables:
                return self._variable(name, chain)
            close = get_close_matches(name, sorted(self.variables), n=1)
            hint = (
                f"; did you mean '{close[0]}'?"
                if close
                else " (declare it under 'variables' or pass --var)"
            )
            return _Resolved(problem=f"unknown variable '{name}'{hint}")
        env = _ENV.match(expression)
        if env:
            name, has_default, default = env.group(1), env.group(2), env.group(3)
            value = self.environ.get(name)
            if value:
                return _Resolved(text=value, from_env=True)
            if has_default is not None:
                return _Resolved(text=default, from_env=True)
            if value is not None:
                return _Resolved(text=value, from_env=True)  # set but empty: empty is a value
            return _Resolved(
                from_env=True,
                problem=(
                    f"environment variable {name} is not set"
                    f" (give a default with ${{env:{name}:-default}})"
                ),
            )
        shown = expression if len(expression) <= 40 else expression[:37] + "..."
        what = f"'${{{shown}}}'" if quote else "a '${...}' in this secret value"
        return _Resolved(
            problem=f"cannot interpolate {what}: use ${{var.NAME}} or ${{env:NAME}}"
            " (write '$${' for a literal '${', e.g. in shell scripts)"
        )


_TOO_LONG = "expands to more than"


def _too_long(limit: int) -> str:
    return (
        f"this {_TOO_LONG} {limit:,} characters (a variable used many times, or a very "
        "large one); use script_file for large scripts"
    )
