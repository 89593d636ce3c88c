"""One SAS key verification, without I/O: the spec's "Key verification framework" and
"Short Authentication String (SAS) verification" as a state machine over vodozemac's ``Sas``.

:class:`SasVerification` takes the other side's events (:meth:`~SasVerification.receive`)
and the local user's decisions (:meth:`~SasVerification.start`,
:meth:`~SasVerification.confirm`, :meth:`~SasVerification.mismatch`), and returns the
events to send as :class:`Outgoing` values; the shell adds nothing but the addressing. The
same machine serves both transports: to-device events carry ``transaction_id``, in-room
events ``m.relates_to`` (an ``m.reference`` to the request event, whose id is then the
transaction id). The clock is passed in.

    request ─▶ ready ─▶ start ─▶ accept (commitment) ─▶ key ⇄ key ─▶ (emojis compared)
        ─▶ mac ⇄ mac ─▶ done            and  cancel  from any state

Methods: ``m.sas.v1``; key agreement ``curve25519-hkdf-sha256``; hash ``sha256``; MAC
``hkdf-hmac-sha256.v2`` (and its MSC3783 name) or the legacy ``hkdf-hmac-sha256``, whose
base64 is vodozemac's ``calculate_mac_invalid_base64``; short strings ``emoji`` and
``decimal``.
"""

from __future__ import annotations

import base64
import enum
import hashlib
import hmac
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

import canonicaljson
import vodozemac

from connectors.matrix.verification.emoji import EMOJI

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


