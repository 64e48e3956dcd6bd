"""The client against the emulator: in-process over ASGI, and on a real socket where timeouts
and cut connections need one."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from reconciler.api import RetryPolicy, ShadeformClient
from reconciler.emulator import SANDBOX_API_KEY, Emulator, EmulatorConfig, FaultConfig
from reconciler.errors import (
    AmbiguousCreateError,
    ApiValidationError,
    AuthError,
    CapacityRefusedError,
    ConflictError,
    NotFoundError,
    ServerError,
    TransportError,
)
from reconciler.models.api import (
    AddSshKeyRequest,
    CreateRequest,
    CreateVolumeRequest,
    Thresholds,
    UpdateRequest,
)
from tests.api.conftest import FakeClock

pytestmark = pytest.mark.anyio

LOOPBACK = "http://127.0.0.1/v1"


def _request(name: str, **overrides: object) -> CreateRequest:
    fields: dict[str, object] = {
        "cloud": "hyperstack",
        "region": "canada-1",
        "shade_instance_type": "A6000",
        "shade_cloud": True,
        "name": name,
        "os": "ubuntu22.04_cuda12.2_shade_os",
        "tags": ("reconciler:fleet=test",),
    }
    fields.update(overrides)
    return CreateRequest.model_validate(fields)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(now=1_700_000_000.0)


@pytest.fixture
def emulator(clock: FakeClock) -> Iterator[Emulator]:
    """Boots and deletes at once; its clock is the client's, so Retry-After waits are free."""
    with Emulator(
        EmulatorConfig(boot_seconds=0, delete_seconds=0, clock=clock, faults=FaultConfig(seed=3))
    ) as emu:
        yield emu


def _client(emu: Emulator, clock: FakeClock, key: str = SANDBOX_API_KEY) -> ShadeformClient:
    return ShadeformClient(
        key,
        LOOPBACK,
        retry=RetryPolicy(max_attempts=4, sleep=clock.sleep, clock=clock, random=lambda: 0.5),
        transport=httpx.ASGITransport(app=emu.app),
    )


async def test_instance_lifecycle(emulator: Emulator, clock: FakeClock) -> None:
    async with _client(emulator, clock) as client:
        instance_id = await client.create_instance(_request("trainer-0"))
        info = await client.get_instance(instance_id)
        assert (info.name, info.status, info.shade_instance_type) == (
            "trainer-0",
            "active",
            "A6000",
        )
        assert info.tags == ("reconciler:fleet=test",)

        await client.update_instance(
            instance_id,
            UpdateRequest(name="trainer-renamed", alert=Thresholds(spend_threshold="5.00")),
        )
        renamed = await client.get_instance(instance_id)
        assert renamed.name == "trainer-renamed"
        assert renamed.alert == Thresholds(spend_threshold="5.00")
        assert [i.id for i in await client.list_instances()] == [instance_id]

        await client.restart_instance(instance_id)
        await client.delete_instance(instance_id)
        with pytest.raises(NotFoundError):
            await client.get_instance(instance_id)
        assert await client.get_instances([instance_id]) == {instance_id: None}


async def test_many_lookups_at_once(emulator: Emulator, clock: FakeClock) -> None:
    async with _client(emulator, clock) as client:
        ids = [await client.create_instance(_request(f"w-{n}")) for n in range(30)]
        infos = await client.get_instances([*ids, "no-such-instance"])
    names = [info.name if info else None for info in (infos[i] for i in ids)]
    assert names == [f"w-{n}" for n in range(30)]
    assert infos["no-such-instance"] is None


async def test_catalog_filters_are_applied_by_the_emulator(
    emulator: Emulator, clock: FakeClock
) -> None:
    async with _client(emulator, clock) as client:
        h100 = await client.list_instance_types(shade_instance_type="H100", available=True)
        eight = await client.list_instance_types(num_gpus=8)
    assert h100 and {t.shade_instance_type for t in h100} == {"H100"}
    assert any(t.availability_in("canada-1", "on_demand") for t in h100 if t.cloud == "hyperstack")
    assert eight and all(t.configuration.num_gpus == 8 for t in eight)


async def test_volumes_and_ssh_keys(emulator: Emulator, clock: FakeClock) -> None:
    async with _client(emulator, clock) as client:
        volume_types = await client.list_volume_types()
        volume_id = await client.create_volume(
            CreateVolumeRequest(
                cloud=volume_types[0].cloud, region=volume_types[0].region, size_in_gb=50, name="d"
            )
        )
        assert (await client.get_volume(volume_id)).size_in_gb == 50
        assert volume_id in {v.id for v in await client.list_volumes()}
        await client.delete_volume(volume_id)

        key_id = await client.add_ssh_key(
            AddSshKeyRequest(name="ci", public_key="ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAI ci")
        )
        assert (await client.get_ssh_key(key_id)).name == "ci"
        await client.delete_ssh_key(key_id)
        assert key_id not in {k.id for k in await client.list_ssh_keys()}


