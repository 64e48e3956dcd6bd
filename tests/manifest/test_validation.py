"""Schema errors are located (file, line, column, field path) and phrased for manifests."""

from __future__ import annotations

import pytest

from tests.manifest.support import Workspace, fleet_text


def test_unknown_key_suggests_the_close_one(ws: Workspace) -> None:
    ws.write(
        "m.yaml",
        fleet_text(
            "  - name: web\n"
            "    launch_configuration:\n"
            "      type: docker\n"
            "      docker_configuration:\n"
            "        imgae: vllm/vllm-openai\n"
        ),
    )
    issues = ws.issues("m.yaml")
    rendered = [i.render() for i in issues]
    assert rendered == [
        "m.yaml:11:7: instances[0].launch_configuration.docker_configuration.image:"
        " required field is missing",
        "m.yaml:12:9: instances[0].launch_configuration.docker_configuration.imgae:"
        " unknown key 'imgae'; did you mean 'image'?",
    ]


def test_unknown_top_level_and_defaults_keys(ws: Workspace) -> None:
    ws.write("m.yaml", "fleet: a\ndefualts: {}\ninstances: []\n")
    issue = ws.only_issue("m.yaml")
    assert (issue.line, issue.column, issue.field) == (2, 1, "defualts")
    assert issue.message == "unknown key 'defualts'; did you mean 'defaults'?"


def test_unknown_key_without_a_close_match_lists_the_allowed_ones(ws: Workspace) -> None:
    ws.write("m.yaml", fleet_text("  - name: web\n    volume_mount: {zzz: true}\n"))
    issue = ws.only_issue("m.yaml")
    assert issue.field == "instances[0].volume_mount.zzz"
    assert "expected one of: auto" in issue.message


def test_wrong_type_with_a_quoting_hint(ws: Workspace) -> None:
    ws.write("m.yaml", fleet_text("  - name: web\n    region: false\n    os: 22.04\n"))
    issues = ws.issues("m.yaml")
    assert [(i.line, i.field) for i in issues] == [
        (9, "instances[0].region"),
        (10, "instances[0].os"),
    ]
    assert "YAML read this as a boolean, so quote it" in issues[0].message
    assert "YAML read this as a number, so quote it" in issues[1].message


@pytest.mark.parametrize("word", ["yes", "no", "on", "off", "Off", "y"])
def test_yaml_1_1_booleans_are_refused_in_boolean_fields(ws: Workspace, word: str) -> None:
    """``shade_cloud: off`` used to mean false, "your own cloud account"; now it is refused."""
    ws.write("m.yaml", fleet_text(f"  - name: web\n    shade_cloud: {word}\n"))
    issue = ws.only_issue("m.yaml")
    assert (issue.line, issue.field) == (9, "instances[0].shade_cloud")
    assert f"expected true or false, not '{word}'" in issue.message


def test_wrong_container_type(ws: Workspace) -> None:
    ws.write("m.yaml", fleet_text("  - name: web\n    tags: team-ml\n"))
    issue = ws.only_issue("m.yaml")
    assert (issue.line, issue.field, issue.message) == (9, "instances[0].tags", "expected a list")


def test_instance_that_is_not_a_mapping(ws: Workspace) -> None:
    ws.write("m.yaml", fleet_text("  - web\n"))
    issue = ws.only_issue("m.yaml")
    assert (issue.line, issue.field, issue.message) == (8, "instances[0]", "expected a mapping")


def test_missing_fleet_and_instances(ws: Workspace) -> None:
    ws.write("m.yaml", "variables: {a: 1}\n")
    issues = ws.issues("m.yaml")
    assert [(i.line, i.field, i.message) for i in issues] == [
        (1, "fleet", "required field is missing"),
        (1, "instances", "required field is missing"),
    ]


def test_top_level_must_be_a_mapping(ws: Workspace) -> None:
    ws.write("m.yaml", "- fleet: a\n")
    issue = ws.only_issue("m.yaml")
    assert "expected a mapping" in issue.message


def test_launch_configuration_type_missing_or_unknown(ws: Workspace) -> None:
    ws.write(
        "m.yaml",
        fleet_text(
            "  - name: a\n    launch_configuration: {script: x}\n"
            "  - name: b\n    launch_configuration: {type: bash, script: x}\n"
        ),
    )
    issues = ws.issues("m.yaml")
    assert [(i.line, i.field) for i in issues] == [
        (9, "instances[0].launch_configuration.type"),
        (11, "instances[1].launch_configuration.type"),
    ]
    assert "required field is missing" in issues[0].message
    assert issues[1].message == "type must be 'docker' or 'script'"


