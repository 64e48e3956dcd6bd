"""A fleet's managed volumes and SSH keys, and the instances' references to them.

Volumes and keys are resources of their own (addresses ``<fleet>/volume.<name>`` and
``<fleet>/ssh_key.<name>``); an instance names them (``volumes: [checkpoints]``,
``ssh_key: ci-deploy``) and the executor fills in their ids (``volume_ids``, ``ssh_key_id``)
once they exist. Rules, each reported with file, line and field, all at once:

- a reference names a volume or key the fleet declares ("did you mean" otherwise);
- an instance mounts at most one volume (managed or raw ``volume_ids``), and sets a managed
  key or a raw ``ssh_key_id``, not both;
- a volume mounts on one machine, in its own cloud and region: an instance (or a placement
  envelope) elsewhere cannot mount it, and neither can two instances (replicas count);
- a ``public_key_file`` follows the ``script_file`` rules (inside the manifest's tree, a
  regular text file) and must hold an OpenSSH public key, like an inline ``public_key``.
"""

from __future__ import annotations

from dataclasses import dataclass
from difflib import get_close_matches
from pathlib import Path
from typing import Any

from reconciler.errors import ManifestIssue
from reconciler.manifest.containment import Escape, read_contained_text
from reconciler.manifest.public_keys import MAX_KEY_CHARS, NotAPublicKey, fingerprint_of
from reconciler.manifest.source import Document, FieldPath
from reconciler.models import manifest as lang
from reconciler.models import spec


@dataclass(frozen=True)
class Reference:
    """One instance entry's references, with where to report problems."""

    index: int
    path: FieldPath  # of the instance (or defaults) entry the values came from
    addresses: tuple[str, ...]  # after replica expansion
    volumes: tuple[str, ...]
    volume_ids: tuple[str, ...]
    ssh_key: str | None
    ssh_key_id: str | None
    offer: tuple[str | None, str | None]  # (cloud, region) of a fixed offer
    placement: spec.Placement | None
    volumes_path: FieldPath
    ssh_key_path: FieldPath


def volume_specs(
    manifest: lang.Manifest, document: Document
) -> tuple[dict[str, spec.VolumeSpec], list[ManifestIssue]]:
    volumes = {}
    for index, entry in enumerate(manifest.volumes):
        volumes[entry.name] = spec.VolumeSpec(
            address=spec.volume_address(manifest.fleet, entry.name),
            fleet=manifest.fleet,
            name=entry.name,
            cloud=entry.cloud,
            region=entry.region,
            size_in_gb=entry.size_in_gb,
            source=spec.SourceLocation(
                file=document.file, line=document.position_of(("volumes", index)).line
            ),
        )
    return volumes, []


def ssh_key_specs(
    manifest: lang.Manifest,
    document: Document,
    *,
    root: Path,
    directory: Path,
    protected: tuple[Path, ...],
) -> tuple[dict[str, spec.SshKeySpec], list[ManifestIssue]]:
    keys = {}
    issues = []
    for index, entry in enumerate(manifest.ssh_keys):
        where: FieldPath = ("ssh_keys", index)
        if entry.public_key_file is not None:
            try:
                found = read_contained_text(
                    root,
                    directory,
                    entry.public_key_file,
                    max_bytes=MAX_KEY_CHARS,
                    what="public_key_file",
                    protected=protected,
                )
            except Escape as problem:
                issues.append(document.issue((*where, "public_key_file"), str(problem)))
                continue
            text, field = found.content.decode("utf-8"), "public_key_file"
        else:
            assert entry.public_key is not None
            text, field = entry.public_key, "public_key"
        try:
            fingerprint = fingerprint_of(text)
        except NotAPublicKey as problem:
            issues.append(document.issue((*where, field), f"not an OpenSSH public key: {problem}"))
            continue
        keys[entry.name] = spec.SshKeySpec(
            address=spec.ssh_key_address(manifest.fleet, entry.name),
            fleet=manifest.fleet,
            name=entry.name,
            public_key=text.strip(),
            fingerprint=fingerprint,
            source=spec.SourceLocation(file=document.file, line=document.position_of(where).line),
        )
    return keys, issues


