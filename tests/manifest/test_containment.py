"""Paths inside manifests stay inside the manifest's tree (script_file, state_dir, backend).

Each case here loaded, or read a file outside the tree, before the containment rules: a pull
request could embed the CI runner's environment (``/proc/self/environ``) in the plan.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from reconciler.errors import ManifestError
from reconciler.manifest import load_fleets
from reconciler.manifest.containment import Escape, contained_path, manifest_tree
from tests.manifest.support import Workspace, fleet_text

SCRIPT = "  - name: a\n    launch_configuration: {{type: script, script_file: '{path}'}}\n"
FIELD = "instances[0].launch_configuration.script_file"


def _script_issue(ws: Workspace, path: str, manifest: str = "m.yaml"):  # type: ignore[no-untyped-def]
    ws.write(manifest, fleet_text(SCRIPT.format(path=path)))
    issue = ws.only_issue(manifest)
    assert issue.field == FIELD
    assert issue.line == 9
    return issue


@pytest.mark.parametrize(
    "path", ["/proc/self/environ", "/etc/passwd", "/bin/true", "~/.ssh/id_rsa", "~root/.bashrc"]
)
def test_an_absolute_script_file_is_refused(ws: Workspace, path: str) -> None:
    issue = _script_issue(ws, path)
    assert "must be a path relative to the manifest" in issue.message


def test_a_relative_path_out_of_the_tree_is_refused(ws: Workspace) -> None:
    issue = _script_issue(ws, "../../../../../../../../etc/passwd")
    assert "leads outside the manifest's tree" in issue.message


def test_a_symlink_out_of_the_tree_is_refused(ws: Workspace) -> None:
    (ws.root / "env.sh").symlink_to("/proc/self/environ")
    issue = _script_issue(ws, "env.sh")
    assert "leads outside the manifest's tree" in issue.message


def test_a_symlinked_directory_out_of_the_tree_is_refused(ws: Workspace) -> None:
    (ws.root / "etc").symlink_to("/etc")
    issue = _script_issue(ws, "etc/passwd")
    assert "leads outside the manifest's tree" in issue.message


def test_a_fifo_is_refused_without_hanging(ws: Workspace) -> None:
    os.mkfifo(ws.root / "pipe.sh")
    issue = _script_issue(ws, "pipe.sh")
    assert "not a regular file" in issue.message


def test_a_binary_file_in_the_tree_is_refused(ws: Workspace) -> None:
    ws.write("tool.bin", b"\x7fELF\x02\x01\x01\x00\xff\xfe")
    issue = _script_issue(ws, "tool.bin")
    assert "is not UTF-8 text" in issue.message


def test_nul_bytes_are_not_text(ws: Workspace) -> None:
    ws.write("nul.sh", b"echo\x00hi\n")
    assert "NUL bytes" in _script_issue(ws, "nul.sh").message


def test_a_symlink_inside_the_tree_is_fine(ws: Workspace) -> None:
    ws.write("scripts/real.sh", "#!/bin/sh\necho hi\n")
    (ws.root / "boot.sh").symlink_to(ws.root / "scripts" / "real.sh")
    ws.write("m.yaml", fleet_text(SCRIPT.format(path="boot.sh")))
    (fleet,) = ws.load("m.yaml")
    assert fleet.instances[0].launch_configuration is not None


def test_a_git_work_tree_lets_a_manifest_reach_its_siblings(tmp_path: Path) -> None:
    """``specs/m.yaml`` may use ``../scripts/boot.sh`` when both are in one repository."""
    repo = tmp_path / "repo"
    subprocess.run(["git", "init", "-q", str(repo)], check=True)
    ws = Workspace(repo)
    ws.write("scripts/boot.sh", "echo hi\n")
    ws.write("specs/m.yaml", fleet_text(SCRIPT.format(path="../scripts/boot.sh")))
    (fleet,) = ws.load("specs")
    assert fleet.instances[0].launch_configuration is not None
    # Without the repository, the tree is the directory given on the command line.
    (repo / ".git").rename(repo / "not-git")
    issue = ws.only_issue("specs")
    assert "leads outside the manifest's tree" in issue.message


@pytest.mark.parametrize(
    ("state_dir", "message"),
    [
        ("/etc/reconciler", "must be a path relative to the manifest"),
        ("../../../../../../tmp/x", "leads outside the manifest's tree"),
    ],
)
def test_state_dir_may_not_leave_the_tree(ws: Workspace, state_dir: str, message: str) -> None:
    ws.write("m.yaml", fleet_text("  - name: a\n", extra=f"state_dir: '{state_dir}'\n"))
    issue = ws.only_issue("m.yaml")
    assert issue.field == "state_dir" and message in issue.message


def test_a_file_backend_may_not_leave_the_tree(ws: Workspace) -> None:
    ws.write("m.yaml", fleet_text("  - name: a\n", extra="backend: 'file:///etc/fleets'\n"))
    issue = ws.only_issue("m.yaml")
    assert issue.field == "backend"
    assert "must be a path relative to the manifest" in issue.message


def test_state_dir_inside_the_tree_is_fine(ws: Workspace) -> None:
    ws.write("m.yaml", fleet_text("  - name: a\n", extra="state_dir: .state\n"))
    (fleet,) = ws.load("m.yaml")
    assert fleet.state_dir == ".state"


def test_contained_path_resolves_what_does_not_exist_yet(tmp_path: Path) -> None:
    root = tmp_path.resolve()
    assert contained_path(root, root, "a/b/c", what="x") == root / "a" / "b" / "c"
    with pytest.raises(Escape):
        contained_path(root, root, "a/../../b", what="x")


def test_the_tree_of_a_file_given_on_the_command_line_is_its_directory(tmp_path: Path) -> None:
    manifest = tmp_path / "m.yaml"
    manifest.write_text("fleet: a\n")
    assert manifest_tree(manifest, given=manifest) == tmp_path.resolve()


@pytest.mark.parametrize("path", [".git/config", ".env", "secrets/.netrc", "../.git/config"])
def test_hidden_files_are_refused_even_inside_the_tree(tmp_path: Path, path: str) -> None:
    """.git/config holds the CI checkout's token; .env files hold secrets."""
    repo = tmp_path / "repo"
    subprocess.run(["git", "init", "-q", str(repo)], check=True)
    ws = Workspace(repo)
    for hidden in (".env", "secrets/.netrc"):
        ws.write(hidden, "TOKEN=ghp_abcdef\n")
    ws.write(
        "specs/m.yaml",
        fleet_text(SCRIPT.format(path=path if path.startswith("..") else "../" + path)),
    )
    issue = ws.only_issue("specs")
    assert "hidden file or directory" in issue.message


