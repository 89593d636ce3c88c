"""The router: inbound message → (ACL, dedupe, parse, authorise) → handler → reply + audit.

Strangers are never answered; their first message is logged, later ones are not.
Every command from a known sender is written to the audit table with its outcome.

Threads, one per topic (an agent): a handler's :class:`~bot.handlers.Reply` may name a
topic; the reply then goes into that topic's thread, opened with this reply as its
root when the room has none yet (connectors without threads just post it). A plain
message — not a command — inside an agent's thread is forwarded to that agent as
``send NAME <text>``. The topic ↔ thread mapping lives in the ledger.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping

from bot.acl import Acl, Role
from bot.errors import CommandError, PermissionDenied
from bot.grammar import Command, Grammar
from bot.handlers import Handler, Reply, Request
from connectors.base import Connector, InboundMessage, OutboundMessage, ThreadId
from connectors.errors import ThreadsUnsupported
from fleet.errors import FleetError
from fleet.ledger import AuditOutcome, Ledger
from fleet.names import is_agent_name

log = logging.getLogger(__name__)


class Router:
    """Turns messages into command runs. One per app; connectors share it."""

    def __init__(
        self,
        *,
        grammar: Grammar,
        acl: Acl,
        handlers: Mapping[str, Handler],
        ledger: Ledger,
        grammars: Mapping[str, Grammar] | None = None,
    ) -> None:
        """``grammars`` overrides ``grammar`` per connector name (e.g. another prefix)."""
        for each in (grammar, *(grammars or {}).values()):
            missing = sorted(set(each.command_names()) - set(handlers))
            if missing:
                raise ValueError(f"commands without a handler: {', '.join(missing)}")
        self._grammar = grammar
        self._grammars = dict(grammars or {})
        self._acl = acl
        self._handlers = dict(handlers)
        self._ledger = ledger
        self._strangers_seen: set[tuple[str, str]] = set()

    async def handle(self, connector: Connector, msg: InboundMessage) -> None:
        """Handle one message; never raises for anything the sender did."""
        role = self._acl.role_of(msg.connector, msg.sender)
        if role is None:
            if (msg.connector, msg.sender) not in self._strangers_seen:
                self._strangers_seen.add((msg.connector, msg.sender))
                log.warning(
                    "ignoring messages from %s on %s: not an operator", msg.sender, msg.connector
                )
            return
        if msg.event_id is not None and not await self._ledger.claim_event(
            msg.connector, msg.event_id
        ):
            log.debug("event %s on %s already handled", msg.event_id, msg.connector)
            return
        grammar = self._grammars.get(msg.connector, self._grammar)
        command: Command | None = None
        outcome: AuditOutcome
        try:
            command = grammar.parse(msg.text, addressed=msg.addressed)
            if command is None:
                command = await self._thread_message(grammar, msg)
            if command is None:
                return
            reply = await self._run(role, command, msg)
            outcome, detail = "ok", None
        except PermissionDenied as exc:
            reply, outcome, detail = Reply(str(exc)), "denied", str(exc)
        except (CommandError, FleetError) as exc:
            reply, outcome, detail = Reply(str(exc)), "error", str(exc)
        except Exception as exc:
            log.exception("command %r from %s failed", msg.text, msg.sender)
            reply = Reply(
                "Something went wrong inside Fleetwarden running that; the log has the details."
            )
            outcome, detail = "error", f"internal error: {type(exc).__name__}"
        await self._ledger.record_audit(
            connector=msg.connector,
            sender=msg.sender,
            room=msg.room,
            thread=msg.thread_id,
            text=msg.text,
            command=command.name if command else None,
            outcome=outcome,
            detail=detail,
        )
        await self._deliver(connector, msg, reply)

    async def _run(self, role: Role, command: Command, msg: InboundMessage) -> Reply:
        if not self._acl.allows(role, command.spec):
            raise PermissionDenied(
                f"`{command.name}` changes the fleet and needs the operator role; "
                f"you are a {role.value}"
            )
        result = await self._handlers[command.spec.name](Request(msg, role, command))
        return result if isinstance(result, Reply) else Reply(result)

    async def _thread_message(self, grammar: Grammar, msg: InboundMessage) -> Command | None:
        """A plain message in an agent's thread, as ``send AGENT <text>``; else ``None``."""
        if msg.thread_id is None or not msg.text.strip():
            return None
        topic = await self._ledger.topic_for_thread(msg.connector, msg.room, msg.thread_id)
        send = grammar.spec("send")
        if topic is None or send is None or not is_agent_name(topic):
            return None
        return Command(
            name="send", args={"NAME": topic, "TEXT": msg.text}, flags={}, spec=send, text=msg.text
        )

    async def _deliver(self, connector: Connector, msg: InboundMessage, reply: Reply) -> None:
        thread_id = msg.thread_id
        if reply.topic is not None and thread_id is None:
            known = await self._ledger.thread_for_topic(msg.connector, msg.room, reply.topic)
            if known is None:
                try:
                    opened = await connector.open_thread(msg.room, reply.topic, reply.markdown)
                except ThreadsUnsupported:
                    pass
                else:
                    await self._ledger.bind_thread(msg.connector, msg.room, reply.topic, opened)
                    return
            thread_id = ThreadId(known) if known is not None else None
        await connector.send(
            OutboundMessage(
                room=msg.room,
                markdown=reply.markdown,
                thread_id=thread_id,
                in_reply_to=msg.event_id,
            )
        )
