"""The router: inbound message → (ACL, dedupe, parse, authorise) → handler → reply + audit.

Strangers are never answered; their first message is logged, later ones are not.
Every command from a known sender is written to the audit table with its outcome. A
message taken gets a read receipt, and one whose answer takes more than a second shows
the bot typing until it is sent (:mod:`bot.chat.presence`).

Answers go where the command was typed: the room's timeline (as a reply to it) or the thread it
was typed in; a reply's images follow its text, in the same place. Threads, one per topic (an
agent) in a room: a :class:`~bot.commands.routing.request.Reply` naming a topic links to that
topic's thread when it was typed elsewhere, and leaves its ``thread_line`` there; a fresh run
(``new_thread``) opens a new thread with the answer as its root, and the old thread gets a last
line pointing to it (see :mod:`bot.commands.routing.threads`). A plain message — not a command —
inside an agent's thread is forwarded to that agent as ``send NAME <text>``. The topic ↔ thread
mapping lives in the ledger; a new thread replaces the old in it.

While a command naming an agent is handled and answered, notices about that agent wait
(:mod:`bot.chat.ordering`): the answer comes before the news it causes.

An edit (:attr:`InboundMessage.replaces`) of a message nothing was done about runs in its
place, answered under the original; an edit of one whose command ran is answered with why it
was not applied (:mod:`bot.chat.edits`). What was done with each chat message — ignored, refused,
ran — is settled in the ledger as it is handled.

A reaction goes to the approval desk before anything else
(:mod:`bot.commands.handlers.approvals.answers`): it answers an approval request, or is ignored.
A plain reply in an agent's thread that answers its open request runs as the ``approve`` /
``deny`` it means.

A command that asks before it acts (``freeze all``) is confirmed by its asker's ``yes`` in the same
place before its deadline (:mod:`bot.commands.routing.confirmations`): such a line is given to the
desk before it is parsed, and runs the waiting command, audited with source ``confirmation:<id>``.

Commands nobody typed just now — a schedule firing, a queued launch's turn — go through
:meth:`Router.run_as`: the same claim, parse, authorisation, handler, audit and reply as a
typed command, for the sender who set it up, with their role looked up *now*; the audit entry
names its source. A start the fleet built — a held task's, a pipeline stage's — is no text:
:meth:`Router.start_for` takes it as a :class:`~bot.commands.routing.sources.DelegatedStart`
(the launch request, the command it is, its asker) through the same claim, authorisation,
audit and reply. Parsing, authorising, handling and auditing are
:class:`~bot.commands.routing.execution.Execution`'s, for every one of them.
A command typed in a shell (:mod:`bot.shell`) goes through :meth:`Router.answer`: the same
path, its reply handed back to the shell instead of posted.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Collection, Mapping
from dataclasses import replace
from typing import Final

from bot.acl import Acl, Role
from bot.chat import edits
from bot.chat.ordering import Ordering
from bot.chat.presence import typing_after
from bot.commands.errors import CommandError
from bot.commands.handlers.approvals.answers import ApprovalDesk
from bot.commands.parsing.grammar import Command, Grammar
from bot.commands.routing.confirmations import ConfirmationDesk
from bot.commands.routing.execution import Desks, Execution, Ran, article, finished
from bot.commands.routing.request import Handler, Reply
from bot.commands.routing.sources import TYPED, Delegated, DelegatedStart
from bot.commands.routing.threads import Threads
from connectors.base import (
    Connector,
    EventId,
    InboundMessage,
    ThreadId,
)
from fleet.ledger import REPLACEABLE
from fleet.ledger.stores.operators.audit import AuditStore
from fleet.ledger.stores.operators.chat import ChatStore

log = logging.getLogger(__name__)

MAX_STRANGERS: Final = 1024
"""How many strangers the router remembers having logged (so a flood logs once each)."""


class Router:
    """Turns messages into command runs. One per app; connectors share it."""

    def __init__(
        self,
        *,
        grammar: Grammar,
        acl: Acl,
        handlers: Mapping[str, Handler],
        audit: AuditStore,
        chat: ChatStore,
        grammars: Mapping[str, Grammar] | None = None,
        ordering: Ordering | None = None,
        confirmations: ConfirmationDesk | None = None,
        approvals: ApprovalDesk | None = None,
        agents: Callable[[], Awaitable[Collection[str]]] | None = None,
    ) -> None:
        """``grammars`` overrides ``grammar`` per connector name (e.g. another prefix).
        ``ordering`` is shared with the notifier, so notices wait for answers.
        ``confirmations``: the questions commands asked, which a typed ``yes`` answers.
        ``approvals``: answers agents' requests by reaction, or by a reply in a thread.
        ``agents``: the names of the agents there are, so a command refused for an agent
        name none has says the one likely meant."""
        for each in (grammar, *(grammars or {}).values()):
            missing = sorted(set(each.command_names()) - set(handlers))
            if missing:
                raise ValueError(f"commands without a handler: {', '.join(missing)}")
        self._acl = acl
        self._chat = chat
        self._threads = Threads(chat)
        self._approvals = approvals
        self._execution = Execution(
            grammar=grammar,
            grammars=grammars or {},
            acl=acl,
            handlers=handlers,
            audit=audit,
            chat=chat,
            ordering=ordering or Ordering(),
            desks=Desks(confirmations, approvals),
            agents=agents,
        )
        # Strangers whose first message was logged; the oldest forgotten first (bounded).
        self._strangers_seen: OrderedDict[tuple[str, str], None] = OrderedDict()

    async def handle(
        self, connector: Connector, msg: InboundMessage, *, stopping: bool = False
    ) -> None:
        """Handle one message; never raises for anything the sender did. ``stopping``: it
        was read once the app's stop began; an answer to an agent's open request (a reaction,
        a reply that answers it, ``approve``/``deny``/``answer``) still runs, any other command (a
        ``yes`` too) is answered that it was not run, and claimed, so it is not run when read
        again after a start."""
        role = self._acl.role_of(msg.connector, msg.sender, msg.groups)
        if msg.reacts_to is not None:  # an answer to an approval, or nothing at all
            if self._approvals is not None:
                await self._approvals.react(connector, msg, role)
            return
        if role is None:
            if (msg.connector, msg.sender) not in self._strangers_seen:
                self._strangers_seen[(msg.connector, msg.sender)] = None
                while len(self._strangers_seen) > MAX_STRANGERS:
                    self._strangers_seen.popitem(last=False)
                log.warning(
                    "ignoring messages from %s on %s: not an operator", msg.sender, msg.connector
                )
            return
        source = TYPED
        if (original := msg.replaces) is not None:
            if msg.event_id is not None and not await self._claim(msg.connector, msg.event_id):
                return
            edited = await self._take_over(connector, msg, original)
            if edited is None:
                return
            msg, source = edited, edits.edit_source(original)
        elif msg.event_id is not None and not await self._claim_message(msg, msg.event_id):
            log.debug("event %s on %s already handled", msg.event_id, msg.connector)
            return
        try:
            await self._claimed(connector, msg, role, source, stopping)
        except asyncio.CancelledError:  # at the stop's deadline: never left `pending`
            await finished(self._settle_cancelled(msg, source))
            raise

    async def _claimed(
        self, connector: Connector, msg: InboundMessage, role: Role, source: str, stopping: bool
    ) -> None:
        """Handle ``msg``, claimed, for its sender in ``role``, and answer it."""
        if msg.event_id is not None:
            await connector.mark_read(msg.room, msg.event_id, msg.thread_id)
        async with (
            contextlib.AsyncExitStack() as held,
            typing_after(connector, msg.room, msg.thread_id),
        ):
            done = await self._execution.execute(msg, role, source, held, stopping=stopping)
            if done is not None:
                await self._threads.deliver(connector, msg, done[1])

    async def _claim_message(self, msg: InboundMessage, event: EventId) -> bool:
        """Claim typed message ``msg`` (its ``event``), noted ``pending``; cancelled
        meanwhile, the claim is finished and, if it was made, settled as cancelled."""
        claiming = asyncio.ensure_future(
            self._chat.claim_message(
                msg.connector, event, sender=msg.sender, room=msg.room, thread=msg.thread_id
            )
        )
        try:
            return await finished(claiming)
        except asyncio.CancelledError:
            made = claiming.done() and not claiming.cancelled() and claiming.exception() is None
            if made and claiming.result():
                await finished(self._settle_cancelled(msg, TYPED))
            raise

    async def _settle_cancelled(self, msg: InboundMessage, source: str) -> None:
        """``msg`` was cancelled before its command settled it: refused, audited so."""
        if msg.event_id is None:
            return
        try:
            answer = await self._chat.chat_answer(msg.connector, msg.event_id)
        except Exception:
            log.exception("could not read what came of %r, cancelled", msg.text)
            return
        if answer is not None and answer.state == "pending":
            name = self._execution.command_name(msg)
            await self._execution.cancelled(msg, source, name, "refused")

    async def _take_over(
        self, connector: Connector, edit: InboundMessage, original: EventId
    ) -> InboundMessage | None:
        """The message to run for ``edit``: its text in the place of the message it edits,
        when nothing was done about that one. Otherwise ``None``, after saying why the edit
        was not applied (only when it holds a command, or its original ran: an edit of an
        unknown chat message is nobody's business)."""
        answer = await self._chat.chat_answer(edit.connector, original)
        if answer is not None and answer.sender == edit.sender and answer.state in REPLACEABLE:
            if await self._chat.take_over(edit.connector, original):
                thread = None if answer.thread is None else ThreadId(answer.thread)
                return replace(edit, event_id=original, replaces=None, thread_id=thread)
            answer = await self._chat.chat_answer(edit.connector, original)  # another edit won
        reason = edits.refusal(answer, edit.sender)
        if reason is None or (answer is None and not await self._holds_command(edit)):
            return None
        place = edit.thread_id if answer is None else answer.thread
        where = replace(
            edit, event_id=original, thread_id=None if place is None else ThreadId(place)
        )
        ran = Ran("denied", self._execution.command_name(edit), f"edit not applied: {reason}")
        await self._execution.audit(where, edits.edit_source(original), ran)
        await self._threads.deliver(connector, where, Reply(edits.not_applied(reason)))
        return None

    async def _holds_command(self, msg: InboundMessage) -> bool:
        """Whether ``msg`` is meant as a command: it parses, fails to, or is for an agent."""
        grammar = self._execution.grammar_of(msg.connector)
        try:
            if grammar.parse(msg.text, addressed=msg.addressed) is not None:
                return True
        except CommandError:
            return True
        return await self._execution.thread_message(grammar, msg) is not None

    async def run_as(
        self, connector: Connector, run: Delegated, act: Handler | None = None
    ) -> Ran | None:
        """Run ``run.text`` as ``run.sender`` in ``run.room`` of ``connector``, as if they
        had typed it now: parsed (no prefix needed), authorised with their role as the ACL
        says *now*, handled (by ``act`` when given: a queued launch's own start, in place
        of the command's handler), audited with ``run.source`` and answered in the room (in
        the connector's home room if that fails). Unless the sender may still change the
        fleet (admin or operator), nothing runs: the refusal is audited as ``denied`` and
        said in the room. ``None`` when ``run.event_id`` was already handled (a double
        fire)."""
        if not await self._claim(connector.name, run.event_id):
            return None
        msg = InboundMessage(
            connector=connector.name,
            sender=run.sender,
            text=run.text,
            room=run.room,
            timestamp=run.at,
            addressed=True,
        )
        return await self._on_behalf(connector, msg, run.source, run.heading, act)

    async def start_for(self, connector: Connector, start: DelegatedStart) -> Ran | None:
        """Start what ``start`` carries — a launch the fleet built (a held task's), not text
        — for ``start.sender`` in ``start.room`` of ``connector``: claimed once as
        ``start.event_id``, authorised as ``start.command`` with the sender's role as the
        ACL says *now*, carried out by ``start.act``, audited with ``start.source`` and
        answered in the room under ``start.heading``, as :meth:`run_as` answers. Unless the
        sender may still change the fleet, nothing starts: the refusal is audited as
        ``denied`` and said in the room. ``None`` when the event was already handled."""
        if not await self._claim(connector.name, start.event_id):
            return None
        spec = self._execution.grammar_of(connector.name).spec(start.command)
        if spec is None:
            raise ValueError(f"no command {start.command!r} to start {start.source} as")
        command = Command(spec.name, dict(start.args), {}, spec, start.asked)
        msg = InboundMessage(
            connector=connector.name,
            sender=start.sender,
            text=start.asked,
            room=start.room,
            timestamp=start.at,
            addressed=True,
        )
        return await self._on_behalf(
            connector, msg, start.source, start.heading, start.act, command
        )

    async def _on_behalf(
        self,
        connector: Connector,
        msg: InboundMessage,
        source: str,
        heading: str,
        act: Handler | None,
        built: Command | None = None,
    ) -> Ran:
        """Run ``msg`` (as ``built``, when the caller made the command) for its sender, who
        did not type it now, and answer in its room under ``heading``."""
        role = self._acl.role_of(connector.name, msg.sender)
        execution = self._execution
        done: tuple[Ran, Reply] | None
        async with contextlib.AsyncExitStack() as held:
            if role is None or not role.may_control:
                now = "not an operator" if role is None else article(role)
                detail = (
                    f"not run: {msg.sender} set this up and is now {now} on {connector.name}; "
                    "only the schedules of admins and operators run"
                )
                name = built.name if built is not None else execution.command_name(msg)
                done = Ran("denied", name, detail), Reply(detail)
                await execution.audit(msg, source, done[0])
            else:
                done = await execution.execute(msg, role, source, held, act, built)
            if done is None:  # blank text: never saved as a schedule, but say so if it happens
                done = Ran("error", None, "nothing to run"), Reply("Nothing to run.")
                await execution.audit(msg, source, done[0])
            ran, reply = done
            if heading:
                reply = replace(reply, markdown=f"{heading}\n\n{reply.markdown}")
            await self._deliver_or_home(connector, msg, reply)
        return ran

    async def answer(self, msg: InboundMessage, source: str) -> tuple[Ran, Reply]:
        """Run ``msg``, typed outside chat (a shell), as its sender with their role looked up
        now: parsed, authorised, handled and audited with ``source``, as a typed command is;
        what came of it and the reply are handed back, not posted."""
        role = self._acl.role_of(msg.connector, msg.sender, msg.groups)
        async with contextlib.AsyncExitStack() as held:
            if role is None:
                detail = f"{msg.sender} is not in the config's `operators:` for {msg.connector}"
                done = Ran("denied", self._execution.command_name(msg), detail), Reply(detail)
                await self._execution.audit(msg, source, done[0])
                return done
            ran = await self._execution.execute(msg, role, source, held)
        return ran or (Ran("error", None, "nothing to run"), Reply("Nothing to run."))

    async def _claim(self, connector: str, event_id: str) -> bool:
        if await self._chat.claim_event(connector, event_id):
            return True
        log.debug("event %s on %s already handled", event_id, connector)
        return False

    async def _deliver_or_home(
        self, connector: Connector, msg: InboundMessage, reply: Reply
    ) -> None:
        """Answer in ``msg``'s room, else in the connector's home room; never raises, since
        nobody is waiting on a scheduled run to see an exception."""
        rooms = dict.fromkeys(r for r in (msg.room, connector.home_room) if r is not None)
        for room in rooms:
            try:
                await self._threads.deliver(connector, replace(msg, room=room), reply)
            except Exception:
                log.exception(
                    "could not post the reply to %r in %s on %s", msg.text, room, msg.connector
                )
            else:
                return