def test_a_symlink_loop_is_a_manifest_error_not_a_crash(ws: Workspace) -> None:
    (ws.root / "loop").symlink_to(ws.root / "loop")
    issue = _script_issue(ws, "loop/x.sh")
    assert "cannot be resolved" in issue.message or "not found" in issue.message


def test_the_state_directory_is_never_read_as_a_script(ws: Workspace) -> None:
    ws.write("state/inference.json", '{"fingerprint_key": "00"}\n')
    ws.write("m.yaml", fleet_text(SCRIPT.format(path="state/inference.json")))
    with pytest.raises(ManifestError) as caught:
        load_fleets([ws.root / "m.yaml"], environ={}, protected=[ws.root / "state"])
    assert "inside the state directory" in caught.value.issues[0].message


def test_a_fleets_own_state_dir_is_never_read_as_a_script(ws: Workspace) -> None:
    ws.write("fleet-state/x.json", "{}\n")
    text = fleet_text(SCRIPT.format(path="fleet-state/x.json"), extra="state_dir: fleet-state\n")
    ws.write("m.yaml", text)
    assert "inside the state directory" in ws.only_issue("m.yaml").message


def test_a_manifest_symlinked_in_from_outside_is_refused(tmp_path: Path) -> None:
    outside = tmp_path / "outside.yaml"
    outside.write_text(fleet_text("  - name: a\n", fleet="intruder"))
    specs = tmp_path / "specs"
    specs.mkdir()
    (specs / "x.yaml").symlink_to(outside)
    with pytest.raises(ManifestError) as caught:
        load_fleets([specs], environ={})
    assert "symlink out of the manifests' tree" in caught.value.issues[0].message


def test_a_manifest_that_is_a_fifo_is_refused_without_hanging(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "m.yaml")
    with pytest.raises(ManifestError) as caught:
        load_fleets([tmp_path / "m.yaml"], environ={})
    assert "not a regular file" in caught.value.issues[0].message


@pytest.mark.parametrize(
    "url",
    ["file://%2Fetc%2Ffleets", "file://..%2F..%2F..%2F..%2Ftmp%2Fx", "file://localhostlink"],
)
def test_a_file_backend_is_checked_exactly_as_it_is_opened(ws: Workspace, url: str) -> None:
    (ws.root / "localhostlink").symlink_to("/etc")
    ws.write("m.yaml", fleet_text("  - name: a\n", extra=f"backend: '{url}'\n"))
    issue = ws.only_issue("m.yaml")
    assert issue.field == "backend"
