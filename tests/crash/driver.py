"""Crash trials: run `reconciler apply` as a real process against a real emulator process,
SIGKILL it at a named fail-point or at a random moment, converge, and check the invariants:

* no address has more than one live instance in the emulator (no GPU billed twice);
* every live instance carrying the fleet's tag is recorded in the state (no lost record);
* the next plan shows no changes (``plan --detailed-exitcode`` exits 0).

Used by tests/crash/test_crash.py (a few dozen trials) and bench/bench_crash.py (hundreds).
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from reconciler.emulator import SANDBOX_API_KEY

FLEET = "crash"
INTENT_GRACE = "0.5"

# Manifest versions a trial moves between, so each one creates, updates and deletes.
VERSIONS = [
    {"api": 3, "worker": 1, "tag": "v1"},
    {"api": 2, "batch": 2, "tag": "v2"},
    {"api": 4, "worker": 1, "batch": 1, "tag": "v3"},
]


def manifest(version: dict[str, object]) -> str:
    lines = [
        f"fleet: {FLEET}",
        "defaults:",
        "  cloud: hyperstack",
        "  region: canada-1",
        "  shade_instance_type: A6000",
        "  shade_cloud: true",
        f"  tags: [crash-test, {version['tag']}]",
        "instances:",
    ]
    for name, replicas in version.items():
        if name != "tag":
            lines += [f"  - name: {name}", f"    replicas: {replicas}"]
    return "\n".join(lines) + "\n"


@dataclass
class CrashWorld:
    base_url: str
    root: Path
    version: int = 0
    log: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        (self.root / "fleets").mkdir(parents=True, exist_ok=True)
        self.write_version(0)

    @property
    def env(self) -> dict[str, str]:
        return dict(
            os.environ,
            SHADEFORM_API_URL=self.base_url,
            SHADEFORM_API_KEY=SANDBOX_API_KEY,
            NO_COLOR="1",
            PYTHONUNBUFFERED="1",
        )

    def write_version(self, index: int) -> None:
        self.version = index % len(VERSIONS)
        (self.root / "fleets" / "crash.yaml").write_text(manifest(VERSIONS[self.version]))

    def args(self, command: str, *extra: str) -> list[str]:
        return [
            sys.executable,
            "-m",
            "reconciler",
            command,
            str(self.root / "fleets"),
            "--state-dir",
            str(self.root / "state"),
            "--lock-timeout",
            "30s",
            *extra,
        ]

    def apply_args(self) -> list[str]:
        return self.args(
            "apply", "--auto-approve", "--intent-grace", INTENT_GRACE, "--parallelism", "3"
        )

    def run(
        self, args: list[str], *, failpoint: str | None = None, timeout: float = 120
    ) -> subprocess.CompletedProcess[str]:
        env = self.env
        if failpoint:
            env["RECONCILER_FAILPOINT"] = failpoint
        return subprocess.run(args, env=env, capture_output=True, text=True, timeout=timeout)

    def kill_at_failpoint(self, failpoint: str) -> int:
        return self.run(self.apply_args(), failpoint=failpoint).returncode

    def kill_at_random(
        self, rng: random.Random, *, low: float = 0.3, high: float = 2.0
    ) -> int | None:
        proc = subprocess.Popen(
            self.apply_args(), env=self.env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        time.sleep(rng.uniform(low, high))
        proc.send_signal(signal.SIGKILL)
        return proc.wait()

    def converge(self, max_runs: int = 8) -> None:
        for _ in range(max_runs):
            result = self.run(self.apply_args())
            if result.returncode == 0:
                return
            self.log.append(result.stdout[-2000:] + result.stderr[-2000:])
            time.sleep(float(INTENT_GRACE) + 0.1)
        raise AssertionError("apply did not converge:\n" + "\n---\n".join(self.log[-3:]))

    def live(self) -> list[dict]:
        response = httpx.get(
            f"{self.base_url}/instances", headers={"X-API-KEY": SANDBOX_API_KEY}, timeout=30
        )
        response.raise_for_status()
        return [
            i for i in response.json()["instances"] if i["status"] not in ("deleting", "deleted")
        ]

    def check_invariants(self) -> None:
        fleet_tag = f"reconciler:fleet={FLEET}"
        owned = [i for i in self.live() if fleet_tag in i.get("tags", [])]
        per_address = Counter(
            t for i in owned for t in i["tags"] if t.startswith("reconciler:address=")
        )
        duplicates = {a: n for a, n in per_address.items() if n > 1}
        assert not duplicates, f"duplicate live instances: {duplicates}"
        state = json.loads((self.root / "state" / f"{FLEET}.json").read_text())
        recorded = {r["instance_id"] for r in state["instances"].values()}
        missing = [i["id"] for i in owned if i["id"] not in recorded]
        assert not missing, f"live instances missing from the state: {missing}"
        wanted = {k: v for k, v in VERSIONS[self.version].items() if k != "tag"}
        assert len(owned) == sum(int(v) for v in wanted.values()), (len(owned), wanted)
        plan = self.run(self.args("plan", "--detailed-exitcode", "--intent-grace", INTENT_GRACE))
        assert plan.returncode == 0, plan.stdout[-3000:] + plan.stderr[-2000:]


GRAPH_KEYS = (
    "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIPenzzDzy8N96p2k2wGYn8frzCDilM2PBqpub6pYniC2 one",
    "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOkcB45Nq3DT5w/PUEqM3M/ej5Nt0D6W7s70kHOwXfvT two",
)
# Each version changes the graph: a new key (replaces the key and both instances), a bigger
# volume (replaces the volume and the instance that mounts it).
GRAPH_VERSIONS = [
    {"key": 0, "size": 100},
    {"key": 1, "size": 100},
    {"key": 1, "size": 200},
    {"key": 0, "size": 300},
]


@dataclass
class GraphWorld(CrashWorld):
    """A fleet with a managed volume and SSH key that two instances use. Names carry a token
    of their own: volumes and keys have no tags, so another trial's would block ours."""

    token: str = ""

    @property
    def fleet(self) -> str:
        return f"graph{self.token}"

    @property
    def volume_name(self) -> str:
        return f"data-{self.token}"

    @property
    def key_name(self) -> str:
        return f"deploy-{self.token}"

    def write_version(self, index: int) -> None:
        self.version = index % len(GRAPH_VERSIONS)
        version = GRAPH_VERSIONS[self.version]
        lines = [
            f"fleet: {self.fleet}",
            "volumes:",
            f"  - name: {self.volume_name}",
            "    cloud: hyperstack",
            "    region: canada-1",
            f"    size_in_gb: {version['size']}",
            "ssh_keys:",
            f"  - name: {self.key_name}",
            f'    public_key: "{GRAPH_KEYS[int(version["key"])]}"',
            "defaults:",
            "  cloud: hyperstack",
            "  region: canada-1",
            "  shade_instance_type: A6000",
            "  shade_cloud: true",
            f"  ssh_key: {self.key_name}",
            "instances:",
            "  - name: trainer",
            f"    volumes: [{self.volume_name}]",
            "  - name: helper",
        ]
        for old in (self.root / "fleets").glob("*.yaml"):
            old.unlink()
        (self.root / "fleets" / "graph.yaml").write_text("\n".join(lines) + "\n")

    def apply_args(self) -> list[str]:
        return [*super().apply_args(), "--allow-data-loss"]

    def listed(self, what: str) -> list[dict]:
        response = httpx.get(
            f"{self.base_url}/{what}", headers={"X-API-KEY": SANDBOX_API_KEY}, timeout=30
        )
        response.raise_for_status()
        key = "volumes" if what == "volumes" else "ssh_keys"
        return list(response.json()[key])

    def check_invariants(self) -> None:
        """No duplicate instance, volume or key; every one of them recorded; nothing to do."""
        fleet_tag = f"reconciler:fleet={self.fleet}"
        owned = [i for i in self.live() if fleet_tag in i.get("tags", [])]
        names = Counter(i["name"] for i in owned)
        assert names == Counter({"trainer": 1, "helper": 1}), names
        volumes = [v for v in self.listed("volumes") if v["name"] == self.volume_name]
        keys = [k for k in self.listed("sshkeys") if k["name"] == self.key_name]
        assert len(volumes) == 1, f"duplicate volumes: {volumes}"
        assert len(keys) == 1, f"duplicate keys: {keys}"
        version = GRAPH_VERSIONS[self.version]
        assert volumes[0]["size_in_gb"] == version["size"]
        assert keys[0]["public_key"].split()[1] == GRAPH_KEYS[int(version["key"])].split()[1]
        state = json.loads((self.root / "state" / f"{self.fleet}.json").read_text())
        recorded = {r["instance_id"] for r in state["instances"].values()}
        assert {i["id"] for i in owned} <= recorded, "an instance missing from the state"
        resources = {r["resource_id"] for r in state["resources"].values()}
        assert {volumes[0]["id"], keys[0]["id"]} == resources, (resources, volumes, keys)
        trainer = next(i for i in owned if i["name"] == "trainer")
        info = httpx.get(
            f"{self.base_url}/instances/{trainer['id']}/info",
            headers={"X-API-KEY": SANDBOX_API_KEY},
            timeout=30,
        ).json()
        assert info["volume_ids"] == [volumes[0]["id"]] and info["ssh_key_id"] == keys[0]["id"]
        plan = self.run(self.args("plan", "--detailed-exitcode", "--intent-grace", INTENT_GRACE))
        assert plan.returncode == 0, plan.stdout[-3000:] + plan.stderr[-2000:]
