"""Plans for the view tests: one realistic plan with every action, and synthetic ones."""

from __future__ import annotations

from hypothesis import strategies as st

from reconciler.engine.planner import PlanOptions, plan_fleet
from reconciler.models.catalog import Catalog, Offer
from reconciler.models.live import Health, IntentResolution, ResolvedIntent
from reconciler.models.plan import (
    Action,
    Blocked,
    Change,
    CostSummary,
    FieldChange,
    FleetPlan,
    PlacementChoice,
    Plan,
    Reason,
    ReasonCode,
    Rollout,
    RolloutWave,
)
from reconciler.models.spec import (
    DockerConfiguration,
    LaunchConfiguration,
    Lifecycle,
    Readiness,
    UpdateStrategy,
)

from ..engine.factories import fleet, live, record, secret_env, snapshot, spec, state

SECRET = "hf_rawSECRETvalue-DO-NOT-PRINT"
OTHER_SECRET = "hf_anotherSECRET-DO-NOT-PRINT"
FINGERPRINT_DIGEST = "0123456789abcdef"  # the fingerprint hypothesis plants in spec values


def docker(image: str, token: str) -> LaunchConfiguration:
    return LaunchConfiguration(
        type="docker",
        docker_configuration=DockerConfiguration(image=image, envs=(secret_env(token),)),
    )


def every_action_fleet() -> FleetPlan:
    """A planner-made fleet plan with every action, an adoption, a block and a warning.

    vllm-0 create (with a secret env), vllm-1 update (tags), vllm-2 replace (type, create
    before destroy), vllm-3 delete, vllm-4 forget, vllm-5 replace (only the secret changed),
    vllm-6 adopted no-op, vllm-7 unchanged no-op, vllm-8 blocked, vllm-9 replace (in error).
    """
    created = spec("vllm-0", launch_configuration=docker("vllm/vllm-openai:v0.6", SECRET))
    upd_old, upd_new = spec("vllm-1"), spec("vllm-1", tags=("team-ml", "prod"))
    rep_old = spec("vllm-2")
    rep_new = spec(
        "vllm-2", shade_instance_type="H100", lifecycle=Lifecycle(create_before_destroy=True)
    )
    deleted, forgotten = spec("vllm-3"), spec("vllm-4")
    sec_old = spec("vllm-5", launch_configuration=docker("vllm/vllm-openai:v0.6", SECRET))
    sec_new = spec("vllm-5", launch_configuration=docker("vllm/vllm-openai:v0.6", OTHER_SECRET))
    adopted, unchanged, blocked, broken = (
        spec("vllm-6"),
        spec("vllm-7"),
        spec("vllm-8"),
        spec("vllm-9"),
    )
    stray = live(spec("stray"), "i-99", owned=False, extra_tags=("reconciler:fleet=inference",))
    return plan_fleet(
        fleet(created, upd_new, rep_new, sec_new, adopted, unchanged, blocked, broken),
        state(
            record(upd_old, "i-1"),
            record(rep_old, "i-2"),
            record(deleted, "i-3"),
            record(forgotten, "i-4"),
            record(sec_old, "i-5"),
            record(unchanged, "i-7"),
            record(broken, "i-9"),
        ),
        snapshot(
            live(upd_old, "i-1"),
            live(rep_old, "i-2"),
            live(deleted, "i-3"),
            live(sec_old, "i-5"),
            live(unchanged, "i-7"),
            live(broken, "i-9", health=Health.BROKEN, status_details="GPU fell off the bus"),
            orphans=(live(adopted, "i-6"), stray),
            intents=(
                ResolvedIntent(
                    intent_id="t-8",
                    address="inference/vllm-8",
                    resolution=IntentResolution.PENDING,
                    recorded_at="2026-11-27T09:59:20Z",
                    age_seconds=40.0,
                    grace_seconds=60.0,
                ),
            ),
        ),
        PlanOptions(),
    )


def sample_plan() -> Plan:
    return Plan(
        fleets=(every_action_fleet(),),
        paths=("fleets/",),
        created_at="2026-11-27T10:00:00Z",
    )


def without_prices(plan: Plan) -> Plan:
    """``plan`` with every fleet's burn rate zeroed, as a plan made without prices has it."""
    fleets = tuple(f.model_copy(update={"cost": CostSummary()}) for f in plan.fleets)
    return plan.model_copy(update={"fleets": fleets})