def reference_issues(
    references: list[Reference],
    volumes: dict[str, spec.VolumeSpec],
    keys: dict[str, spec.SshKeySpec],
    declared_volumes: set[str],
    declared_keys: set[str],
    document: Document,
) -> list[ManifestIssue]:
    """Every broken rule of the module docstring (``declared_*``: names as written, also of
    entries that failed to load, so a broken key is not also reported as "unknown")."""
    issues: list[ManifestIssue] = []
    mounted: dict[str, list[tuple[Reference, str]]] = {}
    for ref in references:
        for name in ref.volumes:
            if name not in declared_volumes:
                issues.append(
                    document.issue(ref.volumes_path, _unknown("volume", name, declared_volumes))
                )
                continue
            for address in ref.addresses:
                mounted.setdefault(name, []).append((ref, address))
            volume = volumes.get(name)
            if volume is not None:
                problem = _elsewhere(ref, volume)
                if problem:
                    issues.append(document.issue(ref.volumes_path, problem))
        if len(ref.volumes) + len(ref.volume_ids) > 1:
            issues.append(
                document.issue(
                    ref.volumes_path,
                    "an instance mounts at most one volume (volumes and volume_ids together)",
                )
            )
        if ref.ssh_key is not None:
            if ref.ssh_key not in declared_keys:
                issues.append(
                    document.issue(
                        ref.ssh_key_path, _unknown("SSH key", ref.ssh_key, declared_keys)
                    )
                )
            if ref.ssh_key_id is not None:
                issues.append(
                    document.issue(
                        ref.ssh_key_path,
                        "set ssh_key (a key the fleet manages) or ssh_key_id (one it does not), "
                        "not both",
                    )
                )
    for name, users in sorted(mounted.items()):
        if len(users) > 1:
            who = ", ".join(address for _, address in users)
            ref = users[1][0]
            issues.append(
                document.issue(
                    ref.volumes_path,
                    f"volume '{name}' would be mounted by {len(users)} instances ({who}); a "
                    "volume mounts on one machine (give each replica its own volume)",
                )
            )
    return issues


def _unknown(what: str, name: str, declared: set[str]) -> str:
    close = get_close_matches(name, sorted(declared), n=1)
    if close:
        return f"unknown {what} '{name}'; did you mean '{close[0]}'?"
    listed = f" (the fleet declares: {', '.join(sorted(declared))})" if declared else ""
    return f"unknown {what} '{name}'{listed}"


def _elsewhere(ref: Reference, volume: spec.VolumeSpec) -> str | None:
    """Why an instance could run outside the volume's cloud and region, or None."""
    here = f"{volume.cloud}/{volume.region}"
    if ref.placement is None:
        cloud, region = ref.offer
        if (cloud, region) != (volume.cloud, volume.region):
            return (
                f"volume '{volume.name}' is in {here}, the instance in {cloud}/{region}; a "
                "volume mounts only in its own cloud and region"
            )
        return None
    for candidate in ref.placement.candidates:
        if (candidate.cloud, candidate.region) != (volume.cloud, volume.region):
            return (
                f"volume '{volume.name}' is in {here}, but the placement allows "
                f"{candidate.cloud}/{candidate.region}; keep every candidate in {here}"
            )
    requirements = ref.placement.requirements
    if requirements is not None and (
        tuple(requirements.clouds) != (volume.cloud,)
        or tuple(requirements.regions) != (volume.region,)
    ):
        return (
            f"volume '{volume.name}' is in {here}: the placement's requirements must pin "
            f"clouds: [{volume.cloud}] and regions: [{volume.region}]"
        )
    return None


def reference_of(
    index: int, values: dict[str, Any], path_of: Any, addresses: tuple[str, ...]
) -> Reference:
    """The references of one merged instance entry (``path_of(name)``: where ``name`` came from)."""
    placement = values.get("placement")
    return Reference(
        index=index,
        path=("instances", index),
        addresses=addresses,
        volumes=tuple(values.get("volumes") or ()),
        volume_ids=tuple(values.get("volume_ids") or ()),
        ssh_key=values.get("ssh_key"),
        ssh_key_id=values.get("ssh_key_id"),
        offer=(values.get("cloud"), values.get("region")),
        placement=spec.Placement.model_validate(placement.model_dump(exclude_none=True))
        if placement is not None
        else None,
        volumes_path=path_of("volumes"),
        ssh_key_path=path_of("ssh_key"),
    )
