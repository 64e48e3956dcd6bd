"""Shared state options: durations and the state directory."""

from __future__ import annotations

from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from reconciler.cli.options import parse_duration, state_options


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("0", 0.0),
        ("30s", 30.0),
        ("5m", 300.0),
        ("1h", 3600.0),
        ("1m30s", 90.0),
        ("500ms", 0.5),
        ("1.5s", 1.5),
        (" 2M ", 120.0),
        ("0s", 0.0),
    ],
)
def test_parse_duration(text: str, seconds: float) -> None:
    assert parse_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize("text", ["", "30", "-5s", "5 m", "s", "1d", "1h-", "abc", "1.s"])
def test_parse_duration_rejects(text: str) -> None:
    with pytest.raises(ValueError, match="not a duration: write a number with a unit"):
        parse_duration(text)


@click.command()
@state_options
def show_options(state_dir: Path, lock_timeout: float) -> None:
    click.echo(f"{state_dir}|{lock_timeout}")


def test_defaults() -> None:
    result = CliRunner().invoke(show_options, [], env={"RECONCILER_STATE_DIR": None})
    assert result.exit_code == 0 and result.output == "state|0.0\n"


def test_values_and_environment(tmp_path: Path) -> None:
    runner = CliRunner()
    result = runner.invoke(
        show_options, ["--lock-timeout", "5m"], env={"RECONCILER_STATE_DIR": str(tmp_path)}
    )
    assert result.output == f"{tmp_path}|300.0\n"
    result = runner.invoke(show_options, ["--state-dir", "elsewhere", "--lock-timeout", "1m30s"])
    assert result.output == "elsewhere|90.0\n"


def test_bad_duration_is_a_clear_usage_error() -> None:
    result = CliRunner().invoke(show_options, ["--lock-timeout", "30"])
    assert result.exit_code == 2  # click's own; the reconciler group maps it to 64
    assert "Invalid value for '--lock-timeout'" in result.output
    assert "'30' is not a duration" in result.output
