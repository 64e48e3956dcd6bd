"""``reconciler state list|show|rm|mv`` and ``reconciler force-unlock`` through CliRunner."""

from __future__ import annotations

import json
import os
import pty
import select
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

import reconciler.cli.state  # noqa: F401  (registers the commands)
from reconciler.cli.app import cli
from reconciler.models.state import CreateIntent, FleetState, InstanceRecord
from reconciler.state import FileStateStore, new_state
from reconciler.state.holder import make_lock_info

FINGERPRINT = "(sensitive:hmac-sha256:0f3a)"


def record(address: str, instance_id: str) -> InstanceRecord:
    return InstanceRecord(
        address=address,
        instance_id=instance_id,
        applied_spec={
            "name": address.split("/")[1],
            "envs": [{"name": "HF_TOKEN", "value": FINGERPRINT}],
        },
        created_at="2024-05-01T12:00:00Z",
        updated_at="2024-05-01T12:00:00Z",
    )


def seed(
    store: FileStateStore, fleet: str, addresses: dict[str, str], *, intent: str | None = None
) -> FleetState:
    state = new_state(fleet)
    instances = {
        f"{fleet}/{name}": record(f"{fleet}/{name}", iid) for name, iid in addresses.items()
    }
    intents = {}
    if intent:
        intents["i-1"] = CreateIntent(
            intent_id="i-1", address=f"{fleet}/{intent}", created_at="2024-05-01T12:00:00Z"
        )
    return store.write(state.model_copy(update={"instances": instances, "intents": intents}))


@pytest.fixture
def state_dir(tmp_path: Path) -> Path:
    return tmp_path / "state"


@pytest.fixture
def store(state_dir: Path) -> FileStateStore:
    store = FileStateStore(state_dir)
    seed(store, "inference", {"vllm-0": "inst-a", "vllm-1": "inst-b"}, intent="vllm-2")
    seed(store, "training", {"trainer": "inst-t"})
    return store


def run(state_dir: Path, *args: str) -> Result:
    return CliRunner().invoke(
        cli, [*args, "--state-dir", str(state_dir)], env={"RECONCILER_STATE_DIR": None}
    )


def test_list_all_fleets(store: FileStateStore, state_dir: Path) -> None:
    result = run(state_dir, "state", "list")
    assert result.exit_code == 0, result.output
    assert result.output.splitlines() == [
        "inference/vllm-0  inst-a",
        "inference/vllm-1  inst-b",
        "inference/vllm-2  (create pending, intent i-1)",
        "training/trainer  inst-t",
    ]


def test_list_one_fleet_and_the_state_dir_from_the_environment(
    store: FileStateStore, state_dir: Path
) -> None:
    result = CliRunner().invoke(
        cli, ["state", "list", "--fleet", "training"], env={"RECONCILER_STATE_DIR": str(state_dir)}
    )
    assert result.exit_code == 0 and result.output == "training/trainer  inst-t\n"


def test_list_unknown_fleet_and_empty_dir(
    store: FileStateStore, state_dir: Path, tmp_path: Path
) -> None:
    result = run(state_dir, "state", "list", "--fleet", "nope")
    assert result.exit_code == 64 and "Fleet 'nope' has no state" in result.output
    empty = run(tmp_path / "empty", "state", "list")
    assert empty.exit_code == 0 and "Nothing recorded" in empty.output


def test_show_prints_the_record_with_fingerprints_only(
    store: FileStateStore, state_dir: Path
) -> None:
    result = run(state_dir, "state", "show", "inference/vllm-1")
    assert result.exit_code == 0, result.output
    shown = json.loads(result.output)
    assert shown["instance_id"] == "inst-b" and shown["address"] == "inference/vllm-1"
    assert shown["applied_spec"]["envs"][0]["value"] == FINGERPRINT


