"""Edits of chat messages: whether an edit still replaces the message it edits, and what the
person is told when it does not.

An edit replaces its original when nothing was done about the original: it held no command
(plain text, no prefix, a typo the grammar ignores) or its command was refused before
running (it did not parse, or the sender may not run it). The edited text then runs in the
original's place, answered under the original. Once the original's command reached its
handler — or while it is still being handled — an edit changes nothing: running the new
text too would act twice on one message, so the person is told to send it anew. What was
done with each message is the ledger's (:mod:`fleet.ledger.stores.operators.chat`), not this
process's
memory, so a restart or another process sees the same.
"""

from __future__ import annotations

from typing import Final

from fleet.ledger import ChatAnswer

EDIT_SOURCE: Final = "edit"
"""The audit source of an edit, followed by ``:`` and the id of the message it edits."""


def edit_source(original: str) -> str:
    """The audit source naming an edit of ``original``."""
    return f"{EDIT_SOURCE}:{original}"


def refusal(answer: ChatAnswer | None, sender: str) -> str | None:
    """Why an edit by ``sender`` cannot replace the message ``answer`` records; ``None``
    when it can (nothing was done about it yet)."""
    if answer is None:
        return (
            "there is no record of the message it edits (it is older than a week, or from "
            "before the bot was there)"
        )
    if answer.sender != sender:
        return "it edits someone else's message"
    if answer.state == "pending":
        return "the message it edits is still being handled"
    if answer.state != "ran":
        return None
    if answer.command == "send":
        return f"the message it edits already went to the agent ({answer.outcome})"
    return f"`{answer.command}` already ran ({answer.outcome})"


def not_applied(reason: str) -> str:
    """The reply to an edit that changed nothing."""
    return f"Edit not applied: {reason}. Send the new command as a new message."
