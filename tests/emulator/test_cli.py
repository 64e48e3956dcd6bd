"""``reconciler emulator``: flag handling with CliRunner, and a real process end to end.

(Tests of ``reconciler/cli/emulator.py``; kept beside the emulator's other tests.)
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from click.testing import CliRunner

from reconciler.cli import cli
from reconciler.cli.app import _register_commands
from reconciler.cli.emulator import build_config
from reconciler.emulator import SANDBOX_API_KEY
from reconciler.emulator.settings_file import EmulatorSettings, load_settings
from reconciler.errors import UsageError

from .conftest import create_body

_register_commands()


def run(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(cli, ["emulator", *args])
    return result.exit_code, result.output


def test_non_loopback_hosts_are_refused_without_allow_remote() -> None:
    code, output = run("--host", "0.0.0.0")
    assert code == 64
    assert "refusing to listen on non-loopback host '0.0.0.0'" in output
    assert "Traceback" not in output


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--error-rate", "2"], "invalid fault settings: error_rate"),
        (["--unavailable", "hyperstack/canada-1"], "expected CLOUD/REGION/TYPE"),
        (["--unavailable", "aws/us-east-1/H100"], "unknown cloud 'aws'"),
        (["--boot-seconds", "-1"], "must not be negative"),
    ],
)
def test_bad_flags_are_usage_errors(args: list[str], message: str) -> None:
    code, output = run("--port", "0", *args)
    assert code == 64
    assert message in output


def test_a_foreign_data_file_is_refused(tmp_path: Path) -> None:
    data = tmp_path / "mine.json"
    data.write_text('{"not": "ours"}')
    code, output = run("--port", "0", "--data", str(data))
    assert code == 64 and "is not a Shadeform emulator data file" in output


def test_config_file_is_read_and_flags_win(tmp_path: Path) -> None:
    config_file = tmp_path / "emulator.yaml"
    config_file.write_text(
        "boot_seconds: 5\n"
        "data_file: cloud.json\n"
        "faults: {latency_ms: 20, seed: 3, endpoints: {InstancesCreate: {error_rate: 0.5}}}\n"
        "capacity: [{cloud: nebius, region: eu-north1, shade_instance_type: B200, available: false}]\n"
    )
    settings = load_settings(config_file)
    config = build_config(
        settings,
        api_key=None,
        data=None,
        boot_seconds=None,
        delete_seconds=0.5,
        fault_flags={"latency_ms": 50.0, "jitter_ms": None},
        unavailable=("hyperstack/canada-1/A6000:spot",),
    )
    assert config.api_key == SANDBOX_API_KEY
    assert (config.boot_seconds, config.delete_seconds) == (5, 0.5)
    assert config.data_file == tmp_path / "cloud.json"
    assert (config.faults.latency_ms, config.faults.seed) == (50.0, 3)
    assert config.faults.endpoints["InstancesCreate"].error_rate == 0.5
    assert [(c.shade_instance_type, c.rental_type) for c in config.capacity] == [
        ("B200", "on_demand"),
        ("A6000", "spot"),
    ]


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("faults: {latncy_ms: 3}\n", "faults.latncy_ms: Extra inputs are not permitted"),
        ("boot_seconds: [\n", "is not valid YAML or JSON"),
        ("- 1\n", "(top level)"),
    ],
)
def test_config_file_problems_are_usage_errors(tmp_path: Path, content: str, message: str) -> None:
    config_file = tmp_path / "emulator.yaml"
    config_file.write_text(content)
    with pytest.raises(UsageError, match=message.replace("(", r"\(").replace(")", r"\)")):
        load_settings(config_file)


def test_a_json_config_file_works(tmp_path: Path) -> None:
    config_file = tmp_path / "emulator.json"
    config_file.write_text('{"api_key": "key-q7x", "faults": {"error_rate": 0.1}}')
    settings = load_settings(config_file)
    assert isinstance(settings, EmulatorSettings) and settings.faults.error_rate == 0.1
    assert "key-q7x" not in repr(settings)


def test_the_command_serves_in_a_real_process(tmp_path: Path) -> None:
    data = tmp_path / "cloud.json"
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "reconciler",
            "emulator",
            "--port",
            "0",
            "--boot-seconds",
            "0",
            "--data",
            str(data),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        first = process.stdout.readline().strip()
        assert first.startswith("Shadeform emulator listening on http://127.0.0.1:")
        assert process.stdout.readline().strip() == f"API key (X-API-KEY): {SANDBOX_API_KEY}"
        base_url = first.rsplit(" ", 1)[1]
        with httpx.Client(base_url=base_url, headers={"X-API-KEY": SANDBOX_API_KEY}) as client:
            assert client.post("/instances/create", json=create_body()).status_code == 200
    finally:
        process.terminate()
        process.wait(timeout=10)
    assert "web-0" in Path(f"{data}.journal").read_text() + data.read_text()


def _serve(*args: str) -> tuple[subprocess.Popen[str], str]:
    process = subprocess.Popen(
        [sys.executable, "-m", "reconciler", "emulator", "--port", "0", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None
    first = process.stdout.readline().strip()
    assert first.startswith("Shadeform emulator listening on"), first
    return process, first.rsplit(" ", 1)[1]


def test_the_example_specs_apply_against_a_standalone_emulator(tmp_path: Path) -> None:
    """The example specs need nothing seeded: the training fleet creates its own volume and
    SSH key before the box that uses them."""
    repo = Path(__file__).resolve().parents[2]
    shutil.copytree(repo / "specs", tmp_path / "specs")
    process, base_url = _serve("--boot-seconds", "0")
    try:
        env = {
            **os.environ,
            "SHADEFORM_API_URL": base_url,
            "SHADEFORM_API_KEY": SANDBOX_API_KEY,
            "NO_COLOR": "1",
        }
        env.pop("CI", None)
        done = subprocess.run(
            [sys.executable, "-m", "reconciler", "apply", "specs", "--auto-approve"],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
    finally:
        process.terminate()
        process.wait(timeout=10)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    assert "Apply complete: 11 created" in done.stdout  # 9 instances, a volume and a key


def test_a_config_file_seeds_volumes_and_ssh_keys(tmp_path: Path) -> None:
    config_file = tmp_path / "emulator.yaml"
    config_file.write_text(
        "volumes:\n  - {id: vol-1, cloud: lambdalabs, region: us-east-1, name: ckpt}\n"
        "ssh_keys:\n  - {id: key-1, name: ci, public_key: 'ssh-ed25519 AAAAC3Nz ci'}\n"
    )
    process, base_url = _serve("--config", str(config_file))
    try:
        with httpx.Client(base_url=base_url, headers={"X-API-KEY": SANDBOX_API_KEY}) as client:
            volumes = client.get("/volumes").json()["volumes"]
            keys = client.get("/sshkeys").json()["ssh_keys"]
    finally:
        process.terminate()
        process.wait(timeout=10)
    assert [(v["id"], v["name"], v["size_in_gb"]) for v in volumes] == [("vol-1", "ckpt", 500)]
    assert ("key-1", "ci") in [(k["id"], k["name"]) for k in keys]
