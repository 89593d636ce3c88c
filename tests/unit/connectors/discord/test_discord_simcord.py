"""Behaviour tests of the Discord connector with the real Router, simcord playing Discord.

The connector serves a discord.py client that simcord logged in and connected; people
post through simcord's actors, the test routes what the connector queued
(:meth:`World.deliver`), and the assertions read what simcord's Discord holds.
"""

from __future__ import annotations

import re
import warnings
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import simcord
from simcord.enums import MessageType

from bot.acl import Acl, Grant, Role
from bot.commands.handlers.dashboard import DashboardCommands
from bot.commands.routing.request import Reply, Request
from bot.config.dashboard import DashboardSection
from bot.dashboard.access.signin import SignIns
from connectors.base import EventId, RoomId, ThreadId
from connectors.discord.config import AutoArchive, DiscordConfig
from connectors.discord.connector import DiscordConnector
from connectors.discord.gateway import Gateway
from fleet.ledger import Ledger
from fleet.timing.clock import ManualClock
from tests.unit.discord_world import (
    SETTLE_IDLE_SECONDS,
    Recorder,
    World,
    new_router,
    posted,
)

with warnings.catch_warnings():  # discord.py imports the stdlib audioop, deprecated in 3.11+
    warnings.simplefilter("ignore", DeprecationWarning)
    import discord

AUTO_ARCHIVE: AutoArchive = 60
LIMIT = 2000
# A 1x1 transparent PNG.
PNG = bytes.fromhex(
    "89504e470d0a1a0a0000000d4948445200000001000000010806000000"
    "1f15c4890000000d49444154789c6360000002000001e221bc330000000049454e44ae426082"
)


@dataclass
class Cast:
    """The people of the server, as the ACL sees them."""

    guild: simcord.GuildHandle
    control: simcord.ChannelHandle
    operators: simcord.RoleHandle  # granted operator as role:<id>
    viewers: simcord.RoleHandle  # granted viewer as role:<id>, on discord only
    alice: simcord.MemberActor  # operator, listed by id
    vic: simcord.MemberActor  # no entry of his own; has the viewers role
    olga: simcord.MemberActor  # listed by id as operator; has the viewers role
    vera: simcord.MemberActor  # listed by id as viewer; has the operators role
    mallory: simcord.MemberActor  # nobody: a stranger

    def acl(self) -> Acl:
        return Acl(
            [
                Grant(str(self.alice.id), Role.OPERATOR, None),
                Grant(str(self.olga.id), Role.OPERATOR, "discord"),
                Grant(str(self.vera.id), Role.VIEWER, "discord"),
                Grant(f"role:{self.operators.id}", Role.OPERATOR, "discord"),
                Grant(f"role:{self.viewers.id}", Role.VIEWER, "discord"),
            ]
        )


@pytest.fixture
def cast(simcord_env: simcord.Env) -> Cast:
    env = simcord_env
    guild = env.create_guild("Fleet")
    control = guild.create_text_channel("fleet-control")
    operators = guild.create_role("operators")
    viewers = guild.create_role("viewers")
    return Cast(
        guild=guild,
        control=control,
        operators=operators,
        viewers=viewers,
        alice=guild.add_member(env.create_user("alice")),
        vic=guild.add_member(env.create_user("vic"), roles=[viewers]),
        olga=guild.add_member(env.create_user("olga"), roles=[viewers]),
        vera=guild.add_member(env.create_user("vera"), roles=[operators]),
        mallory=guild.add_member(env.create_user("mallory")),
    )


