"""Reactions in and edits out, through the Discord connector: the real discord.py client
against the fake Discord, whose gateway sends MESSAGE_REACTION_ADD as Discord does and
whose REST edits messages as strictly."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from connectors.base import EventId, OutboundMessage, ThreadId
from connectors.discord.connector import DiscordConnector
from connectors.errors import ConnectorError
from tests.fakes.discord.server import FakeDiscord
from tests.integration.connectors.discord.test_discord_connector import (
    TOKEN_ENV,
    Book,
    config,
    next_message,
    room,
)

pytestmark = pytest.mark.integration


@pytest.fixture
async def connector(fake: FakeDiscord) -> AsyncIterator[DiscordConnector]:
    made = DiscordConnector(config(fake), threads=Book(), environ={TOKEN_ENV: fake.token})
    await made.start()
    yield made
    await made.stop()


async def test_a_persons_reaction_arrives_in_the_thread_and_the_bots_own_does_not(
    fake: FakeDiscord, connector: DiscordConnector
) -> None:
    """A reaction to the bot's threaded message is inbound with the emoji, the message it
    reacts to, the thread, the person's roles and an id unique to message, user and emoji;
    the bot's own reactions are not."""
    thread = ThreadId(await connector.open_thread(room(fake), "a1", "agent a1 started"))
    asked = await connector.send(
        OutboundMessage(room(fake), "may a1 run `ls`?", thread_id=thread, alert=True)
    )
    target = int(asked.event_ids[0])
    role = fake.add_role("ops")
    fake.grant_role("ann", role)
    await fake.add_user_reaction(int(thread), target, "fleetwarden", "❌", bot=True)
    await fake.add_user_reaction(int(thread), target, "ann", "✅")
    got = await next_message(connector)
    ann = fake.user_id("ann")
    assert (got.text, got.reacts_to, got.thread_id, got.room) == (
        "✅",
        str(target),
        thread,
        room(fake),
    )
    assert got.sender == str(ann) and got.groups == (f"role:{role}",)
    assert got.event_id == f"{target}:reaction:{ann}:✅"
    assert not got.addressed and got.replaces is None

    await fake.add_user_reaction(fake.control_channel_id, int(thread), "ann", "🔁")
    in_channel = await next_message(connector)
    assert (in_channel.text, in_channel.reacts_to, in_channel.thread_id) == ("🔁", thread, None)


async def test_an_edit_replaces_the_first_part_in_its_thread(
    fake: FakeDiscord, connector: DiscordConnector
) -> None:
    """edit() PATCHes the bot's message where it was posted: the new text, the embed of a
    notice removed, a MESSAGE_UPDATE for clients."""
    thread = ThreadId(await connector.open_thread(room(fake), "a1", "agent a1 started"))
    sent = await connector.send(
        OutboundMessage(room(fake), "approval **pending**", thread_id=thread, tone="warning")
    )
    message_id = sent.event_ids[0]
    assert fake.messages(int(thread))[-1].payload["embeds"]
    await connector.edit(room(fake), message_id, "**allowed** by ann")
    [edited] = [m for m in fake.messages(int(thread)) if str(m.id) == message_id]
    assert edited.content == "**allowed** by ann"
    assert edited.payload["embeds"] == [] and edited.payload["edited_timestamp"]
    assert fake.edits[-1][:2] == (int(thread), int(message_id))


async def test_after_a_restart_an_edit_finds_its_message_through_the_thread(
    fake: FakeDiscord, connector: DiscordConnector
) -> None:
    """A connector that did not post the message (a restart) edits it in the thread it is
    given; with no thread it looks in the room and says the message is not there."""
    thread = ThreadId(await connector.open_thread(room(fake), "a1", "agent a1 started"))
    sent = await connector.send(OutboundMessage(room(fake), "pending", thread_id=thread))
    await connector.stop()
    again = DiscordConnector(config(fake), threads=Book(), environ={TOKEN_ENV: fake.token})
    await again.start()
    try:
        with pytest.raises(ConnectorError, match=f"no message {sent.event_ids[0]}"):
            await again.edit(room(fake), sent.event_ids[0], "answered")
        await again.edit(room(fake), sent.event_ids[0], "answered", thread)
    finally:
        await again.stop()
    assert fake.messages(int(thread))[-1].content == "answered"


async def test_editing_what_is_not_the_bots_is_refused(
    fake: FakeDiscord, connector: DiscordConnector
) -> None:
    """An unknown message id, a person's message and an empty text are refused with a
    ConnectorError naming the problem, and nothing changes."""
    posted = await fake.post_user_message(fake.control_channel_id, "ann", "!ps")
    await next_message(connector)
    with pytest.raises(ConnectorError, match="no message 42"):
        await connector.edit(room(fake), EventId("42"), "x")
    with pytest.raises(ConnectorError, match="not allowed"):
        await connector.edit(room(fake), EventId(str(posted.id)), "x")
    with pytest.raises(ConnectorError, match="cannot edit"):
        await connector.edit(room(fake), EventId(str(posted.id)), "  ")
    assert fake.edits == []


async def test_a_reaction_added_while_away_is_read_back_at_the_next_start(
    fake: FakeDiscord, connector: DiscordConnector
) -> None:
    """A person's reaction on the bot's recent message while no session ran arrives after
    the next start, with the id a live one would have had; the bot's own does not."""
    thread = ThreadId(await connector.open_thread(room(fake), "a1", "agent a1 started"))
    sent = await connector.send(OutboundMessage(room(fake), "may a1 run `ls`?", thread_id=thread))
    target = int(sent.event_ids[0])
    await connector.stop()
    role = fake.add_role("ops")
    fake.grant_role("ann", role)
    await fake.add_user_reaction(int(thread), target, "ann", "✅")
    await fake.add_user_reaction(int(thread), target, "fleetwarden", "❌", bot=True)
    again = DiscordConnector(config(fake), threads=Book(), environ={TOKEN_ENV: fake.token})
    await again.start()
    try:
        got = await next_message(again)
        ann = fake.user_id("ann")
        assert (got.text, got.reacts_to, got.thread_id) == ("✅", str(target), thread)
        assert got.event_id == f"{target}:reaction:{ann}:✅"
        assert got.sender == str(ann) and got.groups == (f"role:{role}",)
        await fake.post_user_message(fake.control_channel_id, "ann", "marker")
        assert (await next_message(again)).text == "marker"
    finally:
        await again.stop()
