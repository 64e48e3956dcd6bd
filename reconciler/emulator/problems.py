"""Why the emulated cloud refused a request; the app turns these into ``{"error": ...}``.

These never reach the reconciler as exceptions: over HTTP they become status codes and
the API client translates those into :mod:`reconciler.errors`. Only the emulator's Python
admin API raises them directly (e.g. :class:`UnknownResource` for an id that does not exist).

::

    CloudProblem
    ├── BadRequest (400)        invalid body, unknown cloud/region/type, a volume an instance
    │                           create cannot mount, the managed SSH key (never deletable)
    ├── UnknownResource (404)   no such instance/volume/SSH key (or already deleted)
    ├── NoCapacity (409)        the offer exists but has no capacity right now; its body is
    │                           ``{"error": {"code": "OUT_OF_STOCK", "message": "..."}}``
    └── Conflict (409)          a delete refused while the resource is in use (a mounted
                                volume, a key a live instance uses, the default key); its
                                body is ``{"error": {"code": "RESOURCE_IN_USE", ...}}``

Every 409 carries a code, so a client can tell "no capacity" from "in use" without reading
the message (a bare 409 from a create reads as "no capacity" to the client).
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


class Conflict(CloudProblem):
    """The request conflicts with what the resource is doing now; it succeeds once the
    conflict is resolved (the instance is gone, another key is the default)."""

    status = 409
    code = "RESOURCE_IN_USE"