@pytest.fixture
async def discord_simcord_world(
    simcord_env: simcord.Env, simcord_bot: Gateway, cast: Cast, ledger: Ledger
) -> AsyncIterator[World]:
    env = simcord_env
    await env.settle(idle=SETTLE_IDLE_SECONDS)  # the guild reached the client's cache
    config = DiscordConfig(
        token_env="FLEETWARDEN_DISCORD_TOKEN",
        guild_id=cast.guild.id,
        channel_id=cast.control.id,
        thread_auto_archive_minutes=AUTO_ARCHIVE,
    )
    connector = DiscordConnector(config, threads=ledger.chat, environ={})
    await connector.serve(simcord_bot)
    handlers = Recorder()
    discord_simcord_world = World(
        env=env,
        client=simcord_bot,
        guild=cast.guild,
        control=cast.control,
        connector=connector,
        router=new_router(cast.acl(), handlers, ledger),
        ledger=ledger,
        handlers=handlers,
    )
    yield discord_simcord_world
    await discord_simcord_world.close()


def me(world: World) -> discord.ClientUser:
    user = world.client.user
    assert user is not None
    return user


def spawn_opens_topic(world: World, *, images: tuple[Path, ...] = ()) -> None:
    """``spawn NAME`` answers like the real one: a fresh run of the agent, its topic, which
    gets a thread of its own."""

    async def spawn(req: Request) -> Reply:
        name = req.arg("NAME")
        return Reply(f"Agent **{name}** started", topic=name, images=images, new_thread=True)

    world.handlers.behaviour["spawn"] = spawn


def stop_notes_its_thread(world: World) -> None:
    """``stop NAME`` answers like the real one: where it was typed, with a line for the
    agent's thread."""

    async def stop(req: Request) -> Reply:
        name = req.arg("NAME")
        return Reply(f"Stopped **{name}**.", topic=name, thread_line="Stopped by alice.")

    world.handlers.behaviour["stop"] = stop


def answer(world: World, command: str, reply: str | Reply) -> None:
    async def handler(req: Request) -> str | Reply:
        return reply

    world.handlers.behaviour[command] = handler


def fence_lines(text: str) -> list[str]:
    return [line for line in text.split("\n") if line.lstrip().startswith("```")]


# --- 1. one thread per topic ---------------------------------------------------------------


async def test_spawn_opens_a_thread_that_later_replies_and_messages_use(
    discord_simcord_world: World, cast: Cast
) -> None:
    """An operator's `!spawn demo` is answered in the channel and a "demo" thread is
    started from that answer and bound in the ledger; a later answer about demo typed in
    the channel stays there and links to the thread; plain messages in the thread (→ `send
    demo ...`) and commands typed there stay in it."""
    spawn_opens_topic(discord_simcord_world)
    control, alice, bot = discord_simcord_world.control, cast.alice, me(discord_simcord_world)

    command = await alice.send(control, "!spawn demo")
    (inbound,) = await discord_simcord_world.deliver()
    assert (inbound.text, inbound.room, inbound.thread_id) == (
        "!spawn demo",
        discord_simcord_world.room,
        None,
    )
    assert inbound.sender == str(alice.id) and inbound.event_id == str(command.id)

    (root,) = posted(control, bot)
    assert root.content.startswith("Agent **demo** started\n\n_This thread follows **demo**")
    thread = discord_simcord_world.thread("demo")
    assert [t.name for t in control.threads] == ["demo"]
    assert thread.id == root.id  # started from the answer
    cached = discord_simcord_world.client.get_channel(thread.id)
    assert isinstance(cached, discord.Thread)
    assert cached.parent_id == control.id
    assert cached.auto_archive_duration == AUTO_ARCHIVE
    assert cached.owner_id == bot.id
    assert await discord_simcord_world.ledger.chat.thread_for_topic(
        "discord", discord_simcord_world.room, "demo"
    ) == str(thread.id)
    assert (
        await discord_simcord_world.ledger.chat.topic_for_thread(
            "discord", discord_simcord_world.room, str(thread.id)
        )
        == "demo"
    )
    assert posted(thread, bot) == []  # the answer is the thread's root, not repeated inside

    # An answer about demo typed in the channel: there, quoting it, linking to the thread.
    answer(
        discord_simcord_world,
        "watch",
        Reply("**demo** lately: working", topic="demo", open_thread=True),
    )
    watch = await discord_simcord_world.say(alice, control, "!watch demo")
    assert [t.name for t in control.threads] == ["demo"]
    assert posted(thread, bot) == []
    (root, again) = posted(control, bot)
    link = f"https://discord.com/channels/{discord_simcord_world.guild.id}/{thread.id}"
    assert again.content == f"**demo** lately: working\n\n→ [demo's thread]({link})"
    assert again.reference is not None and again.reference.message_id == watch.id

    # A plain message in the thread is for the agent: `send demo <text>`, answered there.
    said = await alice.send(thread, "is it done yet? it's late")
    (inbound,) = await discord_simcord_world.deliver()
    assert inbound.thread_id == str(thread.id) and inbound.room == discord_simcord_world.room
    assert discord_simcord_world.handlers.said()[-1] == (
        "send",
        {"NAME": "demo", "TEXT": "is it done yet? it's late"},
    )
    reply = posted(thread, bot)[-1]
    assert reply.content == "ran **send**"
    assert reply.reference is not None and reply.reference.message_id == said.id

    # A command typed in the thread is answered in the thread, quoting it.
    logs = await discord_simcord_world.say(alice, thread, "!logs demo")
    assert discord_simcord_world.handlers.said()[-1] == ("logs", {"NAME": "demo"})
    reply = posted(thread, bot)[-1]
    assert reply.content == "ran **logs**"
    assert reply.reference is not None and reply.reference.message_id == logs.id
    assert posted(control, bot) == [root, again]
    assert len(discord_simcord_world.handlers.requests) == 4


