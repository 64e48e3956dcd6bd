"""Persist a fleet's state after every single action, never batching to the end.

Saves use *group commit*: while one write is on its way to disk, the changes that arrive are
queued and the next write carries them all. Every caller still waits until its own change is
durably stored (a create's intent is on disk before the request is sent), but a large apply
no longer pays one full-state write per action.

Given the digest of the plan being applied, the recorder passes it to stores that keep a
history (``versions.PlanAttributedWrites``), so every version names the plan that made it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from reconciler.errors import ReconcilerError, StateError
from reconciler.models.state import FleetState
from reconciler.state import StateStore
from reconciler.state.versions import PlanAttributedWrites

Mutation = Callable[[FleetState], None]


class StateRecorder:
    """Serialises changes to one fleet's state and writes each one durably before returning.

    A mutation gets a draft whose ``instances``, ``intents`` and ``resources`` dicts are fresh copies (records
    themselves are immutable by convention and replaced, never edited), so a failed write
    leaves ``state`` as it was. When the store cannot write, an emergency copy of the draft is
    saved and a :class:`StateError` says where, loudly, to every waiting caller.
    """

    def __init__(
        self, store: StateStore, state: FleetState, *, plan_digest: str | None = None
    ) -> None:
        self.store = store
        self.state = state
        self.plan_digest = plan_digest
        self.writes = 0
        self._queue: list[tuple[Mutation, asyncio.Future[None]]] = []
        self._writer: asyncio.Task[None] | None = None

    async def update(self, mutate: Mutation) -> None:
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._queue.append((mutate, future))
        if self._writer is None or self._writer.done():
            self._writer = asyncio.create_task(self._drain())
        await future

    async def _drain(self) -> None:
        while self._queue:
            batch, self._queue = self._queue, []
            draft = self.state.model_copy(
                update={
                    "instances": dict(self.state.instances),
                    "intents": dict(self.state.intents),
                    "resources": dict(self.state.resources),
                }
            )
            for mutate, _ in batch:
                mutate(draft)
            try:
                self.state = await asyncio.to_thread(self._write, draft)
                self.writes += 1
            except (ReconcilerError, OSError) as exc:
                for mutate, _ in self._queue:  # what arrived meanwhile belongs in the copy too
                    mutate(draft)
                error = self._loud_error(draft, exc)
                for _, future in (*batch, *self._queue):
                    if not future.done():
                        future.set_exception(error)
                self._queue = []
                return
            for _, future in batch:
                if not future.done():
                    future.set_result(None)

    def _write(self, draft: FleetState) -> FleetState:
        if self.plan_digest is not None and isinstance(self.store, PlanAttributedWrites):
            return self.store.write_from_plan(draft, plan_digest=self.plan_digest)
        return self.store.write(draft)

    def _loud_error(self, draft: FleetState, exc: Exception) -> StateError:
        try:
            copy = self.store.write_emergency_copy(draft)
        except Exception as copy_exc:  # noqa: BLE001 - report both failures
            where = f"The emergency copy failed too ({_sentence(copy_exc)})."
            restore = "Record what is listed above by hand before running the reconciler again"
        else:
            where = f"An emergency copy of everything learned so far is at {copy}."
            restore = "Restore it as the fleet's state before running the reconciler again"
        stored_ids = {r.instance_id for r in self.state.instances.values()}
        created = sorted({r.instance_id for r in draft.instances.values()} - stored_ids)
        # A create is sent only once its intent is on disk, so intents lost here were never
        # sent; what can be duplicated is an instance created whose record was not saved.
        if created:
            stake = (
                f"{restore}, or the instances this run created ({', '.join(created)}) may be "
                "created twice."
            )
        else:
            stake = (
                f"{restore}, or the next run starts from the last saved version (this write "
                "recorded no new instance, so nothing can be created twice)."
            )
        error = StateError(
            f"COULD NOT SAVE THE STATE of fleet {draft.fleet}: {_sentence(exc)}. {where} {stake}"
        )
        error.__cause__ = exc
        return error


def _sentence(exc: Exception) -> str:
    """An exception's text without its closing period (it is embedded in a sentence)."""
    return str(exc).strip().rstrip(".")
