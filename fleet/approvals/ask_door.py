"""The ask door: where an agent CLI's hook, plugin or extension asks the operator, and waits.

A CLI with no approval protocol of its own that Fleetwarden can drive (pi's extensions,
opencode's plugins, a hook command) asks over the heartbeat endpoint, with the agent's
heartbeat token (``X-Fleetwarden-Token``)::

    POST /approval/<agent>        {"id": NATIVE_ID, "tool": "bash", "subject": "rm -rf build",
                                   "detail": "…", "pattern": "Bash(rm -rf build)"}
    GET  /approval/<agent>/<ID>   (the request this agent opened)
    DELETE /approval/<agent>      {"id": NATIVE_ID, "tool": …}: the CLI no longer waits (its
                                  turn was interrupted); the request is closed, 204

Both long-poll: the answer comes within :data:`POLL_SECONDS` —

    200  {"id", "state", "decision": "allow"|"deny", "reason", "message"}: answered
         (``message`` is what the CLI shows its model: the operator's reason on a deny)
    202  {"id", "state": "open"}: not yet; ask again (either route)
    400  {"error": …} a body that is not the schema above, saying what is wrong
    403  unknown agent or wrong token, with no detail
    404  no request of this agent has that id
    408  a body not all there within 5 seconds
    409  {"error": …} the agent has no run in progress to ask for
    413  a body over :data:`MAX_BODY` bytes

A request is opened on channel ``hook`` for the agent's current run, with its spec's
timeout, cap of open requests and ``allow`` rules (:meth:`fleet.approvals.service.
Approvals.open`); the same ``id`` of the same run is the same request, so a client that
lost its connection (Fleetwarden restarted) posts the same body again, or polls its id,
and gets the request it already has — nothing is lost and nothing is asked twice. A
request past its deadline is expired here as a timeout when polled, so a client never
waits longer than the agent's ``approval_timeout``.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final

from aiohttp import web

from fleet.approvals.service import Approvals, UnknownApproval
from fleet.capped_body import OverCap, read_capped
from fleet.connections.loopback import AgentSecrets
from fleet.hostile_json import JsonRefused, read_object
from fleet.ledger.records.approvals import ApprovalRequest, ApprovalState, Ask
from fleet.model import PermissionMode
from fleet.notices import starter
from fleet.timing.clock import Clock

if TYPE_CHECKING:
    from fleet.ledger.stores.running.agents import AgentsStore
    from fleet.ledger.stores.running.runs import RunsStore

log = logging.getLogger(__name__)

CHANNEL: Final = "hook"
TOKEN_HEADER: Final = "X-Fleetwarden-Token"
MAX_BODY: Final = 16 * 1024
BODY_SECONDS: Final = 5.0
POLL_SECONDS: Final = 25.0  # under the 30 s many HTTP clients give a request
_NATIVE_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.:-]{0,127}")
_REQUEST_ID = re.compile(r"[a-z0-9]{1,16}")
_FIELDS: Final = {"id", "tool", "subject", "detail", "pattern"}


@dataclass(frozen=True, slots=True)
class AskTerms:
    """What an agent's asks are opened with: its current run, how long an ask waits, how
    many may be open at once, who started it, its ``allow`` and ``deny`` rules, and its
    permission mode (``None``: not known to whoever made the terms)."""

    run_id: int
    wait_seconds: float
    max_open: int
    starter: str | None
    rules: tuple[str, ...]
    deny: tuple[str, ...] = ()
    mode: PermissionMode | None = None


Terms = Callable[[str], Awaitable[AskTerms | None]]
"""The terms of an agent's asks now; ``None`` when it has no run in progress."""


class BadAsk(ValueError):
    """A body that is not an ask; the message says what is wrong."""


def parse_ask(body: bytes) -> Ask:
    """The :class:`Ask` a request body carries; :class:`BadAsk` saying what is wrong."""
    try:
        data = read_object(body)
    except JsonRefused as exc:
        raise BadAsk(f"{exc}") from None
    unknown = set(data) - _FIELDS
    if unknown:
        raise BadAsk(f"unknown fields: {', '.join(sorted(unknown))}")
    native, tool = data.get("id"), data.get("tool")
    if not isinstance(native, str) or not _NATIVE_ID.fullmatch(native):
        raise BadAsk('"id" must be the CLI\'s id of the ask: 1-128 of A-Z a-z 0-9 _ . : -')
    if not isinstance(tool, str) or not 0 < len(tool) <= 64:
        raise BadAsk('"tool" must be the tool\'s name, 1-64 characters')
    subject, detail = data.get("subject", ""), data.get("detail", "")
    if not isinstance(subject, str) or not isinstance(detail, str):
        raise BadAsk('"subject" and "detail" must be strings')
    pattern = data.get("pattern")
    if pattern is not None and (not isinstance(pattern, str) or len(pattern) > 512):
        raise BadAsk('"pattern" must be a rule such as "Bash(git status)", or null')
    return Ask(native, tool, subject, detail, pattern)


def model_message(request: ApprovalRequest) -> str:
    """What the CLI tells its model about an answered request."""
    if request.state is ApprovalState.ALLOWED:
        by = request.answered_by or request.how or "the operator"
        return f"allowed by {by}"
    if request.state is ApprovalState.DENIED and request.how not in ("policy", "rule"):
        why = f": {request.reason}" if request.reason else " (no reason given)"
        return f"The operator denied this{why}"
    return f"Not allowed: {request.reason or request.state.value}"


