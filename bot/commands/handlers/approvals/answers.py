"""Answering approvals: who may, and how a reaction or a reply in a thread becomes an answer.

Operators and admins may answer any request, and so may whoever started the agent (on the
connector they started it from), whatever their role now. The first answer wins (the
ledger's one ``UPDATE … WHERE state = 'open'``); a later one is told who answered and
when. A request whose agent's run has ended is closed when someone answers it: "that
request is closed (NAME ended)".

A reaction is routed here before the command grammar (:meth:`ApprovalDesk.react`): on a
message that is not an approval request, or with an emoji that is no answer, or on a
request that has ended (its message already says how), it is ignored without a word. A
viewer's or stranger's reaction is ignored, and said so once per person and request. A
plain ``yes`` / ``no [reason]`` / ``always`` in an agent's thread answers that agent's
open request, and any reply there answers its open question
(:meth:`ApprovalDesk.thread_command`, as the ``approve`` or ``deny`` command it means).
Every answer, and every refused one, is in the audit trail.
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from typing import Final

from bot.acl import Acl, Role
from bot.approvals.render import reaction_decision, reply_decision
from bot.approvals.shown import is_starter, tool_name
from bot.commands.errors import CommandError, PermissionDenied
from bot.commands.parsing.grammar import Command, Grammar
from bot.text.agent_text import escape
from connectors.base import Connector, InboundMessage, OutboundMessage
from connectors.errors import ConnectorError
from fleet.approvals.budget_asks import is_budget_ask
from fleet.approvals.service import AlreadyAnswered, Approvals, UnknownApproval, closed_words
from fleet.ledger import AuditOutcome
from fleet.ledger.records.approvals import ApprovalRequest, AskKind, Decision
from fleet.ledger.stores.operators.audit import AuditStore
from fleet.ledger.stores.operators.chat import ChatStore
from fleet.names import is_agent_name

log = logging.getLogger(__name__)

MAX_TOLD: Final = 4096
"""How many (request, person) refusals are remembered, so each is said once."""

OpenRuns = Callable[[], Awaitable[list[tuple[str, int]]]]
"""The runs that are open now, as (agent, run id)."""


def may_answer(role: Role | None, request: ApprovalRequest, connector: str, sender: str) -> bool:
    """Operators and admins answer any request; the agent's starter answers its own."""
    return (role is not None and role.may_control) or is_starter(request, connector, sender)


