"""Merging defaults, expanding replicas, scripts and the rules that need the merged instance."""

from __future__ import annotations

import base64

from pydantic import SecretStr

from reconciler.manifest.resolve import ScriptFiles
from reconciler.models.spec import Budget
from tests.manifest.support import Workspace, fleet_text, one


def test_defaults_fill_every_instance_and_instance_keys_win(ws: Workspace) -> None:
    ws.write(
        "m.yaml",
        fleet_text(
            "  - name: a\n  - name: b\n    region: us-1\n    shade_instance_type: A100_80G\n"
        ),
    )
    fleet = one(ws.load("m.yaml"))
    a, b = fleet.instances
    assert (a.address, a.cloud, a.region, a.shade_instance_type) == (
        "demo/a",
        "hyperstack",
        "canada-1",
        "A6000",
    )
    assert (b.region, b.shade_instance_type, b.shade_cloud) == ("us-1", "A100_80G", True)
    assert a.rental_type == "on_demand"


def test_tags_are_concatenated_without_duplicates(ws: Workspace) -> None:
    text = fleet_text("  - name: a\n    tags: [serving, team]\n").replace(
        "  shade_cloud: true\n", "  shade_cloud: true\n  tags: [team, ml]\n"
    )
    ws.write("m.yaml", text)
    assert one(ws.load("m.yaml")).instances[0].tags == ("team", "ml", "serving")


def test_mappings_merge_one_level_deep(ws: Workspace) -> None:
    extra = (
        "  auto_delete: {date_threshold: '2030-01-01T00:00:00Z', spend_threshold: '10'}\n"
        "  lifecycle: {prevent_destroy: true}\n"
    )
    text = fleet_text(
        "  - name: a\n    auto_delete: {spend_threshold: '99.5'}\n"
        "    lifecycle: {ignore_changes: [tags]}\n"
    ).replace("  shade_cloud: true\n", "  shade_cloud: true\n" + extra)
    ws.write("m.yaml", text)
    instance = one(ws.load("m.yaml")).instances[0]
    assert instance.auto_delete is not None
    assert instance.auto_delete.date_threshold == "2030-01-01T00:00:00Z"
    assert instance.auto_delete.spend_threshold == "99.5"
    assert instance.lifecycle.prevent_destroy is True
    assert instance.lifecycle.ignore_changes == ("tags",)


def test_explicit_null_removes_a_default(ws: Workspace) -> None:
    text = fleet_text("  - name: a\n    alert: null\n  - name: b\n").replace(
        "  shade_cloud: true\n", "  shade_cloud: true\n  alert: {spend_threshold: '5'}\n"
    )
    ws.write("m.yaml", text)
    a, b = one(ws.load("m.yaml")).instances
    assert a.alert is None
    assert b.alert is not None and b.alert.spend_threshold == "5"


def test_launch_configuration_is_replaced_whole(ws: Workspace) -> None:
    default_launch = (
        "  launch_configuration:\n    type: docker\n"
        "    docker_configuration: {image: img, args: --x}\n"
    )
    text = fleet_text(
        "  - name: a\n  - name: b\n    launch_configuration: {type: script, script: echo hi}\n"
    ).replace("  shade_cloud: true\n", "  shade_cloud: true\n" + default_launch)
    ws.write("m.yaml", text)
    a, b = one(ws.load("m.yaml")).instances
    assert a.launch_configuration is not None and a.launch_configuration.type == "docker"
    assert b.launch_configuration is not None
    assert b.launch_configuration.docker_configuration is None
    assert b.launch_configuration.script_configuration is not None
    script = b.launch_configuration.script_configuration.base64_script
    assert base64.b64decode(script) == b"echo hi"


def test_replicas_expand_names_and_sort_by_address(ws: Workspace) -> None:
    ws.write("m.yaml", fleet_text("  - name: web\n    replicas: 3\n  - name: api\n"))
    fleet = one(ws.load("m.yaml"))
    assert [i.address for i in fleet.instances] == [
        "demo/api",
        "demo/web-0",
        "demo/web-1",
        "demo/web-2",
    ]
    assert [i.name for i in fleet.instances] == ["api", "web-0", "web-1", "web-2"]
    assert {i.source.line for i in fleet.instances if i.source and i.name != "api"} == {8}


