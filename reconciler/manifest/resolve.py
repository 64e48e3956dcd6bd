"""Turning one validated manifest into a :class:`Fleet` of resolved instance specs.

Merge rules (``defaults`` into each instance; the instance's keys win):

- scalars and lists replace the default, except ``tags``: defaults' tags then the
  instance's, duplicates dropped, order kept;
- ``auto_delete``, ``alert``, ``volume_mount`` and ``lifecycle`` merge one level deep: each key
  the instance sets replaces that key of the default;
- ``launch_configuration`` is a tagged union and is replaced whole (merging a docker default
  with a script instance, or two scripts, has no sensible meaning);
- an explicit ``null`` on the instance removes the default;
- where an instance runs (``cloud``/``region``/``shade_instance_type``/``rental_type``, or
  ``placement``) is replaced as a whole when the instance picks the other form: see
  :mod:`reconciler.manifest.placement`.

The fleet's ``budget`` is copied as is; ``backend`` stays a secret and is left out of the
digest.

``replicas: N`` (N > 1) expands ``name`` to ``name-0`` ... ``name-(N-1)``; addresses are
``<fleet>/<name>`` and must be unique within the fleet after expansion.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from reconciler.errors import ManifestIssue
from reconciler.manifest import resources
from reconciler.manifest.containment import Escape, contained_path, read_contained_text
from reconciler.manifest.digest import comparable_spec, digest_of_comparables
from reconciler.manifest.placement import (
    OFFER_FIELDS,
    defaults_replaced_by,
    missing_offer_fields,
    placement_issues,
)
from reconciler.manifest.source import Document, FieldPath
from reconciler.models import manifest as lang
from reconciler.models import spec
from reconciler.models.backend import file_url_directory

MAX_SCRIPT_BYTES = 1024 * 1024
MAX_FLEET_CHARS = 64 * 1024 * 1024
"""Cap on a fleet's resolved instances (their text, replicas included): a 1 KB manifest with
``replicas: 1000`` and a 1 MB script or variable would otherwise build a 1 GB plan."""
_MISSING = "required field is missing (set it on the instance or in defaults)"
_SHALLOW_MERGED = frozenset({"auto_delete", "alert", "volume_mount", "lifecycle"})
_DEFAULTS: FieldPath = ("defaults",)
_NAME = re.compile(lang.NAME_PATTERN)


@dataclass
class ScriptFiles:
    """Reads ``script_file`` references once each (many instances may share one), only from
    inside the manifest's tree and only regular UTF-8 text files."""

    max_bytes: int = MAX_SCRIPT_BYTES
    protected: tuple[Path, ...] = ()
    """Directories no script may be read from (the run's state directories)."""
    _cache: dict[tuple[Path, Path, str, tuple[Path, ...]], bytes | str] = field(
        default_factory=dict
    )

    def read(
        self, root: Path, base: Path, written: str, *, protected: tuple[Path, ...] = ()
    ) -> bytes | str:
        """The file's bytes, or a problem description (naming the path as written)."""
        guarded = (*self.protected, *protected)
        key = (root, base, written, guarded)
        if key not in self._cache:
            try:
                found = read_contained_text(
                    root, base, written, max_bytes=self.max_bytes, protected=guarded
                )
            except Escape as problem:
                self._cache[key] = str(problem)
            else:
                self._cache[key] = found.content
        return self._cache[key]


@dataclass(frozen=True)
class _Merged:
    index: int
    entry: lang.InstanceEntry
    values: dict[str, Any]
    origins: dict[str, FieldPath]

    def path(self, name: str) -> FieldPath:
        return (*self.origins.get(name, ("instances", self.index)), name)


