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

The vocabulary (event names, methods, cancel codes, the records) is
:mod:`connectors.matrix.verification.wire`.
"""

from __future__ import annotations

import enum
import hmac
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import vodozemac

from connectors.matrix.verification.emoji import EMOJI
from connectors.matrix.verification.wire import (
    HASH,
    KEY_AGREEMENT,
    MAC_LEGACY,
    MACS,
    PREFIX,
    REASONS,
    SAS_METHOD,
    SHORT_STRINGS,
    TIMEOUT_SECONDS,
    Agreed,
    Cancel,
    JsonDict,
    Outgoing,
    Party,
    ShortCode,
    Transport,
    accepted,
    agree,
    commitment,
)


class State(enum.Enum):
    REQUESTED = "requested"  # our request sent, no ready yet
    READY = "ready"  # both ready, nobody started
    STARTED = "started"  # our start sent, no accept yet
    ACCEPTED = "accepted"  # accept sent or received, keys not both known
    COMPARING = "comparing"  # the short strings can be compared
    CONFIRMED = "confirmed"  # our MAC sent, theirs not checked yet
    DONE = "done"
    CANCELLED = "cancelled"


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
    _agreed: Agreed | None = None
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
        agreed = agree(content)
        if agreed is None:
            return self._cancel(Cancel.UNKNOWN_METHOD)
        self._agreed = agreed
        self._start = dict(content)
        self.state = State.ACCEPTED
        ours = commitment(self._sas.public_key.to_base64(), self._start)
        return [
            self._out(
                "accept",
                {
                    "method": SAS_METHOD,
                    "key_agreement_protocol": KEY_AGREEMENT,
                    "hash": HASH,
                    "message_authentication_code": agreed.mac,
                    "short_authentication_string": list(agreed.strings),
                    "commitment": ours,
                },
            )
        ]

    def _on_accept(self, content: Mapping[str, Any]) -> list[Outgoing]:
        if self.state is not State.STARTED:
            return self._cancel(Cancel.UNEXPECTED_MESSAGE)
        agreed = accepted(content)
        if agreed is None:
            return self._cancel(Cancel.UNKNOWN_METHOD)
        their_commitment = content.get("commitment")
        if not isinstance(their_commitment, str):
            return self._cancel(Cancel.INVALID_MESSAGE)
        self._agreed = agreed
        self._commitment = their_commitment
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
            commitment(key, self._start), self._commitment or ""
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
        return [self._out("cancel", {"code": code.value, "reason": REASONS[code]})]

    def _out(self, kind: str, content: JsonDict) -> Outgoing:
        if self.transport == "to_device":
            content = {**content, "transaction_id": self.txn}
        elif kind != "request":
            content = {**content, "m.relates_to": {"rel_type": "m.reference", "event_id": self.txn}}
        return Outgoing(PREFIX + kind, content)
