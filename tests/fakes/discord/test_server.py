"""The fake Discord serves the real discord.py client: login, gateway, REST, reconnects,
slash commands and interactions."""

from __future__ import annotations

import asyncio
import io
import json
import warnings
from typing import Any

import aiohttp
import pytest

from tests.fakes.discord.client import (
    PNG,
    TIMEOUT,
    Bot,
    control,
    eventually,
    run,
    shut,
    thread_of,
)
from tests.fakes.discord.server import FakeDiscord
from tests.fakes.discord.wire import ATTACHMENT_SIZE_LIMIT
from tests.fakes.loopback import State

# discord.py imports the stdlib audioop, deprecated since 3.11; with filterwarnings=error
# the bare import would fail collection.
with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)
    import discord


# --- login and gateway ---------------------------------------------------------------


async def test_login_identifies_once_and_sees_the_guild(
    fake: FakeDiscord, discord_client: Bot
) -> None:
    """Login reaches on_ready with the bot user, the guild and its control channel."""
    assert (
        discord_client.user is not None
        and discord_client.user.id == int(fake.bot_user["id"])
        and discord_client.user.bot
    )
    assert discord_client.application_id == fake.application_id
    assert [g.id for g in discord_client.guilds] == [fake.guild_id]
    assert control(discord_client, fake).name == "fleet-control"
    assert (fake.identifies, fake.resumes, fake.gateway_paths) == (1, 0, ["/"])
    assert fake.heartbeats >= 1  # discord.py beats right after HELLO


async def test_user_message_reaches_on_message(fake: FakeDiscord, discord_client: Bot) -> None:
    """A human's message arrives in on_message with its content, author and channel."""
    await fake.post_user_message(fake.control_channel_id, "alice", "!ps")
    await eventually(lambda: discord_client.received)
    (message,) = discord_client.received
    assert message.content == "!ps" and message.author.name == "alice"
    assert not message.author.bot and message.channel.id == fake.control_channel_id
    assert isinstance(message.author, discord.Member)


async def test_bot_message_is_recorded_and_echoed(fake: FakeDiscord, discord_client: Bot) -> None:
    """channel.send returns the Message, the fake records it, MESSAGE_CREATE echoes it."""
    sent = await control(discord_client, fake).send("hello fleet")
    (posted,) = fake.messages(fake.control_channel_id)
    assert (posted.id, posted.content) == (sent.id, "hello fleet")
    assert sent.author == discord_client.user
    await eventually(lambda: discord_client.received)
    assert discord_client.received[0].id == sent.id


async def test_thread_from_message_round_trip(fake: FakeDiscord, discord_client: Bot) -> None:
    """A thread started from a message is created, usable both ways, archivable, deletable."""
    root = await control(discord_client, fake).send("job started")
    thread = await root.create_thread(name="job-1")
    assert thread.id == root.id and thread.parent_id == fake.control_channel_id
    await eventually(lambda: discord_client.created_threads)
    assert discord_client.get_channel(thread.id) is not None
    await thread.send("progress 50%")
    assert [m.content for m in fake.messages(thread.id)] == ["progress 50%"]
    await fake.post_user_message(thread.id, "alice", "status?")
    await eventually(lambda: "status?" in discord_client.contents())
    reply = discord_client.received[-1]
    assert isinstance(reply.channel, discord.Thread) and reply.channel.id == thread.id
    (created,) = fake.threads
    assert created["type"] == 11 and created["parent_id"] == str(fake.control_channel_id)

    await thread.edit(archived=True)
    fetched = await discord_client.fetch_channel(thread.id)
    assert isinstance(fetched, discord.Thread) and fetched.archived
    await thread.delete()
    assert fake.threads == []
    with pytest.raises(discord.NotFound):
        await discord_client.fetch_channel(thread.id)


async def test_forced_reconnect_resumes_and_replays(fake: FakeDiscord, discord_client: Bot) -> None:
    """After op 7 the client RESUMEs at resume_gateway_url; one sent meanwhile arrives once."""
    await fake.force_reconnect()
    await fake.post_user_message(fake.control_channel_id, "alice", "while away")
    await asyncio.wait_for(discord_client.resumed.wait(), TIMEOUT)
    await eventually(lambda: "while away" in discord_client.contents())
    await fake.post_user_message(fake.control_channel_id, "alice", "after")
    await eventually(lambda: "after" in discord_client.contents())
    assert discord_client.contents() == ["while away", "after"]
    assert (fake.identifies, fake.resumes) == (1, 1)
    assert fake.gateway_paths == ["/", "/resume/"]


