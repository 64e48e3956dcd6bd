"""The local file backend: layout, atomic replace with backup, modes, refusals, upgrades."""

from __future__ import annotations

import json
import os
import stat
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from reconciler.errors import StateError
from reconciler.models.state import STATE_FORMAT_VERSION, FleetState
from reconciler.state import FileStateStore, open_store
from reconciler.state.codec import encode_state
from reconciler.state.upgrade import UPGRADES

from .conftest import make_state, with_generation


@pytest.fixture
def state_dir(tmp_path: Path) -> Path:
    return tmp_path / "state"


@pytest.fixture
def store(state_dir: Path) -> FileStateStore:
    return FileStateStore(state_dir)


def mode_of(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_open_store_is_the_file_backend(state_dir: Path) -> None:
    store = open_store(state_dir)
    assert isinstance(store, FileStateStore) and store.state_dir == state_dir


def test_write_creates_dir_and_a_pretty_sorted_0600_file(
    store: FileStateStore, state_dir: Path
) -> None:
    saved = store.write(make_state())
    path = state_dir / "inference.json"
    text = path.read_text()
    assert text == encode_state(saved)
    assert text.endswith("}\n") and text.startswith('{\n  "fingerprint_key"')
    keys = list(json.loads(text))
    assert keys == sorted(keys)
    assert mode_of(path) == 0o600
    assert mode_of(state_dir) == 0o700


def test_mode_is_0600_whatever_the_umask(store: FileStateStore, state_dir: Path) -> None:
    old_umask = os.umask(0)
    try:
        saved = store.write(make_state())
        store.write(with_generation(saved, 1))
    finally:
        os.umask(old_umask)
    assert mode_of(state_dir / "inference.json") == 0o600
    assert mode_of(state_dir / "inference.json.backup") == 0o600


def test_backup_holds_the_previous_version(store: FileStateStore, state_dir: Path) -> None:
    first = store.write(make_state())
    assert not (state_dir / "inference.json.backup").exists()
    second = store.write(with_generation(first, 1))
    backup = FleetState.model_validate_json((state_dir / "inference.json.backup").read_text())
    assert backup == first
    store.write(with_generation(second, 2))
    backup = FleetState.model_validate_json((state_dir / "inference.json.backup").read_text())
    assert backup == second


def test_unchanged_content_is_not_rewritten(store: FileStateStore, state_dir: Path) -> None:
    saved = store.write(make_state())
    before = (state_dir / "inference.json").stat()
    assert store.write(saved) is saved
    after = (state_dir / "inference.json").stat()
    assert (after.st_ino, after.st_mtime_ns) == (before.st_ino, before.st_mtime_ns)
    assert not (state_dir / "inference.json.backup").exists()


def test_no_temp_files_left_after_writes(store: FileStateStore, state_dir: Path) -> None:
    saved = store.write(make_state())
    store.write(with_generation(saved, 1))
    leftovers = [p.name for p in state_dir.iterdir() if ".tmp-" in p.name]
    assert leftovers == []


def test_failed_replace_keeps_the_previous_state(store: FileStateStore, state_dir: Path) -> None:
    saved = store.write(make_state())
    (state_dir / "inference.json.backup").mkdir()  # the backup step will fail
    with pytest.raises(StateError, match="previous state is intact"):
        store.write(with_generation(saved, 1))
    assert store.read("inference") == saved
    assert [p.name for p in state_dir.iterdir() if ".tmp-" in p.name] == []


def write_document(state_dir: Path, fleet: str, document: Any) -> None:
    state_dir.mkdir(parents=True, exist_ok=True)
    (state_dir / f"{fleet}.json").write_text(json.dumps(document))


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("{not json", "not valid JSON"),
        ("[1, 2]", "not a JSON object"),
        ('{"fleet": "inference"}', "no valid format_version"),
        ('{"format_version": 1, "fleet": "inference"}', "damaged: lineage"),
    ],
)
def test_damaged_state_is_refused(
    store: FileStateStore, state_dir: Path, content: str, message: str
) -> None:
    state_dir.mkdir()
    (state_dir / "inference.json").write_text(content)
    with pytest.raises(StateError, match=message):
        store.read("inference")
    with pytest.raises(StateError):
        store.write(make_state())


def test_state_of_another_fleet_is_refused(store: FileStateStore, state_dir: Path) -> None:
    write_document(state_dir, "inference", make_state("training").model_dump(mode="json"))
    with pytest.raises(StateError, match="belongs to fleet 'training'"):
        store.read("inference")


def test_newer_format_is_refused(store: FileStateStore, state_dir: Path) -> None:
    newer = STATE_FORMAT_VERSION + 1
    document = make_state().model_dump(mode="json") | {"format_version": newer}
    write_document(state_dir, "inference", document)
    with pytest.raises(StateError, match=f"newer than the {STATE_FORMAT_VERSION}"):
        store.read("inference")