# --- 2. who is answered ----------------------------------------------------------------------


async def test_a_stranger_gets_no_answer_at_all(discord_simcord_world: World, cast: Cast) -> None:
    """The connector passes a stranger's commands on; the router answers none of them."""
    spawn_opens_topic(discord_simcord_world)
    await cast.mallory.send(discord_simcord_world.control, "!ps")
    await cast.mallory.send(discord_simcord_world.control, "!spawn demo")
    taken = await discord_simcord_world.deliver(2)
    assert [m.sender for m in taken] == [str(cast.mallory.id)] * 2
    assert taken[0].groups == ()

    assert posted(discord_simcord_world.control, me(discord_simcord_world)) == []
    assert discord_simcord_world.control.threads == []
    assert discord_simcord_world.handlers.requests == []
    assert await discord_simcord_world.ledger.audit.audit_entries() == []


async def test_a_viewer_by_role_reads_but_may_not_spawn(
    discord_simcord_world: World, cast: Cast
) -> None:
    """A member whose role is granted viewer (`role:<id>`) gets answers to read-only
    commands, and for `!spawn` a refusal naming the operator role."""
    spawn_opens_topic(discord_simcord_world)
    control, vic, bot = discord_simcord_world.control, cast.vic, me(discord_simcord_world)

    await vic.send(control, "!ps")
    (inbound,) = await discord_simcord_world.deliver()
    assert inbound.groups == (f"role:{cast.viewers.id}",)  # @everyone is left out
    await discord_simcord_world.say(vic, control, "!logs demo")
    await discord_simcord_world.say(vic, control, "!spawn demo")

    answers = [m.content for m in posted(control, bot)]
    assert answers[:2] == ["ran **ps**", "ran **logs**"]
    assert "`spawn` changes the fleet and needs the operator role" in answers[2]
    assert answers[2].endswith("you are a viewer")
    assert len(answers) == 3
    assert [name for name, _ in discord_simcord_world.handlers.said()] == ["ps", "logs"]
    assert [r.role for r in discord_simcord_world.handlers.requests] == [Role.VIEWER, Role.VIEWER]
    assert control.threads == []


