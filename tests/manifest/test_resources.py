"""Managed volumes and SSH keys in manifests, and the instances' references to them."""

from __future__ import annotations

import base64
import hashlib

import pytest

from tests.manifest.support import Workspace, fleet_text, one

KEY_BLOB = b"\x00\x00\x00\x0bssh-ed25519\x00\x00\x00\x20" + bytes(range(32))
PUBLIC_KEY = "ssh-ed25519 " + base64.b64encode(KEY_BLOB).decode() + " ci@example"
FINGERPRINT = "SHA256:" + base64.b64encode(hashlib.sha256(KEY_BLOB).digest()).decode().rstrip("=")

RESOURCES = f"""\
volumes:
  - {{name: checkpoints, cloud: hyperstack, region: canada-1, size_in_gb: 2000}}
ssh_keys:
  - {{name: ci-deploy, public_key: "{PUBLIC_KEY}"}}
"""


def test_volumes_and_keys_become_specs_the_instances_refer_to(ws: Workspace) -> None:
    ws.write(
        "m.yaml",
        fleet_text(
            "  - name: trainer\n    volumes: [checkpoints]\n    ssh_key: ci-deploy\n",
            extra=RESOURCES,
        ),
    )
    fleet = one(ws.load("m.yaml"))
    (volume,) = fleet.volumes
    (key,) = fleet.ssh_keys
    assert (volume.address, volume.size_in_gb) == ("demo/volume.checkpoints", 2000)
    assert (key.address, key.fingerprint) == ("demo/ssh_key.ci-deploy", FINGERPRINT)
    (trainer,) = fleet.instances
    assert (trainer.volumes, trainer.ssh_key) == (("checkpoints",), "ci-deploy")
    assert trainer.volume_ids == () and trainer.ssh_key_id is None


def test_a_public_key_file_is_read_inside_the_tree(ws: Workspace) -> None:
    ws.write("keys/ci.pub", PUBLIC_KEY + "\n")
    ws.write(
        "m.yaml",
        fleet_text(
            "  - name: a\n    ssh_key: ci\n",
            extra="ssh_keys:\n  - {name: ci, public_key_file: keys/ci.pub}\n",
        ),
    )
    assert one(ws.load("m.yaml")).ssh_keys[0].fingerprint == FINGERPRINT


@pytest.mark.parametrize(
    ("instances", "extra", "field", "message"),
    [
        (
            "  - name: a\n    volumes: [checkpoint]\n",
            RESOURCES,
            "instances[0].volumes",
            "unknown volume 'checkpoint'; did you mean 'checkpoints'?",
        ),
        (
            "  - name: a\n    ssh_key: ci-deploi\n",
            RESOURCES,
            "instances[0].ssh_key",
            "unknown SSH key 'ci-deploi'; did you mean 'ci-deploy'?",
        ),
        (
            "  - name: a\n    region: norway-1\n    volumes: [checkpoints]\n",
            RESOURCES,
            "instances[0].volumes",
            "volume 'checkpoints' is in hyperstack/canada-1, the instance in",
        ),
        (
            "  - name: a\n    volumes: [checkpoints]\n    volume_ids: [v-1]\n",
            RESOURCES,
            "instances[0].volumes",
            "at most one volume",
        ),
        (
            "  - name: a\n    replicas: 2\n    volumes: [checkpoints]\n",
            RESOURCES,
            "instances[0].volumes",
            "would be mounted by 2 instances (demo/a-0, demo/a-1)",
        ),
        (
            "  - name: a\n    ssh_key: ci-deploy\n    ssh_key_id: k-1\n",
            RESOURCES,
            "instances[0].ssh_key",
            "not both",
        ),
        (
            "  - name: a\n",
            "ssh_keys:\n  - {name: k, public_key: 'ssh-ed25519 bm90IGEga2V5'}\n",
            "ssh_keys[0].public_key",
            "does not start with its type",
        ),
        (
            "  - name: a\n",
            "ssh_keys:\n  - {name: k, public_key: 'hello world'}\n",
            "ssh_keys[0].public_key",
            "unknown key type",
        ),
        (
            "  - name: a\n",
            "ssh_keys:\n  - {name: k, public_key_file: /etc/ssh/ssh_host_ed25519_key.pub}\n",
            "ssh_keys[0].public_key_file",
            "must be a path relative to the manifest",
        ),
        (
            "  - name: a\n",
            "ssh_keys:\n  - {name: k}\n",
            "ssh_keys[0]",
            "set exactly one of public_key or public_key_file",
        ),
        (
            "  - name: a\n",
            "volumes:\n  - {name: v, cloud: c, region: r, size_in_gb: 1}\n"
            "  - {name: v, cloud: c, region: r, size_in_gb: 2}\n",
            "volumes",
            "volume 'v' is listed twice",
        ),
    ],  # fmt: skip
)
def test_broken_references_and_resources_are_manifest_errors(
    ws: Workspace, instances: str, extra: str, field: str, message: str
) -> None:
    ws.write("m.yaml", fleet_text(instances, extra=extra))
    issues = [i for i in ws.issues("m.yaml") if i.field == field]
    assert issues and message in issues[0].message, [i.render() for i in ws.issues("m.yaml")]


def test_a_placement_envelope_must_stay_where_its_volume_is(ws: Workspace) -> None:
    text = fleet_text(
        "  - name: a\n    cloud: null\n    region: null\n    shade_instance_type: null\n"
        "    placement:\n      candidates:\n"
        "        - {cloud: hyperstack, region: canada-1, shade_instance_type: A6000}\n"
        "        - {cloud: hyperstack, region: norway-1, shade_instance_type: A6000}\n"
        "    volumes: [checkpoints]\n",
        extra=RESOURCES,
    )
    ws.write("m.yaml", text)
    messages = [i.message for i in ws.issues("m.yaml")]
    assert any("the placement allows hyperstack/norway-1" in m for m in messages), messages


def test_every_reference_problem_is_reported_at_once(ws: Workspace) -> None:
    ws.write(
        "m.yaml",
        fleet_text(
            "  - name: a\n    volumes: [nope]\n  - name: b\n    ssh_key: nope\n", extra=RESOURCES
        ),
    )
    fields = {i.field for i in ws.issues("m.yaml")}
    assert {"instances[0].volumes", "instances[1].ssh_key"} <= fields


def test_resources_change_the_fleet_digest(ws: Workspace) -> None:
    ws.write("m.yaml", fleet_text("  - name: a\n", extra=RESOURCES))
    before = one(ws.load("m.yaml")).digest
    ws.write("m.yaml", fleet_text("  - name: a\n", extra=RESOURCES.replace("2000", "3000")))
    assert one(ws.load("m.yaml")).digest != before
