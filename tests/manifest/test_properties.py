"""Property tests: whatever bytes a manifest holds, the loader loads it or raises ManifestError.

Nothing else may escape (no KeyError, RecursionError, UnicodeError, pydantic or yaml errors).
Three sources of input: arbitrary bytes and text, random JSON documents shaped like manifests
(JSON is YAML), and the example specs mutated line by line and character by character.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from reconciler.errors import ManifestError
from reconciler.manifest import load_fleets
from reconciler.models.spec import Fleet

SPECS = Path(__file__).resolve().parents[2] / "specs"
EXAMPLES = sorted(p.name for p in SPECS.glob("*.yaml"))
PROPERTY_SETTINGS = settings(
    max_examples=120,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


@pytest.fixture(scope="module")
def sandbox(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("props")
    shutil.copytree(SPECS / "scripts", root / "scripts")
    shutil.copytree(SPECS / "keys", root / "keys")
    return root


def load_or_manifest_error(root: Path, content: bytes) -> list[Fleet] | ManifestError:
    (root / "m.yaml").write_bytes(content)
    try:
        return load_fleets(
            [Path("m.yaml")], environ={"HF_TOKEN": "x"}, variables={"v": "1"}, base_dir=root
        )
    except ManifestError as exc:
        assert exc.issues, "a ManifestError must carry at least one issue"
        for issue in exc.issues:
            assert issue.file == "m.yaml"
            assert issue.render().startswith("m.yaml")
        return exc


@PROPERTY_SETTINGS
@given(content=st.binary(max_size=400))
def test_arbitrary_bytes(sandbox: Path, content: bytes) -> None:
    load_or_manifest_error(sandbox, content)


@PROPERTY_SETTINGS
@given(
    content=st.text(alphabet=st.sampled_from(list("fleet:instances- name{}[]&*!|>'\"\n\t #$%@,.<")))
)
def test_yaml_punctuation_soup(sandbox: Path, content: str) -> None:
    load_or_manifest_error(sandbox, content.encode())


KEYS = [
    "fleet",
    "instances",
    "defaults",
    "variables",
    "state_dir",
    "name",
    "replicas",
    "cloud",
    "region",
    "shade_instance_type",
    "shade_cloud",
    "rental_type",
    "os",
    "template_id",
    "launch_configuration",
    "type",
    "docker_configuration",
    "script_configuration",
    "script",
    "script_file",
    "image",
    "args",
    "envs",
    "value",
    "port_mappings",
    "host_port",
    "container_port",
    "volume_ids",
    "auto_delete",
    "alert",
    "spend_threshold",
    "date_threshold",
    "tags",
    "lifecycle",
    "ignore_changes",
    "prevent_destroy",
    "<<",
    "registry_credentials",
    "password",
    "base64_script",
    "volume_mount",
    "auto",
    "placement",
    "strategy",
    "candidates",
    "requirements",
    "gpu_type",
    "num_gpus",
    "min_vram_per_gpu_in_gb",
    "max_hourly_price",
    "clouds",
    "regions",
    "rental_types",
    "budget",
    "max_hourly",
    "max_instance_hourly",
    "max_creates_per_apply",
    "backend",
]
SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from(
        [
            "docker",
            "script",
            "spot",
            "on_demand",
            "a",
            "A6000",
            "${var.v}",
            "${env:HF_TOKEN}",
            "${env:NOPE}",
            "${",
            "$${x}",
            "2030-01-01T00:00:00Z",
            "50.00",
            "eA==",
            "scripts/train.sh",
            "reconciler:x",
            "tags",
            "web-0",
            "cheapest",
            "ordered",
            "H100",
            "file://state",
            "postgresql://u:${env:HF_TOKEN}@db/f",
            "",
        ]
    ),
    st.text(max_size=12),
)
JSON_VALUES = st.recursive(
    SCALARS,
    lambda children: st.one_of(
        st.lists(children, max_size=4),
        st.dictionaries(st.sampled_from(KEYS), children, max_size=5),
    ),
    max_leaves=30,
)


@PROPERTY_SETTINGS
@given(
    document=st.fixed_dictionaries(
        {"fleet": SCALARS, "instances": JSON_VALUES},
        optional={
            "defaults": JSON_VALUES,
            "variables": JSON_VALUES,
            "state_dir": SCALARS,
            "budget": JSON_VALUES,
            "backend": SCALARS,
        },
    )
)
def test_random_manifest_shaped_documents(sandbox: Path, document: dict[str, Any]) -> None:
    text = json.dumps(document, allow_nan=True)
    load_or_manifest_error(sandbox, text.encode())


@st.composite
def mutated_example(draw: st.DrawFn) -> bytes:
    text = (SPECS / draw(st.sampled_from(EXAMPLES))).read_text(encoding="utf-8")
    for _ in range(draw(st.integers(min_value=1, max_value=4))):
        lines = text.splitlines(keepends=True)
        if not lines:
            break
        i = draw(st.integers(min_value=0, max_value=len(lines) - 1))
        j = draw(st.integers(min_value=0, max_value=len(lines) - 1))
        kind = draw(
            st.sampled_from(["delete", "duplicate", "swap", "indent", "dedent", "insert", "cut"])
        )
        if kind == "delete":
            del lines[i]
        elif kind == "duplicate":
            lines.insert(j, lines[i])
        elif kind == "swap":
            lines[i], lines[j] = lines[j], lines[i]
        elif kind == "indent":
            lines[i] = "  " + lines[i]
        elif kind == "dedent":
            lines[i] = lines[i][2:] if lines[i].startswith("  ") else lines[i]
        elif kind == "insert":
            at = draw(st.integers(min_value=0, max_value=len(lines[i])))
            junk = draw(
                st.sampled_from([":", "- ", "{", "]", "&a ", "*a", "'", "#", "${", "\t", "x"])
            )
            lines[i] = lines[i][:at] + junk + lines[i][at:]
        else:
            lines = lines[: i + 1]
        text = "".join(lines)
    return text.encode()


@PROPERTY_SETTINGS
@given(content=mutated_example())
def test_mutated_examples(sandbox: Path, content: bytes) -> None:
    load_or_manifest_error(sandbox, content)


def test_unmutated_examples_load(sandbox: Path) -> None:
    for name in EXAMPLES:
        result = load_or_manifest_error(sandbox, (SPECS / name).read_bytes())
        assert isinstance(result, list), result
