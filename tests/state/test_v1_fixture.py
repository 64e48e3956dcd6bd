"""A state written by the last release of format 1 upgrades on read, and plans no change."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from click.testing import CliRunner

from reconciler.cli import cli
from reconciler.cli.app import _register_commands
from reconciler.models.state import STATE_FORMAT_VERSION
from reconciler.state import FileStateStore

_register_commands()
FIXTURE = Path(__file__).parent / "fixtures" / "v1"


def test_the_fixture_is_format_1() -> None:
    for path in (FIXTURE / "state").glob("*.json"):
        if path.name != "sandbox-cloud.json":
            assert json.loads(path.read_text())["format_version"] == 1, path


def test_a_v1_state_upgrades_on_read_and_plans_no_change(tmp_path: Path) -> None:
    shutil.copytree(FIXTURE, tmp_path / "v1")
    root = tmp_path / "v1"
    store = FileStateStore(root / "state")
    for fleet in ("batch-spot", "inference", "training"):
        state = store.read(fleet)
        assert state is not None and state.format_version == STATE_FORMAT_VERSION
        assert state.instances  # every record carried over
    args = ["plan", str(root / "specs"), "--sandbox", "--state-dir", str(root / "state")]
    env = {"RECONCILER_SANDBOX_BOOT_SECONDS": "0", "NO_COLOR": "1"}
    result = CliRunner().invoke(
        cli, [*args, "--detailed-exitcode"], env=env, catch_exceptions=False
    )
    assert result.exit_code == 0, result.output
    assert "No changes. Your fleets match the manifests." in result.output
