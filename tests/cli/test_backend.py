"""Choosing the state backend (--backend > RECONCILER_BACKEND > manifest backend: > manifest
state_dir: > --state-dir) and ``reconciler backend init``."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path

import click
import pytest
from click.testing import CliRunner
from pydantic import SecretStr

import reconciler.cli.commands  # noqa: F401  (registers the commands)
from reconciler.cli.app import cli
from reconciler.cli.options import state_options
from reconciler.cli.plan import write_plan_file
from reconciler.cli.session import FleetStores, command_line, plan_digest
from reconciler.models.plan import FleetPlan, Plan
from reconciler.models.spec import Fleet
from reconciler.state import FileStateStore
from reconciler.state.postgres import PostgresStateStore

from ..state.postgres_server import bare_schema, fresh_schema

SECRET = "s3cr3t-pw-never-shown"
CLEAN_ENV = {"RECONCILER_BACKEND": None, "RECONCILER_STATE_DIR": None}


@pytest.fixture
def postgres_url() -> Iterator[str]:
    with fresh_schema() as url:
        yield url


def fleet(tmp_path: Path, name: str, **fields: object) -> Fleet:
    return Fleet(
        name=name,
        source=str(tmp_path / "fleets" / f"{name}.yaml"),
        instances=(),
        digest="sha256:0",
        **fields,  # type: ignore[arg-type]
    )


def where(store: object) -> str:
    if isinstance(store, FileStateStore):
        return f"file:{store.state_dir}"
    assert isinstance(store, PostgresStateStore)
    return f"postgres:{store.backend.schema}"


def test_precedence_without_an_override(tmp_path: Path) -> None:
    fleets = [
        fleet(tmp_path, "a", backend=SecretStr("postgresql://u:pw@db/x?schema=from_manifest")),
        fleet(tmp_path, "b", backend=SecretStr("file://rel"), state_dir="ignored"),
        fleet(tmp_path, "c", state_dir="own"),
        fleet(tmp_path, "d"),
    ]
    stores = FleetStores.for_fleets(fleets, Path("cli-dir"), backend="")
    assert {name: where(s) for name, s in stores.stores.items()} == {
        "a": "postgres:from_manifest",
        "b": f"file:{tmp_path / 'fleets' / 'rel'}",
        "c": f"file:{tmp_path / 'fleets' / 'own'}",
        "d": "file:cli-dir",
    }


def test_an_override_wins_over_every_manifest_and_fleets_share_its_store(tmp_path: Path) -> None:
    fleets = [
        fleet(tmp_path, "a", backend=SecretStr("postgresql://db/x?schema=from_manifest")),
        fleet(tmp_path, "c", state_dir="own"),
    ]
    stores = FleetStores.for_fleets(
        fleets, Path("cli-dir"), backend="postgresql://db/x?schema=chosen"
    )
    assert {where(s) for s in stores.stores.values()} == {"postgres:chosen"}
    assert stores.stores["a"] is stores.stores["c"], "one store, one connection"


@click.command()
@state_options
def show_choice(state_dir: Path, lock_timeout: float) -> None:
    stores = FleetStores.for_fleets([fleet(Path("/m"), "a", state_dir="own")], state_dir)
    click.echo(where(stores.stores["a"]))


def test_flag_beats_environment_beats_manifest() -> None:
    runner = CliRunner()
    env = {**CLEAN_ENV, "RECONCILER_BACKEND": "postgresql://db/x?schema=from_env"}
    assert runner.invoke(show_choice, [], env=CLEAN_ENV).output == "file:/m/fleets/own\n"
    assert runner.invoke(show_choice, [], env=env).output == "postgres:from_env\n"
    flagged = runner.invoke(show_choice, ["--backend", "/flag/dir"], env=env)
    assert flagged.output == "file:/flag/dir\n"


def test_a_bad_backend_is_a_usage_error_without_the_password() -> None:
    result = CliRunner().invoke(
        cli, ["state", "list", "--backend", f"mysql://root:{SECRET}@db/x"], env=CLEAN_ENV
    )
    assert result.exit_code == 64 and "not a state backend" in result.output
    assert SECRET not in result.output


def test_command_line_hides_url_passwords() -> None:
    line = command_line(["apply", "--backend", f"postgresql://ci:{SECRET}@db/x", "specs"])
    assert SECRET not in line and "postgresql://ci:***@db/x" in line


def test_plan_digest_is_the_saved_plan_files_sha256(tmp_path: Path) -> None:
    plan = Plan(fleets=(FleetPlan(fleet="web", lineage=None, serial=0, manifest_digest="d"),))
    out = tmp_path / "plan.json"
    write_plan_file(plan, out)
    assert plan_digest(plan) == "sha256:" + hashlib.sha256(out.read_bytes()).hexdigest()


def test_backend_init_creates_then_finds_nothing_to_do() -> None:
    runner = CliRunner()
    with bare_schema() as url:
        first = runner.invoke(cli, ["backend", "init", "--backend", url], env=CLEAN_ENV)
        assert first.exit_code == 0, first.output
        assert "version 0 -> 1" in first.output and ":***@" in first.output
        again = runner.invoke(
            cli, ["backend", "init"], env={**CLEAN_ENV, "RECONCILER_BACKEND": url}
        )
        assert again.exit_code == 0 and "already at version 1; nothing to do" in again.output
        listed = runner.invoke(cli, ["state", "list", "--backend", url], env=CLEAN_ENV)
        assert listed.exit_code == 0 and "Nothing recorded" in listed.output


def test_backend_init_on_files_needs_nothing(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        cli, ["backend", "init", "--state-dir", str(tmp_path / "s")], env=CLEAN_ENV
    )
    assert result.exit_code == 0 and "needs no set-up" in result.output


def test_an_uninitialised_database_says_what_to_run() -> None:
    with bare_schema() as bare:
        result = CliRunner().invoke(cli, ["state", "list", "--backend", bare], env=CLEAN_ENV)
    assert result.exit_code == 4 and "reconciler backend init" in result.output


def test_wrong_credentials_never_show_the_password(postgres_url: str) -> None:
    wrong = postgres_url.replace(":reconciler_test@", f":{SECRET}@")
    assert SECRET in wrong
    result = CliRunner().invoke(cli, ["state", "list", "--backend", wrong], env=CLEAN_ENV)
    assert result.exit_code == 4 and SECRET not in result.output
    assert "Traceback" not in result.output
