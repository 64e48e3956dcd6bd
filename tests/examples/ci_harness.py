"""Run the CI examples' own shell scripts against a real emulator, with `gh` and `curl` faked.

The fakes are small Python programs put first on PATH. Each records its call (arguments and
the payload file it was given) in ``calls.jsonl`` and answers from a routes file: the first
route whose every key fragment occurs in the joined arguments wins. `reconciler` on PATH runs
this checkout with this interpreter.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[2]
EXPRESSION = re.compile(r"\$\{\{.*?\}\}")

# The examples build API payloads with jq, as CI images have it; without it those steps skip.
requires_jq = pytest.mark.skipif(shutil.which("jq") is None, reason="jq is not installed")

FAKE_TOOL = r'''#!{python}
"""A recording fake for {name}: see tests/examples/ci_harness.py."""
import json, os, shutil, sys
home = os.environ["FAKE_HOME"]
args = sys.argv[1:]
joined = " ".join(args)
payload = None
for flag in ("--input", "--body-file", "--data"):
    if flag in args:
        value = args[args.index(flag) + 1]
        path = value[1:] if value.startswith("@") else value
        payload = open(path, encoding="utf-8").read() if os.path.exists(path) else value
with open(os.path.join(home, "calls.jsonl"), "a", encoding="utf-8") as log:
    log.write(json.dumps({{"tool": "{name}", "args": args, "payload": payload}}) + "\n")
with open(os.path.join(home, "routes.json"), encoding="utf-8") as f:
    routes = json.load(f).get("{name}", [])
for route in routes:
    if all(fragment in joined for fragment in route["match"]):
        if "copy" in route:
            target = args[args.index(route["copy_flag"]) + 1]
            if route["copy_flag"] == "--dir":
                os.makedirs(target, exist_ok=True)
                target = os.path.join(target, os.path.basename(route["copy"]))
            shutil.copy(route["copy"], target)
        sys.stdout.write(route.get("stdout", ""))
        sys.exit(route.get("exit", 0))
sys.exit(0)
'''


@dataclass
class Call:
    tool: str
    args: list[str]
    payload: str | None

    @property
    def line(self) -> str:
        return " ".join(self.args)


@dataclass
class Sandbox:
    """A temp folder with fakes on PATH, a state dir and the emulator's URL."""

    root: Path
    emulator_url: str
    routes: dict[str, list[dict[str, Any]]] = field(default_factory=dict)

    @property
    def work(self) -> Path:
        return self.root / "work"

    @property
    def state_dir(self) -> Path:
        return self.root / "state"

    def route(self, tool: str, *match: str, **answer: Any) -> None:
        self.routes.setdefault(tool, []).append({"match": list(match), **answer})
        (self.root / "routes.json").write_text(json.dumps(self.routes), encoding="utf-8")

    def calls(self, tool: str | None = None) -> list[Call]:
        log = self.root / "calls.jsonl"
        if not log.exists():
            return []
        calls = [Call(**json.loads(line)) for line in log.read_text(encoding="utf-8").splitlines()]
        return [c for c in calls if tool is None or c.tool == tool]

    def write_fleet(self, name: str, *, replicas: int = 1, extra_tags: str = "") -> Path:
        manifests = self.work / "fleets"
        manifests.mkdir(parents=True, exist_ok=True)
        path = manifests / f"{name}.yaml"
        path.write_text(
            f"fleet: {name}\n"
            "defaults:\n"
            "  cloud: hyperstack\n  region: canada-1\n  shade_instance_type: A6000\n"
            "  shade_cloud: true\n  os: ubuntu22.04_cuda12.2_shade_os\n"
            f"  tags: [ci{extra_tags}]\n"
            f"instances:\n  - name: web\n    replicas: {replicas}\n",
            encoding="utf-8",
        )
        return manifests

    def base_env(self) -> dict[str, str]:
        env = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith(("SHADEFORM_", "RECONCILER_", "GITHUB_", "CI_", "GITLAB_"))
        }
        env.update(
            PATH=f"{self.root / 'bin'}{os.pathsep}{env.get('PATH', '')}",
            PYTHONPATH=os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")])),
            FAKE_HOME=str(self.root),
            SHADEFORM_API_URL=self.emulator_url,
            SHADEFORM_API_KEY="sandbox-key",
            RECONCILER_STATE_DIR=str(self.state_dir),
            MANIFESTS="fleets",
        )
        return env

    def run(
        self, script: str, env: Mapping[str, str], *, shell: tuple[str, ...]
    ) -> subprocess.CompletedProcess[str]:
        path = self.root / "step.sh"
        path.write_text(script, encoding="utf-8")
        return subprocess.run(
            [*shell, str(path)],
            cwd=self.work,
            env=dict(env),
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=180,
        )


def make_sandbox(root: Path, emulator_url: str) -> Sandbox:
    bin_dir = root / "bin"
    bin_dir.mkdir(parents=True)
    (root / "work").mkdir()
    (root / "routes.json").write_text("{}", encoding="utf-8")
    wrapper = bin_dir / "reconciler"
    wrapper.write_text(f'#!/bin/sh\nexec "{sys.executable}" -m reconciler "$@"\n')
    wrapper.chmod(0o755)
    for name in ("gh", "curl"):
        fake = bin_dir / name
        fake.write_text(FAKE_TOOL.format(python=sys.executable, name=name), encoding="utf-8")
        fake.chmod(0o755)
    return Sandbox(root=root, emulator_url=emulator_url)


@contextmanager
def running_emulator() -> Iterator[str]:
    """`reconciler emulator` on a free loopback port; yields its base URL."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
    process = subprocess.Popen(
        [sys.executable, "-m", "reconciler", "emulator", "--port", "0", "--boot-seconds", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        stdin=subprocess.DEVNULL,
        text=True,
        env=env,
    )
    try:
        assert process.stdout is not None
        first = process.stdout.readline()
        match = re.search(r"(http://127\.0\.0\.1:\d+/v1)", first)
        assert match, f"emulator did not start: {first!r}"
        yield match.group(1)
    finally:
        process.terminate()
        process.wait(timeout=10)


def literal_env(*blocks: Mapping[str, Any] | None) -> dict[str, str]:
    """Merge ``env:`` blocks, leaving out values that are CI expressions (tests supply those)."""
    merged: dict[str, str] = {}
    for block in blocks:
        for key, value in (block or {}).items():
            text = str(value)
            if EXPRESSION.search(text) or "$" in text:
                merged.pop(key, None)
                continue
            merged[key] = text
    return merged
