"""What every text view says about a plan: counts, which changes to list, and per change a
title and detail lines. The human and Markdown views only lay these out and style them.

Each piece is built by its own small function (``summarize``, ``change_title``,
``change_details``, ``rollout_outline``); money is worded in ``_money``.
"""

from __future__ import annotations

import shlex
from collections.abc import Iterable
from dataclasses import dataclass
from enum import Enum

from reconciler.models.plan import (
    Action,
    Change,
    FieldChange,
    FleetPlan,
    Plan,
    ReasonCode,
    Rollout,
    RolloutWave,
)
from reconciler.views._money import (
    boot_text,
    duration_text,
    has_prices,
    hourly,
    placement_text,
    signed,
)
from reconciler.views._values import clean_text, format_value, key_fields

# Reasons that only restate a field change; when the field changes are listed they say it better.
_FIELD_REASONS = frozenset({ReasonCode.FIELD_CHANGED, ReasonCode.FORCES_REPLACEMENT})


@dataclass(frozen=True, slots=True)
class Summary:
    """Counts of one fleet or a whole plan."""

    create: int = 0
    update: int = 0
    replace: int = 0
    delete: int = 0
    forget: int = 0
    adopt: int = 0

    @property
    def has_changes(self) -> bool:
        """Same rule as ``Plan.has_changes``: infrastructure changes or adoptions."""
        return bool(self.create or self.update or self.replace or self.delete or self.adopt)

    def __add__(self, other: Summary) -> Summary:
        return Summary(
            create=self.create + other.create,
            update=self.update + other.update,
            replace=self.replace + other.replace,
            delete=self.delete + other.delete,
            forget=self.forget + other.forget,
            adopt=self.adopt + other.adopt,
        )

    def plan_line(self) -> str:
        return (
            f"{self.create} to create, {self.update} to update, "
            f"{self.replace} to replace, {self.delete} to delete"
        )

    def state_only_line(self) -> str | None:
        """Changes to the state alone (adoptions, forgotten records), or None if there are none."""
        parts = []
        if self.adopt:
            parts.append(f"{self.adopt} instance{'s' if self.adopt != 1 else ''} to adopt")
        if self.forget:
            parts.append(f"{self.forget} state record{'s' if self.forget != 1 else ''} to forget")
        return ", ".join(parts) if parts else None


def summarize(changes: Iterable[Change]) -> Summary:
    counts = dict.fromkeys(("create", "update", "replace", "delete", "forget"), 0)
    adopt = 0
    for change in changes:
        if change.action is not Action.NOOP:
            counts[change.action.value] += 1
        adopt += change.adopt
    return Summary(adopt=adopt, **counts)


def is_listed(change: Change) -> bool:
    """Whether a view lists the change: everything but plain no-ops (adoptions are listed)."""
    return change.action is not Action.NOOP or change.adopt


def change_title(change: Change) -> str:
    """``inference/vllm-1 [i-2] (create before destroy)``: address, resource id and notes."""
    title = clean_text(change.address)
    if change.resource_id is not None:
        instance = clean_text(change.resource_id)
        title += f" (adopt {instance})" if change.adopt else f" [{instance}]"
    if change.action is Action.REPLACE and change.create_before_destroy:
        title += " (create before destroy)"
    if change.destroys_data:
        title += " (DESTROYS DATA)"
    if change.action is Action.FORGET:
        title += " (already gone; removed from state)"
    return title


class LineKind(Enum):
    REASON = "reason"
    ROLLOUT = "rollout"  # the change's wave in its group's rollout
    PLACEMENT = "placement"
    FIELD = "field"


@dataclass(frozen=True, slots=True)
class DetailLine:
    kind: LineKind
    text: str
    forces_replacement: bool = False


ALIGN_MAX = 28
"""Keys longer than this are not padded to: a long field path (``launch_configuration.
docker_configuration.image``) would push every value far right and make lines wrap."""
LINE_MAX = 100


def aligned_groups(pairs: list[tuple[str, str]]) -> list[list[str]]:
    """For each ``(key, value)``: its line(s), values aligned. A key too long to align, or a
    noted line too long for a terminal, puts its value on a line of its own, indented, with
    the ``# note`` kept on the key's line, so the note is never wrapped away from its field."""
    width = max((len(key) for key, _ in pairs if len(key) <= ALIGN_MAX), default=0)
    groups = []
    for key, value in pairs:
        line = f"{key + ':':<{width + 1}} {value}"
        noted = "  # " in value
        if len(key) > ALIGN_MAX or (noted and len(line) + DETAIL_INDENT > LINE_MAX):
            text, sep, note = value.rpartition("  # ")
            head = f"{key}:" + (f"  # {note}" if sep else "")
            groups.append([head, "    " + (text if sep else value)])
        else:
            groups.append([line])
    return groups


