""".pre-commit-hooks.yaml: the reconciler-validate hook, run the way pre-commit runs it."""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
HOOKS: list[dict[str, Any]] = yaml.safe_load(
    (REPO / ".pre-commit-hooks.yaml").read_text(encoding="utf-8")
)
HOOK = next(h for h in HOOKS if h["id"] == "reconciler-validate")

GOOD = """\
fleet: {name}
defaults: {{cloud: hyperstack, region: canada-1, shade_instance_type: A6000, shade_cloud: true}}
instances:
  - name: web
"""


def run_hook(files: list[Path], cwd: Path) -> subprocess.CompletedProcess[str]:
    """What pre-commit does: the entry, the hook's args, then the changed files (relative)."""
    program, *entry_args = shlex.split(HOOK["entry"])
    assert program == "reconciler"
    args = [*entry_args, *HOOK.get("args", []), *(str(f.relative_to(cwd)) for f in files)]
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
    return subprocess.run(
        [sys.executable, "-m", "reconciler", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_hook_definition() -> None:
    assert HOOK["language"] == "python"  # pre-commit pip-installs this repository
    assert HOOK["entry"] == "reconciler validate"
    assert HOOK["pass_filenames"] is True and HOOK["require_serial"] is True
    scripts = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))["project"][
        "scripts"
    ]
    assert "reconciler" in scripts


@pytest.mark.parametrize(
    ("path", "matched"),
    [
        ("specs/inference.yaml", True),
        ("specs/team/train.yml", True),
        ("specs/schema.json", False),
        ("specs/inference.yaml.bak", False),
        ("other/inference.yaml", False),
        (".gitlab-ci.yml", False),
    ],
)
def test_files_pattern(path: str, matched: bool) -> None:
    assert bool(re.search(HOOK["files"], path)) is matched


def test_valid_manifests_pass(tmp_path: Path) -> None:
    folder = tmp_path / "specs"
    folder.mkdir()
    files = []
    for name in ("alpha", "beta"):
        files.append(folder / f"{name}.yaml")
        files[-1].write_text(GOOD.format(name=name), encoding="utf-8")
    result = run_hook(files, tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "OK: 2 fleets, 2 instances" in (result.stdout + result.stderr)


def test_every_problem_in_the_changed_files_is_reported(tmp_path: Path) -> None:
    folder = tmp_path / "specs"
    folder.mkdir()
    typo = folder / "typo.yaml"
    typo.write_text("fleet: typo\ninstances:\n  - name: web\n    replicaz: 2\n", encoding="utf-8")
    twin_a = folder / "a.yaml"
    twin_b = folder / "b.yaml"
    twin_a.write_text(GOOD.format(name="twin"), encoding="utf-8")
    twin_b.write_text(GOOD.format(name="twin"), encoding="utf-8")
    result = run_hook([typo, twin_a, twin_b], tmp_path)
    output = result.stdout + result.stderr
    assert result.returncode == 3, output
    assert "specs/typo.yaml:4:5" in output and "replicaz" in output
    # One call sees every changed file, so a fleet declared twice among them is caught.
    assert "fleet 'twin' is already declared in specs/a.yaml" in output
