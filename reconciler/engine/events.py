"""Progress events the executor emits (defined in :mod:`reconciler.models.progress`, so the
views can render them without importing the engine)."""

from reconciler.models.progress import (
    ActionEvent,
    InstanceWait,
    Phase,
    ProgressSink,
    ignore_progress,
)

__all__ = ["ActionEvent", "InstanceWait", "Phase", "ProgressSink", "ignore_progress"]