class ApprovalDesk:
    """Turns answers from chat into :meth:`~fleet.approvals.service.Approvals.answer`."""

    def __init__(
        self,
        approvals: Approvals,
        acl: Acl,
        chat: ChatStore,
        audit: AuditStore,
        open_runs: OpenRuns,
    ) -> None:
        self._approvals = approvals
        self._acl = acl
        self._chat = chat
        self._audit_store = audit
        self._open_runs = open_runs
        self._told: OrderedDict[tuple[str, str, str], None] = OrderedDict()

    async def answer(
        self,
        request_id: str,
        *,
        msg: InboundMessage,
        role: Role | None,
        decision: Decision,
        how: str,
        reason: str | None = None,
    ) -> ApprovalRequest:
        """Answer ``request_id`` as ``msg``'s sender. Raises :class:`CommandError` (unknown
        id, already answered, the agent ended) or :class:`PermissionDenied`."""
        try:
            request = await self._approvals.get(request_id.strip())
        except UnknownApproval as exc:
            raise CommandError(str(exc)) from exc
        return await self._answer(
            request, msg=msg, role=role, decision=decision, how=how, reason=reason
        )

    async def _answer(
        self,
        request: ApprovalRequest,
        *,
        msg: InboundMessage,
        role: Role | None,
        decision: Decision,
        how: str,
        reason: str | None = None,
    ) -> ApprovalRequest:
        """:meth:`answer` for ``request`` as read just now."""
        if not may_answer(role, request, msg.connector, msg.sender):
            raise PermissionDenied(refusal(request, role))
        if not request.state.is_open:
            raise CommandError(closed_words(request))
        if (
            not is_budget_ask(request.agent)
            and (
                request.agent,
                request.run_id,
            )
            not in await self._open_runs()
        ):
            why = f"{request.agent} ended"
            await self._approvals.close_run(request.run_id, why)
            raise CommandError(f"that request is closed ({why})")
        try:
            return await self._approvals.answer(
                request.id,
                by=f"{msg.sender} on {msg.connector}",
                decision=decision,
                how=how,
                reason=reason,
            )
        except AlreadyAnswered as exc:
            raise CommandError(str(exc)) from exc

    # -- reactions -----------------------------------------------------------------------

    async def react(self, connector: Connector, msg: InboundMessage, role: Role | None) -> None:
        """A reaction: an answer if it is one, from someone who may give it; else nothing,
        but a refusal said once to a viewer or stranger. Never raises for what was sent."""
        if msg.reacts_to is None:
            return
        decision = reaction_decision(msg.text)
        if decision is None:
            return
        request = await self._approvals.post_at(msg.connector, msg.reacts_to)
        if request is None or not request.state.is_open:
            return  # a replay of an answer lands here too: its request is answered
        command = "approve" if decision.allows else "deny"
        if not may_answer(role, request, msg.connector, msg.sender):
            if await self._claimed(msg):  # else a replay, said and audited once
                await self._refuse_once(connector, msg, request, role)
                why = f"reaction on {request.id} ignored: {refusal(request, role)}"
                await self._audit(msg, command, "denied", why)
            return
        # The answer is recorded (the first one wins) and told to the CLI; then the
        # reaction is claimed and audited. A replay finds its request answered, above.
        outcome: AuditOutcome = "ok"
        detail = f"{decision.value} {request.id} by reaction"
        try:
            await self._answer(request, msg=msg, role=role, decision=decision, how="reaction")
        except CommandError as exc:  # answered or closed just now: its message will say
            outcome, detail = "error", str(exc)
        if await self._claimed(msg) or outcome == "ok":
            await self._audit(msg, command, outcome, detail)

    async def _claimed(self, msg: InboundMessage) -> bool:
        """Whether this is the first time the reaction ``msg`` is taken."""
        return msg.event_id is None or await self._chat.claim_event(msg.connector, msg.event_id)

    async def _refuse_once(
        self, connector: Connector, msg: InboundMessage, request: ApprovalRequest, role: Role | None
    ) -> None:
        key = (request.id, msg.connector, msg.sender)
        if key in self._told:
            return
        self._told[key] = None
        while len(self._told) > MAX_TOLD:
            self._told.popitem(last=False)
        who = f"a {role.value}" if role is not None else "not an operator"
        text = (
            f"{msg.sender}'s reaction on `{request.id}` is not an answer: {msg.sender} is "
            f"{who}. Only operators, admins and whoever started {request.agent} answer it."
        )
        try:
            await connector.send(OutboundMessage(msg.room, text, thread_id=msg.thread_id))
        except ConnectorError as exc:
            log.warning("could not say a reaction on %s was ignored: %s", request.id, exc)

    async def _audit(
        self, msg: InboundMessage, command: str, outcome: AuditOutcome, detail: str
    ) -> None:
        await self._audit_store.record_audit(
            msg.connector,
            msg.sender,
            msg.room,
            msg.thread_id,
            msg.text,
            command,
            outcome,
            detail,
            source=f"reaction:{msg.reacts_to}",
        )

    # -- replies in a thread -------------------------------------------------------------

    async def thread_command(self, grammar: Grammar, msg: InboundMessage) -> Command | None:
        """A plain message in an agent's thread that answers its open request, as the
        ``approve`` / ``deny`` command it means; ``None`` when it answers nothing. Raises
        :class:`CommandError` when several requests are open there (naming them)."""
        if msg.thread_id is None or not msg.text.strip():
            return None
        agent = await self._chat.topic_for_thread(msg.connector, msg.room, msg.thread_id)
        if agent is None or not is_agent_name(agent):
            return None
        waiting = await self._approvals.pending(agent)
        asks = [r for r in waiting if r.kind is AskKind.PERMISSION]
        questions = [r for r in waiting if r.kind is AskKind.QUESTION]
        said = reply_decision(msg.text)
        if said is not None and asks:
            if len(asks) > 1:
                ids = ", ".join(f"`{r.id}` ({escape(tool_name(r.tool))})" for r in asks)
                raise CommandError(
                    f"{agent} has {len(asks)} requests open: {ids}. Answer one with "
                    f"`{grammar.prefix}approve ID [always]` or `{grammar.prefix}deny ID "
                    "[REASON]`, or react on its message."
                )
            decision, reason = said
            return self._command(grammar, msg, asks[0].id, decision, reason)
        if questions:  # the oldest question first; each reply answers the next
            return self._command(grammar, msg, questions[0].id, Decision.ALLOW, msg.text.strip())
        return None

    @staticmethod
    def _command(
        grammar: Grammar,
        msg: InboundMessage,
        request_id: str,
        decision: Decision,
        reason: str | None,
    ) -> Command | None:
        name = "deny" if decision is Decision.DENY else "approve"
        spec = grammar.spec(name)
        if spec is None:
            return None
        args = {"ID": request_id, "VIA": "reply"}
        if decision is Decision.ALWAYS:
            args["MODE"] = "always"
        if reason is not None:
            args["REASON" if decision is Decision.DENY else "ANSWER"] = reason
        return Command(name=name, args=args, flags={}, spec=spec, text=msg.text)


def refusal(request: ApprovalRequest, role: Role | None) -> str:
    """Why someone with ``role`` may not answer ``request``."""
    return (
        f"only operators, admins and whoever started {request.agent} answer its "
        f"approvals; you are {'a ' + role.value if role else 'not an operator'}"
    )
