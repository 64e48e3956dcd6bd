"""``load_fleets``: manifest files and directories in, resolved fleets out.

Steps per file: read (size, UTF-8, YAML, duplicate keys, aliases) -> interpolate
``${var.*}``/``${env:*}`` -> validate against :mod:`reconciler.models.manifest` -> merge
defaults, expand replicas, read script files -> :class:`~reconciler.models.spec.Fleet`.
Every problem in every file is collected and raised together as one
:class:`~reconciler.errors.ManifestError`.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from reconciler.errors import ManifestError, ManifestIssue
from reconciler.manifest.containment import manifest_tree
from reconciler.manifest.interpolation import Interpolator, variable_text
from reconciler.manifest.resolve import ScriptFiles, check_instance_names, resolve_fleet
from reconciler.manifest.source import Document, FileProblem, read_document
from reconciler.manifest.validation import validate_part
from reconciler.models.manifest import InstanceDefaults, InstanceEntry, Manifest
from reconciler.models.spec import Fleet

MANIFEST_SUFFIXES = (".yaml", ".yml")


@dataclass(frozen=True)
class ManifestFile:
    """A file to load: where it is on disk, how messages and ``Fleet.source`` name it, and
    the tree its own paths must stay in (see :mod:`reconciler.manifest.containment`)."""

    path: Path
    display: str
    root: Path


def load_fleets(
    paths: Sequence[Path],
    *,
    variables: Mapping[str, str] | None = None,
    var_files: Sequence[Path] = (),
    environ: Mapping[str, str] | None = None,
    base_dir: Path | None = None,
    protected: Sequence[Path] = (),
) -> list[Fleet]:
    """Load every manifest under ``paths`` (files, or directories searched recursively).

    ``variables`` (``--var``) win over ``var_files`` (later files win), which win over each
    manifest's own ``variables``. ``environ`` defaults to ``os.environ``. Relative paths are
    resolved against ``base_dir`` (default: the working directory) but keep their relative
    spelling in messages and in ``Fleet.source``. Fleets come back sorted by name.

    Paths inside a manifest (``script_file``, ``state_dir``, a ``file://`` backend) must stay
    in the manifest's tree (:mod:`reconciler.manifest.containment`); no script may be read
    from the ``protected`` directories (the run's state directory).

    Raises :class:`~reconciler.errors.ManifestError` listing every problem found.

    Example::

        fleets = load_fleets([Path("specs")], variables={"model": "mistral"}, environ={})
    """
    issues: list[ManifestIssue] = []
    files = discover_manifests(paths, base_dir=base_dir, issues=issues)
    overrides = _read_var_files(var_files, base_dir, issues)
    overrides.update(variables or {})
    env = os.environ if environ is None else environ
    scripts = ScriptFiles(protected=tuple(p.resolve() for p in protected))
    fleets: list[Fleet] = []
    declared: dict[str, tuple[str, int]] = {}
    for manifest_file in files:
        fleet, file_issues, document = _load_one(manifest_file, overrides, env, scripts)
        issues.extend(file_issues)
        if fleet is None or document is None:
            continue
        if fleet.name in declared:
            first_file, first_line = declared[fleet.name]
            message = f"fleet '{fleet.name}' is already declared in {first_file}:{first_line}"
            issues.append(document.issue(("fleet",), message))
            continue
        declared[fleet.name] = (fleet.source, document.position_of(("fleet",)).line)
        fleets.append(fleet)
    if issues:
        raise ManifestError(list(dict.fromkeys(issues)))
    return sorted(fleets, key=lambda fleet: fleet.name)


def discover_manifests(
    paths: Sequence[Path], *, base_dir: Path | None, issues: list[ManifestIssue]
) -> list[ManifestFile]:
    """Files to load, in order: given files as-is, directories' *.yaml/*.yml sorted."""
    found: list[ManifestFile] = []
    seen: set[Path] = set()
    for given in paths:
        on_disk = _on_disk(given, base_dir)
        if on_disk.is_dir():
            inside = sorted(_manifests_under(on_disk))
            if not inside:
                issues.append(
                    ManifestIssue(str(given), None, None, "", "no *.yaml or *.yml files here")
                )
            tree = manifest_tree(on_disk / "_", given=on_disk)
            candidates = []
            for rel in inside:
                display = str(given / rel)
                try:
                    real = (on_disk / rel).resolve()
                except (OSError, RuntimeError):
                    real = None
                if real is None or not real.is_relative_to(tree):
                    message = (
                        "is a symlink out of the manifests' tree; a directory given on the "
                        "command line only yields the manifests inside it"
                    )
                    issues.append(ManifestIssue(display, None, None, "", message))
                    continue
                candidates.append(
                    ManifestFile(
                        on_disk / rel, display, manifest_tree(on_disk / rel, given=on_disk)
                    )
                )
        else:
            candidates = [ManifestFile(on_disk, str(given), manifest_tree(on_disk, given=on_disk))]
        for candidate in candidates:
            key = candidate.path.resolve()
            if key not in seen:
                seen.add(key)
                found.append(candidate)
    return found


def _manifests_under(directory: Path) -> Iterator[Path]:
    for root, dirs, files in os.walk(directory):
        dirs[:] = [d for d in dirs if not d.startswith(".")]
        for name in files:
            if name.endswith(MANIFEST_SUFFIXES) and not name.startswith("."):
                yield (Path(root) / name).relative_to(directory)


def _on_disk(path: Path, base_dir: Path | None) -> Path:
    return path if base_dir is None or path.is_absolute() else base_dir / path


def _load_one(
    manifest_file: ManifestFile,
    overrides: Mapping[str, str],
    environ: Mapping[str, str],
    scripts: ScriptFiles,
) -> tuple[Fleet | None, list[ManifestIssue], Document | None]:
    try:
        document, issues = read_document(manifest_file.path, manifest_file.display)
    except FileProblem as problem:
        return None, [problem.issue], None
    if not isinstance(document.data, dict):
        return None, [document.issue((), "expected a mapping with 'fleet' and 'instances'")], None
    interpolator = Interpolator({**_own_variables(document.data), **overrides}, environ)
    data, found = interpolator.interpolate(document, skip_keys=frozenset({"variables"}))
    issues.extend(found)

    entries_data = data.get("instances")
    header_data = dict(data)
    if isinstance(entries_data, list):
        header_data["instances"] = []
    manifest, found = validate_part(Manifest, header_data, document)
    issues.extend(found)
    entries: list[tuple[int, InstanceEntry]] = []
    if isinstance(entries_data, list):
        issues.extend(check_instance_names(entries_data, document))
        for index, item in enumerate(entries_data):
            entry, found = validate_part(InstanceEntry, item, document, ("instances", index))
            issues.extend(found)
            if entry is not None:
                entries.append((index, entry))
    if manifest is None:  # still check the instances, against the defaults if they are valid
        defaults, found = validate_part(InstanceDefaults, data.get("defaults") or {}, document)
        if defaults is None:
            return None, issues, document
        manifest = Manifest.model_construct(fleet="-", defaults=defaults, instances=[])
    fleet, found = resolve_fleet(
        manifest,
        entries,
        document,
        directory=manifest_file.path.parent,
        root=manifest_file.root,
        scripts=scripts,
    )
    issues.extend(found)
    return (fleet if not issues else None), issues, document


def _own_variables(data: dict[str, Any]) -> dict[str, str]:
    declared = data.get("variables")
    if not isinstance(declared, dict):
        return {}
    texts = {name: variable_text(value) for name, value in declared.items()}
    return {name: text for name, text in texts.items() if text is not None}


def _read_var_files(
    var_files: Sequence[Path], base_dir: Path | None, issues: list[ManifestIssue]
) -> dict[str, str]:
    values: dict[str, str] = {}
    for given in var_files:
        try:
            document, found = read_document(_on_disk(given, base_dir), str(given))
        except FileProblem as problem:
            issues.append(problem.issue)
            continue
        issues.extend(found)
        if not isinstance(document.data, dict):
            issues.append(document.issue((), "a variables file must be a mapping of NAME: value"))
            continue
        for name, value in document.data.items():
            text = variable_text(value)
            if text is None:
                message = "a variable must be a string, number or boolean"
                issues.append(document.issue((name,), message))
            else:
                values[name] = text
    return values
