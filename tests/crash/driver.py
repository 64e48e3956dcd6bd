"""Crash trials: run `reconciler apply` as a real process against a real emulator process,
SIGKILL it at a named fail-point or at a random moment, converge, and check the invariants:

* no address has more than one live instance in the emulator (no GPU billed twice);
* every live instance carrying the fleet's tag is recorded in the state (no lost record);
* the next plan shows no changes (``plan --detailed-exitcode`` exits 0).

Used by tests/crash/test_crash.py (a few dozen trials) and bench/bench_crash.py (hundreds).

:class:`RolloutWorld` and :func:`run_rollout_trial` do the same to a replica group's rolling
replacement and also read the emulator's timeline, so tests/crash/test_crash_rollout.py checks
that the group stayed within its update_strategy's floor and ceiling across the kill and the
restart.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
import uuid
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from reconciler.emulator import SANDBOX_API_KEY
from reconciler.emulator.timeline import InstancePeriod, extremes, period_from_json
from reconciler.models.live import ADDRESS_TAG

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


# -- rollouts -------------------------------------------------------------------------------------

REPLICAS = 4


def _excerpt(text: str, keep: int = 2500) -> str:
    """A run's output for an assertion message: the plan (its head) and how it ended."""
    return text if len(text) <= 2 * keep else f"{text[:keep]}\n[...]\n{text[-keep:]}"


@dataclass(frozen=True)
class Extent:
    """What the emulator's timeline saw of one group over a rollout episode."""

    fewest_active: int
    most_running: int
    periods: tuple[InstancePeriod, ...]
    since: float
    until: float

    def story(self) -> str:
        """One line per instance: when (seconds into the episode) it was created, became
        active, stopped being active and was gone."""

        def at(t: float | None) -> str:
            return "-" if t is None else f"{t - self.since:+.2f}s"

        lines = [
            f"timeline over {self.until - self.since:.2f}s: fewest active "
            f"{self.fewest_active}, most running {self.most_running}"
        ]
        for p in sorted(self.periods, key=lambda p: p.created_at):
            address = next((t for t in p.tags if t.startswith(ADDRESS_TAG)), "?")
            lines.append(
                f"  {address.removeprefix(ADDRESS_TAG)} {p.id[:8]}: created {at(p.created_at)}, "
                f"active {at(p.active_from)} .. {at(p.active_until)}, gone {at(p.gone_at)}"
            )
        return "\n".join(lines)


@dataclass
class RolloutWorld(CrashWorld):
    """One replica group of :data:`REPLICAS` with an update_strategy; the image changes with
    each version, so every version replaces the whole group in waves. The fleet's name
    carries a token of its own: trials share one emulator and run at the same time."""

    token: str = ""
    max_unavailable: int = 1
    max_surge: int = 1

    @property
    def fleet(self) -> str:
        return f"roll{self.token}"

    @property
    def group_tag(self) -> str:
        """The address tag every replica of the group carries (and nothing else does)."""
        return f"{ADDRESS_TAG}{self.fleet}/vllm-"

    @property
    def floor(self) -> int:
        return REPLICAS - self.max_unavailable

    @property
    def ceiling(self) -> int:
        return REPLICAS + self.max_surge

    def image(self, version: int | None = None) -> str:
        return f"vllm/vllm-openai:v{(self.version if version is None else version) + 1}"

    def write_version(self, index: int) -> None:
        self.version = index
        lines = [
            f"fleet: {self.fleet}",
            "defaults:",
            "  cloud: hyperstack",
            "  region: canada-1",
            "  shade_instance_type: A6000",
            "  shade_cloud: true",
            "instances:",
            "  - name: vllm",
            f"    replicas: {REPLICAS}",
            f"    update_strategy: {{max_unavailable: {self.max_unavailable}, "
            f"max_surge: {self.max_surge}}}",
            "    launch_configuration:",
            "      type: docker",
            "      docker_configuration:",
            f"        image: {self.image(index)}",
        ]
        (self.root / "fleets" / "crash.yaml").write_text("\n".join(lines) + "\n")

    def in_group(self, tags: Iterable[str]) -> bool:
        return any(t.startswith(self.group_tag) for t in tags)

    def timeline(self) -> tuple[float, list[InstancePeriod]]:
        """The emulator's clock now, and every instance the group ever had."""
        response = httpx.get(
            f"{self.base_url.removesuffix('/v1')}/_admin/timeline",
            headers={"X-API-KEY": SANDBOX_API_KEY},
            timeout=30,
        )
        response.raise_for_status()
        body = response.json()
        periods = [period_from_json(p) for p in body["instances"]]
        return float(body["now"]), [p for p in periods if self.in_group(p.tags)]

    def extent(self, since: float) -> Extent:
        until, periods = self.timeline()
        seen = extremes(periods, since=since, until=until)
        return Extent(seen.fewest_active, seen.most_running, tuple(periods), since, until)

    def note(self, what: str, code: int | None, output: str) -> None:
        self.log.append(f"$ {what} -> exit {code}\n{_excerpt(output)}")

    def kill_at_random(
        self, rng: random.Random, *, low: float = 0.3, high: float = 2.0
    ) -> int | None:
        out = self.root / f"run-{len(self.log)}.out"
        with out.open("w") as sink:
            proc = subprocess.Popen(
                self.apply_args(), env=self.env, stdout=sink, stderr=subprocess.STDOUT
            )
            delay = rng.uniform(low, high)
            time.sleep(delay)
            proc.send_signal(signal.SIGKILL)
            code = proc.wait()
        self.note(f"apply, SIGKILL after {delay:.2f}s", code, out.read_text())
        return code

    def plan_is_clean(self) -> bool:
        plan = self.run(self.args("plan", "--detailed-exitcode", "--intent-grace", INTENT_GRACE))
        self.note("plan --detailed-exitcode", plan.returncode, plan.stdout + plan.stderr)
        return plan.returncode == 0

    def converge(self, max_runs: int = 6) -> None:
        """Apply until the plan is clean (a resumed rollout may end with work left)."""
        for _ in range(max_runs):
            result = self.run(self.apply_args())
            self.note("apply", result.returncode, result.stdout + result.stderr)
            if result.returncode == 0 and self.plan_is_clean():
                return
            time.sleep(float(INTENT_GRACE) + 0.1)
        raise AssertionError(f"apply did not converge in {max_runs} runs")

    def group_live(self) -> list[dict]:
        return [i for i in self.live() if self.in_group(i["tags"])]

    def wait_until_serving(self, timeout: float = 10.0) -> list[str]:
        """Wait (bounded) until every live replica is active; the ids that were not yet
        (an apply may end while a replica a killed run created still boots)."""
        booting = [i["id"] for i in self.group_live() if i["status"] != "active"]
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and any(
            i["status"] != "active" for i in self.group_live()
        ):
            time.sleep(0.2)
        return booting

    def check_invariants(self) -> None:
        """One live instance per address, every one recorded, active and on this version's
        image; the plan is clean."""
        owned = self.group_live()
        per_address = Counter(t for i in owned for t in i["tags"] if t.startswith(self.group_tag))
        duplicates = {a: n for a, n in per_address.items() if n > 1}
        assert not duplicates, f"duplicate live instances: {duplicates}"
        assert len(per_address) == REPLICAS, f"replicas live: {sorted(per_address)}"
        state = json.loads((self.root / "state" / f"{self.fleet}.json").read_text())
        recorded = {r["instance_id"] for r in state["instances"].values()}
        missing = [i["id"] for i in owned if i["id"] not in recorded]
        assert not missing, f"live instances missing from the state: {missing}"
        images = [i["launch_configuration"]["docker_configuration"]["image"] for i in owned]
        assert images == [self.image()] * REPLICAS, f"images: {images}"
        statuses = [i["status"] for i in owned]
        assert statuses == ["active"] * REPLICAS, f"statuses: {statuses}"
        assert self.plan_is_clean(), "the plan after converging is not clean"