def resolve_fleet(
    manifest: lang.Manifest,
    entries: list[tuple[int, lang.InstanceEntry]],
    document: Document,
    *,
    directory: Path,
    root: Path,
    scripts: ScriptFiles,
) -> tuple[spec.Fleet | None, list[ManifestIssue]]:
    """The fleet, or None and the problems found (``entries`` are the valid ones, by index).

    ``root`` is the manifest's tree: ``script_file``, ``state_dir`` and a ``file://``
    backend must stay inside it.
    """
    issues: list[ManifestIssue] = _header_path_issues(manifest, document, directory, root)
    instances: list[tuple[spec.InstanceSpec, dict[str, Any]]] = []
    converted = _Converted()
    own_state: tuple[Path, ...] = ()
    if manifest.state_dir is not None:
        try:
            own_state = (
                contained_path(
                    root, directory, manifest.state_dir, what="state_dir", allow_hidden=True
                ),
            )
        except Escape:
            pass  # reported by _header_path_issues
    context = _Context(document, directory, root, scripts, converted, own_state)
    volumes, found = resources.volume_specs(manifest, document)
    issues.extend(found)
    keys, found = resources.ssh_key_specs(
        manifest,
        document,
        root=root,
        directory=directory,
        protected=(*scripts.protected, *own_state),
    )
    issues.extend(found)
    references = []
    expanded_chars = 0
    for index, entry in entries:
        merged = _merge(manifest.defaults, entry, index)
        names = _expand(entry)
        addresses = tuple(f"{manifest.fleet}/{name}" for name in names)
        references.append(resources.reference_of(index, merged.values, merged.path, addresses))
        base = _build(manifest.fleet, merged, context, issues)
        if base is not None:
            size = _text_size(base[1]) * len(names)
            expanded_chars += size
            if expanded_chars > MAX_FLEET_CHARS:
                issues.append(_too_large(document, index, entry, size))
                break
            instances.extend(_named(base, manifest.fleet, name) for name in names)
    issues.extend(
        resources.reference_issues(
            references,
            volumes,
            keys,
            {v.name for v in manifest.volumes},
            {k.name for k in manifest.ssh_keys},
            document,
        )
    )
    if issues:
        return None, issues
    instances.sort(key=lambda pair: pair[0].address)
    budget = None
    if manifest.budget is not None:
        budget = spec.Budget.model_validate(manifest.budget.model_dump(exclude_none=True))
    ordered_volumes = tuple(sorted(volumes.values(), key=lambda v: v.address))
    ordered_keys = tuple(sorted(keys.values(), key=lambda k: k.address))
    fleet = spec.Fleet(
        name=manifest.fleet,
        source=document.file,
        instances=tuple(instance for instance, _ in instances),
        volumes=ordered_volumes,
        ssh_keys=ordered_keys,
        state_dir=manifest.state_dir,
        budget=budget,
        backend=manifest.backend,
        digest=digest_of_comparables(
            (comparable for _, comparable in instances),
            budget=budget,
            resources=_resource_dumps(ordered_volumes, ordered_keys),
        ),
    )
    return fleet, []


def _resource_dumps(
    volumes: tuple[spec.VolumeSpec, ...], keys: tuple[spec.SshKeySpec, ...]
) -> list[dict[str, Any]]:
    """What the fleet digest hashes of its volumes and keys, in address order."""
    dumps = [(v.address, v.model_dump(exclude={"source"})) for v in volumes]
    dumps += [(k.address, k.model_dump(exclude={"source"})) for k in keys]
    return [dump for _, dump in sorted(dumps, key=lambda pair: pair[0])]


def _text_size(value: Any) -> int:
    """Roughly how many characters ``value`` takes in a plan or state (its strings)."""
    if isinstance(value, str):
        return len(value) + 2
    if isinstance(value, dict):
        return sum(len(key) + 4 + _text_size(item) for key, item in value.items())
    if isinstance(value, list | tuple):
        return sum(_text_size(item) + 1 for item in value)
    return 8


def _too_large(
    document: Document, index: int, entry: lang.InstanceEntry, size: int
) -> ManifestIssue:
    mib = MAX_FLEET_CHARS // (1024 * 1024)
    each = f"{entry.replicas} replicas of about {size // entry.replicas:,} characters each"
    return document.issue(
        ("instances", index),
        f"the fleet expands to more than {mib} MiB of instance data here ({each}); a plan "
        "this large cannot be reviewed. Fewer replicas, or a smaller script or variable",
    )


def check_instance_names(items: list[Any], document: Document) -> list[ManifestIssue]:
    """Expanded names must be unique and short enough; checked on the raw entries so that
    duplicates are reported even next to other errors in the same entries."""
    issues: list[ManifestIssue] = []
    first_index: dict[str, int] = {}
    for index, item in enumerate(items):
        name = item.get("name") if isinstance(item, dict) else None
        replicas = item.get("replicas", 1) if isinstance(item, dict) else 1
        if isinstance(replicas, str) and replicas.strip().isdigit():
            replicas = int(replicas)
        valid_replicas = isinstance(replicas, int) and 1 <= replicas <= lang.MAX_REPLICAS
        if not isinstance(name, str) or not _NAME.match(name) or len(name) > lang.NAME_MAX_LENGTH:
            continue  # the schema reports bad names
        if isinstance(replicas, bool) or not valid_replicas:
            continue
        where: FieldPath = ("instances", index, "name")
        for expanded in _expand_name(name, replicas):
            if len(expanded) > lang.NAME_MAX_LENGTH:
                message = f"'{expanded}' is longer than {lang.NAME_MAX_LENGTH} characters"
                issues.append(document.issue(where, message))
                break
            if expanded in first_index:
                first = document.position_of(("instances", first_index[expanded], "name")).line
                message = f"duplicate instance name '{expanded}' (also declared on line {first})"
                issues.append(document.issue(where, message))
                continue
            first_index[expanded] = index
    return issues


