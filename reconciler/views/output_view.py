"""``reconciler output``: how to reach each instance, for people (a table) and scripts (JSON,
or an Ansible inventory)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any, TextIO

from reconciler.models.catalog import format_cents
from reconciler.models.plan import Endpoint, ManagedResource
from reconciler.views._values import clean_text

OUTPUT_FORMAT_VERSION = 1
_COLUMNS = ("ADDRESS", "ID", "STATUS", "IP", "SSH", "$/H")
_RESOURCE_COLUMNS = ("VOLUME OR KEY", "ID", "STATUS", "DETAIL", "USED BY")


def _row(endpoint: Endpoint) -> tuple[str, ...]:
    ssh = (
        f"{endpoint.ssh_user}@{endpoint.ip} -p {endpoint.ssh_port or 22}"
        if endpoint.reachable
        else "-"
    )
    price = format_cents(endpoint.hourly_price_cents) if endpoint.hourly_price_cents else "-"
    return tuple(
        clean_text(value)
        for value in (
            endpoint.address,
            endpoint.instance_id,
            endpoint.status,
            endpoint.ip or "-",
            ssh,
            price,
        )
    )


def _table(rows: list[tuple[str, ...]], stream: TextIO) -> None:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for row in rows:
        cells = (cell.ljust(width) for cell, width in zip(row, widths, strict=True))
        stream.write("  ".join(cells).rstrip() + "\n")


def _resource_row(resource: ManagedResource) -> tuple[str, ...]:
    used = ", ".join(resource.in_use_by) or "-"
    return tuple(
        clean_text(v)
        for v in (
            resource.address,
            resource.resource_id,
            "present" if resource.present else "not_found",
            resource.detail or "-",
            used,
        )
    )


def render_output_human(
    endpoints: Sequence[Endpoint],
    stream: TextIO,
    resources: Sequence[ManagedResource] = (),
) -> None:
    if resources:
        _table([_RESOURCE_COLUMNS, *(_resource_row(r) for r in resources)], stream)
        stream.write("\n")
    if not endpoints:
        stream.write("No instances in the state. Run `reconciler apply` first.\n")
        return
    _table([_COLUMNS, *(_row(e) for e in endpoints)], stream)
    waiting = [e.address for e in endpoints if not e.reachable]
    if waiting:
        stream.write(
            f"\n{len(waiting)} instance(s) have no IP yet (still booting, or gone); run again "
            "once they are active.\n"
        )


def output_json(
    endpoints: Sequence[Endpoint], resources: Sequence[ManagedResource] = ()
) -> dict[str, Any]:
    return {
        "format_version": OUTPUT_FORMAT_VERSION,
        "kind": "reconciler-output",
        "instances": [e.model_dump(mode="json") for e in endpoints],
        "resources": [r.model_dump(mode="json") for r in resources],
    }


def ansible_name(text: str) -> str:
    """Letters, digits and underscores only, as Ansible wants group names (and as file paths
    such as fact caches want host names)."""
    return "".join(c if c.isalnum() else "_" for c in text)


def ansible_inventory(endpoints: Sequence[Endpoint]) -> dict[str, Any]:
    """An Ansible dynamic inventory: one group ``fleet_<fleet>`` per fleet (never ``all`` or
    ``_meta``, whatever a fleet is called), reachable instances as hosts ``<fleet>__<name>``,
    with ``ansible_host``, ``ansible_user``, ``ansible_port`` and the reconciler address."""
    groups: dict[str, Any] = {}
    hostvars: dict[str, Any] = {}
    for endpoint in endpoints:
        if not endpoint.reachable:
            continue
        group = "fleet_" + ansible_name(endpoint.fleet)
        host = ansible_name(endpoint.address.replace("/", "__"))
        groups.setdefault(group, {"hosts": []})["hosts"].append(host)
        hostvars[host] = {
            "ansible_host": endpoint.ip,
            "ansible_user": endpoint.ssh_user,
            "ansible_port": endpoint.ssh_port or 22,
            "reconciler_address": endpoint.address,
            "shadeform_instance_id": endpoint.instance_id,
        }
    return {"all": {"children": sorted(groups)}, **groups, "_meta": {"hostvars": hostvars}}


def render_output_json(data: dict[str, Any], stream: TextIO) -> None:
    stream.write(json.dumps(data, indent=2, sort_keys=False) + "\n")
