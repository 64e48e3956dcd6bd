"""``update_strategy`` and ``readiness`` in manifests: how a replica group's replacement rolls."""

from __future__ import annotations

import pytest

from tests.manifest.support import Workspace, fleet_text, one

VOLUME = "volumes:\n  - {name: data, cloud: hyperstack, region: canada-1, size_in_gb: 10}\n"


def test_a_strategy_and_readiness_reach_every_replica_of_the_group(ws: Workspace) -> None:
    ws.write("scripts/ready.sh", "#!/bin/sh\nexit 0\n")
    ws.write(
        "m.yaml",
        fleet_text(
            "  - name: mistral\n    replicas: 3\n"
            "    update_strategy: {max_unavailable: 1, max_surge: 2}\n"
            "    readiness:\n      command: [scripts/ready.sh, --port, '8000']\n"
            "      timeout: 20m\n      interval: 5s\n"
        ),
    )
    instances = one(ws.load("m.yaml")).instances
    assert [i.address for i in instances] == ["demo/mistral-0", "demo/mistral-1", "demo/mistral-2"]
    for instance in instances:
        assert instance.group == "demo/mistral"
        assert instance.update_strategy is not None
        assert (instance.update_strategy.max_unavailable, instance.update_strategy.max_surge) == (
            1,
            2,
        )
        assert instance.readiness is not None
        assert instance.readiness.command == ("scripts/ready.sh", "--port", "8000")
        assert (instance.readiness.timeout_seconds, instance.readiness.interval_seconds) == (
            1200.0,
            5.0,
        )


def test_defaults_surge_by_one_and_a_mounted_volume_by_none(ws: Workspace) -> None:
    ws.write(
        "m.yaml",
        fleet_text(
            "  - name: web\n    replicas: 2\n    update_strategy: {}\n"
            "  - name: trainer\n    volumes: [data]\n    update_strategy: {max_unavailable: 1}\n",
            extra=VOLUME,
        ),
    )
    by_name = {i.name: i for i in one(ws.load("m.yaml")).instances}
    web, trainer = by_name["web-0"].update_strategy, by_name["trainer"].update_strategy
    assert web is not None and (web.max_unavailable, web.max_surge) == (1, 1)
    assert trainer is not None and (trainer.max_unavailable, trainer.max_surge) == (1, 0)
    assert by_name["trainer"].group == "demo/trainer", "a strategy makes a group of one"


def test_a_group_without_a_strategy_is_still_a_group(ws: Workspace) -> None:
    ws.write("m.yaml", fleet_text("  - name: web\n    replicas: 2\n  - name: one\n"))
    by_name = {i.name: i for i in one(ws.load("m.yaml")).instances}
    assert by_name["web-1"].group == "demo/web" and by_name["web-1"].update_strategy is None
    assert by_name["one"].group is None


def test_rollout_settings_do_not_change_what_is_recorded_or_compared(ws: Workspace) -> None:
    from reconciler.engine.comparable import comparable_spec

    ws.write("m.yaml", fleet_text("  - name: web\n    replicas: 2\n"))
    plain = one(ws.load("m.yaml"))
    ws.write(
        "m.yaml",
        fleet_text("  - name: web\n    replicas: 2\n    update_strategy: {max_surge: 1}\n"),
    )
    rolled = one(ws.load("m.yaml"))
    key = "00" * 32
    assert comparable_spec(plain.instances[0], key) == comparable_spec(rolled.instances[0], key)
    assert plain.digest != rolled.digest, "a saved plan made under another strategy is stale"


@pytest.mark.parametrize(
    ("instances", "extra", "field", "message"),
    [
        (
            "  - name: a\n    replicas: 2\n    update_strategy: {max_unavailable: 0, max_surge: 0}\n",
            "",
            "instances[0].update_strategy",
            "both 0",
        ),
        (
            "  - name: a\n    update_strategy: {max_unavailable: -1}\n",
            "",
            "instances[0].update_strategy.max_unavailable",
            "greater than or equal to 0",
        ),
        (
            "  - name: a\n    update_strategy: {max_surge: 1.5}\n",
            "",
            "instances[0].update_strategy.max_surge",
            "integer",
        ),
        (
            "  - name: a\n    volumes: [data]\n    update_strategy: {max_surge: 1}\n",
            VOLUME,
            "instances[0].update_strategy.max_surge",
            "must be 0 for an instance that mounts a volume",
        ),
        (
            "  - name: a\n    volumes: [data]\n    update_strategy: {max_unavailable: 0}\n",
            VOLUME,
            "instances[0].update_strategy",
            "set max_unavailable to at least 1",
        ),
        (
            "  - name: a\n    readiness: {command: [/bin/true]}\n",
            "",
            "instances[0].readiness.command[0]",
            "relative to the manifest",
        ),
        (
            "  - name: a\n    readiness: {command: [../outside.sh]}\n",
            "",
            "instances[0].readiness.command[0]",
            "outside",
        ),
        (
            "  - name: a\n    readiness: {command: [missing.sh]}\n",
            "",
            "instances[0].readiness.command[0]",
            "is not a file in the manifest's tree",
        ),
        (
            "  - name: a\n    readiness: {command: []}\n",
            "",
            "instances[0].readiness.command",
            "at least 1",
        ),
        (
            "  - name: a\n    readiness: {command: [ok.sh], timeout: soon}\n",
            "",
            "instances[0].readiness.timeout",
            "expected a duration such as 90s, 20m or 1h30m",
        ),
        (
            "  - name: a\n    readiness: {command: [ok.sh], timeout: 0s}\n",
            "",
            "instances[0].readiness.timeout",
            "more than 0",
        ),
    ],  # fmt: skip
)
def test_bad_rollout_settings_are_manifest_errors(
    ws: Workspace, instances: str, extra: str, field: str, message: str
) -> None:
    ws.write("ok.sh", "#!/bin/sh\n")
    ws.write("m.yaml", fleet_text(instances, extra=extra))
    rendered = [i.render() for i in ws.issues("m.yaml")]
    issues = [i for i in ws.issues("m.yaml") if i.field == field]
    assert issues and message in issues[0].message, rendered
    assert issues[0].line is not None