def _merge(
    defaults: lang.InstanceDefaults | None, entry: lang.InstanceEntry, index: int
) -> _Merged:
    values: dict[str, Any] = {}
    origins: dict[str, FieldPath] = {}
    inherited: set[str] = set()
    if defaults is not None:
        inherited = defaults.model_fields_set - defaults_replaced_by(entry)
    own = entry.model_fields_set
    for name in lang.InstanceFields.model_fields:
        if name not in own and name not in inherited:
            continue
        default = getattr(defaults, name) if name in inherited else None
        value = getattr(entry, name) if name in own else default
        origins[name] = ("instances", index) if name in own else _DEFAULTS
        if name == "tags" and name in own and default:
            value = list(dict.fromkeys([*default, *(value or ())]))
        elif name in _SHALLOW_MERGED and name in own and default is not None and value is not None:
            value = default.model_copy(
                update={k: getattr(value, k) for k in value.model_fields_set}
            )
        values[name] = value
    return _Merged(index, entry, values, origins)


@dataclass(frozen=True)
class _Context:
    """What building one manifest's instances needs besides the instance itself."""

    document: Document
    directory: Path
    root: Path
    scripts: ScriptFiles
    converted: _Converted
    protected: tuple[Path, ...] = ()
    """The fleet's own state directory (from ``state_dir:``), never readable as a script."""


def _header_path_issues(
    manifest: lang.Manifest, document: Document, directory: Path, root: Path
) -> list[ManifestIssue]:
    """``state_dir`` and a ``file://`` backend may not lead out of the manifest's tree (a
    manifest could otherwise make even ``plan`` create lock files under ``/etc``)."""
    issues: list[ManifestIssue] = []
    if manifest.state_dir is not None:
        try:
            contained_path(root, directory, manifest.state_dir, what="state_dir", allow_hidden=True)
        except Escape as problem:
            issues.append(document.issue(("state_dir",), str(problem)))
    if manifest.backend is not None:
        written = file_url_directory(manifest.backend.get_secret_value())
        if written is not None:  # read exactly as the state backend will open it
            try:
                contained_path(
                    root, directory, written, what="the backend's directory", allow_hidden=True
                )
            except Escape as problem:
                issues.append(document.issue(("backend",), str(problem)))
    return issues


def _build(
    fleet: str,
    merged: _Merged,
    context: _Context,
    issues: list[ManifestIssue],
) -> tuple[spec.InstanceSpec, dict[str, Any]] | None:
    """The first replica's spec and its comparable form, or None after recording issues."""
    document, converted = context.document, context.converted
    values = merged.values
    start = len(issues)
    where: FieldPath = ("instances", merged.index)
    missing = missing_offer_fields(values)
    if len(missing) == len(OFFER_FIELDS):
        message = "set cloud, region and shade_instance_type, or placement (here or in defaults)"
        issues.append(document.issue(where, message))
    else:
        issues.extend(document.issue(where, _MISSING, extra_field=name) for name in missing)
    if values.get("shade_cloud") is None:
        issues.append(document.issue(where, _MISSING, extra_field="shade_cloud"))
    issues.extend(placement_issues(values, merged.path, document))
    launch = values.get("launch_configuration")
    launch_spec = None
    if launch is not None:
        launch_spec = converted.get(launch, _launch_spec, launch, merged, context, issues)
    if len(issues) > start or (launch is not None and launch_spec is None):
        return None
    rollout = _rollout_fields(fleet, merged, context, issues)
    if len(issues) > start:
        return None
    fields = {
        name: converted.get(value, _to_spec, name, value)
        for name, value in values.items()
        if value is not None and name not in _ROLLOUT_FIELDS and name != "launch_configuration"
    }
    instance = spec.InstanceSpec(
        **fields,
        **rollout,
        address=f"{fleet}/{merged.entry.name}",
        fleet=fleet,
        name=merged.entry.name,
        launch_configuration=launch_spec,
        source=spec.SourceLocation(
            file=document.file, line=document.position_of(("instances", merged.index)).line
        ),
    )
    return instance, comparable_spec(instance)


_ROLLOUT_FIELDS = frozenset({"update_strategy", "readiness"})