@dataclass(frozen=True)
class RolloutTrial:
    """One episode: converge v1, start the v2 rollout and SIGKILL it at ``failpoint``
    (``instance.<step>:<hit>``) or, given a ``seed``, at random moments (the rollout, then
    each of ``kills - 1`` resumes), then apply until the plan is clean."""

    max_unavailable: int
    max_surge: int
    failpoint: str | None = None
    seed: int | None = None
    kills: int = 1

    @property
    def name(self) -> str:
        how = self.failpoint or f"random{self.seed}x{self.kills}"
        return f"u{self.max_unavailable}s{self.max_surge}-{how.removeprefix('instance.')}"


@dataclass
class RolloutOutcome:
    trial: RolloutTrial
    floor: int
    ceiling: int
    exit_codes: list[int | None] = field(default_factory=list)
    """Of the killed runs: -SIGKILL when killed, 0 when it had finished first."""
    extent: Extent | None = None
    failure: str | None = None
    """The invariant (or convergence) that did not hold, if one did not."""
    booting_at_end: list[str] = field(default_factory=list)
    """Replicas still booting when the last apply ended (its exit 0, its clean plan)."""
    log: list[str] = field(default_factory=list)
    """The episode's runs (the killed ones, the resumes, the plans) with their output."""

    def explain(self) -> str:
        story = self.extent.story() if self.extent else "(no timeline)"
        runs = "\n\n".join(self.log)
        booting = (
            f"still booting when the last apply ended: {', '.join(self.booting_at_end)}\n"
            if self.booting_at_end
            else ""
        )
        return (
            f"{self.trial.name}: killed runs exited {self.exit_codes}\n{story}\n{booting}\n{runs}"
        )


def run_rollout_trial(base_url: str, root: Path, trial: RolloutTrial) -> RolloutOutcome:
    """Run one :class:`RolloutTrial` in its own world; what it saw (never raises for an
    invariant: the test asserts on the outcome)."""
    world = RolloutWorld(
        base_url,
        root,
        token=uuid.uuid4().hex[:8],
        max_unavailable=trial.max_unavailable,
        max_surge=trial.max_surge,
    )
    world.converge()
    statuses = [i["status"] for i in world.group_live()]
    assert statuses == ["active"] * REPLICAS, f"v1 did not converge: {statuses}"
    world.log = []
    since, _ = world.timeline()
    world.write_version(1)
    outcome = RolloutOutcome(trial, world.floor, world.ceiling, log=world.log)
    try:
        if trial.failpoint is not None:
            result = world.run(world.apply_args(), failpoint=trial.failpoint)
            world.note(
                f"apply, {trial.failpoint}", result.returncode, result.stdout + result.stderr
            )
            outcome.exit_codes.append(result.returncode)
        else:
            rng = random.Random(trial.seed)
            # An uninterrupted rollout takes about 4 s a wave (a 2 s poll for the new replica
            # to serve, one for the old to be gone) after about a second to start and plan.
            waves = -(-REPLICAS // (trial.max_unavailable + trial.max_surge))
            for _ in range(trial.kills):
                code = world.kill_at_random(rng, low=0.5, high=1.0 + 3.5 * waves)
                outcome.exit_codes.append(code)
        world.converge()
        outcome.booting_at_end = world.wait_until_serving()
        world.check_invariants()
    except AssertionError as exc:
        outcome.failure = str(exc)
    outcome.extent = world.extent(since)
    return outcome
