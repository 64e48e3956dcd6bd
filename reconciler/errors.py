"""The one exception hierarchy of the reconciler.

Every error the user can meet is a :class:`ReconcilerError`; each class carries the process
exit code the CLI uses for it. Adapters translate their libraries' exceptions into these
(``raise ... from exc``) so nothing third-party leaks to the CLI's error boundary.

::

    ReconcilerError (1)
    ├── UsageError (64)                 bad flags or arguments
    ├── ManifestError (3)               manifests that do not load; carries every issue at once
    ├── StateError (4)                  unreadable/foreign/newer state
    │   ├── LockError (5)               lock held by someone else (holder attached)
    │   └── StalePlanError (7)          saved plan made from an older state or manifests
    ├── PolicyError (8)                 prevent_destroy
    │   └── BudgetError (11)            budgets and blast-radius guards
    ├── CapacityError (9)               no available offer inside the approved envelope
    ├── ApplyError (10)                 one or more actions failed during apply
    ├── RunCancelled (130/143)          SIGINT/SIGTERM stopped an apply cleanly (128 + signal)
    └── ApiError (6)                    Shadeform API failures
        ├── AuthError                   401/403
        ├── NotFoundError               404
        ├── ApiValidationError          400/409/422
        │   ├── CapacityRefusedError    a create refused for lack of capacity (by error code)
        │   └── ConflictError           any other 409, e.g. deleting a volume still mounted
        ├── RateLimitedError            429 after retries
        ├── ServerError                 5xx after retries
        ├── TransportError              connection failures/timeouts after retries
        └── AmbiguousCreateError        a create may or may not have happened

With ``--detailed-exitcode`` every error exits 1, because 2 means "changes present".

No error ever shows a secret: messages are scrubbed with :mod:`reconciler.redaction` when the
error is made and again when it is shown (a secret may be registered in between).
"""

from __future__ import annotations

from dataclasses import dataclass

from reconciler.redaction import scrub


class ReconcilerError(Exception):
    """Base class; ``exit_code`` is what the CLI exits with."""

    exit_code: int = 1

    def __init__(self, message: str) -> None:
        message = scrub(message)
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return scrub(self.message)


class UsageError(ReconcilerError):
    exit_code = 64


@dataclass(frozen=True, slots=True)
class ManifestIssue:
    """One problem in one manifest file, located as precisely as we can."""

    file: str
    line: int | None
    column: int | None
    field: str
    message: str

    def render(self) -> str:
        where = self.file
        if self.line is not None:
            where += f":{self.line}"
            if self.column is not None:
                where += f":{self.column}"
        field = f" {self.field}:" if self.field else ""
        return f"{where}:{field} {self.message}"


class ManifestError(ReconcilerError):
    """Manifests failed to load. ``issues`` lists every problem found, in file/line order."""

    exit_code = 3

    def __init__(self, issues: list[ManifestIssue]) -> None:
        self.issues = sorted(
            issues, key=lambda i: (i.file, i.line or 0, i.column or 0, i.field, i.message)
        )
        count = len(self.issues)
        head = f"{count} problem{'s' if count != 1 else ''} in the fleet manifests:"
        super().__init__("\n".join([head, *("  " + i.render() for i in self.issues)]))


class StateError(ReconcilerError):
    exit_code = 4


class LockError(StateError):
    exit_code = 5


class StalePlanError(StateError):
    exit_code = 7


class PolicyError(ReconcilerError):
    exit_code = 8


class BudgetError(PolicyError):
    exit_code = 11


class CapacityError(ReconcilerError):
    exit_code = 9


class ApplyError(ReconcilerError):
    exit_code = 10


class RunCancelled(ReconcilerError):
    """A signal cancelled the run; it stopped cleanly. Exits 128 + the signal's number."""

    exit_code = 130

    def __init__(self, message: str, *, exit_code: int = 130) -> None:
        super().__init__(message)
        self.exit_code = exit_code


class ApiError(ReconcilerError):
    """A Shadeform API call failed. Never carries the API key."""

    exit_code = 6

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        method: str | None = None,
        endpoint: str | None = None,
        api_message: str | None = None,
    ) -> None:
        self.status = status
        self.method = method
        self.endpoint = endpoint
        self.retry_after: float | None = None
        """For a 429 given up on: the server's last ``Retry-After``, in seconds."""
        self.api_message = scrub(api_message) if api_message else api_message
        parts = [message]
        if method and endpoint:
            parts.append(f"({method} {endpoint}" + (f" -> {status})" if status else ")"))
        if api_message:
            parts.append(f"Shadeform said: {api_message}")
        super().__init__(" ".join(parts))


class AuthError(ApiError):
    pass


class NotFoundError(ApiError):
    pass


class ApiValidationError(ApiError):
    pass


class CapacityRefusedError(ApiValidationError):
    """Shadeform refused a create because the offer has no capacity right now.

    Recognised at the API edge by status and error code (see ``api.translate``), never by
    the words of the message; the executor then tries the next approved offer."""


class ConflictError(ApiValidationError):
    """Shadeform refused a request (409) that conflicts with a resource's current state, such
    as deleting a volume an instance still mounts or an SSH key an instance still uses.

    Never a capacity refusal: a 409 from a delete, or one whose error code is not a capacity
    code, lands here (see ``api.translate``). The request may succeed once whatever uses the
    resource is gone; Shadeform's message says what that is."""


class RateLimitedError(ApiError):
    pass


class ServerError(ApiError):
    pass


class TransportError(ApiError):
    pass


class AmbiguousCreateError(ApiError):
    """The create request may have reached Shadeform; look for the instance before retrying."""
