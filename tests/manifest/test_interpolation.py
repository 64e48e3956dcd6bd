"""``${var.*}`` / ``${env:*}`` substitution, secrecy marking and located errors."""

from __future__ import annotations

import tracemalloc
from typing import Any

import pytest
from pydantic import SecretStr

from reconciler.errors import ManifestIssue
from reconciler.manifest.interpolation import (
    Interpolator,
    is_always_secret_path,
    is_secret_path,
    variable_text,
)
from reconciler.manifest.source import parse_document


def interpolate(
    text: str, variables: dict[str, str] | None = None, environ: dict[str, str] | None = None
) -> tuple[Any, list[ManifestIssue]]:
    document, _ = parse_document(text, "m.yaml")
    interpolator = Interpolator(variables or {}, environ or {})
    return interpolator.interpolate(document, skip_keys=frozenset({"variables"}))


def test_variables_and_env_are_substituted_inside_strings() -> None:
    data, issues = interpolate(
        "args: --model ${var.model} --port ${var.port}\n"
        "envs: [{name: USER, value: 'user=${env:USER}'}]\n",
        variables={"model": "m/7b", "port": "80"},
        environ={"USER": "ada"},
    )
    assert issues == []
    assert data["args"] == "--model m/7b --port 80"
    assert data["envs"][0]["value"].get_secret_value() == "user=ada"


def test_env_default_applies_when_unset_or_empty() -> None:
    text = "envs:\n" + "".join(
        f"  - {{name: {n}, value: '{v}'}}\n"
        for n, v in [
            ("a", "${env:A:-fallback}"),
            ("b", "${env:B:-fallback}"),
            ("c", "${env:C:-}"),
            ("d", "${env:D}"),
        ]
    )
    data, issues = interpolate(text, environ={"B": "", "D": ""})
    assert issues == []
    values = [e["value"].get_secret_value() for e in data["envs"]]
    assert values == ["fallback", "fallback", "", ""]


def test_env_outside_secret_fields_is_refused_without_quoting_the_value() -> None:
    text = "args: --token ${env:TOKEN}\ntags: ['${env:TOKEN}']\n"
    data, issues = interpolate(text, environ={"TOKEN": "s3cr3t"})
    assert [(i.field, i.line) for i in issues] == [("args", 1), ("tags[0]", 2)]
    assert all("kept secret" in i.message and "s3cr3t" not in i.render() for i in issues)
    assert "s3cr3t" not in repr(data)


def test_escape_writes_a_literal() -> None:
    data, issues = interpolate("script: echo $${HOME} costs $5\n")
    assert issues == []
    assert data == {"script": "echo ${HOME} costs $5"}


def test_variables_block_is_not_interpolated() -> None:
    data, issues = interpolate("variables:\n  x: ${var.y}\n")
    assert issues == []
    assert data == {"variables": {"x": "${var.y}"}}


def test_unset_env_is_an_error_at_its_line() -> None:
    _, issues = interpolate("fleet: a\ninstances:\n  - name: ${env:NAME_FROM_ENV}\n")
    [issue] = issues
    assert (issue.line, issue.column, issue.field) == (3, 5, "instances[0].name")
    assert "NAME_FROM_ENV is not set" in issue.message
    assert "${env:NAME_FROM_ENV:-default}" in issue.message


def test_unknown_variable_suggests_a_close_name() -> None:
    _, issues = interpolate("fleet: a\nargs: ${var.modle}\n", variables={"model": "x"})
    [issue] = issues
    assert (issue.line, issue.field) == (2, "args")
    assert issue.message == "unknown variable 'modle'; did you mean 'model'?"


@pytest.mark.parametrize(
    ("text", "expected"),
    [("a: ${HOME}\n", "cannot interpolate"), ("a: ${var.x\n", "unterminated")],
)
def test_malformed_expressions(text: str, expected: str) -> None:
    _, issues = interpolate(text)
    [issue] = issues
    assert expected in issue.message
    assert (issue.line, issue.field) == (1, "a")


def test_env_values_in_envs_and_registry_credentials_become_secret() -> None:
    text = """\
instances:
  - envs:
      - {name: A, value: "${env:TOKEN}"}
      - {name: B, value: "literal"}
      - {name: C, value: "${var.v}"}
    launch_configuration:
      docker_configuration:
        envs: [{name: D, value: "pre-${env:TOKEN:-x}"}]
        registry_credentials: {username: "${env:TOKEN}", password: "${var.v}"}
        args: "${var.v}"
"""
    data, issues = interpolate(text, variables={"v": "plain"}, environ={"TOKEN": "s3cr3t"})
    assert issues == []
    instance = data["instances"][0]
    assert isinstance(instance["envs"][0]["value"], SecretStr)
    assert instance["envs"][0]["value"].get_secret_value() == "s3cr3t"
    assert instance["envs"][1]["value"] == "literal"
    assert instance["envs"][2]["value"] == "plain"
    docker = instance["launch_configuration"]["docker_configuration"]
    assert docker["envs"][0]["value"].get_secret_value() == "pre-s3cr3t"
    assert isinstance(docker["registry_credentials"]["username"], SecretStr)
    assert docker["registry_credentials"]["password"] == "plain"  # the model makes it secret
    assert docker["args"] == "plain"  # not a secret field: variables only


def test_secret_values_never_reach_messages() -> None:
    _, issues = interpolate("a: ${env:TOKEN} ${var.nope}\n", environ={"TOKEN": "s3cr3t"})
    assert issues and all("s3cr3t" not in i.render() for i in issues)


def test_is_secret_path() -> None:
    assert is_secret_path(("defaults", "envs", 0, "value"))
    assert is_secret_path(("x", "registry_credentials", "password"))
    assert not is_secret_path(("instances", 0, "envs", 0, "name"))
    assert not is_secret_path(("value",))


