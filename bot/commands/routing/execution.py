"""A command's execution, whatever brought it: parsed (or built), authorised with the
sender's role, handled, audited with where it came from and settled in the ledger — the one
path a typed command, a schedule's, a shell's and a held task's start all take
(:class:`~bot.commands.routing.router.Router` brings them here and answers)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Collection, Mapping
from dataclasses import dataclass
from typing import Final, TypeVar

from bot.acl import Acl, Role
from bot.chat.ordering import Ordering
from bot.commands.errors import CommandError, PermissionDenied
from bot.commands.handlers.approvals.answers import ApprovalDesk
from bot.commands.handlers.approvals.specs import ANSWER, APPROVE, DENY
from bot.commands.parsing.grammar import Command, Grammar
from bot.commands.routing.about import agent_arg, held_for
from bot.commands.routing.confirmations import ConfirmationDesk
from bot.commands.routing.request import Handler, Reply, Request
from bot.commands.routing.sources import TYPED
from bot.text.agent_text import quotes_escaped
from connectors.base import InboundMessage
from fleet.errors import FleetError
from fleet.ledger import AnswerState, AuditOutcome, Confirmation
from fleet.ledger.stores.operators.audit import AuditStore
from fleet.ledger.stores.operators.chat import ChatStore
from fleet.names import is_agent_name
from fleet.schema import did_you_mean, no_agent_words

log = logging.getLogger(__name__)

T = TypeVar("T")

STOPPING = "Fleetwarden is stopping: that was not run. Send it again once it is back."
CANCELLED = "cancelled: Fleetwarden stopped before it finished"
"""The audit detail of a command the stop cancelled while it ran (or waited its turn)."""
STOP_ANSWERS = (APPROVE, DENY, ANSWER)
"""What still runs once the stop has begun: an answer to an agent's open request or question
(it starts nothing; the agent is waiting on it). Every other command is refused with
:data:`STOPPING`; a ``yes`` to a command's question too, and the question is left waiting
(it is in the ledger: a ``yes`` after the start, before its deadline, still confirms it)."""


@dataclass(frozen=True, slots=True)
class Ran:
    """What came of a command: its audit outcome, its name if it parsed, and why if not ok."""

    outcome: AuditOutcome
    command: str | None
    detail: str | None


@dataclass(frozen=True, slots=True)
class Desks:
    """Where a line may be an answer rather than a command: ``confirmations`` (the questions
    commands asked, which a typed ``yes`` answers) and ``approvals`` (agents' requests,
    answered by a reply in a thread)."""

    confirmations: ConfirmationDesk | None = None
    approvals: ApprovalDesk | None = None


class Execution:
    """Runs one command for a sender with a role: parse, authorise, handle, audit."""

    def __init__(
        self,
        *,
        grammar: Grammar,
        grammars: Mapping[str, Grammar],
        acl: Acl,
        handlers: Mapping[str, Handler],
        audit: AuditStore,
        chat: ChatStore,
        ordering: Ordering,
        desks: Desks,
        agents: Callable[[], Awaitable[Collection[str]]] | None,
    ) -> None:
        self._grammar = grammar
        self._grammars = dict(grammars)
        self._acl = acl
        self._handlers = dict(handlers)
        self._audit_log = audit
        self._chat = chat
        self._ordering = ordering
        self._desk = desks.confirmations
        self._approvals = desks.approvals
        self._agents = agents

    def grammar_of(self, connector: str) -> Grammar:
        """The grammar ``connector``'s messages are read with."""
        return self._grammars.get(connector, self._grammar)

    async def settle(self, msg: InboundMessage, state: AnswerState, ran: Ran | None = None) -> None:
        """Record what came of chat message ``msg`` (scheduled runs have no event id)."""
        if msg.event_id is not None:
            await self._chat.settle_answer(
                msg.connector,
                msg.event_id,
                state,
                command=None if ran is None else ran.command,
                outcome=None if ran is None else ran.outcome,
            )

    async def execute(
        self,
        msg: InboundMessage,
        role: Role,
        source: str,
        held: contextlib.AsyncExitStack,
        act: Handler | None = None,
        built: Command | None = None,
        *,
        stopping: bool = False,
    ) -> tuple[Ran, Reply] | None:
        """Parse, authorise, run and audit ``msg`` (``built``: the command it is, made by
        the caller, not read from its text): what came of it and the reply to give; ``None``
        if it is no command. Once parsed, the agent it names is held in ``held`` (notices
        about it wait) until the caller has answered. ``stopping``: the app's stop has
        begun, and only :data:`STOP_ANSWERS` run; any other command is refused, audited and
        settled as refused, so it is not run again when its event is read again."""
        grammar = self.grammar_of(msg.connector)
        command: Command | None = built
        outcome: AuditOutcome
        started = False  # the handler was called: the command acted, or tried to
        try:
            answer = None
            if command is None and source == TYPED and self._desk is not None:
                if stopping and await self._desk.waits_for(msg, grammar.prefix) is not None:
                    raise PermissionDenied(STOPPING)
                answer = await self._desk.answer(msg, grammar.prefix)
            if answer is not None:  # a `yes`: the command it confirms, typed before
                source = answer.source
                command = grammar.parse(answer.confirmation.command, addressed=True)
                if answer.refusal is not None:
                    raise answer.refusal
            elif command is None:
                command = grammar.parse(msg.text, addressed=msg.addressed)
            if command is None and self._approvals is not None:
                command = await self._approvals.thread_command(grammar, msg)
            if command is None:
                command = await self.thread_message(grammar, msg)
            if command is None:
                await self.settle(msg, "ignored")
                return None
            if stopping and command.spec not in STOP_ANSWERS:
                raise PermissionDenied(STOPPING)
            await held.enter_async_context(self._ordering.answering(held_for(command)))
            self.authorise(role, command)
            started = True
            asked = None if answer is None else answer.confirmation
            reply = await self.run(role, command, msg, asked=asked, act=act, source=source)
            outcome, detail = "ok", reply.detail
        except PermissionDenied as exc:
            reply, outcome, detail = Reply(str(exc)), "denied", str(exc)
        except (CommandError, FleetError) as exc:  # what a host said in it stays text
            said = await self.refusal(command, exc) if started and command else str(exc)
            reply, outcome, detail = Reply(quotes_escaped(said)), "error", said
        except asyncio.CancelledError:  # the stop gave up waiting for it: say so in the ledger
            name = command.name if command else None
            await self.cancelled(msg, source, name, "ran" if started else "refused")
            raise
        except Exception as exc:
            log.exception("command %r from %s failed", msg.text, msg.sender)
            reply = Reply(
                "Something went wrong inside Fleetwarden running that; the log has the details."
            )
            outcome, detail = "error", f"internal error: {type(exc).__name__}"
        ran = Ran(outcome, command.name if command else None, detail)
        await finished(self._record(msg, source, ran, "ran" if started else "refused"))
        return ran, reply

    async def _record(self, msg: InboundMessage, source: str, ran: Ran, state: AnswerState) -> None:
        """Audit what came of ``msg`` and settle it."""
        await self.audit(msg, source, ran)
        await self.settle(msg, state, ran)

    async def cancelled(
        self, msg: InboundMessage, source: str, command: str | None, state: AnswerState
    ) -> None:
        """Record that ``msg``'s command was cancelled (the stop gave up waiting for it):
        settled as ``state`` first (so it is never left ``pending``), then audited; each
        write carried to its end (:func:`finished`), and one failing does not skip the other."""
        ran = Ran("error", command, CANCELLED)
        writes: tuple[Callable[[], Awaitable[None]], ...] = (
            lambda: self.settle(msg, state, ran),
            lambda: self.audit(msg, source, ran),
        )
        for write in writes:
            try:
                await finished(write())
            except Exception:
                log.exception("could not record that %r was cancelled", msg.text)

    async def refusal(self, command: Command, exc: CommandError | FleetError) -> str:
        """What a handler's refusal says, with what was likely meant when it is a typo: an
        agent name no agent has but one is close to (``raise codr`` → 'coder'), or a word
        close to a subcommand, read as the command's argument, that failed (``task nwe`` →
        `task new`)."""
        said = str(exc)
        if "did you mean" in said:
            return said
        name = agent_arg(command)
        if name is not None and self._agents is not None:
            known = await self._agents()
            if name not in known and did_you_mean(name, sorted(known)) is not None:
                return no_agent_words(name, known)
        if command.near is not None:  # the word was read as its argument, and failed
            return f"{said} — or did you mean `{command.near}`?"
        return said

    async def audit(self, msg: InboundMessage, source: str, ran: Ran) -> None:
        await self._audit_log.record_audit(
            connector=msg.connector,
            sender=msg.sender,
            room=msg.room,
            thread=msg.thread_id,
            text=msg.text,
            command=ran.command,
            outcome=ran.outcome,
            detail=ran.detail,
            source=source,
        )

    def command_name(self, msg: InboundMessage) -> str | None:
        """The name of the command ``msg`` holds, if it parses (for the audit)."""
        try:
            command = self.grammar_of(msg.connector).parse(msg.text, addressed=msg.addressed)
        except CommandError:
            return None
        return None if command is None else command.name

    def authorise(self, role: Role, command: Command) -> None:
        if not self._acl.allows(role, command.spec):
            needed = "admin" if command.spec.admin_only else "operator"
            raise PermissionDenied(
                f"`{command.name}` changes the fleet and needs the {needed} role; "
                f"you are {article(role)}"
            )

    async def run(
        self,
        role: Role,
        command: Command,
        msg: InboundMessage,
        *,
        asked: Confirmation | None = None,
        act: Handler | None = None,
        source: str = TYPED,
    ) -> Reply:
        """``asked``: the question a ``yes`` confirmed, when it did."""
        self.authorise(role, command)
        request = Request(
            msg,
            role,
            command,
            confirmed=asked is not None,
            source=source,
            asked=None if asked is None else asked.summary,
            plan=None if asked is None else asked.plan,
        )
        result = await (act or self._handlers[command.spec.name])(request)
        return result if isinstance(result, Reply) else Reply(result)

    async def thread_message(self, grammar: Grammar, msg: InboundMessage) -> Command | None:
        """A plain message in an agent's thread, as ``send AGENT <text>``; else ``None``."""
        if msg.thread_id is None or not msg.text.strip():
            return None
        topic = await self._chat.topic_for_thread(msg.connector, msg.room, msg.thread_id)
        send = grammar.spec("send")
        if topic is None or send is None or not is_agent_name(topic):
            return None
        return Command(
            name="send", args={"NAME": topic, "TEXT": msg.text}, flags={}, spec=send, text=msg.text
        )