async def test_invalid_session_makes_the_client_identify_again(
    fake: FakeDiscord, discord_client: Bot
) -> None:
    """Op 9 (not resumable) makes discord.py IDENTIFY afresh on the default gateway."""
    discord_client.ready.clear()
    await fake.invalidate_session()
    await eventually(lambda: fake.identifies == 2 and fake.connected)
    # The new READY fires on_ready again after guild_ready_timeout; waiting for it keeps
    # that event task from being created while the fixture tears the client down.
    await asyncio.wait_for(discord_client.ready.wait(), TIMEOUT)
    assert fake.resumes == 0 and fake.gateway_paths == ["/", "/"]
    await fake.post_user_message(fake.control_channel_id, "bob", "still there?")
    await eventually(lambda: "still there?" in discord_client.contents())


# --- refusals ------------------------------------------------------------------------


async def test_denied_message_content_intent_closes_4014(fake: FakeDiscord) -> None:
    """Asking for a refused message-content intent ends start() with PrivilegedIntentsRequired."""
    fake.deny_message_content_intent = True
    client = Bot()
    task = await run(client, fake.token)
    error = await shut(client, task)
    assert isinstance(error, discord.PrivilegedIntentsRequired)
    assert not client.ready.is_set() and fake.identifies == 1


async def test_without_the_intent_bit_a_denied_bot_connects(fake: FakeDiscord) -> None:
    """The 4014 refusal applies only when IDENTIFY carries the message-content bit."""
    fake.deny_message_content_intent = True
    client = Bot(message_content=False)
    task = await run(client, fake.token)
    assert client.ready.is_set()
    assert await shut(client, task) is None


async def test_wrong_token_fails_login(fake: FakeDiscord) -> None:
    """A token the fake does not know is a 401 on GET /users/@me: LoginFailure."""
    client = Bot()
    task = await run(client, "not-the-token")
    assert isinstance(await shut(client, task), discord.LoginFailure)


# --- REST details --------------------------------------------------------------------


async def test_rate_limited_send_is_retried(fake: FakeDiscord, discord_client: Bot) -> None:
    """A 429 with retry_after is slept through by discord.py and the send then succeeds."""
    path = f"/channels/{fake.control_channel_id}/messages"
    fake.rate_limit_next("POST", path, retry_after=0.05)
    sent = await control(discord_client, fake).send("after the limit")
    assert fake.rate_limited == [("POST", path)]
    assert [m.id for m in fake.messages(fake.control_channel_id)] == [sent.id]


async def test_image_attachment_bytes_arrive(fake: FakeDiscord, discord_client: Bot) -> None:
    """A file sent as multipart is recorded with its bytes and served back from its URL."""
    sent = await control(discord_client, fake).send(
        "chart", file=discord.File(io.BytesIO(PNG), "pace.png")
    )
    (posted,) = fake.messages(fake.control_channel_id)
    (attachment,) = posted.attachments
    assert (attachment.filename, attachment.data, attachment.content_type) == (
        "pace.png",
        PNG,
        "image/png",
    )
    assert sent.attachments[0].filename == "pace.png" and sent.attachments[0].size == len(PNG)
    assert await sent.attachments[0].read() == PNG


async def test_user_attachment_is_readable_by_the_bot(
    fake: FakeDiscord, discord_client: Bot
) -> None:
    """A human's uploaded file reaches on_message and its bytes can be fetched."""
    await fake.post_user_message(
        fake.control_channel_id, "alice", "", files=[("log.txt", b"line 1\n")]
    )
    await eventually(lambda: discord_client.received)
    (attachment,) = discord_client.received[0].attachments
    assert attachment.content_type == "text/plain"
    assert await attachment.read() == b"line 1\n"


async def test_lifecycle_is_one_shot() -> None:
    """base_url needs a started server; start is one-shot; stop moves to STOPPED."""
    server = FakeDiscord()
    with pytest.raises(RuntimeError):
        _ = server.api_base
    await server.start()
    seen = [server.state]
    assert server.gateway_url.startswith("ws://127.0.0.1:")
    with pytest.raises(RuntimeError):
        await server.start()
    await server.stop()
    seen.append(server.state)
    assert seen == [State.RUNNING, State.STOPPED]


# --- users and roles -----------------------------------------------------------------


async def test_user_id_is_known_before_the_user_posts(
    fake: FakeDiscord, discord_client: Bot
) -> None:
    """user_id gives a human's snowflake up front; their later message carries that id."""
    carol = fake.user_id("carol")
    assert fake.user_id("carol") == carol and carol != int(fake.bot_user["id"])
    await fake.post_user_message(fake.control_channel_id, "carol", "hi")
    await eventually(lambda: discord_client.received)
    assert discord_client.received[0].author.id == carol