def quiet_plan() -> Plan:
    """Only unchanged no-ops: nothing to do."""
    s = spec()
    fp = plan_fleet(fleet(s), state(record(s, "i-1")), snapshot(live(s, "i-1")))
    return Plan(fleets=(fp,))


SPOT_A6000 = Offer(
    cloud="hyperstack",
    region="canada-1",
    shade_instance_type="A6000",
    rental_type="spot",
    hourly_price_cents=40,
    boot_seconds_max=300,
)
A6000 = SPOT_A6000.model_copy(update={"rental_type": "on_demand", "hourly_price_cents": 80})
H100 = Offer(
    cloud="lambdalabs", region="us-east-1", shade_instance_type="H100", hourly_price_cents=249
)
NO_CAPACITY = "no capacity: no approved offer is available (approved: 8xH100 in nebius/eu-north1)"
OVERRIDE = "max_instance_hourly $2.00 exceeded: inference/vllm-1 costs $2.49/h"


def _priced(address: str, action: Action, **fields: object) -> Change:
    instance = None if action is Action.CREATE else f"i-{address[-1]}"
    return Change(address=address, action=action, instance_id=instance, **fields)  # type: ignore[arg-type]


def priced_plan() -> Plan:
    """Hand-made plan with prices, placements, an unknown price and a budget override.

    inference: vllm-0 create on spot A6000 (+$0.40/h, 2 fallbacks), vllm-1 replace $0.80/h ->
    H100 $2.49/h (no fallbacks, boot time unknown), vllm-2 delete (-$2.49/h), vllm-3 update
    ($0.80/h both sides), vllm-4 unchanged ($0.80/h). Burn rate $4.89/h -> $4.49/h.
    training: trainer-0 create with an unknown price, trainer-1 unchanged at $19.92/h,
    trainer-2 without capacity.
    """
    inference = FleetPlan(
        fleet="inference",
        lineage="lineage-1",
        serial=4,
        manifest_digest="d" * 64,
        changes=(
            _priced(
                "inference/vllm-0",
                Action.CREATE,
                placement=PlacementChoice(
                    strategy="cheapest", chosen=SPOT_A6000, fallbacks=(A6000, H100)
                ),
                hourly_cents_after=40,
            ),
            _priced(
                "inference/vllm-1",
                Action.REPLACE,
                placement=PlacementChoice(chosen=H100),
                hourly_cents_before=80,
                hourly_cents_after=249,
            ),
            _priced("inference/vllm-2", Action.DELETE, hourly_cents_before=249),
            _priced(
                "inference/vllm-3",
                Action.UPDATE,
                field_changes=(FieldChange(path="tags", before=["a"], after=["b"]),),
                hourly_cents_before=80,
                hourly_cents_after=80,
            ),
            _priced("inference/vllm-4", Action.NOOP, hourly_cents_before=80, hourly_cents_after=80),
        ),
        cost=CostSummary(hourly_cents_before=489, hourly_cents_after=449),
        budget_overrides=(OVERRIDE,),
    )
    training = FleetPlan(
        fleet="training",
        lineage="lineage-2",
        serial=1,
        manifest_digest="e" * 64,
        changes=(
            _priced("training/trainer-0", Action.CREATE),
            _priced(
                "training/trainer-1",
                Action.NOOP,
                hourly_cents_before=1992,
                hourly_cents_after=1992,
            ),
        ),
        no_capacity=(Blocked(address="training/trainer-2", message=NO_CAPACITY),),
        cost=CostSummary(hourly_cents_before=1992, hourly_cents_after=1992, unknown_prices=1),
    )
    return Plan(fleets=(inference, training), paths=("fleets/",))


GROUP = "inference/mistral"
ROLLOUT_CATALOG = Catalog(
    offers=(
        Offer(
            cloud="hyperstack",
            region="canada-1",
            shade_instance_type="A6000",
            hourly_price_cents=100,
            boot_seconds_max=600,
        ),
    )
)
READY = Readiness(command=("./scripts/ready.sh",), timeout_seconds=60, interval_seconds=5)


