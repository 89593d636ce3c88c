"""Commands that ask before they act: the question, and the reply that confirms it.

A command too sweeping to run on one line (``freeze all``, ``stop all``) asks instead: its
handler calls :meth:`ConfirmationDesk.ask`, which records in the ledger what it would do,
for whom and where (connector, room, thread), until when; the reply says so. Nothing happens
unless the same person writes ``yes`` (with or without the command prefix) in the same
place before the deadline: the router gives each such line to :meth:`ConfirmationDesk.answer`
before it parses it (a click on the question's Yes button is such a line, the clicker's:
:data:`CHOICES`), and runs the waiting command — the text as first typed, authorised
again with the sender's role as of now — with ``Request.confirmed`` set.

``yes`` is taken only where a confirmation waits for it. Elsewhere it is what it always was:
ordinary chat, a line for the agent of the thread it is written in, an unknown command on the
console. Where one waits, a reply that cannot confirm it is refused with why: it came too
late (the row is kept a while after its deadline to say so), or from someone else while the
asker's question is still open. Only fresh typed messages confirm — not an edit, a schedule or
a queued run. The ledger, not memory, holds the question, so it survives a restart, and
taking it is one transaction, so two replies never both act.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Final

from bot.commands.errors import CommandError, PermissionDenied
from bot.commands.routing.request import Request
from bot.commands.routing.sources import SHELL
from connectors.base import Choice, InboundMessage
from fleet.ledger import Confirmation
from fleet.ledger.stores.operators.chat import ChatStore
from fleet.timing.clock import Clock

WAIT: Final = timedelta(seconds=60)
"""How long a question waits for its confirming reply."""

WORD: Final = "yes"
"""The reply that confirms."""

CHOICES: Final = (Choice("Yes", WORD, as_reply=True, style="primary"),)
"""The button a question offers where the medium has buttons: a click is its clicker's
typed ``yes`` in the question's place, so only the asker's confirms (there is no ``no``:
a question nobody confirms lapses)."""

SOURCE: Final = "confirmation"
"""The audit source of a confirming reply, followed by ``:`` and the confirmation's id."""


@dataclass(frozen=True, slots=True)
class Answer:
    """A ``yes`` that answers ``confirmation``: the command to run, or ``refusal`` (why it
    does not run)."""

    confirmation: Confirmation
    refusal: CommandError | None = None

    @property
    def source(self) -> str:
        return f"{SOURCE}:{self.confirmation.id}"


def is_yes(text: str, prefix: str) -> bool:
    """Whether ``text`` is the confirming word, with or without ``prefix``."""
    word = text.strip()
    if word.startswith(prefix):
        word = word[len(prefix) :].strip()
    return word.lower().rstrip(".!") == WORD


class ConfirmationDesk:
    """The questions that wait in the ledger, and the replies that answer them."""

    def __init__(self, chat: ChatStore, clock: Clock, *, wait: timedelta = WAIT) -> None:
        self._chat = chat
        self._clock = clock
        self._wait = wait

    @property
    def wait(self) -> timedelta:
        return self._wait

    async def ask(
        self, req: Request, summary: str, plan: Mapping[str, object] | None = None
    ) -> str:
        """Have ``req``'s command wait for its sender's ``yes`` in the place it was typed;
        the question to reply with, ``summary`` (what it would do) first. ``plan``: what the
        command decided (JSON-able), given back as ``Request.plan`` on the ``yes``. A shell cannot
        answer: a command from one that would ask is refused, saying where to run it."""
        if req.source == SHELL:
            raise CommandError(
                f"{summary} It asks for a `{WORD}` first, which a shell cannot give: run "
                f"`{req.command.text.strip()}` in chat"
            )
        msg = req.message
        await self._chat.ask_confirmation(
            connector=msg.connector,
            sender=msg.sender,
            room=msg.room,
            thread=msg.thread_id,
            command=req.command.text.strip(),
            summary=summary,
            expires_at=self._clock.now() + self._wait,
            plan=plan,
        )
        seconds = int(self._wait.total_seconds())
        return (
            f"{summary}\n\nReply `{WORD}` here within {seconds} s to go ahead; nothing "
            "happens otherwise."
        )

    async def waits_for(self, msg: InboundMessage, prefix: str) -> Confirmation | None:
        """The question ``msg`` would answer (a ``yes`` where one of its sender's waits, live),
        left waiting: read, never taken (what a ``yes`` read while stopping is told about)."""
        if not is_yes(msg.text, prefix):
            return None
        waiting = await self._chat.confirmations_at(msg.connector, msg.room, msg.thread_id)
        now = self._clock.now()
        return next((c for c in waiting if c.sender == msg.sender and not c.expired(now)), None)

    async def answer(self, msg: InboundMessage, prefix: str) -> Answer | None:
        """What ``msg`` answers: ``None`` unless it is ``yes`` where a question waits."""
        if not is_yes(msg.text, prefix):
            return None
        waiting = await self._chat.confirmations_at(msg.connector, msg.room, msg.thread_id)
        now = self._clock.now()
        for confirmation in waiting:
            if confirmation.sender != msg.sender:
                continue
            if await self._chat.take_confirmation(confirmation.id):
                return Answer(confirmation)
            return Answer(confirmation, CommandError(_not_live(confirmation, now)))
        for confirmation in waiting:
            if not confirmation.expired(now):
                why = (
                    f"not confirmed: `{confirmation.command}` waits for the reply of "
                    f"{confirmation.sender}, who asked for it, not yours; nothing was done"
                )
                return Answer(confirmation, PermissionDenied(why))
        return None


def _not_live(confirmation: Confirmation, now: datetime) -> str:
    if not confirmation.expired(now):  # another reply took it a moment ago
        return f"`{confirmation.command}` was already confirmed; nothing more was done"
    waited = round((confirmation.expires_at - confirmation.asked_at).total_seconds())
    late = round((now - confirmation.expires_at).total_seconds())
    return (
        f"too late: `{confirmation.command}` waited {waited} s for your reply and expired "
        f"{late} s ago; nothing was done. Type `{confirmation.command}` again to be asked anew"
    )
