"""Placement envelopes in manifests: which form an instance ends up with, and the rules on it."""

from __future__ import annotations

from reconciler.manifest.placement import defaults_replaced_by
from reconciler.models.manifest import InstanceEntry
from reconciler.models.spec import Placement, PlacementCandidate, PlacementRequirements
from tests.manifest.support import Workspace, one

ENVELOPE = """\
  placement:
    strategy: cheapest
    candidates:
      - {cloud: lambdalabs, region: us-east-1, shade_instance_type: H100}
      - {cloud: datacrunch, region: FIN-01, shade_instance_type: H100, rental_type: spot}
    requirements:
      gpu_type: H100
      num_gpus: 1
      min_vram_per_gpu_in_gb: 80
      max_hourly_price: "3.00"
      clouds: [lambdalabs, datacrunch]
      regions: [us-east-1, FIN-01]
      rental_types: [on_demand, spot]
"""
FIXED = "  cloud: hyperstack\n  region: canada-1\n  shade_instance_type: A6000\n"


def manifest(defaults: str, instances: str) -> str:
    return f"fleet: demo\ndefaults:\n  shade_cloud: true\n{defaults}instances:\n{instances}"


def indent(block: str, spaces: int = 2) -> str:
    return "".join(" " * spaces + line if line.strip() else line for line in block.splitlines(True))


def test_a_placement_in_defaults_resolves_to_the_spec_envelope(ws: Workspace) -> None:
    ws.write("m.yaml", manifest(ENVELOPE, "  - name: a\n"))
    [instance] = one(ws.load("m.yaml")).instances
    assert (instance.cloud, instance.region, instance.shade_instance_type) == (None, None, None)
    assert instance.placement == Placement(
        strategy="cheapest",
        candidates=(
            PlacementCandidate(cloud="lambdalabs", region="us-east-1", shade_instance_type="H100"),
            PlacementCandidate(
                cloud="datacrunch", region="FIN-01", shade_instance_type="H100", rental_type="spot"
            ),
        ),
        requirements=PlacementRequirements(
            gpu_type="H100",
            num_gpus=1,
            min_vram_per_gpu_in_gb=80,
            max_hourly_price="3.00",
            clouds=("lambdalabs", "datacrunch"),
            regions=("us-east-1", "FIN-01"),
            rental_types=("on_demand", "spot"),
        ),
    )


def test_unset_keys_take_the_spec_defaults(ws: Workspace) -> None:
    placement = "  placement:\n    requirements: {gpu_type: H200}\n"
    ws.write("m.yaml", manifest(placement, "  - name: a\n"))
    [instance] = one(ws.load("m.yaml")).instances
    assert instance.placement == Placement(requirements=PlacementRequirements(gpu_type="H200"))
    assert instance.placement.requirements is not None
    assert instance.placement.requirements.rental_types == ("on_demand",)
    assert instance.placement.strategy == "ordered"


def test_an_instance_offer_replaces_a_default_placement(ws: Workspace) -> None:
    instances = "  - name: a\n  - name: b\n" + indent(FIXED, 2)
    ws.write("m.yaml", manifest(ENVELOPE, instances))
    a, b = one(ws.load("m.yaml")).instances
    assert a.placement is not None and a.cloud is None
    assert b.placement is None
    assert (b.cloud, b.region, b.shade_instance_type) == ("hyperstack", "canada-1", "A6000")


def test_an_instance_placement_replaces_the_default_offer_and_rental_type(ws: Workspace) -> None:
    defaults = FIXED + "  rental_type: spot\n"
    ws.write("m.yaml", manifest(defaults, "  - name: a\n  - name: b\n" + indent(ENVELOPE, 2)))
    a, b = one(ws.load("m.yaml")).instances
    assert (a.cloud, a.rental_type, a.placement) == ("hyperstack", "spot", None)
    assert (b.cloud, b.region, b.shade_instance_type) == (None, None, None)
    assert b.rental_type == "on_demand"  # the envelope's candidates carry the rental types
    assert b.placement is not None and b.placement.strategy == "cheapest"


def test_a_partial_offer_on_the_instance_still_drops_the_default_placement(
    ws: Workspace,
) -> None:
    ws.write("m.yaml", manifest(ENVELOPE, "  - name: a\n    region: us-1\n"))
    issues = ws.issues("m.yaml")
    assert [(i.line, i.field) for i in issues] == [
        (18, "instances[0].cloud"),
        (18, "instances[0].shade_instance_type"),
    ]


