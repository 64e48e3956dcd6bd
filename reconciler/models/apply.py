"""What an apply did, action by action (the executor fills it; the views render it)."""

from __future__ import annotations

from dataclasses import dataclass, field

from reconciler.models.plan import Action


@dataclass(frozen=True)
class ActionResult:
    fleet: str
    address: str
    action: Action
    ok: bool
    message: str = ""
    resource_id: str | None = None
    started: bool = True
    """False for an action never started (``--fail-fast``, a cancel, or a failed dependency)."""
    kind: str = "instance"


@dataclass
class ApplyReport:
    results: list[ActionResult] = field(default_factory=list)
    blocked: list[str] = field(default_factory=list)
    cancelled: str | None = None
    """Why the run was cancelled (``"SIGTERM"``), or None when it ran to its end."""
    not_waited_for: list[str] = field(default_factory=list)
    """New instances created and recorded, but not waited for (the run was cancelled)."""

    @property
    def failed(self) -> list[ActionResult]:
        return [r for r in self.results if not r.ok and r.started]

    @property
    def not_started(self) -> list[ActionResult]:
        return [r for r in self.results if not r.started]

    @property
    def succeeded(self) -> list[ActionResult]:
        return [r for r in self.results if r.ok]
