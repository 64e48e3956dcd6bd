"""The confirmation prompt, driven through a real pseudo-terminal: declining, Ctrl-D, Ctrl-C."""

from __future__ import annotations

import fcntl
import os
import pty
import select
import subprocess
import sys
import termios
import time
from pathlib import Path

import pytest


def _controlling_tty() -> None:
    os.setsid()
    fcntl.ioctl(0, termios.TIOCSCTTY, 0)


def run_at_prompt(args: list[str], keys: bytes, env: dict[str, str]) -> tuple[int, str]:
    """Start the CLI on a pty, wait for the prompt, type ``keys``; (exit code, output)."""
    leader, follower = pty.openpty()
    proc = subprocess.Popen(
        [sys.executable, "-m", "reconciler", *args],
        stdin=follower,
        stdout=follower,
        stderr=follower,
        env={**os.environ, **env},
        preexec_fn=_controlling_tty,
        close_fds=True,
    )
    os.close(follower)
    output = b""
    deadline = time.monotonic() + 180  # generous: CI machines are shared
    typed = False
    while time.monotonic() < deadline:
        ready, _, _ = select.select([leader], [], [], 0.2)
        if ready:
            try:
                chunk = os.read(leader, 65536)
            except OSError:
                break  # the child closed the terminal
            if not chunk:
                break
            output += chunk
        if not typed and b"Only 'yes' will be accepted" in output:
            os.write(leader, keys)
            typed = True
        if proc.poll() is not None and not ready:
            break
    if proc.poll() is None:
        proc.kill()
        proc.wait()
        os.close(leader)
        raise AssertionError(f"no exit after typing {keys!r}: {output.decode(errors='replace')}")
    os.close(leader)
    return proc.returncode, output.decode(errors="replace")


@pytest.mark.parametrize(
    ("keys", "code"),
    [(b"no\r", 1), (b"\x04", 130), (b"\x03", 130)],
    ids=["declined", "ctrl-d", "ctrl-c"],
)
def test_the_prompt_says_nothing_was_changed(
    workspace, sandbox_env, keys: bytes, code: int
) -> None:
    manifests, state_dir, _ = workspace
    args = ["apply", str(manifests), "--sandbox", "--state-dir", str(state_dir)]
    exit_code, output = run_at_prompt(args, keys, sandbox_env)
    assert exit_code == code, output
    assert "Cancelled: nothing was changed" in output
    assert "Aborted!" not in output and "Traceback" not in output
    assert not (Path(state_dir) / "web.json").exists()


def test_no_color_may_follow_the_subcommand(workspace, sandbox_env) -> None:
    manifests, state_dir, _ = workspace
    args = ["plan", str(manifests), "--sandbox", "--state-dir", str(state_dir), "--no-color"]
    env = {k: v for k, v in sandbox_env.items() if k != "NO_COLOR"}
    exit_code, output = run_at_prompt(args, b"", env)
    assert exit_code == 0, output
    assert "\x1b[" not in output.replace("\x1b[?", "")  # no colour codes (cursor codes aside)


def test_shell_completion_knows_the_commands_and_options(tmp_path: Path) -> None:
    env = {**os.environ, "_RECONCILER_COMPLETE": "bash_complete"}
    words = {"COMP_WORDS": "reconciler pl", "COMP_CWORD": "1"}
    done = subprocess.run(
        [sys.executable, "-m", "reconciler"], env={**env, **words}, capture_output=True, text=True
    )
    assert "plain,plan" in done.stdout.split()
    words = {"COMP_WORDS": "reconciler destroy --exc", "COMP_CWORD": "2"}
    done = subprocess.run(
        [sys.executable, "-m", "reconciler"], env={**env, **words}, capture_output=True, text=True
    )
    assert "plain,--exclude" in done.stdout.split()


@pytest.mark.parametrize(
    ("extra", "live"),
    [
        ({"TERM": "xterm-256color"}, True),
        ({"TERM": "xterm", "CI": "true"}, False),
        ({"TERM": "dumb"}, False),
    ],  # fmt: skip
    ids=["terminal", "ci-on-a-tty", "term-dumb"],
)
def test_progress_is_live_only_on_a_real_terminal_outside_ci(
    workspace, sandbox_env, extra: dict[str, str], live: bool
) -> None:
    manifests, state_dir, _ = workspace
    env = {**{k: v for k, v in sandbox_env.items() if k != "NO_COLOR"}, **extra}
    env.setdefault("CI", "")
    env["RECONCILER_SANDBOX_BOOT_SECONDS"] = "3"
    args = ["apply", str(manifests), "--sandbox", "--state-dir", str(state_dir), "--auto-approve"]
    code, output = run_at_prompt(args, b"", env)
    assert code == 0, output
    plain = "web/api-0: create started" in output
    assert plain is not live, output[-2000:]
    if live:
        assert "Applying" in output and "expected ≤" in output
    else:
        assert "web/api-0: creating," in output or "web/api-0: pending" in output
        assert "waiting 0s for 2 instance(s)" in output or "to become active" in output
    assert "Apply complete: 2 created" in output
