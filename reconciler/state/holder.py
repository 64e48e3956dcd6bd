"""Lock holder information: who took a fleet's lock, and how a refusal describes them.

Backend-neutral: every backend records a :class:`LockInfo` when it takes a lock and builds
its refusal with :func:`lock_refused`, so users see the same message whatever the backend.
"""

from __future__ import annotations

import getpass
import os
import socket
import uuid
from collections.abc import Mapping
from datetime import UTC, datetime

from reconciler.errors import LockError
from reconciler.models.state import LockInfo


def ci_run_url(environ: Mapping[str, str]) -> str | None:
    """The CI run this process belongs to: GitHub Actions, GitLab, or a generic BUILD_URL."""
    server = environ.get("GITHUB_SERVER_URL")
    repository = environ.get("GITHUB_REPOSITORY")
    run_id = environ.get("GITHUB_RUN_ID")
    if server and repository and run_id:
        return f"{server.rstrip('/')}/{repository}/actions/runs/{run_id}"
    return environ.get("CI_JOB_URL") or environ.get("BUILD_URL") or None


def current_user(environ: Mapping[str, str]) -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no passwd entry, e.g. an arbitrary uid in a container
        return environ.get("USER") or f"uid {os.getuid()}"


def rfc3339(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def make_lock_info(
    fleet: str, *, command: str, environ: Mapping[str, str], now: datetime
) -> LockInfo:
    """Describe this process as the holder of ``fleet``'s lock, with a fresh lock id."""
    return LockInfo(
        id=str(uuid.uuid4()),
        fleet=fleet,
        user=current_user(environ),
        host=socket.gethostname(),
        pid=os.getpid(),
        command=command,
        created_at=rfc3339(now),
        ci_run_url=ci_run_url(environ),
    )


def holder_is_gone(info: LockInfo) -> bool:
    """True when the holder ran on this host and its process no longer exists."""
    if info.host != socket.gethostname():
        return False  # cannot tell for another machine
    try:
        os.kill(info.pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False  # exists, owned by someone else
    return False


def lock_refused(
    fleet: str, holder: LockInfo | None, *, waited: float, unreadable_id: str | None = None
) -> LockError:
    """The error for a lock we could not take, naming the holder and whether it is stale.

    ``unreadable_id`` is the id that breaks a lock whose holder record cannot be read."""
    waited_text = f" after waiting {waited:g}s" if waited > 0 else ""
    if holder is None:
        breaking = (
            f" If it stays locked, its record is damaged: once you are sure nothing else uses "
            f"this state, run `reconciler force-unlock {fleet} {unreadable_id}`."
            if unreadable_id
            else ""
        )
        return LockError(
            f"The state of fleet {fleet!r} is locked by another process{waited_text}, which "
            "has not recorded who it is (it may be starting right now). Try again shortly, or "
            f"pass --lock-timeout.{breaking}"
        )
    message = f"The state of fleet {fleet!r} is locked{waited_text}: {holder.describe()}."
    if holder_is_gone(holder):
        message += (
            f" The lock is stale: the process that took it is gone; run "
            f"`reconciler force-unlock {fleet} {holder.id}` if you are sure nothing else "
            "is using this state."
        )
    else:
        message += " Wait for it to finish, or pass --lock-timeout to wait."
    return LockError(message)


def matching_holder(fleet: str, lock_id: str, holder: LockInfo | None) -> LockInfo:
    """``holder`` if it is the lock ``lock_id``; else the :class:`LockError` force-unlock gives."""
    if holder is None:
        raise LockError(f"Fleet {fleet!r} is not locked (no holder recorded); nothing to unlock.")
    if holder.id != lock_id:
        raise LockError(
            f"Refusing to force-unlock fleet {fleet!r}: the lock id {lock_id} does not match "
            f"the current {holder.describe()}."
        )
    return holder
