"""The door's :class:`~fleet.mcp.hooks.Ask` from the agent's permission mode and rules, and a
person in chat when they send the call there.

A tool call the door is about to relay is ``mcp__<server>__<tool>`` to the rules
(:mod:`fleet.permissions.rules`: ``mcp__tracker__search``, ``mcp__tracker``,
``mcp__tracker__*``), decided in this order:

* a ``deny`` rule naming it: refused, the rule named;
* mode ``full``: relayed;
* an ``allow`` rule naming it: relayed;
* mode ``read-only``: refused (an MCP tool may change anything; only one an ``allow`` rule
  names passes);
* else (``ask``, ``edits``): asked in chat through the approvals service, on channel
  :data:`CHANNEL`, as every other ask is — the same ids, answers (reaction, reply,
  ``approve`` / ``deny``), ``always`` (it teaches the rule of the tool, any arguments),
  cap of open asks, timeout and ledger row. The ask shows the tool's rule name and the
  call's arguments as JSON, which chat shows as the agent's text (a code block, hidden
  characters revealed); arguments too long to be shown whole are denied, as any ask too
  long is.

A read — ``resources/read``, ``resources/subscribe``, ``prompts/get`` — passes in every mode,
``read-only`` included, as reading a file does, and is never asked: only a ``deny`` rule
naming the whole server (``mcp__tracker``, ``mcp__tracker__*``) refuses it, since no rule
names a resource or a prompt. It is audited like a tool's call, and billed the same on a
priced server.

An argument's completion — ``completion/complete`` — runs the server's code on the agent's
words, so it is decided as a tool's call is, by rules naming the whole server (no rule
names a prompt or a resource template): a ``deny`` rule naming the server refuses it, mode
``full`` or an ``allow`` rule naming the server passes it, ``read-only`` refuses it, and
``ask`` and ``edits`` ask in chat (``always`` there allows it once: it teaches no rule,
which would be the whole server's).

The door is the one place that asks about an MCP call: it sees the call exactly as it would
be relayed, for every CLI alike (a ``command`` agent, opencode's headless run that asks
nothing), and no CLI setting can skip it. The CLIs' own asks for a granted server's tools
are therefore answered yes by their session protocols (:mod:`fleet.sessions.claude`,
:mod:`fleet.sessions.codex`), never asked twice.

A call waits for its answer on its own request (the door serves every other call
meanwhile); one the agent gives up on (its request cancelled) withdraws its ask.
"""

from __future__ import annotations

import asyncio
import json
import logging
import uuid
from collections.abc import Callable
from typing import Final

from fleet.approvals.ask_door import AskTerms, Terms
from fleet.approvals.service import Approvals
from fleet.ledger.records.approvals import ApprovalRequest, ApprovalState, Ask
from fleet.mcp.hooks import McpCall, Verdict
from fleet.model import PermissionMode
from fleet.permissions.rules import (
    BadRule,
    first_match,
    first_refusal,
    mcp_tool_name,
    parse_rule,
)
from fleet.timing.clock import Clock

log = logging.getLogger(__name__)

CHANNEL: Final = "mcp"
"""The approvals channel of the door's asks."""
GAVE_UP: Final = "the agent gave up on the MCP call before it was answered"
RESTARTED: Final = "Fleetwarden restarted while the MCP call waited; the agent may call again"
# An agent can call before its run is in the ledger (one on an SSH host starts and calls
# while its launch is still on the way back): a call with no run waits this long for it.
SETTLE_SECONDS: Final = 5.0


def shown_arguments(arguments: object) -> str:
    """A call's arguments as the ask shows them: JSON, indented, characters as they are (chat
    reveals the hidden ones)."""
    try:
        return json.dumps(arguments, ensure_ascii=False, indent=2, default=str)
    except (TypeError, ValueError):
        return repr(arguments)


def ruled(call: McpCall, terms: AskTerms) -> Verdict | None:
    """How the agent's mode and rules decide ``call`` without asking anyone, or ``None``: a
    person is asked."""
    tool = mcp_tool_name(call.server, call.tool)
    refused = first_refusal(terms.deny, tool, "")
    if refused is not None:
        return Verdict(False, f"refused by the rule {refused}")
    if terms.mode is PermissionMode.FULL:
        return Verdict(True, "the agent's mode is full")
    matched = first_match(terms.rules, tool, "")
    if matched is not None:
        return Verdict(True, f"matches the rule {matched}")
    if terms.mode is PermissionMode.READ_ONLY:
        return Verdict(
            False,
            f"the agent is read-only: an MCP tool passes only when an allow rule names it "
            f"(`{tool}`)",
        )
    return None


def read_ruled(call: McpCall, deny: tuple[str, ...] | list[str]) -> Verdict:
    """How a read (a resource's, a prompt's) is decided: refused only by a deny rule naming
    the whole server; every mode reads."""
    refused = whole_server(deny, call.server)
    if refused is not None:
        return Verdict(False, f"refused by the rule {refused}")
    return Verdict(True, "a read: every mode reads")


def completion_ruled(call: McpCall, terms: AskTerms) -> Verdict | None:
    """How the agent's mode and the rules naming the whole server decide a completion
    without asking anyone, or ``None``: a person is asked."""
    refused = whole_server(terms.deny, call.server)
    if refused is not None:
        return Verdict(False, f"refused by the rule {refused}")
    if terms.mode is PermissionMode.FULL:
        return Verdict(True, "the agent's mode is full")
    matched = whole_server(terms.rules, call.server)
    if matched is not None:
        return Verdict(True, f"matches the rule {matched}")
    if terms.mode is PermissionMode.READ_ONLY:
        return Verdict(
            False,
            f"the agent is read-only: an MCP completion passes only when an allow rule "
            f"names the whole server (`mcp__{call.server}`)",
        )
    return None


