"""Reading YAML: positions, duplicate keys, aliases, and every kind of unreadable file."""

from __future__ import annotations

import pytest

from reconciler.manifest.source import (
    MAX_DEPTH,
    FileProblem,
    Position,
    parse_document,
    render_path,
)
from tests.manifest.support import Workspace


def problem(text: str) -> FileProblem:
    with pytest.raises(FileProblem) as caught:
        parse_document(text, "m.yaml")
    return caught.value


def test_positions_are_recorded_for_keys_and_items() -> None:
    text = "fleet: a\ninstances:\n  - name: x\n    tags: [p, q]\n"
    document, issues = parse_document(text, "m.yaml")
    assert issues == []
    assert document.data == {"fleet": "a", "instances": [{"name": "x", "tags": ["p", "q"]}]}
    assert document.position_of(("instances",)) == Position(2, 1)
    assert document.position_of(("instances", 0)) == Position(3, 5)
    assert document.position_of(("instances", 0, "tags")) == Position(4, 5)
    assert document.position_of(("instances", 0, "tags", 1)) == Position(4, 15)
    # Unknown paths fall back to the nearest ancestor that was written.
    assert document.position_of(("instances", 0, "missing")) == Position(3, 5)


def test_render_path() -> None:
    assert render_path(("instances", 2, "envs", 0, "value")) == "instances[2].envs[0].value"
    assert render_path(()) == ""


def test_scalars_follow_the_yaml_1_2_core_schema_and_timestamps_stay_text() -> None:
    text = (
        "on: yes\nn: 3\nf: 1.5\nz: ~\nd: 2030-01-02T03:04:05Z\ns: '3'\nt: true\n"
        "u: off\nv: 1:20\nw: 1_000\nx: 0x1F\ny: 0o17\nq: NO\nr: False\n"
    )
    document, issues = parse_document(text, "m.yaml")
    assert issues == []
    assert document.data == {
        "on": "yes",  # YAML 1.1 would say True
        "n": 3,
        "f": 1.5,
        "z": None,
        "d": "2030-01-02T03:04:05Z",
        "s": "3",
        "t": True,
        "u": "off",  # YAML 1.1: False, i.e. "your own cloud account" for shade_cloud
        "v": "1:20",  # YAML 1.1: sexagesimal 80
        "w": "1_000",
        "x": 31,
        "y": 15,
        "q": "NO",
        "r": False,
    }


@pytest.mark.parametrize(
    ("text", "tag", "field"),
    [
        ("a: !!python/object/apply:os.system [ls]\n", "!!python/object/apply:os.system", "a"),
        ("a: !!python/object:os.system x\n", "!!python/object:os.system", "a"),
        ("a: !!str 4\n", "!!str", "a"),
        ("a: !custom {b: 1}\n", "!custom", "a"),
        ("a: ! plain\n", "!", "a"),
        ("a: [1, !!int 2]\n", "!!int", "a[1]"),
        ("? !!str a\n: 1\n", "!!str", "a"),
    ],
)
def test_every_explicit_tag_is_refused_where_it_is_written(text: str, tag: str, field: str) -> None:
    _, issues = parse_document("x: 1\n" + text, "m.yaml")
    assert [(i.line, i.field) for i in issues] == [(2, field)]
    assert f"explicit YAML tags are not allowed ('{tag}')" in issues[0].message


def test_duplicate_key_is_reported_at_the_second_occurrence() -> None:
    text = "fleet: a\ndefaults:\n  cloud: x\n  region: y\n  cloud: z\n"
    document, issues = parse_document(text, "m.yaml")
    assert [i.render() for i in issues] == [
        "m.yaml:5:3: defaults.cloud: duplicate key 'cloud' (first set on line 3)"
    ]
    assert document.data["defaults"]["cloud"] == "x"


def test_yaml_syntax_error_names_line_and_column() -> None:
    issue = problem("fleet: a\ninstances: [1, 2\nother: 3\n").issue
    assert (issue.file, issue.line) == ("m.yaml", 3)
    assert issue.message.startswith("invalid YAML:")


