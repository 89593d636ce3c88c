"""The fake Discord's reactions and message edits, as the real discord.py client meets them
and as Discord answers a wrong edit."""

from __future__ import annotations

import warnings
from collections.abc import AsyncIterator

import aiohttp
import pytest

from tests.fakes.discord.client import Bot, control, eventually, run, shut
from tests.fakes.discord.server import FakeDiscord

with warnings.catch_warnings():  # discord.py imports the stdlib audioop, deprecated in 3.11+
    warnings.simplefilter("ignore", DeprecationWarning)
    import discord


class Reactions(Bot):
    """A plain client that records raw reactions (with or without the reactions intent)."""

    def __init__(self, *, reactions: bool) -> None:
        super().__init__()
        intents = discord.Intents.default()  # as Bot's, with reactions on or off
        intents.reactions = reactions
        self._connection._intents = intents
        self.reactions: list[discord.RawReactionActionEvent] = []

    async def on_raw_reaction_add(self, payload: discord.RawReactionActionEvent) -> None:
        self.reactions.append(payload)


@pytest.fixture
async def client(fake: FakeDiscord) -> AsyncIterator[Reactions]:
    made = Reactions(reactions=True)
    task = await run(made, fake.token)
    try:
        yield made
    finally:
        assert await shut(made, task) is None


async def test_a_reaction_arrives_as_discord_sends_it(fake: FakeDiscord, client: Reactions) -> None:
    """MESSAGE_REACTION_ADD carries the message, channel, guild, user, member and emoji."""
    sent = await control(client, fake).send("may a1 run ls?")
    await fake.add_user_reaction(fake.control_channel_id, sent.id, "ann", "✅")
    await eventually(lambda: client.reactions)
    [got] = client.reactions
    assert (got.message_id, got.channel_id, got.guild_id) == (
        sent.id,
        fake.control_channel_id,
        fake.guild_id,
    )
    assert got.user_id == fake.user_id("ann") and got.member is not None
    assert got.member.id == got.user_id and not got.member.bot
    assert (str(got.emoji), got.event_type, got.message_author_id) == (
        "✅",
        "REACTION_ADD",
        client.user.id if client.user else None,
    )
    with pytest.raises(KeyError):
        await fake.add_user_reaction(fake.control_channel_id, 42, "ann", "✅")


async def test_without_the_reactions_intent_no_reaction_is_sent(fake: FakeDiscord) -> None:
    """As on Discord, a session that did not ask for GUILD_MESSAGE_REACTIONS gets none."""
    made = Reactions(reactions=False)
    task = await run(made, fake.token)
    try:
        sent = await control(made, fake).send("hello")
        await fake.add_user_reaction(fake.control_channel_id, sent.id, "ann", "✅")
        await fake.post_user_message(fake.control_channel_id, "ann", "marker")
        await eventually(lambda: "marker" in made.contents())
        assert made.reactions == [] and fake.reactions
    finally:
        assert await shut(made, task) is None


async def test_the_bot_edits_its_message(fake: FakeDiscord, client: Reactions) -> None:
    """PATCH changes the content, keeps the rest, and MESSAGE_UPDATE follows."""
    updates: list[discord.RawMessageUpdateEvent] = []

    async def on_raw_message_edit(payload: discord.RawMessageUpdateEvent) -> None:
        updates.append(payload)

    client.event(on_raw_message_edit)
    sent = await control(client, fake).send("pending")
    edited = await sent.edit(content="allowed")
    assert edited.content == "allowed" and edited.edited_at is not None
    assert fake.messages(fake.control_channel_id)[0].content == "allowed"
    await eventually(lambda: updates)
    assert updates[0].message.content == "allowed"


async def test_a_wrong_edit_is_refused_as_discord_does(fake: FakeDiscord) -> None:
    """An unknown message is 404 (10008), another author's 403 (50005), content over 2000
    characters 400 (50035); nothing is edited."""
    theirs = await fake.post_user_message(fake.control_channel_id, "ann", "hello")
    base = f"{fake.api_base}/channels/{fake.control_channel_id}/messages"
    headers = {"Authorization": f"Bot {fake.token}"}
    answers = []
    async with aiohttp.ClientSession() as session:
        async with session.post(base, json={"content": "mine"}, headers=headers) as posted:
            mine = (await posted.json())["id"]
        for message_id, content in ((42, "x"), (theirs.id, "x"), (mine, "x" * 2001)):
            url = f"{base}/{message_id}"
            async with session.patch(url, json={"content": content}, headers=headers) as got:
                answers.append((got.status, (await got.json())["code"]))
    assert answers == [(404, 10008), (403, 50005), (400, 50035)]
    assert fake.edits == []


async def test_rest_shows_reactions_and_who_added_them(
    fake: FakeDiscord, client: Reactions
) -> None:
    """History carries each emoji's count; the reactions route lists who added it, once."""
    sent = await control(client, fake).send("may a1 run ls?")
    for user in ("ann", "bob", "ann"):
        await fake.add_user_reaction(fake.control_channel_id, sent.id, user, "✅")
    [read] = [m async for m in control(client, fake).history(limit=10)]
    [reaction] = read.reactions
    assert (str(reaction.emoji), reaction.count, reaction.me) == ("✅", 2, False)
    users = [user.name async for user in reaction.users()]
    assert sorted(users) == ["ann", "bob"]
    assert fake.reactions.count((sent.id, fake.user_id("ann"), "✅")) == 1
