"""The bot's side of interactive verification: the I/O shell around :mod:`.sas`.

Takes verification events from the sync loop, on either transport — to-device
(``m.key.verification.*``, Element's device verification) or in a room (an
``m.room.message`` with ``msgtype: m.key.verification.request``, then
``m.key.verification.*`` events referring to it: Element's "Verify user" in a DM) — and
runs one :class:`~.sas.SasVerification` per transaction. When both short codes are known
they go on the :class:`~.board.Board` (and to ``announce``, the console) for an admin to
compare; the admin's answer, read every second by :meth:`Verifications.run`, sends the
bot's MAC or cancels with ``m.mismatched_sas``. The Matrix room is never where the emojis
are compared: it is the channel being authenticated (:mod:`.channel` sends the events and
fetches the keys).

When the admin confirmed and the operator's MAC covered their device and master keys, the
bot signs the operator's master key with its user-signing key (uploaded with
``/keys/signatures/upload``) and records the identity (and the device) in ``trust.json``.
Only users with a role may verify; anyone else's request is cancelled (``m.user``) before
any key is exchanged. Bounded: :data:`MAX_ACTIVE` verifications (:data:`MAX_PER_USER`
of one user's), each at most :data:`LIFETIME_SECONDS`, events up to
:data:`MAX_EVENT_BYTES`; an event the sync hands over twice (a retried sync) is taken once.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

import nio

from connectors.errors import ConnectorError
from connectors.matrix.encryption.cross_signing import BotIdentity
from connectors.matrix.encryption.signing import UserIdentity, key_id
from connectors.matrix.encryption.trust import DeviceTrust
from connectors.matrix.inbound.translate import RecentIds
from connectors.matrix.verification.board import Board, Pending
from connectors.matrix.verification.channel import Channel
from connectors.matrix.verification.sas import SasVerification, State
from connectors.matrix.verification.wire import (
    FUTURE_SKEW_SECONDS,
    PREFIX,
    TIMEOUT_SECONDS,
    Cancel,
    Outgoing,
    Party,
    Transport,
)
from fleet.timing.clock import Clock

log = logging.getLogger(__name__)

MAX_ACTIVE = 8
MAX_PER_USER = 2
LIFETIME_SECONDS = 2 * TIMEOUT_SECONDS  # however lively, a verification ends by then
MAX_EVENT_BYTES = 16 * 1024
REQUEST_MSGTYPE = PREFIX + "request"
ANSWER_POLL_SECONDS = 1.0


def is_verification(event: Mapping[str, Any]) -> bool:
    """Whether a room event belongs to a verification (never a command)."""
    kind = event.get("type")
    if not isinstance(kind, str):
        return False
    if kind.startswith(PREFIX):
        return True
    content = event.get("content")
    return (
        kind == "m.room.message"
        and isinstance(content, dict)
        and content.get("msgtype") == REQUEST_MSGTYPE
    )


@dataclass(slots=True)
class _Running:
    id: str
    machine: SasVerification
    room: str | None  # in-room verifications: the room; to-device: None
    identity: UserIdentity | None
    started: float = 0.0  # monotonic
    shown: bool = False


class Verifications:
    """One connector's verifications; :meth:`run` is its background task."""

    def __init__(
        self,
        client: nio.AsyncClient,
        *,
        trust: DeviceTrust,
        has_role: Callable[[str], bool],
        identity: BotIdentity,
        board: Board,
        clock: Clock,
        announce: Callable[[str], Awaitable[object]] | None = None,
        before_send: Callable[[str], Awaitable[None]] | None = None,
    ) -> None:
        """``announce``: where the emojis are shown besides the board (the console).
        ``before_send``: decides a room's devices before an encrypted send."""
        self._client = client
        self._channel = Channel(client, identity=identity, before_send=before_send)
        self._trust = trust
        self._has_role = has_role
        self._identity = identity
        self._board = board
        self._clock = clock
        self._announce = announce
        # (the other user, transaction id) → verification
        self._running: dict[tuple[str, str], _Running] = {}
        self._seen = RecentIds(1024)  # events taken: a retried sync hands them over again
        self._lock = asyncio.Lock()
        board.clear()

    # -- inbound --------------------------------------------------------------------

    async def on_to_device(self, event: Mapping[str, Any]) -> None:
        """A to-device verification event from the sync. Never raises: a bug here must
        not stop the sync loop; it is logged."""
        try:
            await self._to_device(event)
        except Exception:
            log.exception("matrix: handling a verification event failed")

    async def on_room_event(self, room: str, event: Mapping[str, Any]) -> None:
        """A verification event in ``room`` from the sync. Never raises, as above."""
        try:
            await self._room_event(room, event)
        except Exception:
            log.exception("matrix: handling a verification event in %s failed", room)

    async def _to_device(self, event: Mapping[str, Any]) -> None:
        kind, content, sender = _parts(event)
        if kind is None or content is None or sender is None:
            return
        txn = content.get("transaction_id")
        if not isinstance(txn, str) or not txn or len(txn) > 255:
            return
        digest = hashlib.sha256(json.dumps(content, sort_keys=True).encode()).hexdigest()
        if not self._first_time(f"{sender}\n{event.get('type')}\n{digest}"):
            return
        async with self._lock:
            if kind == "request":
                stamp = content.get("timestamp")
                await self._on_request(txn, "to_device", None, sender, content, stamp)
            else:
                await self._on_event(txn, kind, sender, content)

    async def _room_event(self, room: str, event: Mapping[str, Any]) -> None:
        kind, content, sender = _parts(event)
        if kind is None or content is None or sender is None:
            return
        if sender == self._client.user_id:
            return  # our own events, echoed back by the sync
        event_id = event.get("event_id")
        if not isinstance(event_id, str) or not self._first_time(event_id):
            return
        async with self._lock:
            if event.get("type") == "m.room.message":
                if content.get("to") != self._client.user_id:
                    return  # a request for someone else in this room
                txn = event.get("event_id")
                if isinstance(txn, str):
                    stamp = event.get("origin_server_ts")
                    await self._on_request(txn, "room", room, sender, content, stamp)
                return
            relation = content.get("m.relates_to")
            txn = relation.get("event_id") if isinstance(relation, dict) else None
            if isinstance(txn, str):
                await self._on_event(txn, kind, sender, content, room=room)

    def _first_time(self, key: str) -> bool:
        if key in self._seen:
            return False
        self._seen.add(key)
        return True

    async def _on_request(
        self,
        txn: str,
        transport: Transport,
        room: str | None,
        sender: str,
        content: Mapping[str, Any],
        stamp: object,
    ) -> None:
        device = content.get("from_device")
        if not isinstance(device, str) or not device or (sender, txn) in self._running:
            return
        now_ms = self._clock.now().timestamp() * 1000
        if not isinstance(stamp, int) or not (
            now_ms - TIMEOUT_SECONDS * 1000 < stamp < now_ms + FUTURE_SKEW_SECONDS * 1000
        ):
            log.info("matrix: ignoring a stale verification request from %s", sender)
            return
        us = Party(self._client.user_id, str(self._client.device_id), self._channel.our_keys())
        stranger = Party(sender, device, {})
        theirs = sum(1 for user, _ in self._running if user == sender)
        why = (
            "it has no role here"
            if not self._has_role(sender)
            else f"{sender} has {theirs} running"
            if theirs >= MAX_PER_USER
            else f"{MAX_ACTIVE} are running"
            if len(self._running) >= MAX_ACTIVE
            else ""
        )
        if why:
            log.warning("matrix: refusing a verification request from %s: %s", sender, why)
            machine = SasVerification(txn, transport, us, stranger, self._clock.monotonic())
            await self._send(_Running("", machine, room, None), machine.cancel())
            return
        try:
            them, identity = await self._channel.their_keys(sender, device)
        except ConnectorError as exc:
            log.warning("matrix: cannot fetch %s's keys for a verification: %s", sender, exc)
            them, identity = stranger, None
        machine, out = SasVerification.answer_request(txn, transport, us, them, content)
        machine.now = self._clock.monotonic()
        if not them.keys:
            out = machine.cancel(Cancel.USER_MISMATCH)  # no such device of theirs
        running = _Running(self._board.new_id(), machine, room, identity, machine.now)
        if not machine.finished:
            self._running[(sender, txn)] = running
            self._board.show(self._pending(running))
        log.info("matrix: verification %s requested by %s (%s)", running.id, sender, device)
        await self._send(running, out)

    async def _on_event(
        self,
        txn: str,
        kind: str,
        sender: str,
        content: Mapping[str, Any],
        *,
        room: str | None = None,
    ) -> None:
        running = self._running.get((sender, txn))
        if running is None:
            if kind not in ("cancel", "done") and room is None and self._has_role(sender):
                device = content.get("from_device")
                log.info("matrix: a verification event for an unknown transaction from %s", sender)
                if isinstance(device, str):
                    us = Party(self._client.user_id, str(self._client.device_id), {})
                    machine = SasVerification(txn, "to_device", us, Party(sender, device, {}), 0)
                    stray = machine.cancel(Cancel.UNKNOWN_TRANSACTION)
                    await self._send(_Running("", machine, None, None), stray)
            return
        if room != running.room:
            return  # not where this transaction runs
        out = running.machine.receive(kind, content, self._clock.monotonic())
        await self._send(running, out)
        await self._after(running)

    # -- the admin's side -----------------------------------------------------------

    async def run(self) -> None:
        """Read the admins' answers and expire idle verifications, until cancelled."""
        while True:
            await asyncio.sleep(ANSWER_POLL_SECONDS)
            try:
                async with self._lock:
                    await self.poll()
            except Exception:  # a bug: say it loudly, keep serving the others
                log.exception("matrix: checking the verifications failed")

    async def close(self) -> None:
        """The bot stops: what is running is cancelled (their client says so at once)
        and what was pending can no longer be answered."""
        async with self._lock:
            running, self._running = list(self._running.values()), {}
            for one in running:
                await self._send(one, one.machine.cancel(Cancel.USER))
            self._board.clear()

    async def poll(self) -> None:
        now = self._clock.monotonic()
        for running in list(self._running.values()):
            machine = running.machine
            out = machine.expired(now)
            if not out and now - running.started >= LIFETIME_SECONDS:
                out = machine.cancel(Cancel.TIMEOUT)
            if not out and machine.state is State.COMPARING:
                answer = self._board.take_answer(running.id)
                if answer is not None:
                    log.info(
                        "matrix: verification %s %s by an admin",
                        running.id,
                        "confirmed" if answer else "rejected",
                    )
                    out = machine.confirm() if answer else machine.mismatch()
            if out:
                await self._send(running, out)
                await self._after(running)

    async def _after(self, running: _Running) -> None:
        machine = running.machine
        if machine.state is State.COMPARING and not running.shown:
            running.shown = True
            self._board.show(self._pending(running))
            await self._say(
                f"Verification {running.id}: {machine.them.user_id} (device "
                f"{machine.them.device_id}) asks to verify. Compare with what their client "
                f"shows: {machine.code.line() if machine.code else ''} — then answer "
                f"`verify {running.id} yes` or `no` (or `fleetwarden matrix verify`)."
            )
        elif machine.state is State.CONFIRMED:
            self._board.show(self._pending(running))
        if not machine.finished:
            return
        del self._running[(machine.them.user_id, machine.txn)]
        self._board.remove(running.id)
        if machine.state is State.DONE:
            await self._verified(running)
        else:
            who = "the bot" if machine.cancelled_by_us else machine.them.user_id
            await self._say(
                f"Verification {running.id} with {machine.them.user_id} ended: {who} "
                f"cancelled it ({machine.cancel_code}); nothing was signed."
            )

    async def _verified(self, running: _Running) -> None:
        machine, identity = running.machine, running.identity
        them = machine.them
        self._trust.verify(them.user_id, them.device_id, them.device_key)
        master = identity.master_key if identity is not None else ""
        if not master or machine.verified_keys.get(key_id(master)) != master:
            await self._say(
                f"Verification {running.id}: {them.user_id}'s device {them.device_id} is "
                "verified. Their client vouched for no cross-signing identity (they have none "
                "yet, or it verified only the device), so only that device is trusted."
            )
            return
        assert identity is not None
        self._trust.verify_identity(them.user_id, master)
        try:
            await self._identity.sign_user(identity)
            signed = "signed with the bot's user-signing key"
        except ConnectorError as exc:
            log.warning("matrix: signing %s's master key failed: %s", them.user_id, exc)
            signed = "recorded (trusted here), but not signed for their clients: see the log"
        await self._say(
            f"Verification {running.id}: {them.user_id} is verified; their identity (master "
            f"key {master[:8]}…) is {signed}, and their cross-signed devices are trusted."
        )

    # -- helpers --------------------------------------------------------------------

    def _pending(self, running: _Running) -> Pending:
        machine = running.machine
        code = machine.code
        state = {
            State.COMPARING: "compare the emojis, then answer yes or no",
            State.CONFIRMED: "confirmed; waiting for their side",
        }.get(machine.state, "waiting for their client to start")
        return Pending(
            running.id,
            machine.them.user_id,
            machine.them.device_id,
            code.emojis if code else (),
            code.decimals if code else (),
            state,
        )

    async def _send(self, running: _Running, out: list[Outgoing]) -> None:
        await self._channel.send(running.room, running.machine.them, out)

    async def _say(self, line: str) -> None:
        log.info("matrix: %s", line)
        if self._announce is not None:
            try:
                await self._announce(line)
            except Exception:  # the console is gone; the log has it
                log.exception("matrix: announcing a verification failed")


def _parts(event: Mapping[str, Any]) -> tuple[str | None, dict[str, Any] | None, str | None]:
    """(kind after the prefix, content, sender) of a bounded verification event."""
    kind, content, sender = event.get("type"), event.get("content"), event.get("sender")
    if not isinstance(kind, str) or not isinstance(content, dict) or not isinstance(sender, str):
        return None, None, None
    if len(json.dumps(content)) > MAX_EVENT_BYTES:
        log.warning("matrix: dropping an oversized verification event from %s", sender)
        return None, None, None
    if kind == "m.room.message":
        return "request", content, sender
    if not kind.startswith(PREFIX):
        return None, None, None
    return kind[len(PREFIX) :], content, sender
