"""SSH keys: ``<fleet>/ssh_key.<name>``, owned by record, anchored by name and fingerprint.

Plans and states hold a key's fingerprint, never the key. A changed key is replaced
create-first (the new key is added, then the old one deleted once what used it is gone), and
every instance that uses it is replaced too: ``ssh_key_id`` is fixed at create.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from reconciler.engine.kinds.anchored import AnchoredKind
from reconciler.errors import NotFoundError
from reconciler.manifest.public_keys import NotAPublicKey, fingerprint_of
from reconciler.models.api import AddSshKeyRequest, SshKey
from reconciler.models.live import LiveResource
from reconciler.models.spec import SSH_KEY_PREFIX, Fleet, SshKeySpec

if TYPE_CHECKING:
    from reconciler.api import ShadeformClient


def to_live_key(key: SshKey) -> LiveResource:
    try:
        fingerprint = fingerprint_of(key.public_key)
    except NotAPublicKey:
        fingerprint = "(not an OpenSSH public key)"
    return LiveResource(
        id=key.id,
        kind=SshKeyKind.name,
        name=key.name,
        observed={"name": key.name, "fingerprint": fingerprint},
    )


class SshKeyKind(AnchoredKind):
    name = "ssh_key"
    noun = "SSH key"
    address_prefix = SSH_KEY_PREFIX
    destroys_data = False
    replace_creates_first = True

    def specs(self, fleet: Fleet) -> Sequence[SshKeySpec]:
        return fleet.ssh_keys

    def comparable(self, spec: Any, key: str) -> dict[str, Any]:
        return {"name": spec.name, "fingerprint": spec.fingerprint}  # never the key itself

    def anchor(self, spec: Any) -> dict[str, str]:
        return {"name": spec.name, "fingerprint": spec.fingerprint}

    def describe(self, data: dict[str, Any]) -> str:
        return str(data.get("fingerprint", ""))

    async def list_live(self, client: ShadeformClient) -> list[LiveResource]:
        return [to_live_key(k) for k in await client.list_ssh_keys()]

    async def get_live(self, client: ShadeformClient, resource_id: str) -> LiveResource | None:
        try:
            return to_live_key(await client.get_ssh_key(resource_id))
        except NotFoundError:
            return None

    async def send_create(self, client: ShadeformClient, spec: Any) -> str:
        return await client.add_ssh_key(
            AddSshKeyRequest(name=spec.name, public_key=spec.public_key)
        )

    async def send_delete(self, client: ShadeformClient, resource_id: str) -> None:
        await client.delete_ssh_key(resource_id)