async def test_roles_arrive_in_guild_create_and_on_members(fake: FakeDiscord) -> None:
    """Roles added before login are in GUILD_CREATE with @everyone; a grant shows on the author."""
    operators = fake.add_role("operators")
    fake.grant_role("alice", operators)
    client = Bot()
    task = await run(client, fake.token)
    try:
        guild = client.get_guild(fake.guild_id)
        assert guild is not None and guild.default_role.id == fake.guild_id
        role = guild.get_role(operators)
        assert role is not None and role.name == "operators" and not role.managed
        await fake.post_user_message(fake.control_channel_id, "alice", "!stop")
        await fake.post_user_message(fake.control_channel_id, "bob", "!stop")
        await eventually(lambda: len(client.received) == 2)
        alice, bob = (m.author for m in client.received)
        assert isinstance(alice, discord.Member) and isinstance(bob, discord.Member)
        assert alice.roles == [guild.default_role, role]
        assert bob.roles == [guild.default_role]
    finally:
        assert await shut(client, task) is None


async def test_role_added_while_connected_is_dispatched_first(
    fake: FakeDiscord, discord_client: Bot
) -> None:
    """add_role on a live session sends GUILD_ROLE_CREATE ahead of any later dispatch."""
    oncall = fake.add_role("oncall")
    fake.grant_role("alice", oncall)
    await fake.post_user_message(fake.control_channel_id, "alice", "paging")
    await eventually(lambda: discord_client.received)
    assert discord_client.events == ["role:oncall", "message:paging"]
    author = discord_client.received[0].author
    assert isinstance(author, discord.Member)
    assert [r.name for r in author.roles] == ["@everyone", "oncall"]
    with pytest.raises(ValueError):
        fake.grant_role("alice", fake.guild_id)  # @everyone is never listed in member.roles


# --- what the bot sends --------------------------------------------------------------


async def test_request_body_and_allowed_mentions_are_recorded(
    fake: FakeDiscord, discord_client: Bot
) -> None:
    """The bot's JSON body is kept; allowed_mentions decides who is in the echoed mentions."""
    alice = fake.user_id("alice")
    channel = control(discord_client, fake)
    quiet = await channel.send(f"<@{alice}> done", allowed_mentions=discord.AllowedMentions.none())
    loud = await channel.send(f"<@{alice}> done @everyone")
    first, second = fake.messages(fake.control_channel_id)
    assert first.request["allowed_mentions"] == {"parse": []}
    assert first.request["content"] == f"<@{alice}> done"
    assert "allowed_mentions" not in second.request
    assert (quiet.mentions, quiet.mention_everyone) == ([], False)
    assert [u.id for u in loud.mentions] == [alice] and loud.mention_everyone
    human = await fake.post_user_message(fake.control_channel_id, "alice", "thanks")
    assert human.request == {}


async def test_reply_echoes_message_reference(fake: FakeDiscord, discord_client: Bot) -> None:
    """A reply is sent with message_reference and comes back a type-19 message resolving it."""
    alice = fake.user_id("alice")
    await fake.post_user_message(fake.control_channel_id, "alice", "status?")
    await eventually(lambda: discord_client.received)
    question = discord_client.received[0]
    quiet = await question.reply("all green", mention_author=False)
    loud = await question.reply("all green")
    first, second = fake.messages(fake.control_channel_id)
    where = {"channel_id": fake.control_channel_id, "guild_id": fake.guild_id}
    assert first.request["message_reference"] == {"message_id": question.id, **where}
    assert first.request["allowed_mentions"]["replied_user"] is False
    assert first.payload["message_reference"] == {
        "type": 0,
        "message_id": str(question.id),
        "channel_id": str(fake.control_channel_id),
        "guild_id": str(fake.guild_id),
    }
    assert quiet.type is discord.MessageType.reply and quiet.reference is not None
    assert quiet.reference.message_id == question.id
    resolved = quiet.reference.resolved
    assert isinstance(resolved, discord.Message) and resolved.content == "status?"
    assert quiet.mentions == [] and [u.id for u in loud.mentions] == [alice]
    assert second.payload["referenced_message"]["id"] == str(question.id)


async def test_reply_to_an_unknown_message(fake: FakeDiscord, discord_client: Bot) -> None:
    """An unknown reference is a 50035 unless fail_if_not_exists is false: then no reference."""
    channel = control(discord_client, fake)
    missing = discord.MessageReference(message_id=12345, channel_id=channel.id)
    with pytest.raises(discord.HTTPException) as refused:
        await channel.send("re", reference=missing)
    assert (refused.value.status, refused.value.code) == (400, 50035)
    assert "In message_reference: Unknown message" in refused.value.text
    lenient = discord.MessageReference(
        message_id=12345, channel_id=channel.id, fail_if_not_exists=False
    )
    sent = await channel.send("re", reference=lenient)
    assert sent.reference is None and sent.type is discord.MessageType.default


