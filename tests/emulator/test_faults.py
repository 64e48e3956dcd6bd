"""Fault injection: the injector's decisions and what each fault looks like over the API."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from reconciler.emulator import Emulator, EndpointFaults, FaultConfig
from reconciler.emulator.faults import Endpoint, FaultInjector, TokenBucket

from .conftest import Api, FakeClock, MakeEmulator, RecordingSleep, create_body

INFO = Endpoint("InstancesInfo", "GET", "/v1/instances/{id}/info")
CREATE = Endpoint("InstancesCreate", "POST", "/v1/instances/create")
LIST_VOLUMES = Endpoint("Volumes", "GET", "/v1/volumes")


def injector(clock: FakeClock | None = None, **config: object) -> FaultInjector:
    return FaultInjector(FaultConfig.model_validate(config), clock or FakeClock())


# -- the injector ---------------------------------------------------------------------------


def test_endpoint_overrides_match_by_operation_id_request_line_or_path() -> None:
    faults = injector(
        latency_ms=5,
        endpoints={
            "InstancesCreate": {"latency_ms": 300},
            "GET /v1/instances/*/info": {"latency_ms": 20, "error_rate": 0.5},
            "/v1/volumes*": {"jitter_ms": 7},
        },
    )
    assert faults.resolve(CREATE).latency_ms == 300
    info = faults.resolve(INFO)
    assert (info.latency_ms, info.error_rate) == (20, 0.5)
    volumes = faults.resolve(LIST_VOLUMES)
    assert (volumes.latency_ms, volumes.jitter_ms) == (5, 7)
    other = faults.resolve(Endpoint("SshKeys", "GET", "/v1/sshkeys"))
    assert (other.latency_ms, other.jitter_ms, other.error_rate) == (5, 0, 0)


def test_lost_create_rate_applies_to_creates_only() -> None:
    faults = injector(lost_create_rate=1.0)
    assert faults.resolve(CREATE).lost_response_rate == 1.0
    assert faults.resolve(INFO).lost_response_rate == 0.0


def test_jitter_stays_within_bounds() -> None:
    faults = injector(seed=1, latency_ms=20, jitter_ms=10)
    effective = faults.resolve(INFO)
    delays = [faults.latency_seconds(effective) for _ in range(200)]
    assert all(0.020 <= d <= 0.030 for d in delays)
    assert len(set(delays)) > 1


def test_a_seed_makes_the_dice_reproducible() -> None:
    def run() -> list[int | None]:
        faults = injector(seed=42, error_rate=0.3)
        effective = faults.resolve(INFO)
        return [faults.injected_error(effective) for _ in range(100)]

    first = run()
    assert first == run()
    assert {s for s in first if s is not None} == {500, 502, 503}
    assert 10 < sum(s is not None for s in first) < 50


def test_changing_the_seed_in_place_reseeds() -> None:
    faults = injector(seed=1, error_rate=0.5)
    effective = faults.resolve(INFO)
    faults.config.seed = 2
    after = [faults.injected_error(effective) for _ in range(30)]
    faults.config.seed = 3
    faults.injected_error(effective)
    faults.config.seed = 2  # back to 2: the sequence starts over
    assert [faults.injected_error(effective) for _ in range(30)] == after


def test_token_bucket_refills_at_its_rate() -> None:
    bucket = TokenBucket(rps=2.0, burst=2, now=0.0)
    assert bucket.take(0.0) == 0.0
    assert bucket.take(0.0) == 0.0
    assert bucket.take(0.0) == pytest.approx(0.5)
    assert bucket.take(0.25) == pytest.approx(0.25)
    assert bucket.take(0.5) == 0.0


def test_fault_config_rejects_nonsense() -> None:
    with pytest.raises(ValidationError):
        FaultConfig(error_rate=1.5)
    with pytest.raises(ValidationError):
        FaultConfig.model_validate({"latency": 3})
    config = FaultConfig()
    with pytest.raises(ValidationError):
        config.error_statuses = (418,)  # type: ignore[assignment]


# -- faults over the API --------------------------------------------------------------------


def test_latency_and_jitter_are_awaited(make_emulator: MakeEmulator, sleep: RecordingSleep) -> None:
    api = Api(
        make_emulator(
            faults=FaultConfig(
                latency_ms=20, endpoints={"Instances": EndpointFaults(latency_ms=50)}
            )
        )
    )
    api.get("/sshkeys")
    api.get("/instances")
    assert sleep.waits == [0.02, 0.05]


def test_injected_errors_have_no_side_effects(make_emulator: MakeEmulator) -> None:
    emulator = make_emulator(faults=FaultConfig(error_rate=1.0, error_statuses=(503,)))
    api = Api(emulator)
    response = api.post("/instances/create", json=create_body())
    assert response.status_code == 503
    assert response.headers["Retry-After"] == "1"
    assert response.json() == {"error": "service temporarily unavailable"}
    assert emulator.create_count("web-0") == 0


def test_faults_change_at_run_time(emulator: Emulator, api: Api) -> None:
    assert api.get("/instances").status_code == 200
    emulator.faults.error_rate = 1.0
    emulator.faults.error_statuses = (500,)
    assert api.get("/instances").status_code == 500
    emulator.faults = FaultConfig()
    assert api.get("/instances").status_code == 200


def test_rate_limit_answers_429_with_retry_after(
    make_emulator: MakeEmulator, clock: FakeClock
) -> None:
    api = Api(make_emulator(faults=FaultConfig(rate_limit_rps=1, rate_limit_burst=2)))
    statuses = [api.get("/instances").status_code for _ in range(3)]
    assert statuses == [200, 200, 429]
    limited = api.get("/instances")
    assert limited.headers["Retry-After"] == "1"
    assert limited.json() == {"error": "rate limit exceeded; slow down"}
    clock.advance(1.0)
    assert api.get("/instances").status_code == 200


def test_a_per_endpoint_bucket_limits_only_that_endpoint(make_emulator: MakeEmulator) -> None:
    faults = FaultConfig(
        endpoints={"InstancesCreate": EndpointFaults(rate_limit_rps=0.1, rate_limit_burst=1)}
    )
    api = Api(make_emulator(faults=faults))
    assert api.post("/instances/create", json=create_body()).status_code == 200
    limited = api.post("/instances/create", json=create_body(name="b"))
    assert limited.status_code == 429 and limited.headers["Retry-After"] == "10"
    assert api.get("/instances").status_code == 200


def test_unauthorised_requests_do_not_use_up_the_rate_limit(make_emulator: MakeEmulator) -> None:
    emulator = make_emulator(faults=FaultConfig(rate_limit_rps=1, rate_limit_burst=1))
    assert Api(emulator, api_key="bad").get("/instances").status_code == 401
    assert Api(emulator).get("/instances").status_code == 200


def test_a_lost_create_answer_still_creates_the_instance(make_emulator: MakeEmulator) -> None:
    emulator = make_emulator(faults=FaultConfig(lost_create_rate=1.0))
    response = Api(emulator).post("/instances/create", json=create_body())
    assert response.status_code == 502 and response.content == b""
    assert emulator.create_count("web-0") == 1
    assert [i["name"] for i in emulator.live_instances()] == ["web-0"]


def test_a_lost_delete_answer_still_deletes(make_emulator: MakeEmulator) -> None:
    emulator = make_emulator()
    api = Api(emulator)
    instance_id = api.post("/instances/create", json=create_body()).json()["id"]
    emulator.faults.endpoints["InstancesDelete"] = EndpointFaults(lost_response_rate=1.0)
    assert api.post(f"/instances/{instance_id}/delete").status_code == 502
    assert api.get(f"/instances/{instance_id}/info").json()["status"] == "deleting"


def test_a_hang_holds_the_answer_back_after_doing_the_work(
    make_emulator: MakeEmulator, sleep: RecordingSleep
) -> None:
    emulator = make_emulator(faults=FaultConfig(hang_rate=1.0, hang_seconds=45))
    response = Api(emulator).post("/instances/create", json=create_body())
    assert response.status_code == 200
    assert sleep.waits == [45]
    assert emulator.create_count("web-0") == 1


def test_spot_instances_are_preempted_after_the_configured_time(
    make_emulator: MakeEmulator, clock: FakeClock
) -> None:
    emulator = make_emulator(boot_seconds=0, faults=FaultConfig(preempt_spot_after_seconds=600))
    api = Api(emulator)
    spot = api.post("/instances/create", json=create_body(rental_type="spot")).json()["id"]
    on_demand = api.post("/instances/create", json=create_body(name="od")).json()["id"]
    clock.advance(600)
    preempted = api.get(f"/instances/{spot}/info").json()
    assert (preempted["status"], preempted["status_details"]) == ("deleting", "preempted")
    assert api.get(f"/instances/{on_demand}/info").json()["status"] == "active"
    clock.advance(1)
    assert [i["id"] for i in api.get("/instances").json()["instances"]] == [on_demand]


def test_admin_routes_ignore_faults(make_emulator: MakeEmulator) -> None:
    api = Api(
        make_emulator(faults=FaultConfig(error_rate=1.0, rate_limit_rps=0.001, rate_limit_burst=1))
    )
    assert api.get("http://emulator.test/_admin/create-counts").status_code == 200
