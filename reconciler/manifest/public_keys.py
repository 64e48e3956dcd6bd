"""OpenSSH public keys as manifests give them: checked, and fingerprinted like ssh-keygen.

A key line is ``<type> <base64 blob> [comment]``; the blob starts with the type again, as a
length-prefixed string, which catches a key pasted into the wrong place or cut short. The
fingerprint is ``SHA256:<unpadded base64 of sha256(blob)>``, what ``ssh-keygen -lf`` prints;
plans show that, never the key.
"""

from __future__ import annotations

import base64
import binascii
import hashlib

KEY_TYPES = frozenset(
    {
        "ssh-ed25519",
        "ssh-rsa",
        "ecdsa-sha2-nistp256",
        "ecdsa-sha2-nistp384",
        "ecdsa-sha2-nistp521",
        "sk-ssh-ed25519@openssh.com",
        "sk-ecdsa-sha2-nistp256@openssh.com",
    }
)
MAX_KEY_CHARS = 16 * 1024


class NotAPublicKey(ValueError):
    """``str()`` says what is wrong, without quoting the text (it may be a private key)."""


def fingerprint_of(text: str) -> str:
    """The key's ``SHA256:...`` fingerprint; :class:`NotAPublicKey` when it is not one."""
    line = text.strip()
    if "PRIVATE KEY" in line:
        raise NotAPublicKey("this is a private key; give the public key (the .pub file)")
    if "\n" in line or len(line) > MAX_KEY_CHARS:
        raise NotAPublicKey("expected one line: '<type> <base64> [comment]'")
    parts = line.split()
    if len(parts) < 2:
        raise NotAPublicKey("expected '<type> <base64> [comment]', e.g. 'ssh-ed25519 AAAA... ci'")
    kind, encoded = parts[0], parts[1]
    if kind not in KEY_TYPES:
        known = ", ".join(sorted(KEY_TYPES))
        raise NotAPublicKey(f"unknown key type '{kind[:40]}' (known: {known})")
    try:
        blob = base64.b64decode(encoded, validate=True)
    except (binascii.Error, ValueError):
        raise NotAPublicKey("the key's base64 part is not valid base64") from None
    if len(blob) < 4 or blob[4 : 4 + int.from_bytes(blob[:4], "big")] != kind.encode():
        raise NotAPublicKey(f"the key's data does not start with its type '{kind}' (cut short?)")
    digest = base64.b64encode(hashlib.sha256(blob).digest()).decode().rstrip("=")
    return f"SHA256:{digest}"