def _aligned(pairs: list[tuple[str, str]]) -> list[str]:
    return [line for group in aligned_groups(pairs) for line in group]


DETAIL_INDENT = 6  # how far the views indent detail lines


def field_change_line(change: FieldChange) -> tuple[str, str]:
    """(path, ``before -> after  # notes``) for one changed field."""
    before, after = format_value(change.before), format_value(change.after)
    notes = []
    if change.forces_replacement:
        notes.append("forces replacement")
    if change.sensitive and before == after:
        notes.append("sensitive value changed")
    text = f"{before} -> {after}"
    if notes:
        text += "  # " + "; ".join(notes)
    return clean_text(change.path), text


def wave_note(change: Change, rollout: Rollout | None = None) -> str | None:
    """``# rollout inference/mistral: wave 1 of 2`` for a change in a rollout (``rollout`` is
    its group's, for the count of waves); None for a change outside any rollout."""
    if change.wave is None:
        return None
    head = f"# rollout {clean_text(change.rollout)}: " if change.rollout is not None else "# "
    if change.wave == 0:
        return head + "wave 0 (finish first)"
    waves = sum(1 for w in rollout.waves if w.number > 0) if rollout is not None else 0
    return head + f"wave {change.wave}" + (f" of {waves}" if waves else "")


def change_details(change: Change, rollout: Rollout | None = None) -> list[DetailLine]:
    """Reasons (as ``# ...`` comments), its wave in a rollout (``rollout``: its group's), the
    chosen placement, then key fields (creates, deletes) or field changes."""
    lines = [
        DetailLine(LineKind.REASON, "# " + clean_text(reason.message))
        for reason in change.reasons
        if not (change.field_changes and reason.code in _FIELD_REASONS)
    ]
    note = wave_note(change, rollout)
    if note is not None:
        lines.append(DetailLine(LineKind.ROLLOUT, note))
    if change.placement is not None and change.action in (Action.CREATE, Action.REPLACE):
        text = "placement: " + placement_text(change.placement)
        lines.append(DetailLine(LineKind.PLACEMENT, text))
    if change.action is Action.CREATE and change.after is not None:
        lines += [DetailLine(LineKind.FIELD, t) for t in _aligned(key_fields(change.after))]
    elif change.action is Action.DELETE and change.before is not None:
        lines += [DetailLine(LineKind.FIELD, t) for t in _aligned(key_fields(change.before))]
    pairs = [field_change_line(fc) for fc in change.field_changes]
    for fc, group in zip(change.field_changes, aligned_groups(pairs), strict=True):
        for text in group:
            noted = fc.forces_replacement and "  # " in text
            lines.append(DetailLine(LineKind.FIELD, text, forces_replacement=noted))
    return lines


def data_loss_lines(plan: Plan) -> list[str]:
    """One line per change that destroys data: the address, the volume and what happens."""
    lines = []
    for change in plan.data_loss:
        what = "deleted" if change.action is Action.DELETE else "replaced by a new, empty one"
        size = (change.before or {}).get("size_in_gb")
        held = f", {size} GB" if size is not None else ""
        lines.append(
            f"{clean_text(change.address)} ({clean_text(change.resource_id or '?')}{held}) is "
            f"{what}: the data on it is lost"
        )
    return lines


DATA_LOSS_HEADING = "This plan destroys data (apply refuses it without --allow-data-loss):"
KEPT_HEADING = "Kept by this destroy:"


def unsettled_parts(*, blocked: int, pending: int, no_capacity: int) -> list[str]:
    """What keeps the fleets from matching their manifests after the plan, counted:
    ``["1 waiting for a create sent earlier", "2 without capacity"]``."""
    parts = []
    if pending:
        parts.append(f"{pending} waiting for a create sent earlier")
    if blocked - pending:
        parts.append(f"{blocked - pending} blocked")
    if no_capacity:
        parts.append(f"{no_capacity} without capacity")
    return parts


@dataclass(frozen=True, slots=True)
class WaveEntry:
    """One replica of a wave: its name (relative to the fleet, unescaped) and notes such as
    ``create first`` or ``waits for i-9 to serve``."""

    name: str
    notes: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class WaveOutline:
    number: int
    entries: tuple[WaveEntry, ...]

    @property
    def label(self) -> str:
        """``wave 1``; ``wave 0 (finish first)`` for what an earlier run left."""
        return f"wave {self.number}" + (" (finish first)" if self.number == 0 else "")