async def test_a_users_own_entry_wins_over_their_roles(
    discord_simcord_world: World, cast: Cast
) -> None:
    """Listed by id as operator with a viewer role: may spawn. Listed by id as viewer
    with an operator role: may not."""
    spawn_opens_topic(discord_simcord_world)
    control, bot = discord_simcord_world.control, me(discord_simcord_world)

    await discord_simcord_world.say(cast.olga, control, "!spawn olga-1")
    assert [t.name for t in control.threads] == ["olga-1"]
    assert discord_simcord_world.handlers.requests[-1].role is Role.OPERATOR

    await cast.vera.send(control, "!spawn vera-1")
    (inbound,) = await discord_simcord_world.deliver()
    assert inbound.groups == (f"role:{cast.operators.id}",)  # the role alone would allow it
    refusal = posted(control, bot)[-1]
    assert "needs the operator role; you are a viewer" in refusal.content
    assert [t.name for t in control.threads] == ["olga-1"]
    assert [name for name, _ in discord_simcord_world.handlers.said()] == ["spawn"]


# --- 3. long replies and tables -------------------------------------------------------------


async def test_a_long_code_block_is_split_into_balanced_parts(
    discord_simcord_world: World, cast: Cast
) -> None:
    """~5000 characters in one code fence: several messages of at most 2000 characters,
    each with its fences balanced, the lines all there and in order."""
    lines = [f"{i:04d} compiling module_{i} ... ok" for i in range(160)]
    body = "Last lines of **demo**:\n```text\n" + "\n".join(lines) + "\n```"
    assert len(body) > 5000
    answer(discord_simcord_world, "logs", body)

    command = await discord_simcord_world.say(
        cast.alice, discord_simcord_world.control, "!logs demo"
    )
    parts = posted(discord_simcord_world.control, me(discord_simcord_world))
    assert len(parts) == 3
    for part in parts:
        assert len(part.content) <= LIMIT
        fences = fence_lines(part.content)
        assert len(fences) % 2 == 0 and fences, part.content
        assert all(f == "```" for f in fences[1::2])  # each closes what it opened
        assert all(f.startswith("```text") for f in fences[0::2])  # reopened as it began
    text = [
        line
        for part in parts
        for line in part.content.split("\n")
        if not line.lstrip().startswith("```")
    ]
    assert text == ["Last lines of **demo**:", *lines]
    assert parts[0].reference is not None and parts[0].reference.message_id == command.id
    assert [p.reference for p in parts[1:]] == [None, None]
    assert [p.id for p in parts] == sorted(p.id for p in parts)


async def test_tables_become_a_code_block_or_a_list(
    discord_simcord_world: World, cast: Cast
) -> None:
    """Discord has no tables: a narrow one is shown as aligned columns in a code block, a
    wide one as a list; never as raw pipes."""
    control, bot = discord_simcord_world.control, me(discord_simcord_world)
    narrow = "Agents:\n\n| name | state |\n|---|---|\n| demo | running |\n| docs | idle |"
    answer(discord_simcord_world, "ps", narrow)
    await discord_simcord_world.say(cast.alice, control, "!ps")
    shown = posted(control, bot)[-1].content
    assert "|" not in shown
    assert shown == "Agents:\n\n```\nname  state\n----  -------\ndemo  running\ndocs  idle\n```"

    note = "waiting for the integration tests of the payments service " * 2
    wide = f"| name | state | note |\n|---|---|---|\n| demo | running | {note.strip()} |"
    answer(discord_simcord_world, "ps", wide)
    await discord_simcord_world.say(cast.alice, control, "!ps")
    shown = posted(control, bot)[-1].content
    assert "|" not in shown
    assert shown == f"- **demo** — state: running · note: {note.strip()}"


# --- 4. mentions ----------------------------------------------------------------------------


