"""Every `reconciler ...` line of the README's shell blocks works as written, in order, in a
fresh sandbox, and exits as the README says (``# exit N`` on the line; 0 otherwise)."""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

from tests.examples.snippets import SHELL_LANGUAGES, fenced_blocks

REPO = Path(__file__).resolve().parents[2]
_EXIT = re.compile(r"#\s*exit\s+(\d+)")


def readme_commands() -> list[tuple[str, int]]:
    """(the reconciler command line, the exit code the README implies), in README order."""
    found: list[tuple[str, int]] = []
    for block in fenced_blocks((REPO / "README.md").read_text(encoding="utf-8")):
        if block.language not in SHELL_LANGUAGES:
            continue
        for line in block.text.splitlines():
            code, _, comment = line.partition("#")
            for part in code.split("&&"):
                part = part.strip()
                if part.startswith("reconciler "):
                    expected = _EXIT.search("#" + comment)
                    found.append((part, int(expected.group(1)) if expected else 0))
    return found


def test_the_readme_shows_the_sandbox_loop() -> None:
    commands = [c for c, _ in readme_commands()]
    assert commands[0] == "reconciler apply specs/ --sandbox --auto-approve"
    assert any(c.startswith("reconciler destroy") for c in commands)


def test_every_readme_command_runs_as_written(tmp_path: Path) -> None:
    shutil.copytree(REPO / "specs", tmp_path / "specs")
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("SHADEFORM_", "RECONCILER_")) and key not in ("CI", "NO_COLOR")
    }
    env.update({"RECONCILER_SANDBOX_BOOT_SECONDS": "0", "NO_COLOR": "1"})
    reconciler = [sys.executable, "-m", "reconciler"]
    for command, expected in readme_commands():
        args = shlex.split(command)[1:]
        done = subprocess.run(
            [*reconciler, *args], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120
        )
        assert done.returncode == expected, (
            f"README: `{command}` exited {done.returncode}, the README says {expected}\n"
            + done.stdout[-2000:]
            + done.stderr[-2000:]
        )
        if command.startswith("reconciler destroy") and expected == 8:
            assert "--exclude training/trainer" in done.stderr  # says how to proceed
    left = subprocess.run(
        [*reconciler, "state", "list"], cwd=tmp_path, env=env, capture_output=True, text=True
    )
    assert [line.split()[0] for line in left.stdout.splitlines()] == [
        "training/ssh_key.ci-deploy",
        "training/volume.checkpoints",
        "training/trainer",
    ], "the kept box, and the key and volume it uses"
