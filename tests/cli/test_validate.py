"""``reconciler validate`` and ``reconciler schema`` through click's CliRunner."""

from __future__ import annotations

import contextlib
import json
import shutil
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

import reconciler.cli.commands  # noqa: F401  (registers every command on the group)
from reconciler.cli.app import cli
from reconciler.cli.validate import (
    count_gpus,
    gpu_count,
    instance_gpus,
    load_from_cli,
    manifest_options,
    parse_var_assignments,
    render_schema,
)
from reconciler.errors import UsageError
from reconciler.models.spec import (
    InstanceSpec,
    Placement,
    PlacementCandidate,
    PlacementRequirements,
)

REPO = Path(__file__).resolve().parents[2]
SPECS = REPO / "specs"


@pytest.fixture
def runner() -> CliRunner:
    return CliRunner()


def test_validate_defaults_to_specs_and_prints_a_summary(runner: CliRunner, tmp_path: Path) -> None:
    shutil.copytree(SPECS, tmp_path / "specs")
    with contextlib.chdir(tmp_path):
        result = runner.invoke(cli, ["validate"], env={"HF_TOKEN": None, "WANDB_API_KEY": None})
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0].split() == [
        "specs/batch-spot.yaml",
        "batch-spot",
        "5",
        "instances",
        "5",
        "GPUs",
    ]
    assert lines[2].split() == [
        "specs/training.yaml",
        "training",
        "1",
        "instance",
        "8",
        "GPUs",
        "1",
        "volume",
        "(2,000",
        "GB),",
        "1",
        "SSH",
        "key",
    ]
    assert lines[-1] == "OK: 3 fleets, 9 instances, 16 GPUs, 1 volume, 1 SSH key"


def test_validate_prints_every_error_and_exits_3(runner: CliRunner, tmp_path: Path) -> None:
    (tmp_path / "a.yaml").write_text("fleet: a\ninstances:\n  - name: x\n    regoin: r\n")
    (tmp_path / "b.yaml").write_text("fleet: [\n")
    result = runner.invoke(cli, ["validate", str(tmp_path)])
    assert result.exit_code == 3
    assert "Traceback" not in result.output
    assert (
        f"{tmp_path}/a.yaml:4:5: instances[0].regoin: unknown key 'regoin'; did you mean 'region'?"
        in result.output
    )
    assert f"{tmp_path}/b.yaml:2:1: invalid YAML" in result.output
    assert result.output.startswith("Error: 2 problems in the fleet manifests:")


def test_validate_applies_vars_and_var_files(runner: CliRunner, tmp_path: Path) -> None:
    manifest = tmp_path / "m.yaml"
    manifest.write_text(
        "fleet: f\ninstances:\n  - name: '${var.n}'\n    cloud: c\n    region: r\n"
        "    shade_instance_type: '${var.t}'\n    shade_cloud: true\n"
    )
    var_file = tmp_path / "vars.json"
    var_file.write_text('{"t": "H100", "n": "from-file"}')
    result = runner.invoke(
        cli, ["validate", str(manifest), "--var-file", str(var_file), "--var", "t=8xH100"]
    )
    assert result.exit_code == 0, result.output
    assert "1 instance" in result.output and "8 GPUs" in result.output


def test_malformed_var_is_a_usage_error(runner: CliRunner) -> None:
    result = runner.invoke(cli, ["validate", str(SPECS), "--var", "novalue"])
    assert result.exit_code == 64
    assert "NAME=VALUE" in result.output


def test_missing_path_is_reported_not_raised(runner: CliRunner, tmp_path: Path) -> None:
    result = runner.invoke(cli, ["validate", str(tmp_path / "nope")])
    assert result.exit_code == 3
    assert "nope: file not found" in result.output


def test_schema_prints_the_committed_schema(runner: CliRunner) -> None:
    result = runner.invoke(cli, ["schema"])
    assert result.exit_code == 0
    assert result.output == render_schema()
    committed = (SPECS / "schema.json").read_text(encoding="utf-8")
    assert json.loads(committed) == json.loads(result.output), (
        "specs/schema.json is stale: run `reconciler schema > specs/schema.json`"
    )


def test_schema_describes_the_language() -> None:
    schema = json.loads(render_schema())
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert schema["required"] == ["fleet", "instances"]
    assert schema["additionalProperties"] is False
    entry = schema["$defs"]["InstanceEntry"]
    assert entry["required"] == ["name"]
    assert entry["properties"]["cloud"]["description"].startswith("Cloud provider")
    launch = entry["properties"]["launch_configuration"]["anyOf"][0]
    assert launch["discriminator"]["propertyName"] == "type"


def test_example_specs_point_at_the_schema() -> None:
    for manifest in sorted(SPECS.glob("*.yaml")):
        first = manifest.read_text(encoding="utf-8").splitlines()[0]
        assert first == "# yaml-language-server: $schema=./schema.json", manifest.name