def test_tab_indentation_is_a_syntax_error() -> None:
    issue = problem("fleet: a\ninstances:\n\t- name: x\n").issue
    assert (issue.line, issue.column) == (3, 1)


def test_control_character_is_located() -> None:
    issue = problem("fleet: a\nname: b\x07\n").issue
    assert (issue.line, issue.column) == (2, 8)
    assert "#x0007" in issue.message


def test_alias_bomb_is_refused() -> None:
    lines = ["a: &a [x, x, x, x, x, x, x, x, x, x]"]
    for level, name in enumerate("bcdefghi"):
        previous = "abcdefghi"[level]
        lines.append(f"{name}: &{name} [" + ", ".join([f"*{previous}"] * 10) + "]")
    issue = problem("\n".join(lines) + "\n").issue
    assert "alias bomb" in issue.message
    assert issue.line is not None and issue.line <= 6


def test_moderate_aliases_are_fine_and_shared() -> None:
    text = "base: &b {cloud: x}\none: *b\ntwo: *b\n"
    document, issues = parse_document(text, "m.yaml")
    assert issues == []
    assert document.data["one"] == document.data["two"] == {"cloud": "x"}


def test_recursive_alias_is_refused() -> None:
    issue = problem("a: &a [1, *a]\n").issue
    assert "*a" in issue.message
    assert issue.line == 1


def test_unknown_alias_is_refused() -> None:
    assert "*nope" in problem("a: *nope\n").issue.message


def test_merge_keys_apply_with_explicit_keys_winning() -> None:
    text = "base: &b {cloud: x, region: r}\ninst:\n  <<: *b\n  region: s\n"
    document, issues = parse_document(text, "m.yaml")
    assert issues == []
    assert document.data["inst"] == {"cloud": "x", "region": "s"}
    assert document.position_of(("inst", "cloud")) == Position(3, 3)


def test_merge_key_needs_mappings() -> None:
    assert "'<<'" in problem("a:\n  <<: 3\n").issue.message


def test_deep_nesting_is_refused_without_crashing() -> None:
    issue = problem("[" * 200_000).issue
    assert f"deeper than {MAX_DEPTH}" in issue.message or "nesting depth" in issue.message


def test_second_document_is_refused() -> None:
    issue = problem("fleet: a\n---\nfleet: b\n").issue
    assert issue.line == 2
    assert "one YAML document" in issue.message


@pytest.mark.parametrize("text", ["", "   \n", "# only a comment\n", "---\n", "~\n"])
def test_empty_file(text: str) -> None:
    issue = problem(text).issue
    assert (issue.line, issue.column) == (1, 1)
    assert "empty" in issue.message


def test_collection_as_key_is_refused() -> None:
    assert "keys" in problem("? [a]\n: b\n").issue.message


def test_not_utf8_names_the_line_and_column(ws: Workspace) -> None:
    ws.write("bad.yaml", b"fleet: a\ninstances:\n  - name: caf\xe9\n")
    issue = ws.only_issue("bad.yaml")
    assert (issue.file, issue.line, issue.column) == ("bad.yaml", 3, 14)
    assert "UTF-8" in issue.message


def test_utf8_bom_is_accepted(ws: Workspace) -> None:
    ws.write("bom.yaml", "\ufefffleet: a\ninstances: []\n".encode())
    assert ws.load("bom.yaml")[0].name == "a"


def test_file_over_the_size_limit(ws: Workspace) -> None:
    ws.write("big.yaml", "fleet: a\n" + "# padding\n" * 110_000)
    issue = ws.only_issue("big.yaml")
    assert (issue.file, issue.line) == ("big.yaml", 1)
    assert "limit" in issue.message


def test_missing_file(ws: Workspace) -> None:
    issue = ws.only_issue("nope.yaml")
    assert issue.file == "nope.yaml"
    assert issue.message == "file not found"