def test_docker_type_forbids_script_configuration(ws: Workspace) -> None:
    ws.write(
        "m.yaml",
        fleet_text(
            "  - name: a\n"
            "    launch_configuration:\n"
            "      type: docker\n"
            "      docker_configuration: {image: x}\n"
            "      script_configuration: {base64_script: eA==}\n"
        ),
    )
    issue = ws.only_issue("m.yaml")
    assert (issue.line, issue.field) == (9, "instances[0].launch_configuration")
    assert "'script_configuration' is not allowed when type is 'docker'" in issue.message


def test_script_type_forbids_docker_configuration(ws: Workspace) -> None:
    ws.write(
        "m.yaml",
        fleet_text(
            "  - name: a\n    launch_configuration:\n      type: script\n"
            "      script: echo\n      docker_configuration: {image: x}\n"
        ),
    )
    issue = ws.only_issue("m.yaml")
    assert "'docker_configuration' is not allowed when type is 'script'" in issue.message


def test_docker_type_requires_docker_configuration(ws: Workspace) -> None:
    ws.write("m.yaml", fleet_text("  - name: a\n    launch_configuration: {type: docker}\n"))
    issue = ws.only_issue("m.yaml")
    assert issue.field == "instances[0].launch_configuration.docker_configuration"
    assert issue.message == "required field is missing"


@pytest.mark.parametrize(
    "body",
    [
        "{type: script}",
        "{type: script, script: a, script_file: b.sh}",
        "{type: script, script: a, script_configuration: {base64_script: eA==}}",
    ],
)
def test_script_type_needs_exactly_one_form(ws: Workspace, body: str) -> None:
    ws.write("m.yaml", fleet_text(f"  - name: a\n    launch_configuration: {body}\n"))
    issue = ws.only_issue("m.yaml")
    assert (issue.line, issue.field) == (9, "instances[0].launch_configuration")
    assert "exactly one of script, script_file or script_configuration" in issue.message


def test_base64_script_must_be_base64(ws: Workspace) -> None:
    ws.write(
        "m.yaml",
        fleet_text(
            "  - name: a\n    launch_configuration:\n      type: script\n"
            "      script_configuration:\n        base64_script: 'not base64!'\n"
        ),
    )
    issue = ws.only_issue("m.yaml")
    assert (issue.line, issue.field) == (
        12,
        "instances[0].launch_configuration.script_configuration.base64_script",
    )
    assert issue.message == "base64_script is not valid base64"


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ('"2030-13-01T00:00:00Z"', "RFC3339"),
        ('"tomorrow"', "RFC3339"),
        ("2030-01-01", "RFC3339"),
    ],
)
def test_date_threshold_must_be_rfc3339(ws: Workspace, value: str, message: str) -> None:
    ws.write(
        "m.yaml", fleet_text(f"  - name: a\n    auto_delete:\n      date_threshold: {value}\n")
    )
    issue = ws.only_issue("m.yaml")
    assert (issue.line, issue.field) == (10, "instances[0].auto_delete.date_threshold")
    assert message in issue.message


@pytest.mark.parametrize(
    ("value", "message"),
    [("50.00", "quoted decimal string"), ('"$50"', "decimal dollar amount"), ('"-1"', "decimal")],
)
def test_spend_threshold_must_be_a_decimal_string(ws: Workspace, value: str, message: str) -> None:
    ws.write("m.yaml", fleet_text(f"  - name: a\n    alert:\n      spend_threshold: {value}\n"))
    issue = ws.only_issue("m.yaml")
    assert (issue.line, issue.field) == (10, "instances[0].alert.spend_threshold")
    assert message in issue.message


def test_thresholds_need_something(ws: Workspace) -> None:
    ws.write("m.yaml", fleet_text("  - name: a\n    auto_delete: {}\n"))
    issue = ws.only_issue("m.yaml")
    assert issue.field == "instances[0].auto_delete"
    assert "date_threshold, spend_threshold or both" in issue.message


def test_at_most_one_volume_id(ws: Workspace) -> None:
    ws.write("m.yaml", fleet_text("  - name: a\n    volume_ids: [v1, v2]\n"))
    issue = ws.only_issue("m.yaml")
    assert (issue.line, issue.field) == (9, "instances[0].volume_ids")
    assert "at most 1" in issue.message


