"""The state commands on a PostgreSQL backend: an apply recorded in the history, ``state
history``, ``state show --serial``, ``state migrate`` between backends, ``force-unlock``."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

import reconciler.cli.commands  # noqa: F401  (registers the commands)
from reconciler.cli.app import cli
from reconciler.state import FileStateStore, new_state

from ..state.conftest import make_state, with_generation
from ..state.postgres_server import fresh_schema, open_postgres

CLEAN_ENV = {"RECONCILER_BACKEND": None, "RECONCILER_STATE_DIR": None}


@pytest.fixture
def postgres_url() -> Iterator[str]:
    with fresh_schema() as url:
        yield url


def run(*args: str, env: dict[str, str | None] | None = None) -> Result:
    return CliRunner().invoke(cli, list(args), env={**CLEAN_ENV, **(env or {})})


def seed_versions(url: str, count: int) -> None:
    store = open_postgres(url)
    state = store.write(make_state())
    for generation in range(1, count):
        state = store.write(with_generation(state, generation))
    store.close()


def test_apply_through_postgres_records_its_versions(
    workspace: tuple[Path, Path, object], sandbox_env: dict[str, str], postgres_url: str
) -> None:
    manifests, state_dir, _ = workspace
    env = {**sandbox_env, "RECONCILER_BACKEND": postgres_url}
    applied = run("apply", str(manifests), "--sandbox", "--state-dir", str(state_dir),
                  "--auto-approve", env=env)  # fmt: skip
    assert applied.exit_code == 0, applied.output
    assert not (state_dir / "web.json").exists(), "the state went to the database"
    listed = run("state", "list", env={"RECONCILER_BACKEND": postgres_url})
    assert listed.output.count("web/api-") == 2
    history = run("state", "history", "web", "--json", env={"RECONCILER_BACKEND": postgres_url})
    versions = json.loads(history.output)
    assert [v["serial"] for v in versions] == list(range(len(versions), 0, -1))
    assert all(v["lock_id"] and "(without a lock)" not in v["written_by"] for v in versions)
    assert len({v["lock_id"] for v in versions}) == 1, "all written under the apply's lease"
    assert "s3cr3t-value" not in history.output


def test_history_and_show_serial(postgres_url: str) -> None:
    seed_versions(postgres_url, 3)
    history = run("state", "history", "inference", "--backend", postgres_url)
    assert history.exit_code == 0, history.output
    lines = history.output.splitlines()
    assert lines[0].startswith("Fleet 'inference', lineage ")
    assert [line.split()[0] for line in lines[2:]] == ["3", "2", "1"]
    assert "(without a lock)" in lines[2]
    limited = run("state", "history", "inference", "--limit", "1", "--backend", postgres_url)
    assert len(limited.output.splitlines()) == 3

    whole = run("state", "show", "--fleet", "inference", "--serial", "2", "--backend", postgres_url)
    assert whole.exit_code == 0, whole.output
    document = json.loads(whole.output)
    assert document["serial"] == 2 and document["fingerprint_key"] == "(hidden)"
    record = run("state", "show", "inference/worker-0", "--serial", "1", "--backend", postgres_url)
    assert json.loads(record.output)["live"] == {"status": "active", "generation": 0}
    current = run("state", "show", "inference/worker-0", "--backend", postgres_url)
    assert json.loads(current.output)["live"]["generation"] == 2


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["state", "show", "--fleet", "inference", "--serial", "9"], "no version with serial 9"),
        (["state", "show", "inference/worker-0", "--fleet", "inference"], "not both or neither"),
        (["state", "show"], "not both or neither"),
        (["state", "history", "ghost"], "Fleet 'ghost' has no state"),
    ],
)
def test_show_and_history_refusals(postgres_url: str, args: list[str], message: str) -> None:
    seed_versions(postgres_url, 1)
    result = run(*args, "--backend", postgres_url)
    assert result.exit_code == 64 and message in result.output


def test_history_needs_a_backend_that_keeps_it(tmp_path: Path) -> None:
    FileStateStore(tmp_path).write(make_state())
    result = run("state", "history", "inference", "--state-dir", str(tmp_path))
    assert result.exit_code == 64 and "keeps no history" in result.output
    current = run(
        "state", "show", "--fleet", "inference", "--serial", "1", "--state-dir", str(tmp_path)
    )
    assert current.exit_code == 0 and json.loads(current.output)["serial"] == 1


def test_migrate_files_to_postgres_and_back_keeps_lineage_and_serial(
    postgres_url: str, tmp_path: Path
) -> None:
    files = FileStateStore(tmp_path / "old")
    state = files.write(make_state())
    state = files.write(with_generation(state, 1))
    files.write(make_state("training"))
    moved = run("state", "migrate", "--to", postgres_url, "--state-dir", str(tmp_path / "old"))
    assert moved.exit_code == 0, moved.output
    assert "Fleet 'inference': copied serial 2" in moved.output and ":***@" in moved.output
    database = open_postgres(postgres_url)
    assert database.read("inference") == state
    assert database.list_fleets() == ["inference", "training"]
    again = run("state", "migrate", "--to", postgres_url, "--state-dir", str(tmp_path / "old"))
    assert again.exit_code == 0 and "already holds serial 2; nothing copied" in again.output

    database.write(with_generation(state, 2))  # life goes on in the database: serial 3
    back = run("state", "migrate", "--backend", postgres_url, "--fleet", "inference",
               "--to", f"file://{tmp_path / 'old'}")  # fmt: skip
    assert back.exit_code == 0, back.output
    restored = files.read("inference")
    assert restored is not None and restored.serial == 3 and restored.lineage == state.lineage


def test_migrate_refuses_another_lineage_and_itself(postgres_url: str, tmp_path: Path) -> None:
    FileStateStore(tmp_path / "old").write(make_state())
    open_postgres(postgres_url).write(new_state("inference"))
    refused = run("state", "migrate", "--to", postgres_url, "--state-dir", str(tmp_path / "old"))
    assert refused.exit_code == 4 and "different history" in refused.output
    itself = run("state", "migrate", "--to", f"file://{tmp_path / 'old'}",
                 "--state-dir", str(tmp_path / "old"))  # fmt: skip
    assert itself.exit_code == 64 and "is the source itself" in itself.output
    empty = run("state", "migrate", "--to", postgres_url, "--state-dir", str(tmp_path / "none"))
    assert empty.exit_code == 64 and "nothing to migrate" in empty.output


def test_force_unlock_a_lease_by_id(postgres_url: str) -> None:
    holder = open_postgres(postgres_url)
    with holder.lock("inference", command="hung apply") as info:
        wrong = run("force-unlock", "inference", "nope", "--force", "--backend", postgres_url)
        assert wrong.exit_code == 5 and "does not match" in wrong.output
        broken = run("force-unlock", "inference", info.id, "--force", "--backend", postgres_url)
        assert broken.exit_code == 0, broken.output
        assert holder.lock_holder("inference") is None
        removed = run("state", "rm", "inference/worker-0", "--backend", postgres_url)
        assert removed.exit_code == 64, "no state yet, but the lock is free: not a lock error"
