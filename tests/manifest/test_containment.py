"""Paths inside manifests stay inside the manifest's tree (script_file, state_dir, backend).

Each case here loaded, or read a file outside the tree, before the containment rules: a pull
request could embed the CI runner's environment (``/proc/self/environ``) in the plan.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

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
