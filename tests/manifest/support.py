"""Test helpers: write manifests into a temp dir, load them, read the issues."""

from __future__ import annotations

import textwrap
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import pytest

from reconciler.errors import ManifestError, ManifestIssue
from reconciler.manifest import load_fleets
from reconciler.models.spec import Fleet

MINIMAL_DEFAULTS = """\
defaults:
  cloud: hyperstack
  region: canada-1
  shade_instance_type: A6000
  shade_cloud: true
"""


@dataclass
class Workspace:
    """A temp directory of manifests, loaded with an explicit (empty by default) environment."""

    root: Path

    def write(self, name: str, text: str | bytes) -> Path:
        path = self.root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(text, bytes):
            path.write_bytes(text)
        else:
            path.write_text(textwrap.dedent(text), encoding="utf-8")
        return path

    def load(
        self,
        *names: str,
        variables: Mapping[str, str] | None = None,
        var_files: Sequence[str] = (),
        environ: Mapping[str, str] | None = None,
    ) -> list[Fleet]:
        return load_fleets(
            [Path(n) for n in (names or (".",))],
            variables=variables,
            var_files=[Path(v) for v in var_files],
            environ=environ or {},
            base_dir=self.root,
        )

    def issues(self, *names: str, **kwargs: object) -> list[ManifestIssue]:
        with pytest.raises(ManifestError) as caught:
            self.load(*names, **kwargs)  # type: ignore[arg-type]
        return caught.value.issues

    def only_issue(self, *names: str, **kwargs: object) -> ManifestIssue:
        issues = self.issues(*names, **kwargs)
        assert len(issues) == 1, [i.render() for i in issues]
        return issues[0]


def fleet_text(instances: str, *, fleet: str = "demo", extra: str = "") -> str:
    """A manifest with the minimal defaults and the given (unindented) instances block."""
    return f"fleet: {fleet}\n{MINIMAL_DEFAULTS}{extra}instances:\n{instances}"


def one(fleets: list[Fleet]) -> Fleet:
    assert len(fleets) == 1
    return fleets[0]