def test_defaults_replaced_by() -> None:
    def entry(**fields: object) -> InstanceEntry:
        return InstanceEntry.model_validate({"name": "a", **fields})

    placement = {"candidates": [{"cloud": "c", "region": "r", "shade_instance_type": "t"}]}
    assert defaults_replaced_by(entry()) == frozenset()
    assert defaults_replaced_by(entry(rental_type="spot")) == frozenset()
    assert defaults_replaced_by(entry(region="r")) == {"placement"}
    assert defaults_replaced_by(entry(placement=placement)) == {
        "cloud",
        "region",
        "shade_instance_type",
        "rental_type",
    }
    assert defaults_replaced_by(entry(placement=None, cloud=None)) == frozenset()


def test_placement_and_an_offer_in_one_instance_conflict(ws: Workspace) -> None:
    instance = "  - name: a\n    cloud: hyperstack\n" + indent(ENVELOPE, 2)
    ws.write("m.yaml", manifest("", instance))
    issue = ws.only_issue("m.yaml")
    assert (issue.line, issue.column, issue.field) == (6, 5, "instances[0].cloud")
    assert issue.message.startswith("cloud cannot be combined with placement")


def test_placement_and_an_offer_in_defaults_conflict_where_inherited(ws: Workspace) -> None:
    defaults = ENVELOPE + "  shade_instance_type: A6000\n"
    instances = "  - name: a\n  - name: b\n" + indent(FIXED, 2)
    ws.write("m.yaml", manifest(defaults, instances))
    issue = ws.only_issue("m.yaml")  # b names its own offer, so only a inherits both
    assert (issue.line, issue.field) == (17, "defaults.shade_instance_type")


def test_rental_type_with_an_inherited_placement_is_an_error(ws: Workspace) -> None:
    ws.write("m.yaml", manifest(ENVELOPE, "  - name: a\n    rental_type: spot\n"))
    issue = ws.only_issue("m.yaml")
    assert (issue.line, issue.column, issue.field) == (19, 5, "instances[0].rental_type")
    assert "rental types belong to the envelope" in issue.message


def test_spot_in_candidates_needs_shade_cloud(ws: Workspace) -> None:
    ws.write("m.yaml", manifest(ENVELOPE, "  - name: a\n    shade_cloud: false\n"))
    issue = ws.only_issue("m.yaml")
    assert (issue.line, issue.field) == (8, "defaults.placement.candidates[1].rental_type")
    assert issue.message == "spot needs shade_cloud: true"


def test_spot_in_requirements_needs_shade_cloud(ws: Workspace) -> None:
    instance = (
        "  - name: a\n    shade_cloud: false\n    placement:\n"
        "      requirements: {gpu_type: H100, rental_types: [spot]}\n"
    )
    ws.write("m.yaml", manifest("", instance))
    issue = ws.only_issue("m.yaml")
    assert (issue.line, issue.field) == (
        8,
        "instances[0].placement.requirements.rental_types",
    )


def test_on_demand_envelopes_work_on_linked_accounts(ws: Workspace) -> None:
    instance = (
        "  - name: a\n    shade_cloud: false\n    placement:\n"
        "      candidates: [{cloud: c, region: r, shade_instance_type: t}]\n"
    )
    ws.write("m.yaml", manifest("", instance))
    [instance_spec] = one(ws.load("m.yaml")).instances
    assert instance_spec.shade_cloud is False and instance_spec.placement is not None


def test_no_offer_and_no_placement_is_one_issue(ws: Workspace) -> None:
    ws.write("m.yaml", manifest("", "  - name: a\n"))
    issue = ws.only_issue("m.yaml")
    assert (issue.line, issue.field) == (5, "instances[0]")
    assert issue.message.startswith("set cloud, region and shade_instance_type, or placement")


def test_placement_still_needs_shade_cloud(ws: Workspace) -> None:
    ws.write("m.yaml", "fleet: f\ninstances:\n  - name: a\n" + indent(ENVELOPE, 2))
    issue = ws.only_issue("m.yaml")
    assert (issue.line, issue.field) == (3, "instances[0].shade_cloud")