@dataclass(frozen=True, slots=True)
class RolloutOutline:
    """What the text views say about one rollout. ``group``, ``readiness`` and the entries'
    names and notes are raw (each view escapes them for where they land); the rest is our
    own wording of numbers and money."""

    group: str
    settings: str
    bounds: str
    cost: str | None
    readiness: str | None
    readiness_note: str
    waves: tuple[WaveOutline, ...]


READINESS_NOTE = "must pass before a new replica counts as serving"
NO_READINESS_NOTE = "a new replica counts as serving once it is active"


def _duration(rollout: Rollout) -> str:
    """``about 20 min (2 waves × ≤10 min boot)``: the sum of the waves' boot times."""
    if rollout.expected_seconds is None:
        return "duration unknown (no boot time known)"
    count = len(rollout.waves)
    boots = {w.boot_seconds for w in rollout.waves}
    plural = "" if count == 1 else "s"
    if len(boots) == 1 and None not in boots:
        (boot,) = boots
        assert boot is not None
        how = f"{count} wave{plural} × {boot_text(boot)} boot"
    else:
        how = f"the boot times of {count} wave{plural}"
    return f"about {duration_text(rollout.expected_seconds)} ({how})"


def _rollout_cost(rollout: Rollout, fleet: FleetPlan) -> str | None:
    """``peak $5.00/h while surge replicas run (+$1.00/h)``: the fleet's peak, and what this
    group's surge replicas add to it; None for a plan made without prices."""
    if rollout.surge_hourly_cents > 0:
        return (
            f"peak {hourly(fleet.cost.peak)} while surge replicas run "
            f"({signed(rollout.surge_hourly_cents)}/h)"
        )
    surging = any(w.create_first for w in rollout.waves if w.number > 0)
    if not surging and has_prices(fleet.cost):
        return "no surge replicas, so no extra cost"
    return None


def _wave_entries(
    wave: RolloutWave, settling: dict[str, list[str]], fleet: str
) -> tuple[WaveEntry, ...]:
    prefix = f"{fleet}/"
    entries = []
    for address in wave.addresses:
        notes = ["create first"] if address in wave.create_first else []
        if wave.number == 0:  # what an earlier run left: say what settles it
            notes += settling.get(address, [])
        name = address[len(prefix) :] if address.startswith(prefix) else address
        entries.append(WaveEntry(name, tuple(notes)))
    return tuple(entries)


def _settling_notes(change: Change) -> list[str]:
    waits = change.serving_first
    if change.action is Action.NOOP:
        return [f"waits for {waits} to serve"] if waits is not None else []
    if change.action is Action.DELETE:
        gone = change.resource_id or "its predecessor"
        return [f"{gone} goes once {waits} serves" if waits is not None else f"{gone} deleted"]
    if change.action is Action.CREATE:
        return ["created"]
    if change.action is Action.REPLACE:
        return ["replaced"]
    return []


def rollout_outline(rollout: Rollout, fleet: FleetPlan) -> RolloutOutline:
    """The rollout of one replica group of ``fleet``, worded for the text views: its settings
    (``4 replicas, max_unavailable 1, max_surge 1``), its bounds (``never fewer than 3 serving,
    never more than 5 running; about 20 min (2 waves × ≤10 min boot)``), its cost (``peak
    $5.00/h while surge replicas run (+$1.00/h)``), its readiness command and its waves, each
    replica by its name in the fleet (``mistral-0``) with notes (``create first``)."""
    replicas = rollout.replicas
    settings = (
        f"{replicas} replica{'' if replicas == 1 else 's'}, "
        f"max_unavailable {rollout.max_unavailable}, max_surge {rollout.max_surge}"
    )
    now = f" ({rollout.serving} of {replicas} serve now)" if rollout.serving != replicas else ""
    bounds = (
        f"never fewer than {rollout.serving_floor} serving{now}, never more than "
        f"{rollout.peak_running} running; {_duration(rollout)}"
    )
    settling: dict[str, list[str]] = {}
    for change in fleet.changes:
        if change.rollout == rollout.group and change.wave == 0:
            settling.setdefault(change.address, []).extend(_settling_notes(change))
    waves = tuple(
        WaveOutline(w.number, _wave_entries(w, settling, fleet.fleet)) for w in rollout.waves
    )
    command = shlex.join(rollout.readiness) if rollout.readiness else None
    return RolloutOutline(
        group=rollout.group,
        settings=settings,
        bounds=bounds,
        cost=_rollout_cost(rollout, fleet),
        readiness=command,
        readiness_note=READINESS_NOTE if command is not None else NO_READINESS_NOTE,
        waves=waves,
    )
