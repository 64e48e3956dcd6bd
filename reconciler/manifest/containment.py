"""Paths inside manifests are untrusted: they must stay inside the manifest's own tree.

In GitOps a manifest arrives in a pull request and ``plan`` runs on a CI runner full of
secrets, so a path a manifest names (``script_file``, ``state_dir``, a ``file://`` backend)
must never make the reconciler read or write elsewhere: ``script_file: /proc/self/environ``
would put the runner's environment, API key included, into the plan artifact.

The **tree** of a manifest is the git work tree that contains it (the nearest ancestor with a
``.git``), or else the path given on the command line (that directory, or the directory of
that file). Paths given on the command line are trusted; paths inside manifests are not. A
path from a manifest must be relative, and after resolving every symlink it must still lie
inside the tree, outside any hidden file or directory (``.git`` holds the CI checkout's token
in its config, ``.env`` files hold secrets) and outside the run's own state directories (their
files hold the keys of secret fingerprints). A file read this way must be a regular file (not a
FIFO, device or directory) of UTF-8 text under a size limit.

Example::

    root = manifest_tree(Path("specs/training.yaml"), given=Path("specs"))
    text = read_contained_text(root, Path("specs"), "scripts/boot.sh", max_bytes=1 << 20)
"""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass
from pathlib import Path, PurePosixPath


class Escape(Exception):
    """A manifest path that is not allowed; ``str()`` is the message for the user."""


def manifest_tree(manifest: Path, *, given: Path) -> Path:
    """The tree ``manifest`` may refer into (resolved): its git work tree, else ``given``."""
    directory = manifest.parent.resolve()
    for candidate in (directory, *directory.parents):
        if (candidate / ".git").exists():
            return candidate
    given_resolved = given.resolve()
    return given_resolved if given_resolved.is_dir() else given_resolved.parent


def contained_path(
    root: Path,
    base: Path,
    written: str,
    *,
    what: str,
    protected: tuple[Path, ...] = (),
    allow_hidden: bool = False,
) -> Path:
    """``written`` (from a manifest in ``base``) resolved, or :class:`Escape` if it leaves
    ``root``, names a hidden file or directory (``.git`` always; others unless
    ``allow_hidden``, which state directories get) or lies in one of the ``protected``
    directories. The path need not exist; its existing part is resolved through
    symlinks."""
    if not written or "\0" in written:
        raise Escape(f"{what} is not a usable path")
    pure = PurePosixPath(written)
    if pure.is_absolute() or written.startswith("~") or Path(written).is_absolute():
        raise Escape(
            f"{what} '{written}' must be a path relative to the manifest; paths inside "
            "manifests may not name places outside the manifest's tree"
        )
    try:
        resolved = (base / written).resolve(strict=False)
    except (OSError, RuntimeError) as exc:  # a symlink loop, a component that cannot be read
        raise Escape(f"{what} '{written}' cannot be resolved ({exc})") from None
    if not resolved.is_relative_to(root):
        raise Escape(
            f"{what} '{written}' leads outside the manifest's tree ({root}) once symlinks are "
            "resolved; a manifest may only refer to files in its own repository"
        )
    parts = resolved.relative_to(root).parts
    hidden = [
        part for part in parts if part == ".git" or (part.startswith(".") and not allow_hidden)
    ]
    if hidden:
        raise Escape(
            f"{what} '{written}' is in a hidden file or directory ('{hidden[0]}'); manifests "
            "may not read hidden paths such as .git or .env"
        )
    for directory in protected:
        if resolved.is_relative_to(directory):
            raise Escape(
                f"{what} '{written}' is inside the state directory {directory}; manifests may "
                "not read the reconciler's own state"
            )
    return resolved


@dataclass(frozen=True)
class ContainedFile:
    path: Path
    content: bytes


def read_contained_file(
    root: Path,
    base: Path,
    written: str,
    *,
    max_bytes: int,
    what: str = "script file",
    protected: tuple[Path, ...] = (),
) -> ContainedFile:
    """A regular file inside ``root``, read whole (at most ``max_bytes``); :class:`Escape`
    for anything else. The file is opened without blocking and checked after opening, so a
    FIFO or a device named by a manifest can neither hang nor feed the reconciler."""
    path = contained_path(root, base, written, what=what, protected=protected)
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC | os.O_NOFOLLOW)
    except FileNotFoundError:
        raise Escape(f"{what} '{written}' not found") from None
    except IsADirectoryError:
        raise Escape(f"{what} '{written}' is a directory") from None
    except OSError as exc:
        raise Escape(f"{what} '{written}' cannot be read ({exc.strerror or exc})") from None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            kind = "a directory" if stat.S_ISDIR(info.st_mode) else "not a regular file"
            raise Escape(f"{what} '{written}' is {kind}")
        chunks: list[bytes] = []
        size = 0
        while size <= max_bytes:
            chunk = os.read(fd, min(1 << 16, max_bytes + 1 - size))
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
    except OSError as exc:
        raise Escape(f"{what} '{written}' cannot be read ({exc.strerror or exc})") from None
    finally:
        os.close(fd)
    if size > max_bytes:
        raise Escape(f"{what} '{written}' is larger than the {max_bytes // 1024} KiB limit")
    return ContainedFile(path, b"".join(chunks))


def read_contained_text(
    root: Path,
    base: Path,
    written: str,
    *,
    max_bytes: int,
    what: str = "script file",
    protected: tuple[Path, ...] = (),
) -> ContainedFile:
    """Like :func:`read_contained_file`, and the content must be UTF-8 text (no NUL bytes)."""
    found = read_contained_file(
        root, base, written, max_bytes=max_bytes, what=what, protected=protected
    )
    try:
        text = found.content.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise Escape(
            f"{what} '{written}' is not UTF-8 text (byte 0x{found.content[exc.start]:02x} at "
            f"offset {exc.start}); a startup script must be text"
        ) from None
    if "\0" in text:
        raise Escape(f"{what} '{written}' is not text (it holds NUL bytes)")
    return found
