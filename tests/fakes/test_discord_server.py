"""The fake Discord serves the real discord.py client: login, gateway, REST, reconnects."""

from __future__ import annotations

import asyncio
import io
import warnings
from collections.abc import AsyncIterator, Callable

import pytest
import yarl

from tests.fakes.discord_server import FakeDiscord, State

# discord.py imports the stdlib audioop, deprecated since 3.11; with filterwarnings=error
# the bare import would fail collection.
with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)
    import discord

PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 4
TIMEOUT = 3.0


class Bot(discord.Client):
    """A plain discord.py client that records what the gateway delivers."""

    def __init__(self, *, message_content: bool = True) -> None:
        intents = discord.Intents.default()
        intents.message_content = message_content
        # on_ready waits guild_ready_timeout after the last GUILD_CREATE (2 s by default).
        super().__init__(intents=intents, guild_ready_timeout=0.01)
        self.ready = asyncio.Event()
        self.resumed = asyncio.Event()
        self.received: list[discord.Message] = []
        self.created_threads: list[discord.Thread] = []

    async def before_identify_hook(self, shard_id: int | None, *, initial: bool = False) -> None:
        """No pause: discord.py's default sleeps 5 s before every IDENTIFY but the first."""

    async def on_ready(self) -> None:
        self.ready.set()

    async def on_resumed(self) -> None:
        self.resumed.set()

    async def on_message(self, message: discord.Message) -> None:
        self.received.append(message)

    async def on_thread_create(self, thread: discord.Thread) -> None:
        self.created_threads.append(thread)

    def contents(self) -> list[str]:
        return [m.content for m in self.received]


async def eventually(predicate: Callable[[], object], within: float = TIMEOUT) -> None:
    """Poll until predicate() is truthy, failing at the deadline."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while not predicate():
        if loop.time() > deadline:
            raise AssertionError("condition not met before the deadline")
        await asyncio.sleep(0.005)


@pytest.fixture
async def fake(monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[FakeDiscord]:
    """A started fake with discord.py's REST base and gateway URL pointed at it."""
    async with FakeDiscord() as server:
        # A plain Client never asks /gateway/bot: both globals must be patched.
        monkeypatch.setattr(discord.http.Route, "BASE", server.api_base)
        monkeypatch.setattr(
            discord.gateway.DiscordWebSocket, "DEFAULT_GATEWAY", yarl.URL(server.gateway_url)
        )
        yield server


async def run(bot: Bot, token: str) -> asyncio.Task[None]:
    task = asyncio.create_task(bot.start(token))
    ready = asyncio.create_task(bot.ready.wait())
    await asyncio.wait({task, ready}, timeout=TIMEOUT, return_when=asyncio.FIRST_COMPLETED)
    ready.cancel()
    return task


async def shut(bot: Bot, task: asyncio.Task[None]) -> BaseException | None:
    """Close the client (its HTTP session and websocket) and return how start() ended."""
    await bot.close()
    await asyncio.wait({task}, timeout=TIMEOUT)
    return task.exception() if task.done() and not task.cancelled() else None


@pytest.fixture
async def bot(fake: FakeDiscord) -> AsyncIterator[Bot]:
    """A real discord.py client logged in to the fake and ready."""
    client = Bot()
    task = await run(client, fake.token)
    try:
        assert client.ready.is_set(), "on_ready never fired"
        yield client
    finally:
        assert await shut(client, task) is None


def control(bot: Bot, fake: FakeDiscord) -> discord.TextChannel:
    channel = bot.get_channel(fake.control_channel_id)
    assert isinstance(channel, discord.TextChannel)
    return channel


# --- login and gateway ---------------------------------------------------------------


async def test_login_identifies_once_and_sees_the_guild(fake: FakeDiscord, bot: Bot) -> None:
    """Login reaches on_ready with the bot user, the guild and its control channel."""
    assert bot.user is not None and bot.user.id == int(fake.bot_user["id"]) and bot.user.bot
    assert bot.application_id == fake.application_id
    assert [g.id for g in bot.guilds] == [fake.guild_id]
    assert control(bot, fake).name == "fleet-control"
    assert (fake.identifies, fake.resumes, fake.gateway_paths) == (1, 0, ["/"])
    assert fake.heartbeats >= 1  # discord.py beats right after HELLO


async def test_user_message_reaches_on_message(fake: FakeDiscord, bot: Bot) -> None:
    """A human's message arrives in on_message with its content, author and channel."""
    await fake.post_user_message(fake.control_channel_id, "alice", "!ps")
    await eventually(lambda: bot.received)
    (message,) = bot.received
    assert message.content == "!ps" and message.author.name == "alice"
    assert not message.author.bot and message.channel.id == fake.control_channel_id
    assert isinstance(message.author, discord.Member)


