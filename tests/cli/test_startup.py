"""Fast start-up: heavy libraries load only in the commands that use them.

Timing lives in bench/bench_startup.py; this checks the mechanism (what gets imported)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from reconciler.cli import cli
from reconciler.cli.app import COMMAND_MODULES, _register_commands

REPO = Path(__file__).resolve().parents[2]
HEAVY = ("httpx", "rich", "starlette", "uvicorn", "deepdiff", "psycopg", "asyncio", "anyio")

_PROBE = """
import json, sys
sys.argv = ["reconciler", *{args!r}]
from reconciler.cli import main
try:
    main()
except SystemExit:
    pass
print(json.dumps(sorted(m for m in {heavy!r} if m in sys.modules)), file=sys.stderr)
"""


def _heavy_modules_loaded(*args: str) -> list[str]:
    done = subprocess.run(
        [sys.executable, "-c", _PROBE.format(args=list(args), heavy=HEAVY)],
        capture_output=True,
        text=True,
        cwd=REPO,
    )
    return json.loads(done.stderr.strip().splitlines()[-1])


@pytest.mark.parametrize("args", [("--version",), ("validate", "specs"), ("schema",)])
def test_light_commands_load_no_heavy_library(args: tuple[str, ...]) -> None:
    assert _heavy_modules_loaded(*args) == []


def test_every_command_is_found_where_the_lazy_map_says() -> None:
    _register_commands()
    defined = {name: command.callback.__module__ for name, command in cli.commands.items()}  # type: ignore[union-attr]
    assert set(defined) == set(COMMAND_MODULES)
    for name, module in defined.items():
        assert module == f"reconciler.cli.{COMMAND_MODULES[name]}", name