CARRY: Final = 10.0
"""How long a write carried through a cancel (:func:`finished`) may still take: a ledger
that has stopped answering (a dead connection) never holds the stop for longer."""


async def finished(write: Awaitable[T], *, within: float = CARRY) -> T:
    """Await ``write`` to its end even when the caller is cancelled meanwhile, once or again,
    for up to ``within`` seconds after the first cancel (then the write is cancelled and
    that is logged); the cancel is raised once it is done, and wins over an error of the
    write, which is logged: a ledger write the stop cancels is never left half-way, nor
    racing what the caller does next, and never holds the stop for good."""
    task = asyncio.ensure_future(write)
    try:
        return await asyncio.shield(task)
    except asyncio.CancelledError:
        if task.cancelled():  # the write itself was cancelled, from elsewhere
            raise
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while not task.done():
        left = deadline - loop.time()
        if left <= 0:
            task.cancel()
            log.error(
                "a write carried on through a cancel did not end within %g s: given up", within
            )
            break
        with contextlib.suppress(asyncio.CancelledError):  # cancelled again: carry on
            await asyncio.wait({task}, timeout=left)
    if task.done() and not task.cancelled() and task.exception() is not None:
        log.error("a write carried on through a cancel failed", exc_info=task.exception())
    raise asyncio.CancelledError


def article(role: Role) -> str:
    """``role`` with its article: "an admin", "a viewer"."""
    return f"{'an' if role.value[0] in 'aeiou' else 'a'} {role.value}"
