"""Apply converges under injected 5xx, 429s and lost create responses, with zero duplicates."""

from __future__ import annotations

import asyncio
from collections import Counter

from reconciler.emulator import FaultConfig

from .factories import fleet, spec
from .harness import Loop, make_emulator


def test_apply_converges_under_faults_without_duplicates():
    emulator = make_emulator(
        faults=FaultConfig(
            seed=11,
            error_rate=0.2,
            error_statuses=(500, 502, 503),
            rate_limit_rps=100,
            rate_limit_burst=15,
            lost_create_rate=0.3,
        )
    )
    loop = Loop(emulator)
    f = fleet(*(spec(f"gpu-{i}") for i in range(20)))
    runs = 0
    while True:
        runs += 1
        assert runs <= 15, "apply did not converge under faults"
        try:
            report = asyncio.run(loop.apply(f))
        except Exception:  # noqa: BLE001 - a refresh can fail outright under faults; run again
            continue
        if not report.failed and not report.blocked:
            break
    emulator.faults.error_rate = 0.0
    emulator.faults.lost_create_rate = 0.0
    emulator.faults.rate_limit_rps = None
    live = emulator.live_instances()
    per_address = Counter(t for i in live for t in i["tags"] if t.startswith("reconciler:address="))
    assert len(per_address) == 20 and set(per_address.values()) == {1}
    assert sum(emulator.create_count(f"gpu-{i}") for i in range(20)) == 20
    assert not asyncio.run(loop.plan(f)).has_changes
