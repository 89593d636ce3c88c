"""Standard Webhooks signatures (https://www.standardwebhooks.com), as GitLab signs a
hook's deliveries when the hook has a signing token: :func:`signing_key` reads the token,
:func:`sign` computes a signature and :func:`refusal` says why a delivery's is not good.

The delivery carries three headers: ``webhook-id`` (GitLab's: the delivery's
``Idempotency-Key``, the same on a retry), ``webhook-timestamp`` (unix seconds) and
``webhook-signature``, space-separated ``v1,<base64>`` entries, any one of which may match
(a sender rotating its key signs with both). Each is the HMAC-SHA256, under the token's
key — the base64 after ``whsec_`` — of ``f"{id}.{timestamp}.".encode() + body``. A
timestamp more than :data:`TOLERANCE` from now either way is refused, so a delivery
captured once cannot be replayed later.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Final

PREFIX: Final = "whsec_"
TOLERANCE: Final = timedelta(minutes=5)
_VERSION: Final = "v1"


@dataclass(frozen=True, slots=True)
class Signed:
    """A delivery's three Standard Webhooks headers, as given (``None`` where missing)."""

    id: str | None
    timestamp: str | None
    signatures: str | None


def signing_key(token: str) -> bytes | None:
    """The HMAC key of a signing token ``whsec_<base64>`` (the prefix may be left off), or
    None when it is not one."""
    text = token.strip().removeprefix(PREFIX)
    try:
        key = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        return None
    return key or None


def sign(key: bytes, delivery: str, timestamp: int | str, body: bytes) -> str:
    """The base64 signature of ``body`` sent as ``delivery`` at ``timestamp`` (without its
    ``v1,``)."""
    content = f"{delivery}.{timestamp}.".encode() + body
    return base64.b64encode(hmac.new(key, content, hashlib.sha256).digest()).decode("ascii")


def refusal(signed: Signed, key: bytes, body: bytes, now: datetime) -> str | None:
    """Why ``signed`` is not a good signature of ``body`` under ``key`` at ``now``, in a few
    words (never what it should have been), or None when it is.

    The signature is checked before the timestamp, in constant time, so that an unsigned
    caller learns nothing of the clock."""
    if not signed.signatures or not signed.id or not signed.timestamp:
        return "unsigned: no webhook-signature, webhook-id and webhook-timestamp"
    expected = base64.b64decode(sign(key, signed.id, signed.timestamp, body))
    if not any(hmac.compare_digest(expected, given) for given in _given(signed.signatures)):
        return "the signature does not match"
    try:
        seconds = int(signed.timestamp)
    except ValueError:
        return "the delivery's timestamp is not a number of seconds"
    off = abs(now.timestamp() - seconds)
    if off > TOLERANCE.total_seconds():
        return f"the delivery's timestamp is {off:.0f} s off"
    return None


def _given(signatures: str) -> list[bytes]:
    """The ``v1`` signatures of a ``webhook-signature`` header, decoded; an entry of
    another version, or not base64, passed over."""
    found = []
    for entry in signatures.split():
        version, _, value = entry.partition(",")
        if version != _VERSION:
            continue
        try:
            found.append(base64.b64decode(value, validate=True))
        except (binascii.Error, ValueError):
            continue
    return found