@pytest.mark.parametrize(
    ("address", "message"),
    [
        ("inference/ghost", "Nothing is recorded at inference/ghost"),
        ("vllm-0", "not an address: write <fleet>/<name>"),
        ("inference/a/b", "not an address"),
        (".hidden/x", "not a valid fleet name"),
        ("absent/x", "Fleet 'absent' has no state"),
    ],
)
def test_show_refuses_bad_addresses(
    store: FileStateStore, state_dir: Path, address: str, message: str
) -> None:
    result = run(state_dir, "state", "show", address)
    assert result.exit_code == 64 and message in result.output
    assert "Traceback" not in result.output


def test_damaged_state_is_one_clear_error(state_dir: Path) -> None:
    state_dir.mkdir()
    (state_dir / "inference.json").write_text("{broken")
    result = run(state_dir, "state", "show", "inference/vllm-0")
    assert result.exit_code == 4
    assert "not valid JSON" in result.output and "Traceback" not in result.output


def test_rm_forgets_the_record_and_bumps_the_serial(store: FileStateStore, state_dir: Path) -> None:
    result = run(state_dir, "state", "rm", "inference/vllm-0")
    assert result.exit_code == 0, result.output
    assert "Removed inference/vllm-0 (instance inst-a)" in result.output
    assert "serial 2" in result.output and "not touched" in result.output
    state = store.read("inference")
    assert state is not None and state.serial == 2
    assert sorted(state.instances) == ["inference/vllm-1"] and "i-1" in state.intents


def test_rm_of_a_pending_create(store: FileStateStore, state_dir: Path) -> None:
    result = run(state_dir, "state", "rm", "inference/vllm-2")
    assert result.exit_code == 0 and "its pending create" in result.output
    state = store.read("inference")
    assert state is not None and state.intents == {} and len(state.instances) == 2


def test_rm_unknown_address_changes_nothing(store: FileStateStore, state_dir: Path) -> None:
    result = run(state_dir, "state", "rm", "inference/ghost")
    assert result.exit_code == 64
    state = store.read("inference")
    assert state is not None and state.serial == 1


def test_rm_refused_while_locked_naming_the_holder(store: FileStateStore, state_dir: Path) -> None:
    with store.lock("inference", command="reconciler apply fleets/") as info:
        result = run(state_dir, "state", "rm", "inference/vllm-0")
        assert result.exit_code == 5
        assert info.id in result.output and "reconciler apply fleets/" in result.output
        waited = run(state_dir, "state", "rm", "inference/vllm-0", "--lock-timeout", "200ms")
        assert waited.exit_code == 5 and "after waiting 0.2s" in waited.output
    state = store.read("inference")
    assert state is not None and "inference/vllm-0" in state.instances


def test_a_lock_on_another_fleet_does_not_block(store: FileStateStore, state_dir: Path) -> None:
    with store.lock("training", command="training apply"):
        result = run(state_dir, "state", "rm", "inference/vllm-0")
    assert result.exit_code == 0, result.output


def test_bad_lock_timeout_is_a_usage_error(store: FileStateStore, state_dir: Path) -> None:
    result = run(state_dir, "state", "rm", "inference/vllm-0", "--lock-timeout", "soon")
    assert result.exit_code == 64 and "'soon' is not a duration" in result.output


def test_mv_within_a_fleet(store: FileStateStore, state_dir: Path) -> None:
    result = run(state_dir, "state", "mv", "inference/vllm-2", "inference/vllm-9")
    assert result.exit_code == 0, result.output
    result = run(state_dir, "state", "mv", "inference/vllm-0", "inference/chat-0")
    assert result.exit_code == 0, result.output
    assert "Moved inference/vllm-0 to inference/chat-0" in result.output
    state = store.read("inference")
    assert state is not None and state.serial == 3
    assert sorted(state.instances) == ["inference/chat-0", "inference/vllm-1"]
    moved = state.instances["inference/chat-0"]
    assert moved.address == "inference/chat-0" and moved.instance_id == "inst-a"
    assert moved.applied_spec["name"] == "vllm-0", "the applied spec stays as it was applied"
    assert state.intents["i-1"].address == "inference/vllm-9"