@pytest.mark.parametrize("port", [0, 65536, -1])
def test_ports_must_be_in_range(ws: Workspace, port: int) -> None:
    ws.write(
        "m.yaml",
        fleet_text(
            "  - name: a\n    launch_configuration:\n      type: docker\n"
            "      docker_configuration:\n        image: x\n"
            f"        port_mappings:\n          - {{host_port: {port}, container_port: 80}}\n"
        ),
    )
    issue = ws.only_issue("m.yaml")
    assert issue.line == 14
    assert issue.field.endswith("port_mappings[0].host_port")


def test_duplicate_host_ports_and_env_names(ws: Workspace) -> None:
    ws.write(
        "m.yaml",
        fleet_text(
            "  - name: a\n    envs: [{name: A, value: '1'}, {name: A, value: '2'}]\n"
            "    launch_configuration:\n      type: docker\n"
            "      docker_configuration:\n        image: x\n"
            "        port_mappings: [{host_port: 80, container_port: 1},"
            " {host_port: 80, container_port: 2}]\n"
        ),
    )
    messages = [i.message for i in ws.issues("m.yaml")]
    assert "environment variable 'A' is listed twice" in messages
    assert "host_port '80' is listed twice" in messages


def test_rental_type_must_be_known(ws: Workspace) -> None:
    ws.write("m.yaml", fleet_text("  - name: a\n    rental_type: reserved\n"))
    issue = ws.only_issue("m.yaml")
    assert (issue.line, issue.field) == (9, "instances[0].rental_type")
    assert "'on_demand' or 'spot'" in issue.message


def test_booleans_refuse_numbers(ws: Workspace) -> None:
    ws.write("m.yaml", fleet_text("  - name: a\n    shade_cloud: 1\n"))
    issue = ws.only_issue("m.yaml")
    assert (issue.field, issue.message) == ("instances[0].shade_cloud", "expected true or false")


@pytest.mark.parametrize("replicas", ["0", "1001", "two", "true"])
def test_replicas_bounds(ws: Workspace, replicas: str) -> None:
    ws.write("m.yaml", fleet_text(f"  - name: a\n    replicas: {replicas}\n"))
    issue = ws.only_issue("m.yaml")
    assert (issue.line, issue.field) == (9, "instances[0].replicas")


@pytest.mark.parametrize("name", ["Web", "web_1", "-web", "web-", "a" * 64])
def test_instance_names_are_dns_labels(ws: Workspace, name: str) -> None:
    ws.write("m.yaml", fleet_text(f"  - name: {name}\n"))
    issue = ws.only_issue("m.yaml")
    assert (issue.line, issue.field) == (8, "instances[0].name")


def test_reserved_tags(ws: Workspace) -> None:
    ws.write("m.yaml", fleet_text("  - name: a\n    tags: [ok, 'reconciler:fleet=x']\n"))
    issue = ws.only_issue("m.yaml")
    assert (issue.line, issue.field) == (9, "instances[0].tags")
    assert "reserved" in issue.message


def test_ignore_changes_must_name_spec_fields(ws: Workspace) -> None:
    ws.write(
        "m.yaml",
        fleet_text(
            "  - name: a\n    lifecycle:\n      ignore_changes: [tags, auto_delete.spend_treshold]\n"
        ),
    )
    issue = ws.only_issue("m.yaml")
    assert (issue.line, issue.field) == (10, "instances[0].lifecycle.ignore_changes[1]")
    assert "did you mean 'auto_delete.spend_threshold'?" in issue.message


def test_every_bad_ignore_changes_entry_is_reported(ws: Workspace) -> None:
    ws.write(
        "m.yaml",
        fleet_text(
            "  - name: a\n    lifecycle:\n      ignore_changes:\n"
            "        - tagz\n        - tags\n        - imgae\n        - alert.spend_treshold\n"
        ),
    )
    issues = ws.issues("m.yaml")
    assert [(i.line, i.field) for i in issues] == [
        (11, "instances[0].lifecycle.ignore_changes[0]"),
        (13, "instances[0].lifecycle.ignore_changes[2]"),
        (14, "instances[0].lifecycle.ignore_changes[3]"),
    ]
    assert "did you mean 'tags'?" in issues[0].message


def test_bad_variable_names_and_values(ws: Workspace) -> None:
    ws.write("m.yaml", "fleet: a\nvariables:\n  ok: 1\n  bad name: x\n  list: [1]\ninstances: []\n")
    issues = ws.issues("m.yaml")
    assert [(i.line, i.field) for i in issues] == [(4, "variables.bad name"), (5, "variables.list")]