@pytest.mark.parametrize(
    ("value", "text"), [(True, "true"), (False, "false"), (3, "3"), (1.5, "1.5"), ("s", "s")]
)
def test_variable_text(value: object, text: str) -> None:
    assert variable_text(value) == text


def test_variable_text_refuses_collections() -> None:
    assert variable_text([1]) is None
    assert variable_text(None) is None


def test_backend_is_secret_and_its_problems_do_not_quote_it() -> None:
    data, issues = interpolate(
        "backend: postgresql://u:${env:PGPASSWORD}@db/fleets\n", environ={"PGPASSWORD": "pw"}
    )
    assert issues == []
    assert isinstance(data["backend"], SecretStr)
    assert data["backend"].get_secret_value() == "postgresql://u:pw@db/fleets"
    _, issues = interpolate("backend: postgresql://u:${hunter2}@db/fleets\n")
    [issue] = issues
    assert (issue.line, issue.field) == (1, "backend")
    assert "hunter2" not in issue.render()
    assert issue.message.startswith("cannot interpolate a '${...}' in this secret value")
    _, issues = interpolate("args: ${hunter2}\n")
    assert "'${hunter2}'" in issues[0].message  # ordinary values are quoted to help


def test_always_secret_paths() -> None:
    assert is_always_secret_path(("backend",))
    assert is_always_secret_path(("defaults", "registry_credentials", "password"))
    assert not is_always_secret_path(("defaults", "registry_credentials", "username"))
    assert not is_always_secret_path(("instances", 0, "backend"))
    assert is_secret_path(("backend",))


def test_variables_may_use_other_variables() -> None:
    data, issues = interpolate(
        "image: ${var.image}\ntags: ['${var.team}-${var.env}']\n",
        variables={
            "registry": "ghcr.io/acme",
            "image": "${var.registry}/vllm:${var.version}",
            "version": "v0.4.2",
            "team": "ml",
            "env": "${var.team}-prod",
        },
    )
    assert issues == []
    assert data == {"image": "ghcr.io/acme/vllm:v0.4.2", "tags": ["ml-ml-prod"]}


@pytest.mark.parametrize(
    ("variables", "cycle"),
    [
        ({"a": "x${var.a}"}, "a -> a"),
        ({"a": "${var.b}", "b": "${var.a}"}, "a -> b -> a"),
        ({"a": "${var.b}", "b": "${var.c}", "c": "-${var.b}"}, "b -> c -> b"),
    ],
)
def test_variables_in_a_cycle_are_refused_and_no_dollar_brace_reaches_a_field(
    variables: dict[str, str], cycle: str
) -> None:
    data, issues = interpolate("image: ${var.a}\n", variables=variables)
    [issue] = issues
    assert (issue.line, issue.field) == (1, "image")
    assert f"variables refer to each other in a cycle: {cycle}" in issue.message
    assert "in variable 'a': in variable" not in issue.message


def test_a_resolved_value_never_carries_a_reference() -> None:
    data, issues = interpolate(
        "image: ${var.a}\nargs: ${var.b}\n", variables={"a": "${var.b}", "b": "plain"}
    )
    assert issues == [] and "${" not in repr(data)


def test_an_env_value_through_a_variable_is_still_secret_only() -> None:
    text = "envs: [{name: T, value: '${var.token}'}]\nargs: --t ${var.token}\n"
    data, issues = interpolate(text, variables={"token": "${env:TOKEN}"}, environ={"TOKEN": "s3"})
    assert data["envs"][0]["value"].get_secret_value() == "s3"
    [issue] = issues
    assert issue.field == "args" and "also when it comes through a variable" in issue.message
    assert "s3" not in repr(data["args"])


def test_a_variable_doubling_itself_cannot_exhaust_memory() -> None:
    variables = {f"v{i}": f"${{var.v{i + 1}}}${{var.v{i + 1}}}" for i in range(30)}
    variables["v30"] = "x" * 64
    data, issues = interpolate("image: ${var.v0}\n", variables=variables)
    [issue] = issues
    assert "expands to more than 1,048,576 characters" in issue.message
    assert data == {"image": "${var.v0}"}


def test_a_variable_used_many_times_is_refused_before_the_copies_are_built() -> None:
    """11 KB of manifest used to allocate 300 MB before the size check ran."""
    variables = {"c": "x" * 1000, "b": "${var.c}" * 1000, "a": "${var.b}" * 300}
    tracemalloc.start()
    data, issues = interpolate("image: ${var.a}\n", variables=variables)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    [issue] = issues
    assert "expands to more than 1,048,576 characters" in issue.message
    assert peak < 16 * 1024 * 1024, peak  # a few MB at most, never hundreds


def test_the_expanded_size_of_a_document_is_capped() -> None:
    document, _ = parse_document("tags:\n" + "  - '${var.big}'\n" * 40, "m.yaml")
    interpolator = Interpolator({"big": "x" * 1_000_000}, {})
    _, issues = interpolator.interpolate(document)
    [issue] = issues  # one problem, where the budget ran out
    assert issue.field.startswith("tags[")
    assert "expands to more than" in issue.message


def test_the_time_spent_interpolating_a_document_is_capped() -> None:
    document, _ = parse_document("tags:\n" + "  - '${var.x}'\n" * 2000, "m.yaml")
    ticks = iter(range(0, 10_000_000, 50))  # each look at the clock: 50 s later
    interpolator = Interpolator({"x": "y"}, {}, max_seconds=100, clock=lambda: next(ticks))
    _, issues = interpolator.interpolate(document)
    [issue] = issues
    assert "took longer than 100s and was stopped" in issue.message
