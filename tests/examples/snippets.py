"""Find the shell snippets in docs and CI files, and the `reconciler` invocations in them.

Plain text in, plain data out: no CLI imports here (see ``invocations.py`` for the checks).
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass
from typing import Any

SHELL_LANGUAGES = frozenset({"bash", "sh", "shell", "console", "zsh"})

_FENCE = re.compile(r"^(?P<indent> {0,3})(?P<fence>`{3,}|~{3,})(?P<info>[^\n`]*)$")
_INLINE_CODE = re.compile(r"(?<!`)`([^`\n]+)`(?!`)")
_HEREDOC = re.compile(r"<<-?\s*(['\"]?)(?P<word>[A-Za-z_][A-Za-z0-9_]*)\1")
_REDIRECT = re.compile(r"\d*(?:>>?|<)(?:&\d+|\s*\S+)")
_OPERATORS = frozenset({"|", "||", "&&", ";", "&", "(", ")", "{", "}"})
_KEYWORDS = frozenset({"then", "do", "else", "elif", "if", "while", "until", "!", "time", "exec"})


@dataclass(frozen=True)
class CodeBlock:
    language: str
    text: str
    line: int  # 1-based line of the opening fence


@dataclass(frozen=True)
class Invocation:
    """One `reconciler ...` command line: ``args`` excludes the program name."""

    args: tuple[str, ...]
    where: str

    def __str__(self) -> str:
        return f"{self.where}: reconciler {' '.join(self.args)}"


def fenced_blocks(markdown: str) -> list[CodeBlock]:
    """Every fenced code block, with its info-string language (lower case, may be empty)."""
    blocks: list[CodeBlock] = []
    lines = markdown.splitlines()
    index = 0
    while index < len(lines):
        match = _FENCE.match(lines[index])
        if not match:
            index += 1
            continue
        fence = match.group("fence")
        language = match.group("info").strip().split(" ")[0].lower()
        start = index
        body: list[str] = []
        index += 1
        while index < len(lines) and not (
            lines[index].strip().startswith(fence[0] * len(fence))
            and set(lines[index].strip()) == {fence[0]}
        ):
            body.append(lines[index])
            index += 1
        blocks.append(CodeBlock(language=language, text="\n".join(body) + "\n", line=start + 1))
        index += 1
    return blocks


def inline_code(markdown: str) -> list[str]:
    """Inline code spans outside fenced blocks."""
    outside: list[str] = []
    in_fence: str | None = None
    for line in markdown.splitlines():
        match = _FENCE.match(line)
        if match and in_fence is None:
            in_fence = match.group("fence")[0]
            continue
        if in_fence is not None:
            if line.strip() and set(line.strip()) == {in_fence}:
                in_fence = None
            continue
        outside.append(line)
    return _INLINE_CODE.findall("\n".join(outside))


def shell_invocations(script: str, where: str) -> list[Invocation]:
    """`reconciler` commands in a shell script: continuations joined, heredoc bodies skipped."""
    found: list[Invocation] = []
    for number, line in _logical_lines(script):
        tokens = _tokens(line)
        for position, token in enumerate(tokens):
            if token != "reconciler":
                continue
            before = tokens[position - 1] if position else None
            if before is not None and before not in _OPERATORS and before not in _KEYWORDS:
                continue  # an argument, e.g. `pip install reconciler`
            args: list[str] = []
            for arg in tokens[position + 1 :]:
                if arg in _OPERATORS:
                    break
                args.append(arg)
            found.append(Invocation(tuple(args), f"{where}:{number}"))
    return found


def inline_invocations(span: str, where: str) -> list[Invocation]:
    """An inline code span such as `reconciler plan --markdown` (prose, not a script)."""
    if not span.startswith("reconciler "):
        return []
    return shell_invocations(span, where)


def markdown_invocations(markdown: str, where: str) -> list[Invocation]:
    """Invocations in a Markdown file's shell blocks and inline code."""
    found: list[Invocation] = []
    for block in fenced_blocks(markdown):
        if block.language in SHELL_LANGUAGES:
            found += shell_invocations(block.text, f"{where}:{block.line}")
    for span in inline_code(markdown):
        found += inline_invocations(span, where)
    return found


def github_run_scripts(workflow: dict[str, Any]) -> dict[str, str]:
    """``{"job/step name": script}`` for every ``run:`` step of a GitHub Actions workflow."""
    scripts: dict[str, str] = {}
    for job_name, job in workflow.get("jobs", {}).items():
        for index, step in enumerate(job.get("steps", [])):
            if "run" in step:
                scripts[f"{job_name}/{step.get('name', index)}"] = step["run"]
    return scripts


def gitlab_scripts(pipeline: dict[str, Any]) -> dict[str, str]:
    """``{"job/key": script}`` for the before_script, script and after_script of every job."""
    scripts: dict[str, str] = {}
    for job_name, job in pipeline.items():
        if not isinstance(job, dict):
            continue
        for key in ("before_script", "script", "after_script"):
            if key in job:
                lines = job[key]
                scripts[f"{job_name}/{key}"] = "\n".join(
                    lines if isinstance(lines, list) else [lines]
                )
    return scripts


def _logical_lines(script: str) -> list[tuple[int, str]]:
    lines: list[tuple[int, str]] = []
    pending = ""
    start = 0
    heredoc: str | None = None
    for number, raw in enumerate(script.splitlines(), start=1):
        if heredoc is not None:
            if raw.strip() == heredoc:
                heredoc = None
            continue
        if not pending:
            start = number
        if raw.rstrip().endswith("\\"):
            pending += raw.rstrip()[:-1] + " "
            continue
        line = pending + raw
        pending = ""
        marker = _HEREDOC.search(line)
        if marker:
            heredoc = marker.group("word")
        lines.append((start, line))
    if pending:
        lines.append((start, pending))
    return lines


def _tokens(line: str) -> list[str]:
    line = _REDIRECT.sub(" ", _HEREDOC.sub(" ", line))
    lexer = shlex.shlex(line, posix=True, punctuation_chars=";&|(){}")
    lexer.whitespace_split = True
    lexer.commenters = "#"
    try:
        return list(lexer)
    except ValueError:  # unbalanced quotes in prose
        return line.split()
