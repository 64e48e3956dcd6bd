"""docs/getting-started.md works as written: its ```bash blocks run, in order, in one shell.

The shown output (```text blocks) must appear in what the commands really print, once instance
ids, times and serials are normalised; lines reading "..." stand for omitted output.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.examples.snippets import fenced_blocks

REPO = Path(__file__).resolve().parents[2]
GUIDE = REPO / "docs" / "getting-started.md"

_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
_TIME = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z")
_SERIAL = re.compile(r"(serial|made at) \d+")
_IP = re.compile(r"\b\d{1,3}(?:\.\d{1,3}){3}\b")
_SPACES = re.compile(r"  +")


def normalise(text: str) -> str:
    """Ids, times, serials and IP addresses vary from run to run; so do table column widths
    (they follow the values), so runs of spaces compare as two spaces."""
    text = _UUID.sub("<id>", text)
    text = _TIME.sub("<time>", text)
    text = _IP.sub("<ip>", text)
    return _SPACES.sub("  ", _SERIAL.sub(r"\1 <n>", text))


def shown_output_lines(markdown: str) -> list[str]:
    lines = []
    for block in fenced_blocks(markdown):
        if block.language != "text":
            continue
        for line in block.text.splitlines():
            if line.strip() and line.strip() not in ("...", "…"):
                lines.append(normalise(line.rstrip()))
    return lines


def guide_script(markdown: str) -> str:
    blocks = [block.text for block in fenced_blocks(markdown) if block.language == "bash"]
    return "set -euo pipefail\n" + "".join(blocks)


def reconciler_on_path(bin_dir: Path) -> None:
    """`reconciler` runs this interpreter on this checkout, whatever is installed."""
    bin_dir.mkdir()
    wrapper = bin_dir / "reconciler"
    wrapper.write_text(f'#!/bin/sh\nexec "{sys.executable}" -m reconciler "$@"\n')
    wrapper.chmod(0o755)


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> subprocess.CompletedProcess[str]:
    root = tmp_path_factory.mktemp("getting-started")
    reconciler_on_path(root / "bin")
    work = root / "work"
    work.mkdir()
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("SHADEFORM_", "RECONCILER_")) and k != "NO_COLOR"
    }
    env.update(
        PATH=f"{root / 'bin'}{os.pathsep}{env.get('PATH', '')}",
        PYTHONPATH=os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")])),
        RECONCILER_SANDBOX_BOOT_SECONDS="0",
    )
    return subprocess.run(
        ["bash", "-c", guide_script(GUIDE.read_text(encoding="utf-8"))],
        cwd=work,
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_every_command_succeeds(run: subprocess.CompletedProcess[str]) -> None:
    assert run.returncode == 0, f"stdout:\n{run.stdout}\nstderr:\n{run.stderr}"


def test_the_output_shown_is_the_output_printed(run: subprocess.CompletedProcess[str]) -> None:
    printed = normalise(run.stdout + run.stderr)
    printed_lines = {line.rstrip() for line in printed.splitlines()}
    shown = shown_output_lines(GUIDE.read_text(encoding="utf-8"))
    assert len(shown) > 20
    missing = [line for line in shown if line not in printed_lines]
    assert not missing, "shown in the guide but not printed:\n" + "\n".join(missing)


def test_the_walk_through_ends_with_nothing_left(run: subprocess.CompletedProcess[str]) -> None:
    assert run.stdout.rstrip().endswith("Nothing recorded in state.")


def test_the_script_is_the_guide_in_order() -> None:
    script = guide_script(GUIDE.read_text(encoding="utf-8"))
    steps = ["validate", "--out review.plan", "apply review.plan", "destroy"]
    positions = [script.index(step) for step in steps]
    assert positions == sorted(positions)
