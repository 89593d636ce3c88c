"""The peer door: where an agent's ``fw-msg`` (:mod:`fleet.peers.fw_msg`) lists its peers,
sends them messages, hands them tasks and gives the verdict on a review asked of it, over
the heartbeat endpoint, with its heartbeat token (``X-Fleetwarden-Token``)::

    POST /msg/<agent>
      {"op": "peers"}                                     its peers, in words
      {"op": "send", "to": P, "text": T, "verify": bool, "wait": seconds (<= 600)}
      {"op": "task", "to": P, "title": T, "body": B}
      {"op": "review", "verdict": "approve"|"changes", "text": T}

    200  {"ok": true, "text": …, "id": N, "state": "queued"|"delivered"}
    400  {"error": …}  a body that is not one of the calls above, saying what is wrong
    403  {"error": "refused: …"}  a refusal in words; no body: a wrong token
    408  a body not all there within 5 seconds;  413  a body over :data:`MAX_BODY`
    409  {"error": …}  no review is asked of the agent
    503  Fleetwarden is still starting (the fleet is not up): ``fw-msg`` tries again

A ``send`` that waits (``verify``) is answered once the message is delivered (``state``
``delivered``: ACCEPTED), refused, or the wait is over (``queued``). Every message and
every refusal is the postbox's to record: the door keeps no audit of its own.
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Final, Protocol

from aiohttp import web

from fleet.capped_body import OverCap, read_capped
from fleet.connections.loopback import AgentSecrets
from fleet.connections.token import TOKEN_HEADER
from fleet.ledger.records.peers import MessageRecord
from fleet.peers.calls import BadCall, HandOn, Peers, Send, Verdict, parse_call
from fleet.peers.errors import PeerRefusal
from fleet.peers.handoff import Handoff
from fleet.peers.postbox import Postbox
from fleet.peers.rules import Rules

log = logging.getLogger(__name__)

MAX_BODY: Final = 64 * 1024
BODY_SECONDS: Final = 5.0


class Verdicts(Protocol):
    """The review desk as the door reaches it: a reviewer's verdict on the review asked of
    it; the line for the agent (:class:`PeerRefusal` when it cannot be taken)."""

    async def verdict(self, reviewer: str, approve: bool, text: str) -> str: ...


PeersText = Callable[[str], Awaitable[str] | str]
"""What ``fw-msg peers`` prints for an agent, by its name (awaited when it must be)."""


def _no_review() -> Verdicts | None:
    return None


@dataclass(slots=True)
class PeerDesk:
    """What the door reaches once the fleet is up: the postbox, the hand-off of tasks,
    each agent's peers in words, and the review desk (``None``: no review is asked) —
    ``verdicts`` gives the review stage once it is made, and ``peers_text`` may be replaced
    by the roster's."""

    postbox: Postbox
    handoff: Handoff
    peers_text: PeersText
    verdicts: Callable[[], Verdicts | None] = field(default=_no_review)


class PeerDoor:
    """The ``/msg`` route of the heartbeat endpoint (:meth:`mount`). The endpoint listens
    before the fleet exists: until ``desk`` gives the desk, every call is answered 503."""

    def __init__(
        self,
        desk: Callable[[], PeerDesk | None] = lambda: None,
        *,
        body_seconds: float = BODY_SECONDS,
    ) -> None:
        self._desk = desk
        self._body_seconds = body_seconds
        self._secrets: AgentSecrets | None = None

    def mount(self, app: web.Application, secrets: AgentSecrets) -> None:
        """Add the route to ``app``; tokens are checked against ``secrets``."""
        self._secrets = secrets
        app.router.add_post("/msg/{agent}", self._handle)

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        agent = self._agent(request)
        if agent is None:
            return web.Response(status=403)
        try:
            body = await read_capped(request, MAX_BODY, within=self._body_seconds)
        except TimeoutError:
            log.warning("peer door: a call of %s came too slowly", agent)
            return web.Response(status=408)
        except OverCap:
            log.warning("peer door: a call of %s over 64 KiB", agent)
            return web.Response(status=413)
        try:
            call = parse_call(body)
        except BadCall as exc:
            log.warning("peer door: refused a call of %s: %s", agent, Rules.named(f"{exc}"))
            return web.json_response({"error": f"{exc}"}, status=400)
        desk = self._desk()
        if desk is None:
            return web.json_response({"error": "Fleetwarden is still starting"}, status=503)
        try:
            return await self._do(desk, agent, call)
        except PeerRefusal as exc:
            why = f"{exc}"
            return web.json_response(
                {"error": why if why.startswith("refused") else f"refused: {why}"}, status=403
            )

    async def _do(
        self, desk: PeerDesk, agent: str, call: Peers | Send | HandOn | Verdict
    ) -> web.StreamResponse:
        if isinstance(call, Peers):
            text = desk.peers_text(agent)
            text = await text if inspect.isawaitable(text) else text
            return web.json_response({"ok": True, "text": text})
        if isinstance(call, Send):
            message = await desk.postbox.send(agent, call.to, call.text)
            if call.wait > 0:
                message = await desk.postbox.wait_for(message.id, call.wait)
            if message.state == "refused":
                raise PeerRefusal(message.why)
            return _answer(message, receipt(message))
        if isinstance(call, HandOn):
            handed = await desk.handoff.hand(agent, call.to, call.title, call.body)
            if handed.message.state == "refused":  # made, but the admission refused its run
                raise PeerRefusal(handed.text)
            return _answer(handed.message, handed.text)
        verdicts = desk.verdicts()
        if verdicts is None:
            return web.json_response({"error": "no review is asked of you"}, status=409)
        line = await verdicts.verdict(agent, call.approve, call.text)
        return web.json_response({"ok": True, "text": line})

    def _agent(self, request: web.Request) -> str | None:
        if self._secrets is None:
            return None
        return self._secrets.matches(request.match_info["agent"], request.headers.get(TOKEN_HEADER))


def receipt(message: MessageRecord) -> str:
    """What the sender is told of ``message``: ACCEPTED once in its receiver's session."""
    if message.state == "delivered":
        return f"ACCEPTED: message {message.id} is in {message.receiver}'s session"
    return (
        f"queued: message {message.id} waits for {message.receiver} (delivered when its "
        "turn ends or it runs)"
    )


def _answer(message: MessageRecord, text: str) -> web.StreamResponse:
    return web.json_response({"ok": True, "text": text, "id": message.id, "state": message.state})