async def test_embed_only_message_is_echoed(fake: FakeDiscord, discord_client: Bot) -> None:
    """A message with embeds and no content is valid; the embeds come back as sent."""
    embed = discord.Embed(title="Fleet", description="3 running", colour=0x2ECC71)
    embed.add_field(name="job-1", value="50%")
    sent = await control(discord_client, fake).send(embed=embed)
    (posted,) = fake.messages(fake.control_channel_id)
    assert posted.content == "" and posted.request["embeds"] == [embed.to_dict()]
    (echoed,) = sent.embeds
    assert (echoed.title, echoed.description, echoed.colour) == (
        "Fleet",
        "3 running",
        discord.Colour(0x2ECC71),
    )
    assert [(f.name, f.value) for f in echoed.fields] == [("job-1", "50%")]


async def test_message_limits_are_enforced(fake: FakeDiscord, discord_client: Bot) -> None:
    """Empty and whitespace-only messages are 50006; over-long content or embeds are 50035."""
    channel = control(discord_client, fake)
    for empty in (None, "  \n"):
        with pytest.raises(discord.HTTPException) as refused:
            await channel.send(empty)
        assert (refused.value.status, refused.value.code) == (400, 50006)
    await channel.send("x" * 2000)
    with pytest.raises(discord.HTTPException) as refused:
        await channel.send("x" * 2001)
    assert (refused.value.status, refused.value.code) == (400, 50035)
    with pytest.raises(discord.HTTPException) as refused:
        await channel.send(embed=discord.Embed(description="y" * 4097))
    assert refused.value.code == 50035
    assert "In embeds.0.description: Must be 4096 or fewer in length." in refused.value.text
    big = [discord.Embed(description="z" * 4000), discord.Embed(description="z" * 2001)]
    with pytest.raises(discord.HTTPException) as refused:
        await channel.send(embeds=big)
    assert "In embeds.1: Embed size exceeds maximum size of 6000" in refused.value.text
    assert [len(m.content) for m in fake.messages(fake.control_channel_id)] == [2000]


async def test_content_limit_error_has_discords_shape(fake: FakeDiscord) -> None:
    """The raw 400 body for content over 2000 characters, exactly as Discord words it."""
    url = f"{fake.api_base}/channels/{fake.control_channel_id}/messages"
    headers = {"Authorization": f"Bot {fake.token}"}
    async with (
        aiohttp.ClientSession() as session,
        session.post(url, json={"content": "x" * 2001}, headers=headers) as response,
    ):
        assert response.status == 400
        body = await response.json()
    assert body == {
        "code": 50035,
        "message": "Invalid Form Body",
        "errors": {
            "content": {
                "_errors": [
                    {"code": "BASE_TYPE_MAX_LENGTH", "message": "Must be 2000 or fewer in length."}
                ]
            }
        },
    }
    assert fake.requests == [("POST", f"/channels/{fake.control_channel_id}/messages")]


def _form(payload: dict[str, Any] | None, *files: tuple[str, str, bytes]) -> aiohttp.FormData:
    """A multipart body: ``payload_json`` (unless None), then each (field, filename, bytes)."""
    form = aiohttp.FormData()
    if payload is not None:
        form.add_field("payload_json", json.dumps(payload), content_type="application/json")
    for field, filename, data in files:
        stream = io.BytesIO(data)
        form.add_field(field, stream, filename=filename, content_type="application/octet-stream")
    return form