async def test_replies_ping_nobody(discord_simcord_world: World, cast: Cast) -> None:
    """A reply with "@everyone", a user's and a role's mention is sent with mentions
    disabled: Discord notifies nobody (not even the person replied to)."""
    env, control = discord_simcord_world.env, discord_simcord_world.control
    text = f"@everyone look: <@{cast.vic.id}> and <@&{cast.operators.id}>"
    answer(discord_simcord_world, "ps", text)
    command = await discord_simcord_world.say(cast.alice, control, "!ps")

    reply = posted(control, me(discord_simcord_world))[-1]
    assert reply.content == text
    assert reply.reference is not None and reply.reference.message_id == command.id
    assert reply.mention_everyone is False
    stored = discord_simcord_world.stored(reply)
    assert stored.ping_user_ids == [] and stored.ping_role_ids == []
    assert stored.allowed_mentions.everyone is False
    assert stored.allowed_mentions.users == frozenset()
    assert stored.allowed_mentions.roles == frozenset()
    assert stored.allowed_mentions.replied_user is False
    (body,) = [
        r.json
        for r in env.http_requests
        if r.method == "POST" and r.path == f"/channels/{control.id}/messages"
    ]
    assert body is not None
    assert body["allowed_mentions"]["parse"] == []
    assert set(body["allowed_mentions"]) <= {"parse", "replied_user"}
    assert body["allowed_mentions"].get("replied_user", False) is False

    # Not vacuous: the bot may mention everyone here, and the same text from a person
    # (who may not: no Mention Everyone permission) does ping the user.
    guild = discord_simcord_world.client.get_guild(discord_simcord_world.guild.id)
    assert guild is not None and guild.me.guild_permissions.mention_everyone
    said = await cast.mallory.send(control, text)
    await discord_simcord_world.deliver()
    assert discord_simcord_world.stored(said).ping_user_ids == [cast.vic.id]


# --- 5. threads archived or deleted in Discord ------------------------------------------------


async def test_a_reply_unarchives_its_archived_thread(
    discord_simcord_world: World, cast: Cast
) -> None:
    """Discord archived the topic's thread: the next line for it unarchives the thread
    and lands inside."""
    spawn_opens_topic(discord_simcord_world)
    stop_notes_its_thread(discord_simcord_world)
    env, control, bot = (
        discord_simcord_world.env,
        discord_simcord_world.control,
        me(discord_simcord_world),
    )
    await discord_simcord_world.say(cast.alice, control, "!spawn demo")
    thread = discord_simcord_world.thread("demo")

    env.backend.edit_channel(thread.id, {}, thread_metadata={"archived": True})
    await discord_simcord_world.settle()
    assert (
        discord_simcord_world.client.get_channel(thread.id) is None
    )  # discord.py drops archived threads

    await discord_simcord_world.say(cast.alice, control, "!stop demo")
    assert [t.id for t in control.threads] == [thread.id]
    metadata = env.backend.channels[thread.id].thread_metadata
    assert metadata is not None and metadata.archived is False
    live = discord_simcord_world.client.get_channel(thread.id)
    assert isinstance(live, discord.Thread) and live.archived is False
    patches = [
        r.json
        for r in env.http_requests
        if r.method == "PATCH" and r.path == f"/channels/{thread.id}"
    ]
    assert patches == [{"archived": False}]
    (line,) = posted(thread, bot)
    assert line.content == "Stopped by alice."
    assert [m.content.split("\n")[0] for m in posted(control, bot)] == [
        "Agent **demo** started",
        "Stopped **demo**.",
    ]


async def test_a_deleted_thread_is_made_again_and_rebound(
    discord_simcord_world: World, cast: Cast
) -> None:
    """Discord deleted the topic's thread: the next line for it opens a new "demo"
    thread, the ledger moves demo to it, and messages typed there reach the agent."""
    spawn_opens_topic(discord_simcord_world)
    stop_notes_its_thread(discord_simcord_world)
    env, control, bot = (
        discord_simcord_world.env,
        discord_simcord_world.control,
        me(discord_simcord_world),
    )
    await discord_simcord_world.say(cast.alice, control, "!spawn demo")
    old = discord_simcord_world.thread("demo")

    env.backend.delete_channel(old.id)
    await discord_simcord_world.settle()
    assert control.threads == []

    await discord_simcord_world.say(cast.alice, control, "!stop demo")
    new = discord_simcord_world.thread("demo")
    assert new.id != old.id
    assert await discord_simcord_world.ledger.chat.thread_for_topic(
        "discord", discord_simcord_world.room, "demo"
    ) == str(new.id)
    assert (
        await discord_simcord_world.ledger.chat.topic_for_thread(
            "discord", discord_simcord_world.room, str(new.id)
        )
        == "demo"
    )
    cached = discord_simcord_world.client.get_channel(new.id)
    assert isinstance(cached, discord.Thread) and cached.auto_archive_duration == AUTO_ARCHIVE
    notice = posted(control, bot)[-1]
    assert notice.id == new.id
    assert notice.content == "**demo** — its thread was deleted; it continues here."
    assert [m.content for m in posted(new, bot)] == ["Stopped by alice."]

    said = await discord_simcord_world.say(cast.alice, new, "carry on")
    assert discord_simcord_world.handlers.said()[-1] == (
        "send",
        {"NAME": "demo", "TEXT": "carry on"},
    )
    reply = posted(new, bot)[-1]
    assert reply.content == "ran **send**"
    assert reply.reference is not None and reply.reference.message_id == said.id


