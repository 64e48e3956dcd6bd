"""Every `reconciler ...` in the docs, the README and the CI examples is a real command line."""

from __future__ import annotations

from pathlib import Path

import click
import pytest
import yaml

from tests.examples.invocations import command_tree, problems
from tests.examples.snippets import (
    Invocation,
    github_run_scripts,
    gitlab_scripts,
    inline_code,
    markdown_invocations,
    shell_invocations,
)

REPO = Path(__file__).resolve().parents[2]
GITHUB_WORKFLOW = REPO / "examples" / "github-actions" / "reconciler.yml"
GITLAB_PIPELINE = REPO / "examples" / "gitlab-ci" / ".gitlab-ci.yml"
HOOKS = REPO / ".pre-commit-hooks.yaml"


def markdown_files() -> list[Path]:
    return sorted(
        [REPO / "README.md", *(REPO / "docs").glob("*.md"), *REPO.glob("examples/*/*.md")]
    )


def all_invocations() -> list[Invocation]:
    found: list[Invocation] = []
    for path in markdown_files():
        found += markdown_invocations(path.read_text(encoding="utf-8"), str(path.relative_to(REPO)))
    workflow = yaml.safe_load(GITHUB_WORKFLOW.read_text(encoding="utf-8"))
    for name, script in github_run_scripts(workflow).items():
        found += shell_invocations(script, f"reconciler.yml:{name}")
    pipeline = yaml.safe_load(GITLAB_PIPELINE.read_text(encoding="utf-8"))
    for name, script in gitlab_scripts(pipeline).items():
        found += shell_invocations(script, f".gitlab-ci.yml:{name}")
    for hook in yaml.safe_load(HOOKS.read_text(encoding="utf-8")):
        found += shell_invocations(
            " ".join([hook["entry"], *hook.get("args", [])]), f".pre-commit-hooks.yaml:{hook['id']}"
        )
    return found


@pytest.fixture(scope="module")
def tree() -> click.Group:
    return command_tree()


def test_every_documented_invocation_is_a_real_command_line(tree: click.Group) -> None:
    invocations = all_invocations()
    found = [problem for invocation in invocations for problem in problems(invocation, tree)]
    assert not found, "\n".join(found)


def test_the_examples_use_the_commands_the_workflow_needs() -> None:
    for suffix in ("reconciler.yml:", ".gitlab-ci.yml:"):
        lines = {" ".join(i.args) for i in all_invocations() if i.where.startswith(suffix)}
        assert any(line.startswith("plan ") and "--markdown --out" in line for line in lines)
        assert any(line.startswith("plan ") and "--detailed-exitcode" in line for line in lines)
        saved = [
            line for line in lines if line.startswith("apply $") and "--auto-approve" not in line
        ]
        assert saved, "no apply of a saved plan"
        touching = [line for line in lines if line.split()[0] in {"plan", "apply"}]
        assert touching and all("--lock-timeout 5m" in line for line in touching), touching


def test_getting_started_is_found_by_the_extractor() -> None:
    text = (REPO / "docs" / "getting-started.md").read_text(encoding="utf-8")
    commands = {i.args[0] for i in markdown_invocations(text, "getting-started.md") if i.args}
    assert {"validate", "plan", "apply", "show", "state", "destroy"} <= commands


# -- the checker itself must catch mistakes ---------------------------------------------------


@pytest.mark.parametrize(
    ("args", "complaint"),
    [
        (("plan", "--markdwn"), "has no option --markdwn"),
        (("plann", "specs/"), "no command 'plann'"),
        (("state", "lst"), "no command 'state lst'"),
        (("plan", "--lock-timeout", "5minutes"), "--lock-timeout '5minutes'"),
        (("apply", "--parallelism", "0"), "--parallelism '0'"),
        (("plan", "--out"), "--out needs a value"),
        (("force-unlock", "hello", "ID", "--lock-timeout", "5m"), "has no option --lock-timeout"),
    ],
)
def test_checker_reports_wrong_invocations(
    tree: click.Group, args: tuple[str, ...], complaint: str
) -> None:
    found = problems(Invocation(args, "test"), tree)
    assert found and complaint in found[0], found


@pytest.mark.parametrize(
    "args",
    [
        ("plan", "specs/", "--markdown", "--out", "plan.json", "--lock-timeout", "5m"),
        ("plan", "$MANIFESTS", "--lock-timeout=30s", "--detailed-exitcode"),
        ("apply", "FILE"),
        ("state", "list/show/rm/mv"),
        ("--no-color", "validate", "specs/"),
        ("schema", "--help"),
    ],
)
def test_checker_accepts_right_invocations(tree: click.Group, args: tuple[str, ...]) -> None:
    assert problems(Invocation(args, "test"), tree) == []


def test_extractor_reads_shell_like_a_shell() -> None:
    script = (
        "set +e\n"
        'reconciler plan "$M" --markdown \\\n  --out plan.json >plan.md 2>plan.log\n'
        "cat > f.yaml <<'EOF'\nreconciler apply inside-a-heredoc\nEOF\n"
        "pip install reconciler && reconciler validate specs/ | tee log  # comment --x\n"
        "if x; then reconciler show plan.json; fi\n"
    )
    found = [i.args for i in shell_invocations(script, "s")]
    assert found == [
        ("plan", "$M", "--markdown", "--out", "plan.json"),
        ("validate", "specs/"),
        ("show", "plan.json"),
    ]


def test_inline_code_outside_fences_only() -> None:
    text = "Run `reconciler plan` now.\n```text\nsee `reconciler nope`\n```\nand `x`.\n"
    assert inline_code(text) == ["reconciler plan", "x"]