@pytest.mark.parametrize(
    ("payload", "files", "status"),
    [
        # Discord's own shape, as discord.py sends it: accepted.
        ({"content": "d", "attachments": [{"id": 0, "filename": "a.diff"}]},
         [("files[0]", "a.diff", b"+x\n")], 200),
        # Without the attachments list the files still go, in field order.
        ({"content": "d"}, [("files[0]", "a.diff", b"+x\n")], 200),
        # A file under another field name, twice the same index, or not listed.
        ({"content": "d"}, [("file", "a.diff", b"+x\n")], 400),
        ({"content": "d"}, [("files[0]", "a.diff", b"1"), ("files[0]", "b.diff", b"2")], 400),
        ({"content": "d", "attachments": [{"id": 1, "filename": "a.diff"}]},
         [("files[0]", "a.diff", b"+x\n")], 400),
        ({"content": "d", "attachments": [{"id": 0, "filename": "b.diff"}]},
         [("files[0]", "a.diff", b"+x\n")], 400),
        # No payload_json; eleven files; one past the size limit.
        (None, [("files[0]", "a.diff", b"+x\n")], 400),
        ({"content": "d"}, [(f"files[{i}]", f"{i}.diff", b"x") for i in range(11)], 400),
        ({"content": "d"}, [("files[0]", "big.diff", b"x" * (ATTACHMENT_SIZE_LIMIT + 1))], 413),
    ],
)  # fmt: skip
async def test_a_multipart_upload_is_read_as_discord_reads_it(
    fake: FakeDiscord,
    payload: dict[str, Any] | None,
    files: list[tuple[str, str, bytes]],
    status: int,
) -> None:
    """``payload_json`` and ``files[n]`` parts, each listed when the payload lists them, ten
    at most, none too large: anything else is refused, and nothing of it is stored."""
    url = f"{fake.api_base}/channels/{fake.control_channel_id}/messages"
    headers = {"Authorization": f"Bot {fake.token}"}
    async with (
        aiohttp.ClientSession() as session,
        session.post(url, data=_form(payload, *files), headers=headers) as response,
    ):
        assert response.status == status, await response.text()
    stored = fake.messages(fake.control_channel_id)
    if status == 200:
        ((_, filename, data),) = files
        (posted,) = stored
        assert [(a.filename, a.data) for a in posted.attachments] == [(filename, data)]
    else:
        assert stored == [] and fake._files == {}


# --- threads archived or deleted by Discord ------------------------------------------


async def test_server_side_archive_and_delete(fake: FakeDiscord, discord_client: Bot) -> None:
    """archive_thread drops the thread from discord.py's cache; fetch still finds it archived;
    after delete_thread, fetching it is NotFound."""
    thread = await thread_of(discord_client, fake, "job-1")
    await fake.archive_thread(thread.id)
    await eventually(lambda: discord_client.get_channel(thread.id) is None)
    fetched = await discord_client.fetch_channel(thread.id)
    assert isinstance(fetched, discord.Thread) and fetched.archived and not fetched.locked
    assert ("GET", f"/channels/{thread.id}") in fake.requests
    await fake.delete_thread(thread.id)
    assert fake.threads == []
    with pytest.raises(discord.NotFound):
        await discord_client.fetch_channel(thread.id)

    live = await thread_of(discord_client, fake, "job-2")
    await fake.delete_thread(live.id)
    await eventually(lambda: discord_client.get_channel(live.id) is None)
    with pytest.raises(KeyError):
        await fake.archive_thread(live.id)


async def test_bot_post_unarchives_unless_locked(fake: FakeDiscord, discord_client: Bot) -> None:
    """The bot may post into an archived thread (which reopens it) but not a locked one: 50083."""
    thread = await thread_of(discord_client, fake, "job-1")
    await fake.archive_thread(thread.id)
    await eventually(lambda: discord_client.get_channel(thread.id) is None)
    await thread.send("still here")
    await eventually(lambda: discord_client.get_channel(thread.id) is not None)
    assert not fake.threads[0]["thread_metadata"]["archived"]

    await fake.archive_thread(thread.id, locked=True)
    with pytest.raises(discord.HTTPException) as refused:
        await thread.send("anyone?")
    assert (refused.value.status, refused.value.code, refused.value.text) == (
        400,
        50083,
        "Thread is archived",
    )
    assert [m.content for m in fake.messages(thread.id)] == ["still here"]


async def test_every_authorized_request_is_counted(fake: FakeDiscord, discord_client: Bot) -> None:
    """requests lists (method, path) for each authorized call, login included, in order."""
    assert ("GET", "/users/@me") in fake.requests
    before = len(fake.requests)
    path = f"/channels/{fake.control_channel_id}/messages"
    fake.rate_limit_next("POST", path)
    await control(discord_client, fake).send("counted")
    assert fake.requests[before:] == [("POST", path), ("POST", path)]  # the 429, then the retry


async def test_a_message_can_be_delivered_again(fake: FakeDiscord, discord_client: Bot) -> None:
    """At-least-once delivery: the same MESSAGE_CREATE (same id) arrives a second time."""
    posted = await fake.post_user_message(fake.control_channel_id, "ann", "!ps")
    await eventually(lambda: len(discord_client.received) == 1)
    assert await fake.redeliver_last_user_message(fake.control_channel_id) == posted.id
    await eventually(lambda: len(discord_client.received) == 2)
    assert [m.id for m in discord_client.received] == [posted.id, posted.id]