def test_older_format_is_upgraded_on_read_and_written_as_current(state_dir: Path) -> None:
    current = make_state().model_dump(mode="json") | {"serial": 4}
    v0 = {k: v for k, v in current.items() if k not in ("format_version", "intents")}
    v0["format_version"] = 0
    v0["resources"] = v0.pop("instances")

    def v0_to_v1(document: dict[str, Any]) -> dict[str, Any]:
        document["instances"] = document.pop("resources")
        document["intents"] = {}
        return document | {"format_version": 1}

    write_document(state_dir, "inference", v0)
    store = FileStateStore(state_dir, upgrades={0: v0_to_v1, **UPGRADES})
    state = store.read("inference")
    assert state is not None and state.format_version == STATE_FORMAT_VERSION
    assert state.serial == 4
    assert state.instances.keys() == current["instances"].keys()
    assert store.write(state) is state, "an upgrade alone is not a content change"
    saved = store.write(with_generation(state, 1))
    assert saved.serial == 5
    written = json.loads((state_dir / "inference.json").read_text())
    assert written["format_version"] == STATE_FORMAT_VERSION
    assert json.loads((state_dir / "inference.json.backup").read_text())["format_version"] == 0


def test_older_format_without_upgrade_path_is_refused(state_dir: Path) -> None:
    document = make_state().model_dump(mode="json") | {"format_version": 0}
    write_document(state_dir, "inference", document)
    with pytest.raises(StateError, match=f"no upgrade from it to version {STATE_FORMAT_VERSION}"):
        FileStateStore(state_dir).read("inference")


def test_list_fleets_skips_backups_copies_and_foreign_json(
    store: FileStateStore, state_dir: Path
) -> None:
    saved = store.write(make_state("inference"))
    store.write(with_generation(saved, 1))
    store.write(make_state("training"))
    store.write_emergency_copy(saved)
    (state_dir / "sandbox-cloud.json").write_text('{"instances": {}}')
    (state_dir / ".inference.json.tmp-abc").write_text("partial")
    (state_dir / "broken.json").write_text("{oops")
    (state_dir / "README.md").write_text("docs")
    assert store.list_fleets() == ["broken", "inference", "training"]


def test_list_fleets_of_missing_dir_is_empty(tmp_path: Path) -> None:
    assert FileStateStore(tmp_path / "nowhere").list_fleets() == []


def test_emergency_copy_goes_to_fallback_when_state_dir_is_unusable(tmp_path: Path) -> None:
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("a file where the state dir should be")
    store = FileStateStore(blocker, emergency_fallback_dir=tmp_path / "fallback")
    state = make_state()
    path = store.write_emergency_copy(state)
    assert path.parent == tmp_path / "fallback"
    assert mode_of(path) == 0o600
    assert FleetState.model_validate_json(path.read_text()) == state


def test_emergency_copies_made_at_the_same_instant_do_not_collide(state_dir: Path) -> None:
    instant = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
    store = FileStateStore(state_dir, now=lambda: instant)
    states = [with_generation(make_state(), generation) for generation in range(3)]
    paths = [store.write_emergency_copy(state) for state in states]
    assert [p.name for p in paths] == [
        "inference.emergency-20240501T120000000000Z.json",
        "inference.emergency-20240501T120000000000Z-2.json",
        "inference.emergency-20240501T120000000000Z-3.json",
    ]
    assert [FleetState.model_validate_json(p.read_text()) for p in paths] == states
    assert store.list_fleets() == []


def test_repr_and_errors_never_show_the_fingerprint_key(
    store: FileStateStore, state_dir: Path
) -> None:
    state = make_state()
    assert state.fingerprint_key not in repr(state)
    saved = store.write(state)
    with pytest.raises(StateError) as caught:
        store.write(saved.model_copy(update={"lineage": "other"}))
    assert state.fingerprint_key not in str(caught.value)


def test_an_unchanged_file_is_not_parsed_again_and_any_write_is_seen(
    store: FileStateStore, state_dir: Path
) -> None:
    """A watcher reads every state every cycle: the same file gives the same parsed state;
    a write by this store, by another store (another process) or in place is seen."""
    saved = store.write(make_state())
    first = store.read("inference")
    assert first is not None and store.read("inference") == first
    first.instances.clear()  # a caller's copy: the next read is not changed by it
    again = store.read("inference")
    assert again is not None and again.instances == saved.instances
    mine = store.write(with_generation(saved, 1))
    assert store.read("inference") == mine
    other = FileStateStore(state_dir)
    theirs = other.write(with_generation(mine, 2))
    assert store.read("inference") == theirs
    path = state_dir / "inference.json"
    edited = json.loads(path.read_text())
    edited["serial"] = theirs.serial + 5
    with path.open("r+") as handle:  # in place: the same inode
        handle.write(json.dumps(edited))
        handle.truncate()
    seen = store.read("inference")
    assert seen is not None and seen.serial == theirs.serial + 5
