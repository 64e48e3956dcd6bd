"""Persist a fleet's state after every single action, never batching to the end."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from reconciler.errors import ReconcilerError, StateError
from reconciler.models.state import FleetState
from reconciler.state import StateStore


class StateRecorder:
    """Serialises changes to one fleet's state and writes each one durably before returning.

    ``update`` hands the mutation a draft whose ``instances`` and ``intents`` dicts are fresh
    copies (records themselves are immutable by convention and replaced, never edited), so a
    failed write leaves ``state`` as it was. When the store cannot write, an emergency copy of
    the draft is saved and a :class:`StateError` says where, loudly.
    """

    def __init__(self, store: StateStore, state: FleetState) -> None:
        self.store = store
        self.state = state
        self._lock = asyncio.Lock()

    async def update(self, mutate: Callable[[FleetState], None]) -> None:
        async with self._lock:
            draft = self.state.model_copy(
                update={
                    "instances": dict(self.state.instances),
                    "intents": dict(self.state.intents),
                }
            )
            mutate(draft)
            try:
                self.state = await asyncio.to_thread(self.store.write, draft)
            except (ReconcilerError, OSError) as exc:
                try:
                    where = f"An emergency copy of everything learned so far is at {self.store.write_emergency_copy(draft)}."
                except Exception as copy_exc:  # noqa: BLE001 - report both failures
                    where = f"The emergency copy failed too ({copy_exc})."
                raise StateError(
                    f"COULD NOT SAVE THE STATE of fleet {draft.fleet}: {exc}. {where} "
                    "Restore it as the fleet's state before running the reconciler again, "
                    "or instances created by this run may be created twice."
                ) from exc
