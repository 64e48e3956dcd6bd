"""The fleet digest: stable, sensitive to every spec change, blind to secret values' text."""

from __future__ import annotations

import hashlib
import json

from pydantic import SecretStr

from reconciler.manifest.digest import comparable_spec, digest_of_comparables, fleet_digest
from reconciler.models.spec import (
    Budget,
    Env,
    InstanceSpec,
    Placement,
    PlacementCandidate,
    SourceLocation,
)


def spec(name: str = "a", *, token: str = "t0", source: str = "m.yaml") -> InstanceSpec:
    return InstanceSpec(
        address=f"f/{name}",
        fleet="f",
        name=name,
        cloud="hyperstack",
        region="canada-1",
        shade_instance_type="A6000",
        shade_cloud=True,
        envs=(Env(name="TOKEN", value=SecretStr(token)), Env(name="PLAIN", value="p")),
        source=SourceLocation(file=source, line=3),
    )


def test_digest_is_the_sha256_of_canonical_json_with_fingerprinted_secrets() -> None:
    instance = spec(token="s3cr3t")
    dumped = comparable_spec(instance)
    dumped["envs"] = [
        {
            "name": "TOKEN",
            "value": "(sensitive:sha256:" + hashlib.sha256(b"s3cr3t").hexdigest() + ")",
        },
        {"name": "PLAIN", "value": "p"},
    ]
    canonical = json.dumps([dumped], sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    assert fleet_digest([instance]) == hashlib.sha256(canonical.encode()).hexdigest()


def test_digest_ignores_order_and_source_but_not_content() -> None:
    a, b = spec("a"), spec("b")
    assert fleet_digest([a, b]) == fleet_digest([b, a])
    assert fleet_digest([a]) == fleet_digest([spec("a", source="moved/m.yaml")])
    assert fleet_digest([a]) != fleet_digest([a.model_copy(update={"region": "us-1"})])
    assert fleet_digest([a]) != fleet_digest([spec("a", token="t1")])
    assert fleet_digest([a]) != fleet_digest([a, b])


def test_digest_never_contains_the_secret() -> None:
    dumped = comparable_spec(spec(token="s3cr3t"))
    captured: list[str] = []

    class Spy(SecretStr):
        def get_secret_value(self) -> str:
            value = super().get_secret_value()
            captured.append(value)
            return value

    dumped["envs"][0]["value"] = Spy("s3cr3t")
    digest = digest_of_comparables([dumped])
    assert captured == ["s3cr3t"]  # only hashed
    assert len(digest) == 64 and "s3cr3t" not in digest


def test_digest_covers_placement_and_budget() -> None:
    candidate = PlacementCandidate(cloud="datacrunch", region="FIN-01", shade_instance_type="H100")
    placed = spec("a").model_copy(
        update={"cloud": None, "region": None, "shade_instance_type": None}
    )
    ordered = placed.model_copy(update={"placement": Placement(candidates=(candidate,))})
    cheapest = placed.model_copy(
        update={"placement": Placement(strategy="cheapest", candidates=(candidate,))}
    )
    digests = {fleet_digest([s]) for s in (placed, ordered, cheapest)}
    assert len(digests) == 3
    budgets = [
        None,
        Budget(max_hourly="40.00"),
        Budget(max_hourly="40.00", max_creates_per_apply=1),
    ]
    assert len({fleet_digest([ordered], budget=b) for b in budgets}) == 3
    assert fleet_digest([ordered], budget=None) == fleet_digest([ordered])
