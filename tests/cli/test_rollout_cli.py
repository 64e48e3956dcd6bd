"""Rollouts through the CLI, in the sandbox: a readiness command runs only when a person
says so, plan never runs it, and the rollout replaces every replica."""

from __future__ import annotations

import json
import stat
from pathlib import Path

from click.testing import CliRunner, Result

from reconciler.cli import cli
from reconciler.cli.app import _register_commands

_register_commands()

STRATEGY = """\
    update_strategy: {max_unavailable: 1, max_surge: 1}
    readiness:
      command: [scripts/ready.sh]
      timeout: 1m
      interval: 1s
    launch_configuration:"""


def invoke(args: list[str], env: dict[str, str]) -> Result:
    return CliRunner().invoke(cli, args, env=env, catch_exceptions=False)


def prepare(workspace) -> tuple[Path, Path, Path, list[str]]:
    manifests, state_dir, write = workspace
    ready = manifests / "scripts" / "ready.sh"
    ready.parent.mkdir()
    ready.write_text('#!/bin/sh\necho "$ADDRESS $IP" >> "$(dirname "$0")/checked.txt"\n')
    ready.chmod(ready.stat().st_mode | stat.S_IXUSR)
    write(**{"    launch_configuration:": STRATEGY})
    return (
        manifests,
        state_dir,
        manifests / "scripts" / "checked.txt",
        [
            str(manifests),
            "--sandbox",
            "--state-dir",
            str(state_dir),
        ],
    )


def instance_ids(state_dir: Path) -> dict[str, str]:
    state = json.loads((state_dir / "web.json").read_text())
    return {a: r["instance_id"] for a, r in state["instances"].items()}


def test_a_rollout_with_readiness_needs_a_persons_word(workspace, sandbox_env):
    manifests, state_dir, checked, common = prepare(workspace)
    first = invoke(["apply", *common, "--auto-approve"], sandbox_env)
    assert first.exit_code == 0, first.output
    before = instance_ids(state_dir)
    text = (manifests / "web.yaml").read_text().replace("nginx:1.27", "nginx:1.28")
    (manifests / "web.yaml").write_text(text)

    plan = invoke(["plan", *common], sandbox_env)
    assert plan.exit_code == 0, plan.output
    assert not checked.exists(), "plan never runs a readiness command"

    refused = invoke(["apply", *common, "--auto-approve"], sandbox_env)
    assert refused.exit_code == 8, refused.output
    assert "--allow-readiness-commands" in refused.output
    assert "`scripts/ready.sh` from" in refused.output
    assert instance_ids(state_dir) == before, "nothing was changed"
    assert not checked.exists()

    applied = invoke(
        ["apply", *common, "--auto-approve", "--allow-readiness-commands"], sandbox_env
    )
    assert applied.exit_code == 0, applied.output
    after = instance_ids(state_dir)
    assert set(after) == set(before) and not set(after.values()) & set(before.values())
    lines = checked.read_text().splitlines()
    assert sorted(line.split()[0] for line in lines) == ["web/api-0", "web/api-1"]
    assert all(len(line.split()) == 2 for line in lines), "the replica's IP was passed"
    again = invoke(["plan", *common, "--detailed-exitcode"], sandbox_env)
    assert again.exit_code == 0, again.output