def _replicas(n: int, image: str, **extra: object) -> list:
    return [spec(f"mistral-{i}", group=GROUP, os=f"os-{image}", **extra) for i in range(n)]


def rollout_plan(
    replicas: int = 4, *, max_unavailable: int = 1, max_surge: int = 1, readiness: bool = True
) -> Plan:
    """A planner-made plan: ``replicas`` serving replicas of inference/mistral ($1.00/h each,
    booting in ≤10 min) all replaced for a new image, in waves (4 replicas, 1 and 1: two
    waves of one create-first and one destroy-first slot; peak $5.00/h)."""
    old = _replicas(replicas, "vllm:1")
    strategy = UpdateStrategy(max_unavailable=max_unavailable, max_surge=max_surge)
    new = _replicas(
        replicas, "vllm:2", update_strategy=strategy, readiness=READY if readiness else None
    )
    fp = plan_fleet(
        fleet(*new),
        state(*(record(s, f"i-{i}") for i, s in enumerate(old))),
        snapshot(*(live(s, f"i-{i}", hourly_price=100) for i, s in enumerate(old))),
        catalog=ROLLOUT_CATALOG,
    )
    return Plan(fleets=(fp,), paths=("fleets/",))


def unfinished_rollout_plan() -> Plan:
    """An earlier run replaced mistral-0 create-first and stopped while its successor (i-new)
    booted: the predecessor i-0 (an orphan now, still serving) goes in wave 0, once i-new
    serves; mistral-1 and mistral-2 then roll in wave 1."""
    old = _replicas(3, "vllm:1")
    strategy = UpdateStrategy(max_unavailable=1, max_surge=1)
    new = _replicas(3, "vllm:2", update_strategy=strategy)
    fp = plan_fleet(
        fleet(*new),
        state(record(new[0], "i-new"), record(old[1], "i-1"), record(old[2], "i-2")),
        snapshot(
            live(new[0], "i-new", health=Health.IN_PROGRESS, hourly_price=100),
            live(old[1], "i-1", hourly_price=100),
            live(old[2], "i-2", hourly_price=100),
            orphans=(live(old[0], "i-0", hourly_price=100),),
        ),
        catalog=ROLLOUT_CATALOG,
    )
    return Plan(fleets=(fp,))


def synthetic_change(i: int) -> Change:
    """A cheap, planner-free change (for large plans); cycles through the actions."""
    address = f"inference/vllm-{i:05d}"
    action = [Action.CREATE, Action.UPDATE, Action.REPLACE, Action.DELETE, Action.NOOP][i % 5]
    after = {
        "name": f"vllm-{i:05d}",
        "cloud": "hyperstack",
        "region": "canada-1",
        "shade_instance_type": "A6000",
        "tags": ["team-ml"],
    }
    if action is Action.CREATE:
        return Change(
            address=address,
            action=action,
            after=after,
            reasons=(Reason(code=ReasonCode.NEW, message="new instance"),),
        )
    before = {**after, "shade_instance_type": "H100" if action is Action.REPLACE else "A6000"}
    changes = (
        (
            FieldChange(
                path="shade_instance_type", before="H100", after="A6000", forces_replacement=True
            ),
        )
        if action is Action.REPLACE
        else (FieldChange(path="tags", before=["a"], after=["team-ml"]),)
        if action is Action.UPDATE
        else ()
    )
    return Change(
        address=address,
        action=action,
        instance_id=f"i-{i}",
        before=before,
        after=None if action is Action.DELETE else after,
        field_changes=changes,
        reasons=(Reason(code=ReasonCode.FIELD_CHANGED, message="changed"),),
    )


def large_plan(count: int, *, fleets: int = 1) -> Plan:
    per = count // fleets
    return Plan(
        fleets=tuple(
            FleetPlan(
                fleet=f"fleet-{f}",
                lineage="lineage-1",
                serial=3,
                manifest_digest="d" * 64,
                changes=tuple(synthetic_change(i) for i in range(f * per, (f + 1) * per)),
            )
            for f in range(fleets)
        )
    )


# -- hypothesis strategies ----------------------------------------------------------------------

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=12)
    | st.just(f"(sensitive:{FINGERPRINT_DIGEST})"),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3)
    ),
    max_leaves=6,
)
specs = st.none() | st.dictionaries(st.text(max_size=8), json_values, max_size=4)
texts = st.text(max_size=20)
cents = st.none() | st.integers(min_value=0, max_value=10**7)

