"""``${...}`` interpolation in manifest string values.

Forms (anywhere inside a string value; mapping keys are never interpolated):

- ``${var.NAME}``: a variable. Precedence, lowest first: the manifest's ``variables``,
  ``--var-file`` files in the order given, ``--var NAME=VALUE``.
- ``${env:NAME}``: an environment variable; unset is an error.
- ``${env:NAME:-DEFAULT}``: the default when the variable is unset *or empty* (as in sh).
- ``$${`` writes a literal ``${``.

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
from collections.abc import Mapping
from dataclasses import dataclass
from difflib import get_close_matches
from typing import Any

from pydantic import SecretStr

from reconciler.errors import ManifestIssue
from reconciler.manifest.source import Document, FieldPath

_TOKEN = re.compile(r"\$\$\{|\$\{([^{}]*)\}|\$\{")
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
class Interpolator:
    """Substitutes variables and environment values into one document's data."""

    variables: Mapping[str, str]
    environ: Mapping[str, str]

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
        out = {
            key: value if key in skip_keys else self._walk(value, (key,), document, issues)
            for key, value in data.items()
        }
        return out, issues

    def _walk(
        self, value: Any, path: FieldPath, document: Document, issues: list[ManifestIssue]
    ) -> Any:
        if isinstance(value, str):
            return self._string(value, path, document, issues) if "$" in value else value
        if isinstance(value, dict):
            return {k: self._walk(v, (*path, k), document, issues) for k, v in value.items()}
        if isinstance(value, list):
            return [self._walk(v, (*path, i), document, issues) for i, v in enumerate(value)]
        return value

    def _string(
        self, text: str, path: FieldPath, document: Document, issues: list[ManifestIssue]
    ) -> str | SecretStr:
        used_env = False
        parts: list[str] = []
        end = 0
        for match in _TOKEN.finditer(text):
            parts.append(text[end : match.start()])
            end = match.end()
            token = match.group(0)
            if token == "$${":
                parts.append("${")
                continue
            expression = match.group(1)
            if expression is None:
                issues.append(document.issue(path, "unterminated '${' (write '$${' for a literal)"))
                continue
            resolved, from_env, problem = self._resolve(
                expression, quote=not is_always_secret_path(path)
            )
            if problem is not None:
                issues.append(document.issue(path, problem))
                continue
            used_env = used_env or from_env
            parts.append(resolved)
        parts.append(text[end:])
        result = "".join(parts)
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
                    "pull-request comments. Pass ordinary values with --var NAME=VALUE or "
                    "--var-file instead",
                )
            )
            return text  # unexpanded: the value never enters the loaded manifest
        return result

    def _resolve(self, expression: str, *, quote: bool = True) -> tuple[str, bool, str | None]:
        """(value, came from the environment, problem); ``quote=False`` keeps a malformed
        expression out of the problem text (it may be part of a password)."""
        var = _VAR.match(expression)
        if var:
            name = var.group(1)
            if name in self.variables:
                return self.variables[name], False, None
            close = get_close_matches(name, sorted(self.variables), n=1)
            hint = (
                f"; did you mean '{close[0]}'?"
                if close
                else " (declare it under 'variables' or pass --var)"
            )
            return "", False, f"unknown variable '{name}'{hint}"
        env = _ENV.match(expression)
        if env:
            name, has_default, default = env.group(1), env.group(2), env.group(3)
            value = self.environ.get(name)
            if value:
                return value, True, None
            if has_default is not None:
                return default, True, None
            if value is not None:
                return value, True, None  # set but empty, no default: empty is a value
            return (
                "",
                True,
                (
                    f"environment variable {name} is not set"
                    f" (give a default with ${{env:{name}:-default}})"
                ),
            )
        shown = expression if len(expression) <= 40 else expression[:37] + "..."
        what = f"'${{{shown}}}'" if quote else "a '${...}' in this secret value"
        return (
            "",
            False,
            f"cannot interpolate {what}: use ${{var.NAME}} or ${{env:NAME}}"
            " (write '$${' for a literal '${', e.g. in shell scripts)",
        )