@pytest.mark.parametrize(
    ("source", "destination", "message"),
    [
        ("inference/vllm-0", "inference/vllm-1", "already recorded"),
        ("inference/vllm-0", "inference/vllm-2", "already recorded"),
        ("inference/ghost", "inference/new", "Nothing is recorded at inference/ghost"),
        ("inference/vllm-0", "training/vllm-0", "Cannot move inference/vllm-0 to another fleet"),
        ("inference/vllm-0", "inference/vllm-0", "are the same address"),
    ],
)
def test_mv_refusals(
    store: FileStateStore, state_dir: Path, source: str, destination: str, message: str
) -> None:
    result = run(state_dir, "state", "mv", source, destination)
    assert result.exit_code == 64 and message in result.output
    state = store.read("inference")
    assert state is not None and state.serial == 1


def test_force_unlock_without_a_terminal_demands_force(
    store: FileStateStore, state_dir: Path
) -> None:
    with store.lock("inference", command="hung apply") as info:
        result = run(state_dir, "force-unlock", "inference", info.id)
        assert result.exit_code == 64
        assert "stdin is not a terminal; pass --force" in result.output
        assert store.lock_holder("inference") == info


def test_force_unlock_with_force_breaks_the_lock(store: FileStateStore, state_dir: Path) -> None:
    with store.lock("inference", command="hung apply") as info:
        result = run(state_dir, "force-unlock", "inference", info.id, "--force")
        assert result.exit_code == 0, result.output
        assert f"Lock {info.id} on fleet 'inference' was broken" in result.output
        follow_up = run(state_dir, "state", "rm", "inference/vllm-0")
        assert follow_up.exit_code == 0, "the next run can take the lock"


@pytest.mark.parametrize("locked", [True, False])
def test_force_unlock_refuses_a_wrong_id(
    store: FileStateStore, state_dir: Path, locked: bool
) -> None:
    if locked:
        with store.lock("inference", command="apply"):
            result = run(state_dir, "force-unlock", "inference", "wrong", "--force")
        assert result.exit_code == 5 and "does not match" in result.output
    else:
        result = run(state_dir, "force-unlock", "inference", "wrong", "--force")
        assert result.exit_code == 5 and "is not locked" in result.output


def leave_dead_holder_record(state_dir: Path) -> str:
    info = make_lock_info("inference", command="crashed apply", environ={}, now=datetime.now(UTC))
    (state_dir / "inference.lock").write_text(json.dumps(info.model_dump()))
    return info.id


def run_in_terminal(state_dir: Path, args: list[str], answer: bytes) -> tuple[int, str]:
    """Run the real CLI with a pseudo-terminal as stdin/stdout and type ``answer``."""
    controller, terminal = pty.openpty()
    env = {**os.environ, "RECONCILER_STATE_DIR": str(state_dir), "NO_COLOR": "1"}
    process = subprocess.Popen(
        [sys.executable, "-m", "reconciler", *args],
        stdin=terminal,
        stdout=terminal,
        stderr=terminal,
        env=env,
        close_fds=True,
    )
    os.close(terminal)
    output = b""
    answered = False
    try:
        while True:
            ready, _, _ = select.select([controller], [], [], 20)
            if not ready:
                raise AssertionError(f"no output from the CLI; got so far: {output!r}")
            try:
                chunk = os.read(controller, 4096)
            except OSError:  # the terminal closed: the process exited
                break
            if not chunk:
                break
            output += chunk
            if not answered and b"[y/N]" in output:
                os.write(controller, answer)
                answered = True
    finally:
        os.close(controller)
        code = process.wait(timeout=20)
    return code, output.decode(errors="replace")


@pytest.mark.parametrize(("answer", "code", "broken"), [(b"y\n", 0, True), (b"n\n", 1, False)])
def test_force_unlock_asks_on_a_terminal(
    store: FileStateStore, state_dir: Path, answer: bytes, code: int, broken: bool
) -> None:
    lock_id = leave_dead_holder_record(state_dir)
    exit_code, output = run_in_terminal(state_dir, ["force-unlock", "inference", lock_id], answer)
    assert f"lock {lock_id} held by" in output and "crashed apply" in output
    assert "Break this lock?" in output
    assert exit_code == code, output
    assert (store.lock_holder("inference") is None) is broken