def test_replicas_one_keeps_the_plain_name(ws: Workspace) -> None:
    ws.write("m.yaml", fleet_text("  - name: web\n    replicas: 1\n"))
    assert one(ws.load("m.yaml")).instances[0].name == "web"


def test_duplicate_names_after_expansion(ws: Workspace) -> None:
    ws.write("m.yaml", fleet_text("  - name: web\n    replicas: 2\n  - name: web-1\n"))
    issue = ws.only_issue("m.yaml")
    assert (issue.line, issue.column, issue.field) == (10, 5, "instances[1].name")
    assert issue.message == "duplicate instance name 'web-1' (also declared on line 8)"


def test_duplicate_names_are_reported_next_to_other_errors(ws: Workspace) -> None:
    ws.write("m.yaml", fleet_text("  - name: web\n    cloud: 3\n  - name: web\n    os: 2\n"))
    fields = [(i.line, i.field) for i in ws.issues("m.yaml")]
    assert fields == [(9, "instances[0].cloud"), (10, "instances[1].name"), (11, "instances[1].os")]


def test_expanded_name_too_long(ws: Workspace) -> None:
    ws.write("m.yaml", fleet_text(f"  - name: {'a' * 62}\n    replicas: 2\n"))
    issue = ws.only_issue("m.yaml")
    assert issue.field == "instances[0].name"
    assert "longer than 63" in issue.message


def test_required_fields_after_merge_are_located_at_the_instance(ws: Workspace) -> None:
    ws.write("m.yaml", "fleet: f\ndefaults:\n  cloud: x\ninstances:\n  - name: a\n    region: r\n")
    issues = ws.issues("m.yaml")
    assert [(i.line, i.column, i.field) for i in issues] == [
        (5, 5, "instances[0].shade_cloud"),
        (5, 5, "instances[0].shade_instance_type"),
    ]
    assert all("set it on the instance or in defaults" in i.message for i in issues)


def test_spot_needs_shade_cloud(ws: Workspace) -> None:
    text = "fleet: f\ndefaults:\n  rental_type: spot\ninstances:\n" + (
        "  - {name: a, cloud: c, region: r, shade_instance_type: t, shade_cloud: false}\n"
    )
    ws.write("m.yaml", text)
    issue = ws.only_issue("m.yaml")
    assert (issue.line, issue.field) == (3, "defaults.rental_type")  # where spot was set
    assert issue.message == "rental_type spot needs shade_cloud: true"


def test_script_file_is_read_relative_to_the_manifest(ws: Workspace) -> None:
    ws.write("fleets/scripts/boot.sh", "#!/bin/sh\necho ready\n")
    ws.write(
        "fleets/m.yaml",
        fleet_text(
            "  - name: a\n    launch_configuration: {type: script, script_file: scripts/boot.sh}\n"
        ),
    )
    instance = one(ws.load("fleets")).instances[0]
    assert instance.launch_configuration is not None
    assert instance.launch_configuration.script_configuration is not None
    encoded = instance.launch_configuration.script_configuration.base64_script
    assert base64.b64decode(encoded) == b"#!/bin/sh\necho ready\n"


def test_missing_script_file_is_located(ws: Workspace) -> None:
    ws.write(
        "m.yaml",
        fleet_text(
            "  - name: a\n    launch_configuration:\n      type: script\n"
            "      script_file: scripts/nope.sh\n"
        ),
    )
    issue = ws.only_issue("m.yaml")
    assert (issue.file, issue.line, issue.column) == ("m.yaml", 11, 7)
    assert issue.field == "instances[0].launch_configuration.script_file"
    assert issue.message == "script file 'scripts/nope.sh' not found"


def test_missing_script_file_in_defaults_is_located_in_defaults(ws: Workspace) -> None:
    text = fleet_text("  - name: a\n  - name: b\n").replace(
        "  shade_cloud: true\n",
        "  shade_cloud: true\n  launch_configuration: {type: script, script_file: x.sh}\n",
    )
    ws.write("m.yaml", text)
    issue = ws.only_issue("m.yaml")  # two instances, one problem
    assert (issue.line, issue.field) == (7, "defaults.launch_configuration.script_file")


