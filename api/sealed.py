"""Sealed values: what Redis keeps about a person (a CNIC, a conversation, a USSD path) stored so
that a dump, a replica, a backup or a `MONITOR` of Redis shows nothing without the secret key.

A value is sealed with AES-256-GCM (authenticated encryption, from the `cryptography` package)
under a key derived from `RABTA_SECRET_KEY` with HKDF-SHA256, a fresh random 96-bit nonce each
time, and the Redis key it is stored under as associated data: a sealed value moved to another
key (another person's conversation, another bearer token) does not open there.

    sealed = "s1." + base64url(nonce ‖ ciphertext ‖ tag)

A value that does not open (another secret key, a changed byte, a value moved between keys, or
one written in clear by a release before sealing) opens as None: the caller treats it as absent,
as if it had expired, and the person is asked again. The "s1." prefix names the format, so that
another one can be read beside it one day.

Equality needs no sealing: where code only asks "is this the same CNIC", it compares keyed
hashes (`api.identity.keyed_digest`), which are deterministic; a sealed value never is.
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
import os
from functools import lru_cache
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

log = logging.getLogger(__name__)

PREFIX = "s1."
_NONCE_BYTES = 12
#: HKDF's `info`: the sealing key is the secret key's for this purpose alone, unrelated to the
#: keyed hashes derived from the same secret.
_PURPOSE = b"rabta sealed values v1"


class Sealer:
    """Seals and opens the values kept in Redis under one secret key."""

    def __init__(self, secret: str) -> None:
        key = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=_PURPOSE).derive(
            secret.encode()
        )
        self._aead = AESGCM(key)

    def seal(self, plain: str, *, where: str) -> str:
        """`plain` sealed for the Redis key `where` (it opens only there)."""
        nonce = os.urandom(_NONCE_BYTES)
        sealed = self._aead.encrypt(nonce, plain.encode(), where.encode())
        return PREFIX + base64.urlsafe_b64encode(nonce + sealed).decode().rstrip("=")

    def unseal(self, stored: str | bytes | None, *, where: str) -> str | None:
        """What `seal` sealed for `where`; None for nothing stored, or for a value that does not
        open (written in clear by an earlier release, under another secret key, changed, or
        moved from another key): the caller takes it as expired."""
        if not stored:
            return None
        text = stored.decode(errors="replace") if isinstance(stored, bytes) else stored
        if not text.startswith(PREFIX):
            log.info("a value kept in clear by an earlier release was taken as expired")
            return None
        body = text[len(PREFIX) :]
        try:
            raw = base64.urlsafe_b64decode(body + "=" * (-len(body) % 4))
            plain = self._aead.decrypt(raw[:_NONCE_BYTES], raw[_NONCE_BYTES:], where.encode())
            return plain.decode()
        except (InvalidTag, ValueError, binascii.Error):
            # Another secret key (rotated), or a changed or moved value: never a 500.
            log.info("a sealed value did not open (secret key changed, or value altered)")
            return None

    def unseal_object(self, stored: str | bytes | None, *, where: str) -> dict[str, Any] | None:
        """The JSON object `seal` sealed for `where`; None as for `unseal`, and for a value that
        opens to anything but a JSON object."""
        plain = self.unseal(stored, where=where)
        if plain is None:
            return None
        try:
            data = json.loads(plain)
        except ValueError:
            return None
        return data if isinstance(data, dict) else None


@lru_cache(maxsize=4)
def sealer_for(secret: str) -> Sealer:
    """The sealer of `secret`, derived once per process (a USSD hit builds its store anew)."""
    return Sealer(secret)