offers = st.builds(
    Offer,
    cloud=texts,
    region=texts,
    shade_instance_type=texts,
    rental_type=st.sampled_from(["on_demand", "spot"]),
    hourly_price_cents=st.integers(min_value=0, max_value=10**6),
    available=st.booleans(),
    boot_seconds_max=st.none() | st.integers(min_value=0, max_value=10**5),
    gpu_type=st.none() | texts,
    num_gpus=st.none() | st.integers(min_value=1, max_value=16),
    vram_per_gpu_in_gb=st.none() | st.integers(min_value=1, max_value=192),
)
placements = st.builds(
    PlacementChoice,
    strategy=st.sampled_from(["ordered", "cheapest"]),
    chosen=offers,
    fallbacks=st.lists(offers, max_size=2).map(tuple),
)
costs = st.builds(
    CostSummary,
    hourly_cents_before=st.integers(min_value=0, max_value=10**7),
    hourly_cents_after=st.integers(min_value=0, max_value=10**7),
    unknown_prices=st.integers(min_value=0, max_value=100),
    hourly_cents_peak=st.none() | st.integers(min_value=0, max_value=10**7),
)
small = st.integers(min_value=0, max_value=8)
rollouts = st.builds(
    Rollout,
    group=texts,
    replicas=small,
    serving=small,
    max_unavailable=small,
    max_surge=small,
    waves=st.lists(
        st.builds(
            RolloutWave,
            number=small,
            addresses=st.lists(texts, max_size=3).map(tuple),
            create_first=st.lists(texts, max_size=2).map(tuple),
            boot_seconds=st.none() | st.integers(min_value=0, max_value=10**5),
        ),
        max_size=3,
    ).map(tuple),
    serving_floor=small,
    peak_running=small,
    expected_seconds=st.none() | st.integers(min_value=0, max_value=10**6),
    surge_hourly_cents=st.integers(min_value=0, max_value=10**6),
    readiness=st.none() | st.lists(texts, min_size=1, max_size=3).map(tuple),
)

changes = st.builds(
    Change,
    address=texts,
    action=st.sampled_from(Action),
    reasons=st.lists(
        st.builds(Reason, code=st.sampled_from(ReasonCode), message=texts), max_size=2
    ).map(tuple),
    instance_id=st.none() | texts,
    adopt=st.booleans(),
    before=specs,
    after=specs,
    field_changes=st.lists(
        st.builds(
            FieldChange,
            path=texts,
            before=json_values,
            after=json_values,
            forces_replacement=st.booleans(),
            sensitive=st.booleans(),
        ),
        max_size=3,
    ).map(tuple),
    create_before_destroy=st.booleans(),
    placement=st.none() | placements,
    rollout=st.none() | texts,
    wave=st.none() | small,
    serving_first=st.none() | texts,
    hourly_cents_before=cents,
    hourly_cents_after=cents,
)
fleet_plans = st.builds(
    FleetPlan,
    fleet=texts,
    lineage=st.none() | texts,
    serial=st.integers(min_value=0, max_value=10**6),
    manifest_digest=texts,
    changes=st.lists(changes, max_size=4).map(tuple),
    blocked=st.lists(st.builds(Blocked, address=texts, message=texts), max_size=2).map(tuple),
    no_capacity=st.lists(st.builds(Blocked, address=texts, message=texts), max_size=1).map(tuple),
    warnings=st.lists(texts, max_size=2).map(tuple),
    released_intents=st.lists(texts, max_size=2).map(tuple),
    cost=costs,
    budget_overrides=st.lists(texts, max_size=2).map(tuple),
    rollouts=st.lists(rollouts, max_size=2).map(tuple),
)
plans = st.builds(
    Plan,
    fleets=st.lists(fleet_plans, max_size=3).map(tuple),
    paths=st.lists(texts, max_size=2).map(tuple),
    targets=st.lists(texts, max_size=2).map(tuple),
    replace=st.lists(texts, max_size=2).map(tuple),
    destroy=st.booleans(),
    created_at=st.none() | texts,
    sandbox=st.booleans(),
)