_REASONS = {
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


class State(enum.Enum):
    REQUESTED = "requested"  # our request sent, no ready yet
    READY = "ready"  # both ready, nobody started
    STARTED = "started"  # our start sent, no accept yet
    ACCEPTED = "accepted"  # accept sent or received, keys not both known
    COMPARING = "comparing"  # the short strings can be compared
    CONFIRMED = "confirmed"  # our MAC sent, theirs not checked yet
    DONE = "done"
    CANCELLED = "cancelled"


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
    emojis: tuple[tuple[str, str], ...]
    decimals: tuple[int, int, int]

    def line(self) -> str:
        return "  ".join(f"{e} {name}" for e, name in self.emojis)


@dataclass(slots=True)
class _Agreed:
    mac: str
    strings: tuple[str, ...]


@dataclass(slots=True)
class SasVerification:
    """One verification between ``us`` and ``them`` with transaction id ``txn``."""

    txn: str
    transport: Transport
    us: Party
    them: Party
    now: float
    state: State = State.READY
    cancel_code: str | None = None
    cancelled_by_us: bool = False
    verified_keys: dict[str, str] = field(default_factory=dict)
    _sas: vodozemac.Sas = field(default_factory=vodozemac.Sas)
    _established: vodozemac.EstablishedSas | None = None
    _start: JsonDict | None = None  # the start content in force, as sent
    _we_started: bool = False
    _agreed: _Agreed | None = None
    _commitment: str | None = None
    _their_key: str | None = None
    _their_mac_ok: bool = False
    _code: ShortCode | None = None

    # -- the framework ------------------------------------------------------------

    @classmethod
    def request(cls, txn: str, us: Party, them: Party, now: float) -> SasVerification:
        """A to-device request we send (:meth:`request_event` is its content)."""
        return cls(txn, "to_device", us, them, now, state=State.REQUESTED)

    def request_event(self, timestamp_ms: int) -> Outgoing:
        return self._out(
            "request",
            {"from_device": self.us.device_id, "methods": [SAS_METHOD], "timestamp": timestamp_ms},
        )

    @classmethod
    def answer_request(
        cls, txn: str, transport: Transport, us: Party, them: Party, content: Mapping[str, Any]
    ) -> tuple[SasVerification, list[Outgoing]]:
        """Take the other side's request: ``ready`` if it offers SAS, else a cancel.
        (The caller checks the request's age, sender and device first.)"""
        machine = cls(txn, transport, us, them, 0.0)
        methods = content.get("methods")
        if not isinstance(methods, list) or SAS_METHOD not in methods:
            return machine, machine._cancel(Cancel.UNKNOWN_METHOD)
        return machine, [
            machine._out("ready", {"from_device": us.device_id, "methods": [SAS_METHOD]})
        ]

    @property
    def finished(self) -> bool:
        return self.state in (State.DONE, State.CANCELLED)

    @property
    def code(self) -> ShortCode | None:
        """The emojis and decimals to compare, once both keys are known."""
        return self._code

    def expired(self, now: float) -> list[Outgoing]:
        """A cancel (``m.timeout``) if nothing happened for :data:`TIMEOUT_SECONDS`."""
        if self.finished or now - self.now < TIMEOUT_SECONDS:
            return []
        return self._cancel(Cancel.TIMEOUT)

    def cancel(self, code: Cancel = Cancel.USER) -> list[Outgoing]:
        """End it from our side: the local user gave up, or the shell refuses the
        transaction (an unknown one, a stranger, a device without keys)."""
        return [] if self.finished else self._cancel(code)

    def receive(self, kind: str, content: Mapping[str, Any], now: float) -> list[Outgoing]:
        """The other side's ``m.key.verification.<kind>`` event (transport checked by the
        caller: it belongs to this transaction and comes from ``them.user_id``)."""
        if self.finished:
            return []
        self.now = now
        if kind == "cancel":
            self.state = State.CANCELLED
            code = content.get("code")
            self.cancel_code = code if isinstance(code, str) else Cancel.USER.value
            return []
        handler = {
            "ready": self._on_ready,
            "start": self._on_start,
            "accept": self._on_accept,
            "key": self._on_key,
            "mac": self._on_mac,
            "done": self._on_done,
        }.get(kind)
        if handler is None:
            return self._cancel(Cancel.UNEXPECTED_MESSAGE)
        try:
            return handler(content)
        except (KeyError, TypeError, ValueError, vodozemac.KeyException):
            return self._cancel(Cancel.INVALID_MESSAGE)

    def _on_ready(self, content: Mapping[str, Any]) -> list[Outgoing]:
        if self.state is not State.REQUESTED:
            return self._cancel(Cancel.UNEXPECTED_MESSAGE)
        if content.get("from_device") != self.them.device_id:
            return self._cancel(Cancel.USER_MISMATCH)
        if SAS_METHOD not in (content.get("methods") or []):
            return self._cancel(Cancel.UNKNOWN_METHOD)
        self.state = State.READY
        return []

    def _on_done(self, content: Mapping[str, Any]) -> list[Outgoing]:
        if self.state not in (State.CONFIRMED, State.COMPARING):
            return self._cancel(Cancel.UNEXPECTED_MESSAGE)
        return []  # theirs is a courtesy: ours decides

    # -- SAS ------------------------------------------------------------------------

    def start(self) -> list[Outgoing]:
        """Start SAS ourselves (after ready)."""
        if self.state is not State.READY:
            raise ValueError(f"cannot start SAS in state {self.state.value}")
        self._we_started = True
        self.state = State.STARTED
        out = self._out(
            "start",
            {
                "from_device": self.us.device_id,
                "method": SAS_METHOD,
                "key_agreement_protocols": [KEY_AGREEMENT],
                "hashes": [HASH],
                "message_authentication_codes": list(MACS),
                "short_authentication_string": list(SHORT_STRINGS),
            },
        )
        self._start = out.content
        return [out]

    def _on_start(self, content: Mapping[str, Any]) -> list[Outgoing]:
        if self.state is State.STARTED and self._we_started:
            # Both started: the spec keeps the start of the smaller user id, then device id.
            if (self.us.user_id, self.us.device_id) < (self.them.user_id, self.them.device_id):
                return []
            self._we_started = False
        elif self.state is not State.READY:
            return self._cancel(Cancel.UNEXPECTED_MESSAGE)
        if content.get("from_device") != self.them.device_id:
            return self._cancel(Cancel.USER_MISMATCH)
        agreed = _agree(content)
        if agreed is None:
            return self._cancel(Cancel.UNKNOWN_METHOD)
        self._agreed = agreed
        self._start = dict(content)
        self.state = State.ACCEPTED
        commitment = _hash(self._sas.public_key.to_base64(), self._start)
        return [
            self._out(
                "accept",
                {
                    "method": SAS_METHOD,
                    "key_agreement_protocol": KEY_AGREEMENT,
                    "hash": HASH,
                    "message_authentication_code": agreed.mac,
                    "short_authentication_string": list(agreed.strings),
                    "commitment": commitment,
                },
            )
        ]

    def _on_accept(self, content: Mapping[str, Any]) -> list[Outgoing]:
        if self.state is not State.STARTED:
            return self._cancel(Cancel.UNEXPECTED_MESSAGE)
        mac = content.get("message_authentication_code")
        strings = content.get("short_authentication_string")
        if (
            content.get("key_agreement_protocol") != KEY_AGREEMENT
            or content.get("hash") != HASH
            or mac not in MACS
            or not isinstance(strings, list)
            or "decimal" not in strings
            or any(s not in SHORT_STRINGS for s in strings)
        ):
            return self._cancel(Cancel.UNKNOWN_METHOD)
        commitment = content.get("commitment")
        if not isinstance(commitment, str):
            return self._cancel(Cancel.INVALID_MESSAGE)
        self._agreed = _Agreed(str(mac), tuple(strings))
        self._commitment = commitment
        self.state = State.ACCEPTED
        return [self._key_event()]

    def _on_key(self, content: Mapping[str, Any]) -> list[Outgoing]:
        key = content.get("key")
        if self.state is not State.ACCEPTED or self._their_key is not None:
            return self._cancel(Cancel.UNEXPECTED_MESSAGE)
        if not isinstance(key, str):
            return self._cancel(Cancel.INVALID_MESSAGE)
        assert self._start is not None
        if self._we_started and not hmac.compare_digest(
            _hash(key, self._start), self._commitment or ""
        ):
            return self._cancel(Cancel.MISMATCHED_COMMITMENT)
        self._their_key = key
        self._established = self._sas.diffie_hellman(vodozemac.Curve25519PublicKey.from_base64(key))
        self._code = self._short_code()
        self.state = State.COMPARING
        return [] if self._we_started else [self._key_event()]

    def _key_event(self) -> Outgoing:
        return self._out("key", {"key": self._sas.public_key.to_base64()})

    def _short_code(self) -> ShortCode:
        assert self._established is not None and self._their_key is not None
        ours = (self.us, self._sas.public_key.to_base64())
        theirs = (self.them, self._their_key)
        (starter, s_key), (accepter, a_key) = (ours, theirs) if self._we_started else (theirs, ours)
        info = (
            f"MATRIX_KEY_VERIFICATION_SAS|{starter.user_id}|{starter.device_id}|{s_key}"
            f"|{accepter.user_id}|{accepter.device_id}|{a_key}|{self.txn}"
        )
        data = self._established.bytes(info)
        emojis = tuple(EMOJI[i] for i in data.emoji_indices)
        first, second, third = data.decimals
        return ShortCode(emojis, (first, second, third))

    def confirm(self) -> list[Outgoing]:
        """The local user saw the same short strings: send our MAC (and done, if theirs
        checked out already)."""
        if self.state is not State.COMPARING:
            raise ValueError(f"nothing to confirm in state {self.state.value}")
        self.state = State.CONFIRMED
        out = [self._mac_event()]
        if self._their_mac_ok:
            out += self._finish()
        return out

    def mismatch(self) -> list[Outgoing]:
        """The short strings differ: cancel with ``m.mismatched_sas``."""
        if self.state is not State.COMPARING:
            raise ValueError(f"nothing to reject in state {self.state.value}")
        return self._cancel(Cancel.MISMATCHED_SAS)

    def _mac_event(self) -> Outgoing:
        base = self._mac_info(self.us, self.them)
        macs = {kid: self._calc(key, base + kid) for kid, key in sorted(self.us.keys.items())}
        keys = self._calc(",".join(sorted(macs)), base + "KEY_IDS")
        return self._out("mac", {"mac": macs, "keys": keys})

    def _on_mac(self, content: Mapping[str, Any]) -> list[Outgoing]:
        if self.state not in (State.COMPARING, State.CONFIRMED) or self._their_mac_ok:
            return self._cancel(Cancel.UNEXPECTED_MESSAGE)
        macs, keys = content.get("mac"), content.get("keys")
        if not isinstance(macs, dict) or not isinstance(keys, str) or len(macs) > 64:
            return self._cancel(Cancel.INVALID_MESSAGE)
        base = self._mac_info(self.them, self.us)
        if not self._mac_ok(",".join(sorted(macs)), base + "KEY_IDS", keys):
            return self._cancel(Cancel.KEY_MISMATCH)
        verified: dict[str, str] = {}
        for kid, tag in macs.items():
            key = self.them.keys.get(kid)
            if key is None:
                continue  # a key we do not know of (another device's, a new identity)
            if not isinstance(tag, str) or not self._mac_ok(key, base + kid, tag):
                return self._cancel(Cancel.KEY_MISMATCH)
            verified[kid] = key
        if f"ed25519:{self.them.device_id}" not in verified:
            return self._cancel(Cancel.KEY_MISMATCH)
        self.verified_keys = verified
        self._their_mac_ok = True
        return self._finish() if self.state is State.CONFIRMED else []

    def _finish(self) -> list[Outgoing]:
        self.state = State.DONE
        return [self._out("done", {})]

    def _mac_info(self, sender: Party, receiver: Party) -> str:
        return (
            f"MATRIX_KEY_VERIFICATION_MAC{sender.user_id}{sender.device_id}"
            f"{receiver.user_id}{receiver.device_id}{self.txn}"
        )

    def _calc(self, message: str, info: str) -> str:
        assert self._established is not None and self._agreed is not None
        if self._agreed.mac == MAC_LEGACY:
            return str(self._established.calculate_mac_invalid_base64(message, info))
        return str(self._established.calculate_mac(message, info))

    def _mac_ok(self, message: str, info: str, tag: str) -> bool:
        return hmac.compare_digest(self._calc(message, info).encode(), tag.encode())

    # -- framing --------------------------------------------------------------------

    def _cancel(self, code: Cancel) -> list[Outgoing]:
        self.state = State.CANCELLED
        self.cancel_code = code.value
        self.cancelled_by_us = True
        return [self._out("cancel", {"code": code.value, "reason": _REASONS[code]})]

    def _out(self, kind: str, content: JsonDict) -> Outgoing:
        if self.transport == "to_device":
            content = {**content, "transaction_id": self.txn}
        elif kind != "request":
            content = {**content, "m.relates_to": {"rel_type": "m.reference", "event_id": self.txn}}
        return Outgoing(PREFIX + kind, content)


def _agree(start: Mapping[str, Any]) -> _Agreed | None:
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
    return _Agreed(mac, tuple(s for s in SHORT_STRINGS if s in strings))


def _hash(public_key: str, start: Mapping[str, Any]) -> str:
    digest = hashlib.sha256(public_key.encode() + canonicaljson.encode_canonical_json(start))
    return base64.b64encode(digest.digest()).decode().rstrip("=")
