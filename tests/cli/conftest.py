"""CLI fixtures: a manifest folder and a sandbox environment per test."""

from __future__ import annotations

from pathlib import Path

import pytest

FLEET_YAML = """\
fleet: web
defaults:
  cloud: hyperstack
  region: canada-1
  shade_instance_type: A6000
  shade_cloud: true
  os: ubuntu22.04_cuda12.2_shade_os
  tags: [team-web]
instances:
  - name: api
    replicas: {replicas}
    launch_configuration:
      type: docker
      docker_configuration:
        image: nginx:1.27
        envs:
          - {{name: TOKEN, value: "${{env:WEB_TOKEN:-unset}}"}}
"""


@pytest.fixture
def workspace(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    """A folder with one manifest and a state dir; returns (manifests_dir, state_dir, write)."""
    manifests = tmp_path / "fleets"
    manifests.mkdir()
    state_dir = tmp_path / "state"

    def write(replicas: int = 2, **replace: str) -> Path:
        text = FLEET_YAML.format(replicas=replicas)
        for old, new in replace.items():
            text = text.replace(old, new)
        path = manifests / "web.yaml"
        path.write_text(text)
        return path

    write()
    return manifests, state_dir, write


@pytest.fixture
def sandbox_env() -> dict[str, str]:
    return {"RECONCILER_SANDBOX_BOOT_SECONDS": "0", "NO_COLOR": "1", "WEB_TOKEN": "s3cr3t-value"}