def whole_server(rules: tuple[str, ...] | list[str], server: str) -> str | None:
    """The first of ``rules`` naming the whole of ``server`` (``mcp__srv``, ``mcp__srv__*``)."""
    named = f"mcp__{server}"
    for text in rules:
        try:
            whole = parse_rule(text).tool == named
        except BadRule:
            continue
        if whole:
            return text
    return None


def verdict_of(request: ApprovalRequest) -> Verdict:
    """What an ended request says to the door: relayed or not, and why in words for the agent
    and the audit."""
    who = request.answered_by or request.how or "the operator"
    if request.state is ApprovalState.ALLOWED:
        if request.how == "rule":
            return Verdict(True, request.reason or "allowed by a rule")
        return Verdict(True, f"allowed in chat by {who}")
    if request.state is ApprovalState.DENIED and request.how not in ("rule", "policy"):
        said = f": {request.reason}" if request.reason else " (no reason given)"
        return Verdict(False, f"denied in chat by {who}{said}")
    if request.state.is_open:
        return Verdict(False, "nobody answered in time")
    return Verdict(False, request.reason or request.state.value)


class McpAsks:
    """The door's ask (``McpHooks(asks=[McpAsks(approvals, terms, clock)])``, and
    :meth:`start` once before the door serves): ``terms`` gives the agent's run, mode,
    rules, timeout and cap of open asks (:func:`fleet.approvals.ask_door.ledger_terms`)."""

    def __init__(
        self,
        approvals: Approvals,
        terms: Terms,
        clock: Clock,
        *,
        ids: Callable[[], str] | None = None,
        settle_seconds: float = SETTLE_SECONDS,
    ) -> None:
        self._approvals = approvals
        self._terms = terms
        self._clock = clock
        self._settle = settle_seconds
        self._ids = ids or (lambda: f"mcp-{uuid.uuid4().hex[:16]}")
        self._registered = False

    async def start(self) -> None:
        """Take the door's channel, and close the asks a call waited on when Fleetwarden
        stopped: their calls ended with the door (the CLI got an error and may call again),
        so no answer could reach them. The app calls it once, before the door serves."""
        await self._approvals.register(CHANNEL, _told)
        self._registered = True
        for request in await self._approvals.pending():
            if request.channel == CHANNEL:
                await self._approvals.withdraw(
                    request.run_id, CHANNEL, request.native_id, RESTARTED
                )

    async def _terms_of(self, agent: str) -> AskTerms | None:
        """The agent's terms, waited for up to ``settle_seconds`` while it has no run."""
        loop = asyncio.get_running_loop()
        until = loop.time() + self._settle
        for _ in range(int(self._settle / 0.1) + 1):
            terms = await self._terms(agent)
            if terms is not None or loop.time() >= until:
                return terms
            await asyncio.sleep(0.1)
        return await self._terms(agent)

    async def __call__(self, call: McpCall) -> Verdict:
        terms = await self._terms_of(call.agent)
        if terms is None:
            return Verdict(False, f"{call.agent} has no run in progress to ask for")
        if call.is_completion:
            decided = completion_ruled(call, terms)
        elif call.is_tool:
            decided = ruled(call, terms)
        else:
            decided = read_ruled(call, terms.deny)
        if decided is not None:
            return decided
        if not self._registered:  # the waiting call hears the answer; nothing else to tell
            await self._approvals.register(CHANNEL, _told)
            self._registered = True
        native = self._ids()
        if call.is_completion:  # "always" teaches no rule: it would be the whole server's
            shown = shown_arguments({"completion/complete": dict(call.arguments)})
            ask = Ask(native, f"mcp__{call.server}", shown, pattern=None)
        else:
            tool = mcp_tool_name(call.server, call.tool)
            ask = Ask(native, tool, shown_arguments(dict(call.arguments)), pattern=tool)
        request = await self._approvals.open(
            agent=call.agent,
            run_id=terms.run_id,
            channel=CHANNEL,
            ask=ask,
            wait_seconds=terms.wait_seconds,
            max_open=terms.max_open,
            starter=terms.starter,
            rules=terms.rules,
            deny=terms.deny,
        )
        try:
            request = await self._settled(request)
        except asyncio.CancelledError:
            await asyncio.shield(self._approvals.withdraw(terms.run_id, CHANNEL, native, GAVE_UP))
            raise
        return verdict_of(request)

    async def _settled(self, request: ApprovalRequest) -> ApprovalRequest:
        """``request`` once answered, timed out or closed (past its deadline: a timeout)."""
        while request.state.is_open:
            left = (request.deadline - self._clock.now()).total_seconds()
            if left <= 0:
                await self._approvals.expire()
                request = await self._approvals.get(request.id)
                if request.state.is_open:  # the service's clock disagrees: never wait on
                    return request
                break
            try:
                async with asyncio.timeout(left):
                    request = await self._approvals.wait(request.id)
            except TimeoutError:
                request = await self._approvals.get(request.id)
        return request


async def _told(request: ApprovalRequest) -> None:
    """The door's channel's deliverer: the call waiting on ``request`` reads its answer."""
    log.debug("MCP ask %s of %s ended: %s", request.id, request.agent, request.state.value)