def test_every_error_in_every_file_is_reported_at_once(ws: Workspace) -> None:
    ws.write("a.yaml", fleet_text("  - name: a\n    regoin: x\n", fleet="a"))
    ws.write(
        "b.yaml",
        "fleet: b\ninstances:\n  - name: b\n    cloud: x\n  - name: c\n    cloud: 3\n",
    )
    ws.write("c.yaml", "fleet: [c\n")
    issues = ws.issues()
    assert [(i.file, i.line, i.field) for i in issues] == [
        ("a.yaml", 9, "instances[0].regoin"),
        ("b.yaml", 3, "instances[0].region"),
        ("b.yaml", 3, "instances[0].shade_cloud"),
        ("b.yaml", 3, "instances[0].shade_instance_type"),
        ("b.yaml", 6, "instances[1].cloud"),
        ("c.yaml", 2, ""),
    ]


def test_placement_keys_are_checked_with_hints(ws: Workspace) -> None:
    ws.write(
        "m.yaml",
        fleet_text(
            "  - name: a\n    placement:\n      stratgy: cheapest\n      candidates:\n"
            "        - {cloud: lambdalabs, shade_instance_type: H100}\n"
        ),
    )
    rendered = [i.render() for i in ws.issues("m.yaml")]
    assert rendered == [
        "m.yaml:10:7: instances[0].placement.stratgy: unknown key 'stratgy';"
        " did you mean 'strategy'?",
        "m.yaml:12:11: instances[0].placement.candidates[0].region: required field is missing",
    ]


def test_empty_placement_and_vague_requirements(ws: Workspace) -> None:
    ws.write(
        "m.yaml",
        fleet_text(
            "  - name: a\n    placement: {strategy: cheapest}\n"
            "  - name: b\n    placement:\n      requirements:\n        clouds: [nebius]\n"
        ),
    )
    issues = ws.issues("m.yaml")
    assert [(i.line, i.field) for i in issues] == [
        (9, "instances[0].placement"),
        (12, "instances[1].placement.requirements"),
    ]
    assert issues[0].message == "placement needs at least one candidate or a requirements block"
    assert issues[1].message.startswith("requirements must say what hardware or price")


def test_requirement_prices_are_decimal_strings(ws: Workspace) -> None:
    ws.write(
        "m.yaml",
        fleet_text(
            "  - name: a\n    placement:\n      requirements: {gpu_type: H100,"
            " max_hourly_price: 2.5}\n"
        ),
    )
    issue = ws.only_issue("m.yaml")
    assert (issue.line, issue.field) == (10, "instances[0].placement.requirements.max_hourly_price")
    assert "quoted decimal string" in issue.message


def test_budget_errors_are_located(ws: Workspace) -> None:
    budget = "budget:\n  max_hourly: 40\n  max_creates: 3\n"
    ws.write("m.yaml", fleet_text("  - name: a\n", extra=budget))
    rendered = [i.render() for i in ws.issues("m.yaml")]
    assert rendered == [
        'm.yaml:8:3: budget.max_hourly: write the amount as a quoted decimal string, e.g. "50.00"',
        "m.yaml:9:3: budget.max_creates: unknown key 'max_creates';"
        " did you mean 'max_creates_per_apply'?",
    ]


def test_budget_needs_something_and_creates_are_non_negative(ws: Workspace) -> None:
    ws.write("a.yaml", fleet_text("  - name: a\n", fleet="a", extra="budget: {}\n"))
    extra = "budget: {max_creates_per_apply: -1}\n"
    ws.write("b.yaml", fleet_text("  - name: a\n", fleet="b", extra=extra))
    issues = ws.issues()
    assert [(i.file, i.line, i.field) for i in issues] == [
        ("a.yaml", 7, "budget"),
        ("b.yaml", 7, "budget.max_creates_per_apply"),
    ]
    assert issues[0].message == "set max_hourly, max_instance_hourly or max_creates_per_apply"
    assert "greater than or equal to 0" in issues[1].message


def test_backend_errors_never_show_the_value(ws: Workspace) -> None:
    extra = "backend: reconciler:hunter2@db/fleets\n"
    ws.write("m.yaml", fleet_text("  - name: a\n", extra=extra))
    issue = ws.only_issue("m.yaml")
    assert (issue.line, issue.field) == (7, "backend")
    assert issue.message.startswith("expected a URL such as file://state")
    assert "hunter2" not in issue.render()