def test_script_files_are_read_once_and_limited(ws: Workspace) -> None:
    root = ws.root.resolve()
    ws.write("big.sh", "x" * 11)
    scripts = ScriptFiles(max_bytes=10)
    assert (
        scripts.read(root, root, "big.sh") == "script file 'big.sh' is larger than the 0 KiB limit"
    )
    small = ws.write("small.sh", "echo")
    assert scripts.read(root, root, "small.sh") == b"echo"
    small.unlink()
    assert scripts.read(root, root, "small.sh") == b"echo"  # cached
    assert scripts.read(root, root, ".") == "script file '.' is a directory"


def test_registry_password_is_always_secret_and_envs_keep_their_kind(ws: Workspace) -> None:
    ws.write(
        "m.yaml",
        fleet_text(
            "  - name: a\n    launch_configuration:\n      type: docker\n"
            "      docker_configuration:\n        image: x\n"
            "        envs: [{name: A, value: plain}, {name: B, value: '${env:TOKEN}'}]\n"
            "        registry_credentials: {username: bot, password: hunter2}\n"
        ),
    )
    fleet = one(ws.load("m.yaml", environ={"TOKEN": "s3cr3t"}))
    docker = fleet.instances[0].launch_configuration.docker_configuration  # type: ignore[union-attr]
    assert docker is not None
    assert docker.envs[0].value == "plain"
    assert isinstance(docker.envs[1].value, SecretStr)
    assert docker.registry_credentials is not None
    assert isinstance(docker.registry_credentials.password, SecretStr)
    assert docker.registry_credentials.username == "bot"
    text = repr(fleet) + str(fleet) + fleet.model_dump_json()
    assert "s3cr3t" not in text and "hunter2" not in text


def test_interpolated_numbers_and_booleans_take_their_field_types(ws: Workspace) -> None:
    text = (
        "fleet: f\nvariables: {port: 8080, spot_ok: true, n: 2}\ndefaults:\n"
        "  cloud: c\n  region: r\n  shade_instance_type: t\n  shade_cloud: ${var.spot_ok}\n"
        "instances:\n  - name: a\n    replicas: ${var.n}\n    launch_configuration:\n"
        "      type: docker\n      docker_configuration:\n        image: x\n"
        "        port_mappings: [{host_port: '${var.port}', container_port: 80}]\n"
    )
    ws.write("m.yaml", text)
    fleet = one(ws.load("m.yaml"))
    assert len(fleet.instances) == 2
    docker = fleet.instances[0].launch_configuration.docker_configuration  # type: ignore[union-attr]
    assert docker is not None and docker.port_mappings[0].host_port == 8080
    assert fleet.instances[0].shade_cloud is True


def test_budget_resolves_to_the_fleet(ws: Workspace) -> None:
    extra = 'budget: {max_hourly: "40.00", max_creates_per_apply: "${var.n}"}\n'
    ws.write("m.yaml", "variables: {n: 10}\n" + fleet_text("  - name: a\n", extra=extra))
    fleet = one(ws.load("m.yaml"))
    assert fleet.budget == Budget(max_hourly="40.00", max_creates_per_apply=10)
    ws.write("m.yaml", fleet_text("  - name: a\n"))
    assert one(ws.load("m.yaml")).budget is None


def test_backend_is_interpolated_and_kept_secret(ws: Workspace) -> None:
    extra = "backend: postgresql://reconciler:${env:PGPASSWORD}@db:5432/fleets\n"
    ws.write("m.yaml", fleet_text("  - name: a\n", extra=extra))
    fleet = one(ws.load("m.yaml", environ={"PGPASSWORD": "hunter2"}))
    assert isinstance(fleet.backend, SecretStr)
    assert fleet.backend.get_secret_value() == "postgresql://reconciler:hunter2@db:5432/fleets"
    assert "hunter2" not in repr(fleet) + str(fleet) + fleet.model_dump_json()


def test_backend_stays_out_of_the_digest_and_budget_does_not(ws: Workspace) -> None:
    def digest(extra: str) -> str:
        ws.write("m.yaml", fleet_text("  - name: a\n", extra=extra))
        return one(ws.load("m.yaml")).digest

    plain = digest("")
    assert digest("backend: file://state\n") == plain
    assert digest("backend: postgresql://db/fleets\n") == plain
    with_budget = digest('budget: {max_hourly: "40.00"}\n')
    assert with_budget != plain
    assert digest('budget: {max_hourly: "41.00"}\n') != with_budget