async def test_bot_message_is_recorded_and_echoed(fake: FakeDiscord, bot: Bot) -> None:
    """channel.send returns the Message, the fake records it, MESSAGE_CREATE echoes it."""
    sent = await control(bot, fake).send("hello fleet")
    (posted,) = fake.messages(fake.control_channel_id)
    assert (posted.id, posted.content) == (sent.id, "hello fleet")
    assert sent.author == bot.user
    await eventually(lambda: bot.received)
    assert bot.received[0].id == sent.id


async def test_thread_from_message_round_trip(fake: FakeDiscord, bot: Bot) -> None:
    """A thread started from a message is created, usable both ways, archivable, deletable."""
    root = await control(bot, fake).send("job started")
    thread = await root.create_thread(name="job-1")
    assert thread.id == root.id and thread.parent_id == fake.control_channel_id
    await eventually(lambda: bot.created_threads)
    assert bot.get_channel(thread.id) is not None
    await thread.send("progress 50%")
    assert [m.content for m in fake.messages(thread.id)] == ["progress 50%"]
    await fake.post_user_message(thread.id, "alice", "status?")
    await eventually(lambda: "status?" in bot.contents())
    reply = bot.received[-1]
    assert isinstance(reply.channel, discord.Thread) and reply.channel.id == thread.id
    (created,) = fake.threads
    assert created["type"] == 11 and created["parent_id"] == str(fake.control_channel_id)

    await thread.edit(archived=True)
    fetched = await bot.fetch_channel(thread.id)
    assert isinstance(fetched, discord.Thread) and fetched.archived
    await thread.delete()
    assert fake.threads == []
    with pytest.raises(discord.NotFound):
        await bot.fetch_channel(thread.id)


async def test_forced_reconnect_resumes_and_replays(fake: FakeDiscord, bot: Bot) -> None:
    """After op 7 the client RESUMEs at resume_gateway_url; one sent meanwhile arrives once."""
    await fake.force_reconnect()
    await fake.post_user_message(fake.control_channel_id, "alice", "while away")
    await asyncio.wait_for(bot.resumed.wait(), TIMEOUT)
    await eventually(lambda: "while away" in bot.contents())
    await fake.post_user_message(fake.control_channel_id, "alice", "after")
    await eventually(lambda: "after" in bot.contents())
    assert bot.contents() == ["while away", "after"]
    assert (fake.identifies, fake.resumes) == (1, 1)
    assert fake.gateway_paths == ["/", "/resume/"]


async def test_invalid_session_makes_the_client_identify_again(fake: FakeDiscord, bot: Bot) -> None:
    """Op 9 (not resumable) makes discord.py IDENTIFY afresh on the default gateway."""
    await fake.invalidate_session()
    await eventually(lambda: fake.identifies == 2 and fake.connected)
    assert fake.resumes == 0 and fake.gateway_paths == ["/", "/"]
    await fake.post_user_message(fake.control_channel_id, "bob", "still there?")
    await eventually(lambda: "still there?" in bot.contents())


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


async def test_rate_limited_send_is_retried(fake: FakeDiscord, bot: Bot) -> None:
    """A 429 with retry_after is slept through by discord.py and the send then succeeds."""
    path = f"/channels/{fake.control_channel_id}/messages"
    fake.rate_limit_next("POST", path, retry_after=0.05)
    sent = await control(bot, fake).send("after the limit")
    assert fake.rate_limited == [("POST", path)]
    assert [m.id for m in fake.messages(fake.control_channel_id)] == [sent.id]


async def test_image_attachment_bytes_arrive(fake: FakeDiscord, bot: Bot) -> None:
    """A file sent as multipart is recorded with its bytes and served back from its URL."""
    sent = await control(bot, fake).send("chart", file=discord.File(io.BytesIO(PNG), "pace.png"))
    (posted,) = fake.messages(fake.control_channel_id)
    (attachment,) = posted.attachments
    assert (attachment.filename, attachment.data, attachment.content_type) == (
        "pace.png",
        PNG,
        "image/png",
    )
    assert sent.attachments[0].filename == "pace.png" and sent.attachments[0].size == len(PNG)
    assert await sent.attachments[0].read() == PNG


async def test_user_attachment_is_readable_by_the_bot(fake: FakeDiscord, bot: Bot) -> None:
    """A human's uploaded file reaches on_message and its bytes can be fetched."""
    await fake.post_user_message(
        fake.control_channel_id, "alice", "", files=[("log.txt", b"line 1\n")]
    )
    await eventually(lambda: bot.received)
    (attachment,) = bot.received[0].attachments
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