def _rollout_fields(
    fleet: str, merged: _Merged, context: _Context, issues: list[ManifestIssue]
) -> dict[str, Any]:
    """``group``, ``update_strategy`` and ``readiness`` of the spec, checked: a replica that
    mounts a volume cannot surge (the volume moves with it), and a readiness command is a
    program inside the manifest's tree (a manifest may not make the reconciler run anything
    else)."""
    values, document = merged.values, context.document
    entry = merged.entry
    fields: dict[str, Any] = {}
    strategy: lang.UpdateStrategy | None = values.get("update_strategy")
    if entry.replicas > 1 or strategy is not None:
        fields["group"] = f"{fleet}/{entry.name}"
    if strategy is not None:
        mounts = bool(values.get("volumes") or values.get("volume_ids"))
        surge = strategy.max_surge if strategy.max_surge is not None else (0 if mounts else 1)
        if mounts and surge > 0:
            issues.append(
                document.issue(
                    (*merged.path("update_strategy"), "max_surge"),
                    "must be 0 for an instance that mounts a volume: the volume moves with the "
                    "replica, so a new one cannot start before the old one is gone",
                )
            )
        if strategy.max_unavailable == 0 and surge == 0:
            issues.append(
                document.issue(
                    merged.path("update_strategy"),
                    "max_unavailable is 0 and max_surge is 0 (an instance that mounts a volume "
                    "cannot surge), so no replica could ever be replaced; set max_unavailable "
                    "to at least 1",
                )
            )
        fields["update_strategy"] = spec.UpdateStrategy(
            max_unavailable=strategy.max_unavailable, max_surge=surge
        )
    readiness: lang.Readiness | None = values.get("readiness")
    if readiness is not None:
        program = readiness.command[0]
        where = (*merged.path("readiness"), "command", 0)
        try:
            found = contained_path(
                context.root,
                context.directory,
                program,
                what="readiness command",
                protected=context.protected,
            )
        except Escape as problem:
            issues.append(document.issue(where, str(problem)))
        else:
            if not found.is_file():
                issues.append(
                    document.issue(
                        where,
                        f"'{program}' is not a file in the manifest's tree (a readiness "
                        "command is a program committed beside the manifest, run without a "
                        "shell)",
                    )
                )
        fields["readiness"] = spec.Readiness(
            command=tuple(readiness.command),
            timeout_seconds=readiness.timeout,
            interval_seconds=readiness.interval,
        )
    return fields


def _launch_spec(
    launch: lang.DockerLaunch | lang.ScriptLaunch,
    merged: _Merged,
    context: _Context,
    issues: list[ManifestIssue],
) -> spec.LaunchConfiguration | None:
    if isinstance(launch, lang.DockerLaunch):
        docker = spec.DockerConfiguration.model_validate(launch.docker_configuration.model_dump())
        return spec.LaunchConfiguration(type="docker", docker_configuration=docker)
    if launch.script_configuration is not None:
        encoded = launch.script_configuration.base64_script
    elif launch.script is not None:
        encoded = base64.b64encode(launch.script.encode("utf-8")).decode("ascii")
    else:
        assert launch.script_file is not None
        content = context.scripts.read(
            context.root, context.directory, launch.script_file, protected=context.protected
        )
        if isinstance(content, str):
            path = (*merged.path("launch_configuration"), "script_file")
            issues.append(context.document.issue(path, content))
            return None
        encoded = base64.b64encode(content).decode("ascii")
    script = spec.ScriptConfiguration(base64_script=encoded)
    return spec.LaunchConfiguration(type="script", script_configuration=script)


_SPEC_TYPES: dict[str, type[spec.SpecModel]] = {
    "auto_delete": spec.Thresholds,
    "alert": spec.Thresholds,
    "volume_mount": spec.VolumeMount,
    "lifecycle": spec.Lifecycle,
    "envs": spec.Env,
    "placement": spec.Placement,
}


def _to_spec(name: str, value: Any) -> Any:
    """A manifest value as the spec wants it (spec models for the mapping fields)."""
    model = _SPEC_TYPES.get(name)
    if model is None:
        return value
    if isinstance(value, list):
        return tuple(model.model_validate(item.model_dump(exclude_none=True)) for item in value)
    return model.model_validate(value.model_dump(exclude_none=True))


class _Converted:
    """Converts each manifest object once: defaults' values are shared by many instances."""

    def __init__(self) -> None:
        self._done: dict[int, tuple[object, Any]] = {}

    def get(self, source: object, convert: Callable[..., Any], *args: Any) -> Any:
        if isinstance(source, str | bool | int | float):
            return convert(*args)
        hit = self._done.get(id(source))
        if hit is not None and hit[0] is source:
            return hit[1]
        value = convert(*args)
        self._done[id(source)] = (source, value)
        return value


def _expand(entry: lang.InstanceEntry) -> list[str]:
    return _expand_name(entry.name, entry.replicas)


def _expand_name(name: str, replicas: int) -> list[str]:
    if replicas == 1:
        return [name]
    return [f"{name}-{i}" for i in range(replicas)]


def _named(
    base: tuple[spec.InstanceSpec, dict[str, Any]], fleet: str, name: str
) -> tuple[spec.InstanceSpec, dict[str, Any]]:
    instance, comparable = base
    if instance.name == name:
        return base
    address = f"{fleet}/{name}"
    update = {"name": name, "address": address}
    return instance.model_copy(update=update), {**comparable, **update}