@pytest.mark.parametrize(
    ("instance_type", "gpus"), [("8xH100", 8), ("H100", 1), ("A6000", 1), ("8xB200", 8)]
)
def test_gpu_count(instance_type: str, gpus: int) -> None:
    assert gpu_count(instance_type) == gpus


def test_parse_var_assignments() -> None:
    assert parse_var_assignments(["a=1", "b=x=y", "c="]) == {"a": "1", "b": "x=y", "c": ""}
    with pytest.raises(UsageError):
        parse_var_assignments(["=1"])
    with pytest.raises(UsageError):
        parse_var_assignments(["bad name=1"])


def test_manifest_options_feed_load_from_cli(runner: CliRunner, tmp_path: Path) -> None:
    manifest = tmp_path / "m.yaml"
    manifest.write_text(
        "fleet: f\ninstances:\n  - {name: a, cloud: c, region: r, shade_cloud: true,"
        " shade_instance_type: '${var.t}'}\n"
    )
    seen: list[str | None] = []

    @click.command()
    @click.argument("paths", nargs=-1, type=click.Path(path_type=Path))
    @manifest_options
    def probe(paths: tuple[Path, ...], **manifest_kwargs: object) -> None:
        fleets = load_from_cli(paths, **manifest_kwargs)  # type: ignore[arg-type]
        seen.extend(i.shade_instance_type for f in fleets for i in f.instances)

    result = runner.invoke(probe, [str(manifest), "--var", "t=B200"])
    assert result.exit_code == 0, result.output
    assert seen == ["B200"]


def test_example_specs_satisfy_the_json_schema() -> None:
    jsonschema = pytest.importorskip("jsonschema")  # comes with openapi-core (test extra)
    from reconciler.manifest.source import read_document

    schema = json.loads(render_schema())
    validator = jsonschema.Draft202012Validator(schema)
    for manifest in sorted(SPECS.glob("*.yaml")):
        document, issues = read_document(manifest, manifest.name)
        assert issues == []
        errors = [e.message for e in validator.iter_errors(document.data)]
        assert errors == [], (manifest.name, errors)
    wrong = {"fleet": "f", "instances": [{"name": "a", "replicas": 0, "imgae": "x"}]}
    assert len(list(validator.iter_errors(wrong))) == 2


def placed(
    placement: Placement | None = None, shade_instance_type: str | None = None
) -> InstanceSpec:
    return InstanceSpec(
        address="f/a",
        fleet="f",
        name="a",
        shade_cloud=True,
        shade_instance_type=shade_instance_type,
        placement=placement,
    )


EIGHT = PlacementCandidate(cloud="lambdalabs", region="us-east-1", shade_instance_type="8xH100")
ONE = PlacementCandidate(cloud="datacrunch", region="FIN-01", shade_instance_type="H100")


def test_instance_gpus_with_placement() -> None:
    assert instance_gpus(placed(shade_instance_type="8xB200")) == 8
    assert instance_gpus(placed(Placement(candidates=(EIGHT, ONE)))) == 8  # first candidate
    assert instance_gpus(placed(Placement(candidates=(ONE, EIGHT)))) == 1
    wants_two = Placement(candidates=(ONE,), requirements=PlacementRequirements(num_gpus=2))
    assert instance_gpus(placed(wants_two)) == 2  # requirements win
    open_count = Placement(requirements=PlacementRequirements(gpu_type="H100"))
    assert instance_gpus(placed(open_count)) is None
    assert instance_gpus(placed()) is None


def test_count_gpus_says_at_least_when_an_envelope_leaves_it_open() -> None:
    open_count = placed(Placement(requirements=PlacementRequirements(gpu_type="H100")))
    assert count_gpus(
        [placed(shade_instance_type="8xH100"), placed(Placement(candidates=(ONE,)))]
    ) == ("9 GPUs")
    assert count_gpus([placed(shade_instance_type="8xH100"), open_count]) == "at least 9 GPUs"
    assert count_gpus([]) == "0 GPUs"


def test_validate_summary_counts_placement_envelopes(runner: CliRunner, tmp_path: Path) -> None:
    manifest = tmp_path / "m.yaml"
    manifest.write_text(
        "fleet: f\ndefaults: {shade_cloud: true}\ninstances:\n"
        "  - name: a\n    placement:\n      candidates:\n"
        "        - {cloud: lambdalabs, region: us-east-1, shade_instance_type: 8xH100}\n"
        "  - name: b\n    placement: {requirements: {gpu_type: H100}}\n"
    )
    result = runner.invoke(cli, ["validate", str(manifest)])
    assert result.exit_code == 0, result.output
    assert result.output.splitlines()[-1] == "OK: 1 fleet, 2 instances, at least 9 GPUs"