# --- 6. images ----------------------------------------------------------------------------


async def test_images_are_attached_where_the_reply_goes(
    discord_simcord_world: World, cast: Cast, tmp_path: Path
) -> None:
    """A reply's PNG arrives as an attachment with the same bytes: with the answer in the
    channel; inside the thread (after its text-only root) for a topic reply; and with the
    last part of a long answer."""
    chart = tmp_path / "chart.png"
    chart.write_bytes(PNG)
    env, control, bot = (
        discord_simcord_world.env,
        discord_simcord_world.control,
        me(discord_simcord_world),
    )

    def attached(message: discord.Message) -> list[tuple[str, bytes | None]]:
        return [(a.filename, env.backend.cdn.get(a.url)) for a in message.attachments]

    answer(discord_simcord_world, "ps", Reply("Usage today:", images=(chart,)))
    await discord_simcord_world.say(cast.alice, control, "!ps")
    reply = posted(control, bot)[-1]
    assert reply.content == "Usage today:"
    assert attached(reply) == [("chart.png", PNG)]

    spawn_opens_topic(discord_simcord_world, images=(chart,))
    await discord_simcord_world.say(cast.alice, control, "!spawn demo")
    thread = discord_simcord_world.thread("demo")
    root = posted(control, bot)[-1]
    assert root.id == thread.id and root.attachments == []
    (inside,) = posted(thread, bot)
    assert inside.content == "" and attached(inside) == [("chart.png", PNG)]

    long = "\n\n".join(f"Paragraph {i}: " + "words " * 60 for i in range(12))
    answer(discord_simcord_world, "report", Reply(long, images=(chart,)))
    before = len(posted(control, bot))
    await discord_simcord_world.say(cast.alice, control, "!report")
    parts = posted(control, bot)[before:]
    assert len(parts) >= 2
    assert [attached(p) for p in parts[:-1]] == [[]] * (len(parts) - 1)
    assert attached(parts[-1]) == [("chart.png", PNG)]


# --- 7. what is not for the bot --------------------------------------------------------------


async def test_bots_webhooks_and_other_channels_are_ignored(
    discord_simcord_world: World, cast: Cast
) -> None:
    """The connector queues nothing from bots (its own posts included), webhooks, other
    channels of the server or their threads: the next message it hands on is the
    operator's in the control channel."""
    spawn_opens_topic(discord_simcord_world)
    env, guild, control, bot = (
        discord_simcord_world.env,
        discord_simcord_world.guild,
        discord_simcord_world.control,
        me(discord_simcord_world),
    )
    await discord_simcord_world.say(
        cast.alice, control, "!spawn demo"
    )  # the bot posts a root and a thread

    other_bot = guild.add_member(env.create_user("ci-bot", bot=True), roles=[cast.operators])
    await other_bot.send(control, "!spawn evil")
    await other_bot.send(discord_simcord_world.thread("demo"), "plain text to the agent")
    await guild.create_webhook(control, "deploys").send("!spawn hook")

    lounge = guild.create_text_channel("lounge")
    await cast.alice.send(lounge, "!spawn elsewhere")
    lounge_channel = discord_simcord_world.client.get_channel(lounge.id)
    assert isinstance(lounge_channel, discord.TextChannel)
    await lounge_channel.create_thread(name="chat", type=discord.ChannelType.public_thread)
    await discord_simcord_world.settle()
    (side,) = lounge.threads
    await cast.alice.send(side, "!spawn sideways")

    marker = await cast.alice.send(control, "!whoami")
    (inbound,) = await discord_simcord_world.deliver()
    assert inbound.event_id == str(marker.id) and inbound.text == "!whoami"

    assert [name for name, _ in discord_simcord_world.handlers.said()] == ["spawn", "whoami"]
    assert [t.name for t in control.threads] == ["demo"]
    assert posted(lounge, bot) == [] and posted(side, bot) == []


