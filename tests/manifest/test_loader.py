"""``load_fleets``: discovery, variables precedence, var files, fleets across files."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import SecretStr

from reconciler.emulator.catalog import OFFERS
from reconciler.errors import ManifestError
from reconciler.manifest import discover_manifests, fleet_digest, load_fleets
from reconciler.models.catalog import dollars_to_cents
from reconciler.models.spec import InstanceSpec
from tests.manifest.support import Workspace, fleet_text, one

SPECS = Path(__file__).resolve().parents[2] / "specs"


def test_directories_are_searched_recursively_and_sorted(ws: Workspace) -> None:
    ws.write("b.yaml", fleet_text("  - name: x\n", fleet="b"))
    ws.write("sub/a.yml", fleet_text("  - name: x\n", fleet="a"))
    ws.write("sub/notes.txt", "not a manifest")
    ws.write(".hidden/c.yaml", "broken: [")
    ws.write("sub/.d.yaml", "broken: [")
    issues: list = []
    files = discover_manifests([Path("."), Path("b.yaml")], base_dir=ws.root, issues=issues)
    assert [f.display for f in files] == ["b.yaml", "sub/a.yml"]  # b.yaml not twice
    assert issues == []
    fleets = ws.load(".")
    assert [(f.name, f.source) for f in fleets] == [("a", "sub/a.yml"), ("b", "b.yaml")]


def test_source_keeps_the_spelling_it_was_given(ws: Workspace) -> None:
    ws.write("fleets/m.yaml", fleet_text("  - name: x\n"))
    assert one(ws.load("fleets")).source == "fleets/m.yaml"
    absolute = ws.root / "fleets" / "m.yaml"
    assert load_fleets([absolute], environ={})[0].source == str(absolute)


def test_empty_directory_is_an_error(ws: Workspace) -> None:
    (ws.root / "empty").mkdir()
    issue = ws.only_issue("empty")
    assert (issue.file, issue.message) == ("empty", "no *.yaml or *.yml files here")


def test_duplicate_fleet_names_name_both_files(ws: Workspace) -> None:
    ws.write("a.yaml", fleet_text("  - name: x\n", fleet="same"))
    ws.write("b.yaml", "# second\n" + fleet_text("  - name: y\n", fleet="same"))
    issue = ws.only_issue(".")
    assert (issue.file, issue.line, issue.field) == ("b.yaml", 2, "fleet")
    assert issue.message == "fleet 'same' is already declared in a.yaml:1"


def test_variable_precedence_cli_over_files_over_manifest(ws: Workspace) -> None:
    ws.write(
        "m.yaml",
        fleet_text(
            "  - name: x\n    tags: ['${var.a}', '${var.b}', '${var.c}']\n",
            extra="variables: {a: manifest, b: manifest, c: manifest}\n",
        ),
    )
    ws.write("one.yaml", "b: file1\nc: file1\n")
    ws.write("two.json", '{"c": "file2", "unused": 1}')
    fleet = one(ws.load("m.yaml", variables={"a": "cli"}, var_files=["one.yaml", "two.json"]))
    assert fleet.instances[0].tags == ("cli", "file1", "file2")


def test_var_file_problems_are_located(ws: Workspace) -> None:
    ws.write("m.yaml", fleet_text("  - name: x\n"))
    ws.write("vars.yaml", "ok: 1\nbad: [1, 2]\n")
    ws.write("list.yaml", "- a\n")
    issues = ws.issues("m.yaml", var_files=["vars.yaml", "list.yaml", "missing.yaml"])
    assert [(i.file, i.line, i.field) for i in issues] == [
        ("list.yaml", 1, ""),
        ("missing.yaml", None, ""),
        ("vars.yaml", 2, "bad"),
    ]


def test_environ_defaults_to_the_process_environment(ws: Workspace) -> None:
    ws.write(
        "m.yaml", fleet_text("  - name: x\n    envs: [{name: P, value: '${env:PATH:-none}'}]\n")
    )
    fleet = load_fleets([ws.root / "m.yaml"])  # environ=None -> os.environ, which has PATH
    value = fleet[0].instances[0].envs[0].value
    assert isinstance(value, SecretStr) and value.get_secret_value() not in ("", "none")


def test_digest_matches_the_public_helper(ws: Workspace) -> None:
    budget = "budget: {max_instance_hourly: '1.00'}\n"
    ws.write("m.yaml", fleet_text("  - name: x\n    replicas: 3\n", extra=budget))
    fleet = one(ws.load("m.yaml"))
    assert fleet.budget is not None
    assert fleet.digest == fleet_digest(fleet.instances, budget=fleet.budget)
    assert fleet.digest != fleet_digest(fleet.instances)


def test_state_dir_is_passed_through(ws: Workspace) -> None:
    ws.write("m.yaml", fleet_text("  - name: x\n", extra="state_dir: state/demo\n"))
    assert one(ws.load("m.yaml")).state_dir == "state/demo"


def test_example_specs_load_without_any_environment() -> None:
    fleets = load_fleets([SPECS], environ={})
    assert [f.name for f in fleets] == ["batch-spot", "inference", "training"]
    assert sum(len(f.instances) for f in fleets) <= 10
    catalog = {
        ("hyperstack", "canada-1", "A6000"),
        ("hyperstack", "canada-1", "H100"),
        ("hyperstack", "us-1", "A100_80G"),
        ("lambdalabs", "us-east-1", "A100_80G"),
        ("lambdalabs", "us-east-1", "H100"),
        ("lambdalabs", "us-east-1", "8xH100"),
        ("datacrunch", "FIN-01", "H100"),
        ("datacrunch", "FIN-01", "H200"),
        ("nebius", "eu-north1", "8xB200"),
        ("nebius", "eu-north1", "B200"),
    }
    spot = {
        ("hyperstack", "canada-1", "A6000"),
        ("datacrunch", "FIN-01", "H100"),
        ("lambdalabs", "us-east-1", "A100_80G"),
    }
    for fleet in fleets:
        for instance in fleet.instances:
            for cloud, region, kind, rental in offers_of(instance):
                offer = (cloud, region, kind)
                assert offer in (spot if rental == "spot" else catalog), instance.address
            assert instance.os == "ubuntu22.04_cuda12.2_shade_os"


def offers_of(instance: InstanceSpec) -> list[tuple[str | None, str | None, str | None, str]]:
    """Every offer an example instance may land on (examples name their candidates)."""
    if instance.placement is None:
        return [
            (instance.cloud, instance.region, instance.shade_instance_type, instance.rental_type)
        ]
    assert instance.placement.requirements is None, "examples list their candidates"
    return [
        (c.cloud, c.region, c.shade_instance_type, c.rental_type)
        for c in instance.placement.candidates
    ]


def cents(dollars: str) -> int:
    amount = dollars_to_cents(dollars)
    assert amount is not None
    return amount


def test_example_specs_show_placement_and_budgets_that_hold_in_the_worst_case() -> None:
    prices: dict[tuple[str | None, str | None, str | None, str], int] = {
        (offer.cloud, region.region, offer.shade_instance_type, rental): cents
        for offer in OFFERS
        for region in offer.regions
        for rental, cents in (("on_demand", offer.hourly_price), ("spot", region.spot_price))
        if cents is not None and region.available and (rental != "spot" or region.spot_available)
    }
    fleets = {f.name: f for f in load_fleets([SPECS], environ={})}
    assert any(i.placement for f in fleets.values() for i in f.instances)
    assert {"batch-spot", "inference"} <= {name for name, f in fleets.items() if f.budget}
    for fleet in fleets.values():
        if fleet.budget is None:
            continue
        worst = [max(prices[offer] for offer in offers_of(i)) for i in fleet.instances]
        budget = fleet.budget
        if budget.max_hourly is not None:
            assert sum(worst) <= cents(budget.max_hourly), fleet.name
        if budget.max_instance_hourly is not None:
            assert max(worst) <= cents(budget.max_instance_hourly), fleet.name
        if budget.max_creates_per_apply is not None:
            assert len(fleet.instances) <= budget.max_creates_per_apply, fleet.name


def test_example_specs_keep_the_hf_token_secret() -> None:
    fleets = {f.name: f for f in load_fleets([SPECS], environ={"HF_TOKEN": "hf_s3cr3t"})}
    inference = fleets["inference"]
    for instance in inference.instances:
        docker = instance.launch_configuration.docker_configuration  # type: ignore[union-attr]
        assert docker is not None
        [env] = docker.envs
        assert env.sensitive and env.value.get_secret_value() == "hf_s3cr3t"  # type: ignore[union-attr]
    assert "hf_s3cr3t" not in repr(inference)
    empty = {f.name: f for f in load_fleets([SPECS], environ={})}["inference"]
    assert empty.digest != inference.digest


def test_error_rendering_has_no_traceback_and_names_the_file(ws: Workspace) -> None:
    ws.write("m.yaml", "fleet: x\ninstances: 3\n")
    with pytest.raises(ManifestError) as caught:
        ws.load("m.yaml")
    assert str(caught.value) == (
        "1 problem in the fleet manifests:\n  m.yaml:2:1: instances: expected a list"
    )
    assert caught.value.exit_code == 3


def test_a_tiny_manifest_and_a_var_file_cannot_expand_into_a_huge_plan(ws: Workspace) -> None:
    """1 KB of manifest, a 1 MB variable, 1000 replicas: 1 GB of plan before this cap."""
    ws.write("vars.yaml", "big: " + "x" * 1_000_000 + "\n")
    ws.write(
        "m.yaml",
        fleet_text("  - name: web\n    replicas: 1000\n    tags: ['${var.big}']\n"),
    )
    issue = ws.only_issue("m.yaml", var_files=["vars.yaml"])
    assert (issue.file, issue.line, issue.field) == ("m.yaml", 8, "instances[0]")
    assert "more than 64 MiB of instance data" in issue.message
    assert "1000 replicas" in issue.message


def test_a_variable_that_uses_another_one_reaches_the_spec(ws: Workspace) -> None:
    ws.write(
        "m.yaml",
        fleet_text(
            "  - name: web\n    tags: ['${var.tag}']\n",
            extra="variables:\n  team: ml\n  tag: '${var.team}-prod'\n",
        ),
    )
    (fleet,) = ws.load("m.yaml")
    assert fleet.instances[0].tags == ("ml-prod",)
