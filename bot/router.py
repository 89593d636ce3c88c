"""The router: inbound message → (dedupe, ACL, parse, authorise) → handler → reply + audit.

Strangers are never answered; their first message is logged, later ones are not.
Every command from a known sender is written to the audit table with its outcome.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping

from bot.acl import Acl
from bot.errors import CommandError, PermissionDenied
from bot.grammar import Command, Grammar
from bot.handlers import Handler, Request
from connectors.base import Connector, InboundMessage, OutboundMessage
from fleet.errors import FleetError
from fleet.ledger import AuditOutcome, Ledger

log = logging.getLogger(__name__)


class Router:
    """Turns messages into command runs. One per app; connectors share it."""

    def __init__(
        self, *, grammar: Grammar, acl: Acl, handlers: Mapping[str, Handler], ledger: Ledger
    ) -> None:
        missing = sorted(set(grammar.command_names()) - set(handlers))
        if missing:
            raise ValueError(f"commands without a handler: {', '.join(missing)}")
        self._grammar = grammar
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
        command: Command | None = None
        outcome: AuditOutcome
        try:
            command = self._grammar.parse(msg.text, addressed=msg.addressed)
            if command is None:
                return
            if not self._acl.allows(role, command.spec):
                raise PermissionDenied(
                    f"`{command.name}` changes the fleet and needs the operator role; "
                    f"you are a {role.value}"
                )
            reply = await self._handlers[command.spec.name](Request(msg, role, command))
            outcome, detail = "ok", None
        except PermissionDenied as exc:
            reply, outcome, detail = str(exc), "denied", str(exc)
        except (CommandError, FleetError) as exc:
            reply, outcome, detail = str(exc), "error", str(exc)
        except Exception as exc:
            log.exception("command %r from %s failed", msg.text, msg.sender)
            reply = "Something went wrong inside Fleetwarden running that; the log has the details."
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
        await connector.send(
            OutboundMessage(
                room=msg.room, markdown=reply, thread_id=msg.thread_id, in_reply_to=msg.event_id
            )
        )