async def test_system_messages_by_people_are_not_commands(
    discord_simcord_world: World, cast: Cast
) -> None:
    """Discord itself posts, as the person who did it, "started a thread" in the parent
    (type 18, content: the thread's name) and "changed the channel name" inside a renamed
    thread (type 4, content: the new name). Neither is something they typed: naming a
    thread "!spawn x" must not spawn, renaming an agent's thread must not message it."""
    spawn_opens_topic(discord_simcord_world)
    control = discord_simcord_world.control
    await discord_simcord_world.say(cast.alice, control, "!spawn demo")
    demo = discord_simcord_world.thread("demo")

    channel = discord_simcord_world.client.get_channel(control.id)
    assert isinstance(channel, discord.TextChannel)
    made = await channel.create_thread(name="!spawn sneaky", type=discord.ChannelType.public_thread)
    await discord_simcord_world.settle()
    (sneaky,) = [t for t in control.threads if t.id == made.id]
    cast.guild.create_system_message(
        control, MessageType.THREAD_CREATED, author=cast.alice, target_channel=sneaky
    )
    live = discord_simcord_world.client.get_channel(demo.id)
    assert isinstance(live, discord.Thread)
    await live.edit(name="demo (done)")
    await discord_simcord_world.settle()
    cast.guild.create_system_message(demo, MessageType.CHANNEL_NAME_CHANGE, author=cast.alice)
    await discord_simcord_world.settle()

    marker = await cast.alice.send(control, "!whoami")
    assert (await discord_simcord_world.next_inbound()).event_id == str(marker.id)


async def test_dashboard_sends_its_link_in_a_direct_message_not_the_channel(
    discord_simcord_world: World, cast: Cast, clock: ManualClock
) -> None:
    """`!dashboard` in the control channel: the link arrives in the asker's DMs; the
    channel only hears that it was sent."""
    signins = SignIns(discord_simcord_world.ledger.dashboard, cast.acl(), clock)
    settings = DashboardSection(public_url="https://fleet.example.org").settings()
    commands = DashboardCommands(signins, settings, lambda _: discord_simcord_world.connector)
    discord_simcord_world.handlers.behaviour["dashboard"] = commands.dashboard
    await cast.alice.send(discord_simcord_world.control, "!dashboard")
    await discord_simcord_world.deliver()
    (answer,) = posted(discord_simcord_world.control, me(discord_simcord_world))
    assert "sent you a sign-in link in a direct message" in answer.content
    assert "/signin/" not in answer.content
    room, here = RoomId(discord_simcord_world.room), EventId(str(answer.id))
    assert discord_simcord_world.connector.message_link(room, here) == (
        f"https://discord.com/channels/{cast.guild.id}/{discord_simcord_world.room}/{answer.id}"
    )
    in_thread = discord_simcord_world.connector.message_link(room, here, ThreadId("42"))
    assert in_thread == f"https://discord.com/channels/{cast.guild.id}/42/{answer.id}"
    dm = discord_simcord_world.env.backend.get_dm_channel(cast.alice.id)
    [sent] = list(discord_simcord_world.env.backend.messages[dm.id].values())
    assert "https://fleet.example.org/signin/" in sent.content
    [secret] = re.findall(r"/signin/([A-Za-z0-9_-]{43})>", sent.content)  # an autolink
    assert await signins.redeem(secret) is not None