def answer_body(request: ApprovalRequest) -> dict[str, Any]:
    if request.state.is_open:
        return {"id": request.id, "state": request.state.value}
    decision = "allow" if request.state is ApprovalState.ALLOWED else "deny"
    return {
        "id": request.id,
        "state": request.state.value,
        "decision": decision,
        "reason": request.reason,
        "message": model_message(request),
    }


def ledger_terms(agents: AgentsStore, runs: RunsStore) -> Terms:
    """Terms read from the ledger's agents and runs: the agent's spec, its open run and who
    started it."""

    async def terms(agent: str) -> AskTerms | None:
        record = await agents.get_agent(agent)
        run = await runs.last_run(agent)
        if record is None or run is None or run.ended_at is not None:
            return None
        spec = record.spec
        start = await runs.run_start(run.id)
        return AskTerms(
            run_id=run.id,
            wait_seconds=spec.approval_timeout,
            max_open=spec.max_open_approvals,
            starter=starter(start.trigger) if start is not None else None,
            rules=spec.allow,
            deny=spec.deny,
            mode=spec.permissions,
        )

    return terms


class AskDoor:
    """The ``/approval`` routes of the heartbeat endpoint (:meth:`mount`)."""

    def __init__(
        self,
        approvals: Approvals,
        terms: Terms,
        clock: Clock,
        *,
        poll_seconds: float = POLL_SECONDS,
    ) -> None:
        self._approvals = approvals
        self._terms = terms
        self._clock = clock
        self._poll = poll_seconds
        self._secrets: AgentSecrets | None = None

    def mount(self, app: web.Application, secrets: AgentSecrets) -> None:
        """Add the routes to ``app``; tokens are checked against ``secrets``."""
        self._secrets = secrets
        app.router.add_post("/approval/{agent}", self._open)
        app.router.add_delete("/approval/{agent}", self._withdraw)
        app.router.add_get("/approval/{agent}/{request_id}", self._poll_one)

    async def _open(self, request: web.Request) -> web.StreamResponse:
        agent = self._agent(request)
        if agent is None:
            return web.Response(status=403)
        try:
            body = await read_capped(request, MAX_BODY, within=BODY_SECONDS)
        except TimeoutError:
            return web.Response(status=408)
        except OverCap:
            return web.Response(status=413)
        try:
            ask = parse_ask(body)
        except BadAsk as exc:
            log.warning("refused an ask of %s: %s", agent, exc)
            return web.json_response({"error": f"{exc}"}, status=400)
        terms = await self._terms(agent)
        if terms is None:
            return web.json_response(
                {"error": f"{agent} has no run in progress to ask for"}, status=409
            )
        opened = await self._approvals.open(
            agent=agent,
            run_id=terms.run_id,
            channel=CHANNEL,
            ask=ask,
            wait_seconds=terms.wait_seconds,
            max_open=terms.max_open,
            starter=terms.starter,
            rules=terms.rules,
            deny=terms.deny,
        )
        return await self._answer(opened)

    async def _withdraw(self, request: web.Request) -> web.StreamResponse:
        """The CLI no longer waits for this ask (its turn was interrupted): close it."""
        agent = self._agent(request)
        if agent is None:
            return web.Response(status=403)
        try:
            body = await read_capped(request, MAX_BODY, within=BODY_SECONDS)
        except TimeoutError:
            return web.Response(status=408)
        except OverCap:
            body = b""  # refused below as no ask
        try:
            native = parse_ask(body).native_id
        except BadAsk as exc:
            return web.json_response({"error": f"{exc}"}, status=400)
        terms = await self._terms(agent)
        if terms is not None:
            why = "the agent withdrew the ask: its turn was interrupted"
            await self._approvals.withdraw(terms.run_id, CHANNEL, native, why)
        return web.Response(status=204)

    async def _poll_one(self, request: web.Request) -> web.StreamResponse:
        agent = self._agent(request)
        if agent is None:
            return web.Response(status=403)
        request_id = request.match_info["request_id"].lower()
        if not _REQUEST_ID.fullmatch(request_id):
            return web.Response(status=404)
        try:
            found = await self._approvals.get(request_id)
        except UnknownApproval:
            return web.Response(status=404)
        if found.agent != agent or found.channel != CHANNEL:
            return web.Response(status=404)  # the same answer as no such id: nothing to probe
        return await self._answer(found)

    async def _answer(self, request: ApprovalRequest) -> web.StreamResponse:
        if request.state.is_open:
            request = await self._wait(request)
        if request.state.is_open:
            return web.json_response(answer_body(request), status=202)
        if request.delivered_at is None:
            await self._approvals.mark_delivered(request.id)
        return web.json_response(answer_body(request))

    async def _wait(self, request: ApprovalRequest) -> ApprovalRequest:
        if request.expired(self._clock.now()):
            await self._approvals.expire()
            return await self._approvals.get(request.id)
        left = (request.deadline - self._clock.now()).total_seconds()
        try:
            async with asyncio.timeout(max(0.0, min(self._poll, left))):
                return await self._approvals.wait(request.id)
        except TimeoutError:
            pass
        now = await self._approvals.get(request.id)
        if now.expired(self._clock.now()):
            await self._approvals.expire()
            now = await self._approvals.get(request.id)
        return now

    def _agent(self, request: web.Request) -> str | None:
        if self._secrets is None:
            return None
        return self._secrets.matches(request.match_info["agent"], request.headers.get(TOKEN_HEADER))
