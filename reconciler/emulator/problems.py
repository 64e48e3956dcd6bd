"""Why the emulated cloud refused a request; the app turns these into ``{"error": ...}``.

These never reach the reconciler as exceptions: over HTTP they become status codes and
the API client translates those into :mod:`reconciler.errors`. Only the emulator's Python
admin API raises them directly (e.g. :class:`UnknownResource` for an id that does not exist).

::

    CloudProblem
    ├── BadRequest (400)        invalid body, unknown cloud/region/type, resource in use
    ├── UnknownResource (404)   no such instance/volume/SSH key (or already deleted)
    └── NoCapacity (409)        the offer exists but has no capacity right now; its body is
                                ``{"error": {"code": "OUT_OF_STOCK", "message": "..."}}``
"""

from __future__ import annotations


class CloudProblem(Exception):
    status: int = 400
    code: str | None = None
    """A machine-readable code; when set the body is ``{"error": {"code", "message"}}``."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class BadRequest(CloudProblem):
    status = 400


class UnknownResource(CloudProblem, LookupError):
    status = 404


class NoCapacity(CloudProblem):
    status = 409
    code = "OUT_OF_STOCK"
