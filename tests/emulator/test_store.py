"""Persistence: snapshot + journal, restarts, crashes mid-write, foreign files."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from reconciler.emulator import Emulator, EmulatorConfig
from reconciler.emulator.store import DataFileError, FileStore, MemoryStore

from .conftest import Api, FakeClock, create_body


def test_changes_survive_without_a_clean_close(data_file: Path) -> None:
    store = FileStore(data_file)
    store.load()
    store.put("instance", "a", {"n": 1})
    store.put("instance", "b", {"n": 2})
    store.remove("instance", "a")
    store.put("meta", "k", "v")
    # no close(): as if the process had been killed
    assert FileStore(data_file).load() == {"instance": {"b": {"n": 2}}, "meta": {"k": "v"}}


def test_load_folds_the_journal_into_an_atomic_snapshot(data_file: Path) -> None:
    store = FileStore(data_file)
    store.load()
    store.put("instance", "a", {"n": 1})
    store.close()
    FileStore(data_file).load()
    snapshot = json.loads(data_file.read_text())
    assert snapshot == {
        "format": "shadeform-emulator",
        "version": 1,
        "tables": {"instance": {"a": {"n": 1}}},
    }
    assert Path(f"{data_file}.journal").read_text() == ""
    assert sorted(p.name for p in data_file.parent.iterdir()) == [
        "cloud.json",
        "cloud.json.journal",
    ]


def test_the_journal_is_compacted_when_it_outgrows_the_data(data_file: Path) -> None:
    store = FileStore(data_file, min_compact_lines=10)
    store.load()
    for n in range(25):
        store.put("instance", "a", {"n": n})
    journal_lines = Path(f"{data_file}.journal").read_text().splitlines()
    assert len(journal_lines) < 10
    assert FileStore(data_file).load() == {"instance": {"a": {"n": 24}}}


def test_a_torn_last_journal_line_is_ignored(data_file: Path) -> None:
    store = FileStore(data_file)
    store.load()
    store.put("instance", "a", {"n": 1})
    store.close()
    with open(f"{data_file}.journal", "a") as journal:
        journal.write('{"kind":"instance","key":"b","val')
    assert FileStore(data_file).load() == {"instance": {"a": {"n": 1}}}


def test_a_corrupt_journal_line_in_the_middle_is_an_error(data_file: Path) -> None:
    Path(f"{data_file}.journal").write_text('garbage\n{"kind":"x","key":"k","value":1}\n')
    with pytest.raises(DataFileError, match="journal:1 is corrupt"):
        FileStore(data_file).load()


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("not json", "is not valid JSON"),
        ('{"hello": 1}', "is not a Shadeform emulator data file"),
        ('{"format": "shadeform-emulator", "version": 99, "tables": {}}', "format version 99"),
    ],
)
def test_foreign_files_are_refused(data_file: Path, content: str, message: str) -> None:
    data_file.write_text(content)
    with pytest.raises(DataFileError, match=message):
        FileStore(data_file).load()
    assert data_file.read_text() == content  # never overwritten


def test_memory_store_keeps_nothing() -> None:
    store = MemoryStore()
    store.put("instance", "a", 1)
    assert store.load() == {}


def test_the_emulated_cloud_survives_a_restart(data_file: Path, clock: FakeClock) -> None:
    def start() -> Emulator:
        return Emulator(EmulatorConfig(clock=clock, boot_seconds=10, data_file=data_file))

    first = start()
    api = Api(first)
    instance_id = api.post("/instances/create", json=create_body(tags=["t"])).json()["id"]
    api.post("/instances/create", json=create_body())
    gone_id = api.post("/instances/create", json=create_body(name="gone")).json()["id"]
    api.post(f"/instances/{gone_id}/delete")
    volume_id = api.post(
        "/volumes/create",
        json={"cloud": "hyperstack", "region": "canada-1", "size_in_gb": 5, "name": "v"},
    ).json()["id"]
    keys_before = api.get("/sshkeys").json()
    first.set_capacity("lambdalabs", "us-east-1", "H100", available=False)
    first.close()

    clock.advance(10)
    second = start()
    api = Api(second)
    assert api.get(f"/instances/{instance_id}/info").json()["status"] == "active"
    assert api.get(f"/instances/{instance_id}/info").json()["tags"] == ["t"]
    assert api.get(f"/instances/{gone_id}/info").status_code == 404
    assert second.create_count("web-0") == 2
    assert api.get(f"/volumes/{volume_id}/info").status_code == 200
    assert api.get("/sshkeys").json() == keys_before
    refused = api.post(
        "/instances/create",
        json=create_body(cloud="lambdalabs", region="us-east-1", shade_instance_type="H100"),
    )
    assert refused.status_code == 409
    second.close()


def test_data_files_are_private_to_their_owner(data_file: Path) -> None:
    store = FileStore(data_file)
    store.load()
    store.put("instance", "a", {"envs": [{"name": "TOKEN", "value": "secret"}]})
    store.close()
    for path in (data_file, Path(f"{data_file}.journal")):
        assert path.stat().st_mode & 0o777 == 0o600
