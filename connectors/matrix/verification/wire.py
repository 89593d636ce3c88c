"""The SAS wire vocabulary: the event names, the methods we speak and how a ``start`` is
agreed on, the cancel codes, the timeouts, and the records the machine and the shell exchange
(:class:`Party`, :class:`Outgoing`, :class:`ShortCode`).

Methods: ``m.sas.v1``; key agreement ``curve25519-hkdf-sha256``; hash ``sha256``; MAC
``hkdf-hmac-sha256.v2`` (and its MSC3783 name) or the legacy ``hkdf-hmac-sha256``, whose
base64 is vodozemac's ``calculate_mac_invalid_base64``; short strings ``emoji`` and
``decimal``.
"""

from __future__ import annotations

import base64
import enum
import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

import canonicaljson

JsonDict = dict[str, Any]
Transport = Literal["to_device", "room"]

PREFIX = "m.key.verification."
SAS_METHOD = "m.sas.v1"
KEY_AGREEMENT = "curve25519-hkdf-sha256"
HASH = "sha256"
MAC_V2 = "hkdf-hmac-sha256.v2"
MAC_MSC3783 = "org.matrix.msc3783.hkdf-hmac-sha256"
MAC_LEGACY = "hkdf-hmac-sha256"
MACS = (MAC_V2, MAC_MSC3783, MAC_LEGACY)
SHORT_STRINGS = ("decimal", "emoji")
TIMEOUT_SECONDS = 600.0
"""The spec's timeout: a request older than this (or a verification idle this long) ends."""
FUTURE_SKEW_SECONDS = 300.0
"""A request stamped more than this ahead of our clock is ignored, as the spec says."""


class Cancel(enum.StrEnum):
    USER = "m.user"
    TIMEOUT = "m.timeout"
    UNKNOWN_TRANSACTION = "m.unknown_transaction"
    UNKNOWN_METHOD = "m.unknown_method"
    UNEXPECTED_MESSAGE = "m.unexpected_message"
    KEY_MISMATCH = "m.key_mismatch"
    USER_MISMATCH = "m.user_mismatch"
    INVALID_MESSAGE = "m.invalid_message"
    MISMATCHED_COMMITMENT = "m.mismatched_commitment"
    MISMATCHED_SAS = "m.mismatched_sas"


REASONS = {
    Cancel.USER: "The user cancelled the verification.",
    Cancel.TIMEOUT: "The verification timed out.",
    Cancel.UNKNOWN_TRANSACTION: "Unknown transaction.",
    Cancel.UNKNOWN_METHOD: "No common verification method.",
    Cancel.UNEXPECTED_MESSAGE: "Unexpected message.",
    Cancel.KEY_MISMATCH: "The keys did not match.",
    Cancel.USER_MISMATCH: "The user or device did not match.",
    Cancel.INVALID_MESSAGE: "Invalid message.",
    Cancel.MISMATCHED_COMMITMENT: "The commitment did not match.",
    Cancel.MISMATCHED_SAS: "The short authentication strings did not match.",
}


@dataclass(frozen=True, slots=True)
class Party:
    """One side: its user, its device, and the keys it vouches for in its MAC
    (``{"ed25519:<device>": key, "ed25519:<master>": master}``)."""

    user_id: str
    device_id: str
    keys: Mapping[str, str]

    @property
    def device_key(self) -> str:
        return str(self.keys.get(f"ed25519:{self.device_id}", ""))


@dataclass(frozen=True, slots=True)
class Outgoing:
    """An event to send: its type and its full content (transport fields included)."""

    type: str
    content: JsonDict


@dataclass(frozen=True, slots=True)
class ShortCode:
    """The emojis and the three decimals the two people compare."""

    emojis: tuple[tuple[str, str], ...]
    decimals: tuple[int, int, int]

    def line(self) -> str:
        return "  ".join(f"{e} {name}" for e, name in self.emojis)


@dataclass(frozen=True, slots=True)
class Agreed:
    """The MAC method and the short strings both sides settled on."""

    mac: str
    strings: tuple[str, ...]


def agree(start: Mapping[str, Any]) -> Agreed | None:
    """The methods we accept from a ``start`` (None when there is no common set)."""
    if start.get("method") != SAS_METHOD:
        return None
    agreements = start.get("key_agreement_protocols") or []
    hashes = start.get("hashes") or []
    macs = start.get("message_authentication_codes") or []
    strings = start.get("short_authentication_string") or []
    if KEY_AGREEMENT not in agreements or HASH not in hashes or "decimal" not in strings:
        return None
    mac = next((m for m in MACS if m in macs), None)
    if mac is None:
        return None
    return Agreed(mac, tuple(s for s in SHORT_STRINGS if s in strings))


def accepted(accept: Mapping[str, Any]) -> Agreed | None:
    """The methods the other side chose in its ``accept`` to our ``start`` (None when it
    chose one we did not offer)."""
    mac = accept.get("message_authentication_code")
    strings = accept.get("short_authentication_string")
    if (
        accept.get("key_agreement_protocol") != KEY_AGREEMENT
        or accept.get("hash") != HASH
        or mac not in MACS
        or not isinstance(strings, list)
        or "decimal" not in strings
        or any(s not in SHORT_STRINGS for s in strings)
    ):
        return None
    return Agreed(str(mac), tuple(strings))


def commitment(public_key: str, start: Mapping[str, Any]) -> str:
    """The accepter's commitment: its public key hashed with the canonical ``start``."""
    digest = hashlib.sha256(public_key.encode() + canonicaljson.encode_canonical_json(start))
    return base64.b64encode(digest.digest()).decode().rstrip("=")
