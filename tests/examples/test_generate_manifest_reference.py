"""docs/manifest-fields.md is exactly what docs/generate_manifest_reference.py renders."""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from reconciler.models.manifest import manifest_json_schema

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "docs" / "generate_manifest_reference.py"
REFERENCE = REPO / "docs" / "manifest-fields.md"


@pytest.fixture(scope="module")
def generator() -> ModuleType:
    spec = importlib.util.spec_from_file_location("generate_manifest_reference", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_committed_reference_is_up_to_date(generator: ModuleType) -> None:
    expected = generator.render_reference(manifest_json_schema())
    assert REFERENCE.read_text(encoding="utf-8") == expected, (
        "docs/manifest-fields.md is stale: run `python docs/generate_manifest_reference.py`"
    )


def test_check_mode_reports_a_stale_file(generator: ModuleType, tmp_path: Path) -> None:
    stale = tmp_path / "fields.md"
    stale.write_text("# old\n", encoding="utf-8")
    assert generator.main(["--check", "--output", str(stale)]) == 1
    assert generator.main(["--output", str(stale)]) == 0
    assert generator.main(["--check", "--output", str(stale)]) == 0


def test_every_field_of_the_schema_has_a_row(generator: ModuleType) -> None:
    schema = manifest_json_schema()
    text = generator.render_reference(schema)
    sections = {"Manifest": schema, **schema["$defs"]}
    for name, node in sections.items():
        section = text.split(f"\n## {name}\n", 1)[1].split("\n## ", 1)[0]
        for key in node.get("properties", {}):
            assert f"\n| `{key}` |" in section, (name, key)


def test_links_point_at_sections_that_exist(generator: ModuleType) -> None:
    text = generator.render_reference(manifest_json_schema())
    headings = {generator.anchor(line[3:]) for line in text.splitlines() if line.startswith("## ")}
    targets = set(re.findall(r"\]\(#([a-z0-9-]+)\)", text))
    assert targets and targets <= headings, targets - headings


@pytest.mark.parametrize(
    ("node", "expected"),
    [
        (
            {
                "anyOf": [
                    {"minimum": 1, "type": "integer"},
                    {"pattern": r"^\$\{[^{}]+\}$", "type": "string"},
                    {"type": "null"},
                ]
            },
            "integer ≥ 1 or `${...}`",
        ),
        (
            {"anyOf": [{"enum": ["on_demand", "spot"], "type": "string"}, {"type": "null"}]},
            "`on_demand` or `spot`",
        ),
        (
            {"items": {"minLength": 1, "type": "string"}, "maxItems": 1, "type": "array"},
            "list of non-empty strings (at most 1)",
        ),
        ({"items": {"$ref": "#/$defs/EnvVar"}, "type": "array"}, "list of [EnvVar](#envvar)"),
        ({"type": ["string", "number", "boolean"]}, "string, number or boolean"),
        ({"maximum": 65535, "minimum": 1, "type": "integer"}, "integer 1–65535"),
        ({"type": "string", "writeOnly": True}, "string (secret)"),
        (
            {
                "discriminator": {
                    "mapping": {"docker": "#/$defs/DockerLaunch"},
                    "propertyName": "type",
                },
                "oneOf": [{"$ref": "#/$defs/DockerLaunch"}],
            },
            "one of [DockerLaunch](#dockerlaunch) (`type: docker`)",
        ),
    ],
)
def test_describe_type(generator: ModuleType, node: dict[str, Any], expected: str) -> None:
    assert generator.describe_type(node) == expected


def test_pipes_in_patterns_do_not_break_tables(generator: ModuleType) -> None:
    schema = {
        "properties": {"kind": {"type": "string", "pattern": "^(a|b)$", "description": "x | y"}},
        "$defs": {},
    }
    row = [line for line in generator.render_reference(schema).splitlines() if "`kind`" in line][0]
    assert row.count(" | ") == 4  # five cells: the pipes inside them are escaped
    assert r"^(a\|b)$" in row and r"x \| y" in row


def test_sections_follow_their_first_use(generator: ModuleType) -> None:
    text = generator.render_reference(manifest_json_schema())
    order = [line[3:] for line in text.splitlines() if line.startswith("## ")]
    assert order[0] == "Manifest"
    assert (
        order.index("InstanceEntry")
        < order.index("DockerLaunch")
        < order.index("DockerConfiguration")
    )
    assert order.index("DockerConfiguration") < order.index("PortMapping")
