"""A plain discord.py client for the fake Discord's own tests, and the moves they share:
log in and wait for on_ready, shut down, poll until a condition holds."""

from __future__ import annotations

import asyncio
import warnings
from collections.abc import Callable

from tests.fakes.discord.server import FakeDiscord

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
        self.events: list[str] = []  # gateway events in arrival order, for ordering checks

    async def before_identify_hook(self, shard_id: int | None, *, initial: bool = False) -> None:
        """No pause: discord.py's default sleeps 5 s before every IDENTIFY but the first."""

    async def on_ready(self) -> None:
        self.ready.set()

    async def on_resumed(self) -> None:
        self.resumed.set()

    async def on_message(self, message: discord.Message) -> None:
        self.received.append(message)
        self.events.append(f"message:{message.content}")

    async def on_guild_role_create(self, role: discord.Role) -> None:
        self.events.append(f"role:{role.name}")

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


def control(bot: Bot, fake: FakeDiscord) -> discord.TextChannel:
    channel = bot.get_channel(fake.control_channel_id)
    assert isinstance(channel, discord.TextChannel)
    return channel


async def thread_of(bot: Bot, fake: FakeDiscord, name: str) -> discord.Thread:
    root = await control(bot, fake).send(f"{name} started")
    thread = await root.create_thread(name=name)
    await eventually(lambda: bot.get_channel(thread.id) is not None)
    return thread
