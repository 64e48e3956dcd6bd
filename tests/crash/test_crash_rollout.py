"""Crash tests for rolling replacement: SIGKILL `reconciler apply` in the middle of a replica
group's rollout (at each instance fail-point, a few hits of each, and at random moments), apply
again until the plan is clean, and check the whole episode on the emulator's timeline, from the
start of the rollout through the kill and the restarts until converged: never fewer than
N - max_unavailable replicas active, never more than N + max_surge running (booting and deleting
ones included); at the end one live, recorded, active instance per replica, all on the new
image, and a clean plan.

Each trial is mostly waiting on the CLI's 2 s polls, so they run side by side in a thread pool
(each on a fleet of its own, all in one emulator) and each test reads its trial's outcome. The
boot time (1.8 s) is under that poll interval, so it costs no waiting, yet long enough that a
replica created just before a kill still boots when the resumed apply plans.
"""

from __future__ import annotations

import signal
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor

import pytest

from reconciler.emulator.process import emulator_process
from reconciler.engine.failpoints import STEPS

from .driver import RolloutOutcome, RolloutTrial, run_rollout_trial

WORKERS = 8
TRIAL_TIMEOUT = 240.0
# Replacements never send an update.
ROLLOUT_STEPS = [step for step in STEPS if step != "update_sent"]


def _at(unavailable: int, surge: int, step: str, hit: int) -> RolloutTrial:
    return RolloutTrial(unavailable, surge, failpoint=f"instance.{step}:{hit}")


# max_unavailable 1, max_surge 1: wave 1 replaces vllm-0 create-first and vllm-1 destroy-first,
# wave 2 vllm-2 and vllm-3, so hits 1 and 2 are the two kinds of slot of wave 1 and hit 3 is in
# the last wave. max_surge 0: one destroy-first replica a wave, so hit n is in wave n.
# max_unavailable 0, max_surge 1: one create-first replica a wave, killed with its successor
# created but not recorded, recorded, and serving (its predecessor not yet deleted).
STEP_TRIALS = [
    *(_at(1, 1, step, hit) for step in ROLLOUT_STEPS for hit in (1, 2, 3)),
    *(_at(1, 0, step, hit) for step in ROLLOUT_STEPS for hit in (1, 3)),
    *(_at(0, 1, step, 1) for step in ("create_returned", "id_recorded", "delete_sent")),
]
# Killed at a random moment of the rollout, then again in the first resume.
RANDOM_TRIALS = [
    RolloutTrial(1, surge, seed=20261215 + n, kills=2) for surge in (1, 0) for n in range(3)
]

# Engine bugs these trials found (fixed): a failing trial names the one its runs show again.
BOOTING_ADOPTION = (
    "regression of a bug fixed in the engine: a replacement's new replica that the killed run created but had not "
    "recorded yet (killed between the create's answer and saving its id) is adopted by its "
    "intent tag while still booting, as a plain no-op outside wave 0; the resumed rollout "
    "starts its waves without waiting for it to serve, and a destroy-first slot takes the "
    "group below its floor"
)
UNAWAITED_DUPLICATE = (
    "regression of a bug fixed in the engine: the resumed plan deletes a replacement's leftover (the old replica whose "
    "successor serves, or an unrecorded successor) as a plain 'duplicate instance' outside the "
    "rollout's waves and does not wait until it is gone; wave 1's create-first slot runs beside "
    "it, one machine above max_surge"
)


def diagnosis(outcome: RolloutOutcome, broken: str) -> str:
    """The fixed bug a broken bound looks like, as the resumed runs' plans show it."""
    resumed = "\n".join(outcome.log[1:])
    if broken == "floor" and "# adopted orphan" in resumed:
        return BOOTING_ADOPTION
    if broken == "ceiling" and "# duplicate instance" in resumed:
        return UNAWAITED_DUPLICATE
    return "not a known bug: look at the timeline and the runs below"


@pytest.fixture(scope="module")
def base_url() -> Iterator[str]:
    with emulator_process(
        "--boot-seconds", "1.8", "--delete-seconds", "0.3", "--latency-ms", "5"
    ) as url:
        yield url


@pytest.fixture(scope="module")
def outcomes(
    request: pytest.FixtureRequest, base_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict[RolloutTrial, Future[RolloutOutcome]]]:
    """Every trial this session selected from this module, all started at once."""
    selected = []
    for item in request.session.items:
        params = getattr(getattr(item, "callspec", None), "params", {})
        if getattr(item, "module", None) is request.module and "trial" in params:
            selected.append(params["trial"])
    with ThreadPoolExecutor(WORKERS) as pool:
        yield {
            trial: pool.submit(
                run_rollout_trial, base_url, tmp_path_factory.mktemp("rollout"), trial
            )
            for trial in selected
        }


def check_bounds(outcome: RolloutOutcome) -> None:
    """The floor and the ceiling held over the whole episode; then the end state is right."""
    name, extent = outcome.trial.name, outcome.extent
    assert extent is not None
    print(f"{name}: fewest active {extent.fewest_active}, most running {extent.most_running}")
    broken = []
    if extent.fewest_active < outcome.floor:
        broken.append(
            f"only {extent.fewest_active} replicas active, below the floor of {outcome.floor} "
            f"({diagnosis(outcome, 'floor')})"
        )
    if extent.most_running > outcome.ceiling:
        broken.append(
            f"{extent.most_running} replicas running, above the ceiling of {outcome.ceiling} "
            f"({diagnosis(outcome, 'ceiling')})"
        )
    assert not broken, f"{name}: " + "; ".join(broken) + f"\n{outcome.explain()}"
    assert outcome.failure is None, f"{name}: {outcome.failure}\n{outcome.explain()}"


@pytest.mark.parametrize("trial", STEP_TRIALS, ids=lambda trial: trial.name)
def test_a_rollout_killed_at_a_step_resumes_within_its_bounds(
    outcomes: dict[RolloutTrial, Future[RolloutOutcome]], trial: RolloutTrial
) -> None:
    outcome = outcomes[trial].result(timeout=TRIAL_TIMEOUT)
    assert outcome.exit_codes == [-signal.SIGKILL], "the fail-point was not reached"
    check_bounds(outcome)


@pytest.mark.parametrize("trial", RANDOM_TRIALS, ids=lambda trial: trial.name)
def test_a_rollout_killed_at_random_moments_resumes_within_its_bounds(
    outcomes: dict[RolloutTrial, Future[RolloutOutcome]], trial: RolloutTrial
) -> None:
    outcome = outcomes[trial].result(timeout=TRIAL_TIMEOUT)
    assert outcome.exit_codes[0] == -signal.SIGKILL, "the rollout finished before the kill"
    check_bounds(outcome)