async def test_deleting_a_volume_or_key_in_use_is_a_conflict_not_a_capacity_refusal(
    emulator: Emulator, clock: FakeClock
) -> None:
    async with _client(emulator, clock) as client:
        volume_id = await client.create_volume(
            CreateVolumeRequest(cloud="hyperstack", region="canada-1", size_in_gb=10, name="d")
        )
        key_id = await client.add_ssh_key(
            AddSshKeyRequest(name="ci", public_key="ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAI ci")
        )
        instance_id = await client.create_instance(
            _request("mounts", volume_ids=(volume_id,), ssh_key_id=key_id)
        )
        assert (await client.get_volume(volume_id)).mounted_by == instance_id
        with pytest.raises(ConflictError) as volume_refusal:
            await client.delete_volume(volume_id)
        with pytest.raises(ConflictError) as key_refusal:
            await client.delete_ssh_key(key_id)
        await client.delete_instance(instance_id)  # gone at once (delete_seconds=0)
        await client.delete_volume(volume_id)
        await client.delete_ssh_key(key_id)
    for refusal in (volume_refusal.value, key_refusal.value):
        assert not isinstance(refusal, CapacityRefusedError)
        assert refusal.status == 409 and "still in use" in str(refusal)
    assert volume_refusal.value.api_message == (
        f"volume {volume_id} is mounted by instance {instance_id}; delete the instance first"
    )
    assert key_refusal.value.api_message == (
        f"ssh key {key_id} is in use by an instance; delete the instance first"
    )


async def test_a_wrong_key_is_an_auth_error(emulator: Emulator, clock: FakeClock) -> None:
    async with _client(emulator, clock, key="not-the-key") as client:
        with pytest.raises(AuthError):
            await client.list_instances()


async def test_an_unknown_offer_is_a_validation_error(emulator: Emulator, clock: FakeClock) -> None:
    async with _client(emulator, clock) as client:
        with pytest.raises(ApiValidationError):
            await client.create_instance(_request("x", region="moon-1"))


async def test_exhausted_capacity_is_rejected_without_retrying(
    emulator: Emulator, clock: FakeClock
) -> None:
    emulator.set_capacity("hyperstack", "canada-1", "A6000", available=False)
    async with _client(emulator, clock) as client:
        with pytest.raises(CapacityRefusedError) as caught:
            await client.create_instance(_request("full"))
    assert caught.value.status == 409
    assert emulator.create_count("full") == 0


async def test_a_lost_create_answer_is_ambiguous_and_the_instance_exists_once(
    emulator: Emulator, clock: FakeClock
) -> None:
    emulator.faults.lost_create_rate = 1.0
    async with _client(emulator, clock) as client:
        with pytest.raises(AmbiguousCreateError):
            await client.create_instance(_request("lost-0"))
        emulator.faults.lost_create_rate = 0.0
        listed = await client.list_instances()
    assert emulator.create_count("lost-0") == 1
    assert [i.name for i in listed] == ["lost-0"]


async def test_rate_limiting_is_ridden_out_with_retry_after(
    emulator: Emulator, clock: FakeClock
) -> None:
    emulator.faults = FaultConfig(rate_limit_rps=1, rate_limit_burst=1)
    async with _client(emulator, clock) as client:
        for n in range(3):
            await client.create_instance(_request(f"paced-{n}"))
    assert [emulator.create_count(f"paced-{n}") for n in range(3)] == [1, 1, 1]
    assert clock.sleeps and all(s >= 1 for s in clock.sleeps)


async def test_injected_server_errors_are_retried_then_reported(
    emulator: Emulator, clock: FakeClock
) -> None:
    emulator.faults = FaultConfig(error_rate=1.0, error_statuses=(502,))
    async with _client(emulator, clock) as client:
        with pytest.raises(ServerError, match="after 4 attempts"):
            await client.list_instances()
        with pytest.raises(AmbiguousCreateError):
            await client.create_instance(_request("never"))
    assert emulator.create_count("never") == 0  # injected errors have no effect...
    # ...but the client cannot know that, so it reported the create as ambiguous.


# --- a real socket: timeouts and cut connections ---------------------------------------------


@pytest.fixture
def served() -> Iterator[tuple[Emulator, str]]:
    with Emulator(EmulatorConfig(boot_seconds=0, delete_seconds=0)) as emu:
        with emu.serve_in_thread() as base_url:
            yield emu, base_url


def _socket_client(base_url: str, clock: FakeClock) -> ShadeformClient:
    return ShadeformClient(
        SANDBOX_API_KEY,
        base_url,
        retry=RetryPolicy(max_attempts=2, sleep=clock.sleep, clock=clock, random=lambda: 0.0),
        timeout=httpx.Timeout(5.0, read=0.3),
    )


async def test_a_create_whose_connection_is_cut_is_ambiguous(
    served: tuple[Emulator, str], clock: FakeClock
) -> None:
    emu, base_url = served
    emu.faults = FaultConfig(lost_create_rate=1.0, lost_response_mode="drop")
    async with _socket_client(base_url, clock) as client:
        with pytest.raises(AmbiguousCreateError):
            await client.create_instance(_request("cut-0"))
    assert emu.create_count("cut-0") == 1


async def test_hung_answers_time_out(served: tuple[Emulator, str], clock: FakeClock) -> None:
    emu, base_url = served
    emu.faults = FaultConfig(hang_rate=1.0, hang_seconds=0.6)
    async with _socket_client(base_url, clock) as client:
        with pytest.raises(AmbiguousCreateError, match="timed out waiting"):
            await client.create_instance(_request("hung-0"))
        with pytest.raises(TransportError, match="timed out waiting for the response after 2"):
            await client.list_instances()
    assert emu.create_count("hung-0") == 1


async def test_nothing_listening_is_a_transport_error(clock: FakeClock) -> None:
    with Emulator(EmulatorConfig()) as emu, emu.serve_in_thread() as base_url:
        pass  # the server is stopped again: its port refuses connections now
    async with _socket_client(base_url, clock) as client:
        with pytest.raises(TransportError, match="could not connect after 2 attempts"):
            await client.list_instances()
