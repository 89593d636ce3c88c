"""The connector contract: what every implementation of :class:`connectors.base.Connector`
does — the real connectors on their services (or the project's fakes of them) and the
in-memory fakes other tests use — checked by one suite.

A test module subclasses :class:`ConnectorContract` and gives it a ``harness`` fixture,
parametrised over the implementations it can run: the suite then runs against each. A
:class:`Harness` is the connector started in a room it serves, with what a person in the
room can do and see (read back a message as the service holds it, write, react, take a
message back). A fake passes only by being as strict as the service: an edit of a message
that does not exist, a thread that does not exist, a room that does not exist and an empty
edit are refused with :class:`~connectors.errors.ConnectorError`; a message longer than
the medium takes is split into several, never cut.

The console connector (:mod:`connectors.console.connector`) is not run here: it cannot honestly keep
the contract, and faking it would pin behaviour it has not. A terminal has one room, so a
send to another room is not refused; it has no length limit, so nothing is split; what it
printed cannot change, so an edit prints the text again (``(updated) …``) and has no message
to find missing or to keep; and a person at it has no reaction and no take-back. Its own
behaviour is pinned by ``tests/unit/connectors/test_console*.py`` and the console bot's
end-to-end tests.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from typing import Protocol

import pytest

from connectors.base import (
    Choice,
    Connector,
    EventId,
    InboundMessage,
    OutboundMessage,
    RoomId,
    RunState,
    ThreadId,
)
from connectors.errors import ConnectorError, ThreadsUnsupported

INBOUND_SECONDS = 20.0
"""How long a person's message may take to come in (a real homeserver's sync included)."""


@dataclass(frozen=True, slots=True)
class Posted:
    """A message as the service holds it now: its text (after any edit), its thread."""

    text: str
    thread: ThreadId | None


class Harness(Protocol):
    """One implementation, started, serving :attr:`room`; and a person in that room."""

    @property
    def connector(self) -> Connector: ...

    @property
    def room(self) -> RoomId: ...

    @property
    def limit(self) -> int:
        """The longest text one message may hold there."""
        ...

    @property
    def unknown_room(self) -> RoomId:
        """A room id of the right shape that names no room."""
        ...

    @property
    def unknown_event(self) -> EventId:
        """A message id of the right shape that names no message in :attr:`room`."""
        ...

    async def read(self, event_id: EventId) -> Posted:
        """The message ``event_id`` of :attr:`room` as the service holds it now."""
        ...

    async def person_says(self, text: str, thread: ThreadId | None = None) -> EventId:
        """A person with the operator role writes ``text`` in :attr:`room` (``thread``)."""
        ...

    async def person_reacts(self, event_id: EventId, key: str) -> None:
        """The person reacts to ``event_id`` with ``key``."""
        ...

    async def person_takes_back(self, event_id: EventId) -> None:
        """The person takes their message back (a Matrix redaction, a Discord delete)."""
        ...

    async def inbound(self) -> InboundMessage:
        """The next message the connector hands over (failing after a deadline)."""
        ...


async def eventually_read(
    harness: Harness, event_id: EventId, expect: str, within: float = INBOUND_SECONDS
) -> Posted:
    """:meth:`Harness.read` until its text holds ``expect`` (a service may show an edit
    a moment late); the last reading fails the test when it never does."""
    end = time.monotonic() + within
    while True:
        posted = await harness.read(event_id)
        if expect in posted.text or time.monotonic() > end:
            return posted
        await asyncio.sleep(0.05)


def numbered(words: int) -> str:
    """``w0 w1 … w<n-1>`` in paragraphs: a text whose every word can be found again."""
    lines = [
        " ".join(f"w{n}" for n in range(start, min(start + 10, words)))
        for start in range(0, words, 10)
    ]
    return "\n\n".join(lines)


class ConnectorContract:
    """The suite. Subclasses provide the ``harness`` fixture."""

    # -- send -----------------------------------------------------------------------

    async def test_send_posts_the_text_where_asked(self, harness: Harness) -> None:
        """One short message is one message in the room holding the text, outside threads."""
        sent = await harness.connector.send(
            OutboundMessage(room=harness.room, markdown="hello **there** `ps`")
        )
        assert len(sent.event_ids) == 1
        posted = await harness.read(sent.event_ids[0])
        assert "hello" in posted.text and "there" in posted.text and "ps" in posted.text
        assert posted.thread is None

    async def test_a_message_too_long_for_one_is_split_never_cut(self, harness: Harness) -> None:
        """A text over the medium's limit becomes several messages, each within the limit,
        which hold every word, in order."""
        words = harness.limit // 3  # "wNNN " is 4-6 characters: well over the limit
        sent = await harness.connector.send(
            OutboundMessage(room=harness.room, markdown=numbered(words))
        )
        assert len(sent.event_ids) >= 2
        texts = [(await harness.read(e)).text for e in sent.event_ids]
        assert all(len(text) <= harness.limit for text in texts)
        found = " ".join(texts).split()
        assert [w for w in found if w.startswith("w")] == [f"w{n}" for n in range(words)]

    async def test_send_to_a_room_that_does_not_exist_is_refused(self, harness: Harness) -> None:
        """The service refuses a room it does not have: a ConnectorError, nothing posted."""
        with pytest.raises(ConnectorError):
            await harness.connector.send(OutboundMessage(room=harness.unknown_room, markdown="x"))

    async def test_a_message_with_choices_posts_its_text(self, harness: Harness) -> None:
        """Choices offered with a message leave its text as it is (shown as buttons where
        the medium has them, else not at all)."""
        choices = (Choice("Approve", "✅", style="primary"), Choice("Yes", "yes", as_reply=True))
        sent = await harness.connector.send(
            OutboundMessage(room=harness.room, markdown="approve **this**?", choices=choices)
        )
        posted = await harness.read(sent.event_ids[0])
        assert "approve" in posted.text and "this" in posted.text

    # -- edit -----------------------------------------------------------------------

    async def test_edit_replaces_the_text_of_a_message_the_bot_sent(self, harness: Harness) -> None:
        """After an edit the message reads as the new text."""
        [first] = (
            await harness.connector.send(OutboundMessage(room=harness.room, markdown="draft one"))
        ).event_ids
        await harness.connector.edit(harness.room, first, "final **two**")
        posted = await eventually_read(harness, first, "two")
        assert "final" in posted.text and "two" in posted.text and "draft" not in posted.text

    async def test_edit_of_a_message_that_does_not_exist_is_refused(self, harness: Harness) -> None:
        """An edit naming no message is a ConnectorError, never a silent no-op."""
        with pytest.raises(ConnectorError):
            await harness.connector.edit(harness.room, harness.unknown_event, "new text")

    async def test_edit_to_an_empty_text_is_refused(self, harness: Harness) -> None:
        """A message cannot be edited to nothing: ConnectorError, the text stays."""
        [first] = (
            await harness.connector.send(OutboundMessage(room=harness.room, markdown="keep me"))
        ).event_ids
        with pytest.raises(ConnectorError):
            await harness.connector.edit(harness.room, first, "  \n")
        assert "keep me" in (await harness.read(first)).text

    # -- threads --------------------------------------------------------------------

    async def test_a_thread_holds_the_messages_sent_into_it(self, harness: Harness) -> None:
        """open_thread posts its first message; a send into the thread is in it. Where the
        medium has no threads, open_thread says so (ThreadsUnsupported)."""
        connector = harness.connector
        if not connector.has_threads:
            with pytest.raises(ThreadsUnsupported):
                await connector.open_thread(harness.room, "coder", "Agent **coder** started")
            return
        thread = await connector.open_thread(harness.room, "coder", "Agent **coder** started")
        sent = await connector.send(
            OutboundMessage(room=harness.room, markdown="working on it", thread_id=thread)
        )
        posted = await harness.read(sent.event_ids[0])
        assert "working on it" in posted.text and posted.thread == thread

    async def test_send_into_a_thread_that_does_not_exist_is_refused(
        self, harness: Harness
    ) -> None:
        """A thread id naming nothing is a ConnectorError: the message is not posted
        somewhere else instead."""
        if not harness.connector.has_threads:  # no thread to name: none can be opened
            with pytest.raises(ThreadsUnsupported):
                await harness.connector.open_thread(harness.room, "coder", "first")
            return
        with pytest.raises(ConnectorError):
            await harness.connector.send(
                OutboundMessage(
                    room=harness.room,
                    markdown="lost?",
                    thread_id=ThreadId(str(harness.unknown_event)),
                )
            )

    async def test_a_threads_run_state_is_shown_without_raising(self, harness: Harness) -> None:
        """Each run state of a thread is taken, hostile title and all, and never raises
        (nothing to show where the medium has no run states)."""
        connector = harness.connector
        if not connector.has_threads:
            return  # no thread a run could own
        thread = await connector.open_thread(harness.room, "coder", "Agent **coder** started")
        for state in RunState:
            await connector.show_run_state(harness.room, thread, state, "<!channel> *fix*")

    # -- inbound: messages, reactions, redactions -------------------------------------

    async def test_a_person_s_message_comes_in_with_its_id(self, harness: Harness) -> None:
        """What a person writes is handed over once, with its own id and room."""
        said = await harness.person_says("!ps")
        got = await harness.inbound()
        assert (got.text, got.event_id, got.room) == ("!ps", said, harness.room)
        assert got.replaces is None and got.reacts_to is None

    async def test_a_reaction_comes_in_naming_the_message(self, harness: Harness) -> None:
        """A person's reaction to the bot's message comes in as a reaction to that id."""
        [mine] = (
            await harness.connector.send(OutboundMessage(room=harness.room, markdown="approve?"))
        ).event_ids
        await harness.person_reacts(mine, "✅")
        got = await harness.inbound()
        assert (got.reacts_to, got.text) == (mine, "✅")

    async def test_a_message_taken_back_is_no_new_message(self, harness: Harness) -> None:
        """Taking a message back hands over nothing: the next message is the next one."""
        first = await harness.person_says("!whoami")
        assert (await harness.inbound()).event_id == first
        await harness.person_takes_back(first)
        after = await harness.person_says("!help")
        got = await harness.inbound()
        assert (got.event_id, got.text) == (after, "!help")
