"""The fake Discord's slash commands and interactions, served to the real discord.py client:
a guild command synced, an interaction run, answered, deferred, followed up and edited."""

from __future__ import annotations

import asyncio
import io
import warnings
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import aiohttp
import pytest

from tests.fakes.discord.server import FakeDiscord

# discord.py imports the stdlib audioop, deprecated since 3.11; with filterwarnings=error
# the bare import would fail collection.
with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)
    import discord

from tests.fakes.discord.client import PNG, Bot, control, eventually, run, shut, thread_of

# --- slash commands and interactions -------------------------------------------------

Answer = Callable[[discord.Interaction, str], Awaitable[Any]]


async def reply_ran(interaction: discord.Interaction, text: str) -> Any:
    return await interaction.response.send_message(f"ran {text}")


class SlashBot(Bot):
    """A client whose CommandTree holds one guild command, /fleet text:<str>; each call
    runs ``answer`` and records the interaction, the option and what answer returned."""

    def __init__(self, guild_id: int) -> None:
        super().__init__()
        self.guild = discord.Object(guild_id)
        self.tree = discord.app_commands.CommandTree(self)
        self.answer: Answer = reply_ran
        self.invocations: list[tuple[discord.Interaction, str]] = []
        self.results: list[Any] = []  # what answer returned, or the exception it raised

        @self.tree.command(name="fleet", description="Run a fleet command", guild=self.guild)
        async def fleet(interaction: discord.Interaction, text: str) -> None:
            try:
                self.results.append(await self.answer(interaction, text))
            except Exception as error:
                self.results.append(error)
            self.invocations.append((interaction, text))


@pytest.fixture
async def slash(fake: FakeDiscord) -> AsyncIterator[SlashBot]:
    """A logged-in client with /fleet in its tree, not yet synced."""
    client = SlashBot(fake.guild_id)
    task = await run(client, fake.token)
    try:
        assert client.ready.is_set(), "on_ready never fired"
        yield client
    finally:
        assert await shut(client, task) is None


async def use_fleet(
    fake: FakeDiscord, bot: SlashBot, text: str, *, channel: int = 0, author: str = "alice"
) -> tuple[str, discord.Interaction]:
    """Sync the tree, have ``author`` run /fleet, wait for the callback to finish."""
    if not fake.guild_commands:
        await bot.tree.sync(guild=bot.guild)
    done = len(bot.invocations)
    interaction_id = await fake.post_interaction(
        channel or fake.control_channel_id, author, "fleet", {"text": text}
    )
    await eventually(lambda: len(bot.invocations) > done)
    interaction, _ = bot.invocations[-1]
    return interaction_id, interaction


def callback_url(fake: FakeDiscord, interaction_id: str, token: str | None = None) -> str:
    token = token or fake.interactions[interaction_id]["token"]
    return f"{fake.api_base}/interactions/{interaction_id}/{token}/callback"


async def test_sync_registers_the_guild_command(fake: FakeDiscord, slash: SlashBot) -> None:
    """tree.sync PUTs the guild's commands and gets AppCommands back; re-syncing an unchanged
    command keeps its id and version; GET lists them."""
    (command,) = await slash.tree.sync(guild=slash.guild)
    assert isinstance(command, discord.app_commands.AppCommand)
    assert (command.name, command.description, command.type) == (
        "fleet",
        "Run a fleet command",
        discord.AppCommandType.chat_input,
    )
    assert (command.guild_id, command.application_id) == (fake.guild_id, fake.application_id)
    (option,) = command.options
    assert isinstance(option, discord.app_commands.Argument)
    assert (option.name, option.type, option.required) == (
        "text",
        discord.AppCommandOptionType.string,
        True,
    )
    (registered,) = fake.guild_commands
    assert registered["id"] == str(command.id) and registered["guild_id"] == str(fake.guild_id)
    assert [o["name"] for o in registered["options"]] == ["text"]
    path = f"/applications/{fake.application_id}/guilds/{fake.guild_id}/commands"
    assert ("PUT", path) in fake.requests
    (again,) = await slash.tree.sync(guild=slash.guild)
    assert again.id == command.id and fake.guild_commands[0]["version"] == registered["version"]
    fetched = await slash.tree.fetch_commands(guild=slash.guild)
    assert [c.id for c in fetched] == [command.id]


async def test_invalid_commands_are_refused(fake: FakeDiscord, slash: SlashBot) -> None:
    """A bad name, a missing description or a duplicate is a 50035 naming the field."""
    bad = [
        {"name": "Fleet", "description": "upper case", "type": 1},
        {"name": "ok", "description": "", "type": 1},
        {"name": "ok", "description": "again", "type": 1},
    ]
    with pytest.raises(discord.HTTPException) as refused:
        await slash.http.bulk_upsert_guild_commands(fake.application_id, fake.guild_id, bad)
    assert (refused.value.status, refused.value.code) == (400, 50035)
    for where in ("0.name", "1.description", "2.name"):
        assert f"In {where}:" in refused.value.text
    assert fake.guild_commands == []


async def test_interaction_runs_the_command(fake: FakeDiscord, slash: SlashBot) -> None:
    """post_interaction reaches the /fleet callback with the member, channel and option;
    its reply is a channel message answering the interaction, echoed to the bot."""
    operators = fake.add_role("operators")
    fake.grant_role("alice", operators)
    interaction_id, interaction = await use_fleet(fake, slash, "status")
    assert interaction.id == int(interaction_id) and slash.invocations[0][1] == "status"
    assert interaction.type is discord.InteractionType.application_command
    assert interaction.command is not None and interaction.command.name == "fleet"
    user = interaction.user
    assert isinstance(user, discord.Member) and user.id == fake.user_id("alice")
    assert [r.id for r in user.roles] == [fake.guild_id, operators]
    assert interaction.channel is control(slash, fake)
    assert interaction.guild_id == fake.guild_id and interaction.namespace.text == "status"
    (response,) = slash.results
    assert isinstance(response, discord.InteractionCallbackResponse)
    assert not response.is_ephemeral() and not response.is_thinking()
    data = fake.interactions[interaction_id]["data"]
    assert data["options"] == [{"name": "text", "type": 3, "value": "status"}]

    (posted,) = fake.messages(fake.control_channel_id)
    assert posted.content == "ran status" and response.message_id == posted.id
    (callback,) = fake.interaction_responses[interaction_id]
    assert callback["type"] == 4 and posted.request == callback["data"]
    assert posted.payload["type"] == 20
    assert posted.payload["interaction_metadata"]["id"] == interaction_id
    await eventually(lambda: slash.received)
    (echoed,) = slash.received
    assert echoed.id == posted.id and echoed.type is discord.MessageType.chat_input_command
    assert echoed.interaction_metadata is not None
    assert echoed.interaction_metadata.user.id == fake.user_id("alice")


async def test_ephemeral_reply_stays_out_of_the_channel(fake: FakeDiscord, slash: SlashBot) -> None:
    """send_message(ephemeral=True) is recorded with flag 64 but is no channel message."""

    async def whisper(interaction: discord.Interaction, text: str) -> Any:
        return await interaction.response.send_message("x", ephemeral=True)

    slash.answer = whisper
    interaction_id, _ = await use_fleet(fake, slash, "status")
    (callback,) = fake.interaction_responses[interaction_id]
    assert callback["type"] == 4 and callback["data"]["content"] == "x"
    assert callback["data"]["flags"] == 64
    assert fake.messages(fake.control_channel_id) == []
    (message,) = fake.interaction_messages(interaction_id)
    assert message["content"] == "x" and message["flags"] & 64
    (response,) = slash.results
    assert response.is_ephemeral() and response.message_id == int(message["id"])
    await fake.post_user_message(fake.control_channel_id, "alice", "after")
    await eventually(lambda: slash.received)
    assert slash.contents() == ["after"]  # bots never receive ephemeral messages


async def test_deferred_response_then_followups(fake: FakeDiscord, slash: SlashBot) -> None:
    """defer() posts a loading original; the first followup fills it, the next (with a
    file) is a new message."""

    async def slow(interaction: discord.Interaction, text: str) -> Any:
        await interaction.response.defer()
        first = await interaction.followup.send("y", wait=True)
        second = await interaction.followup.send(
            "z", file=discord.File(io.BytesIO(PNG), "a.png"), wait=True
        )
        original = await interaction.original_response()
        return first, second, original

    slash.answer = slow
    interaction_id, _ = await use_fleet(fake, slash, "deploy")
    ((first, second, original),) = slash.results
    posted = fake.messages(fake.control_channel_id)
    assert [m.content for m in posted] == ["y", "z"]
    assert [m.id for m in posted] == [first.id, second.id] and original.id == first.id
    assert posted[0].request["content"] == "y"
    assert [(a.filename, a.data) for a in posted[1].attachments] == [("a.png", PNG)]
    assert second.attachments[0].filename == "a.png"
    assert not posted[0].payload["flags"] & 128  # no longer loading
    metadata = posted[1].payload["interaction_metadata"]
    assert metadata["original_response_message_id"] == str(first.id)
    kinds = [entry["type"] for entry in fake.interaction_responses[interaction_id]]
    assert kinds == [5, "followup", "followup"]
    await eventually(lambda: len(slash.received) == 2)
    # The loading message's MESSAGE_CREATE, then MESSAGE_UPDATE filled it in discord.py's cache.
    assert [(m.id, m.content) for m in slash.received] == [(first.id, "y"), (second.id, "z")]


async def test_ephemeral_deferral_and_edits(fake: FakeDiscord, slash: SlashBot) -> None:
    """An ephemeral deferral edited with edit_original_response, and an ephemeral followup,
    never show in messages(); a public followup does."""

    async def private(interaction: discord.Interaction, text: str) -> Any:
        await interaction.response.defer(ephemeral=True, thinking=True)
        edited = await interaction.edit_original_response(content="done")
        await interaction.followup.send("secret", ephemeral=True)
        return edited, await interaction.followup.send("public", wait=True)

    slash.answer = private
    interaction_id, _ = await use_fleet(fake, slash, "deploy")
    ((edited, public),) = slash.results
    assert [m.content for m in fake.messages(fake.control_channel_id)] == ["public"]
    assert edited.content == "done" and edited.flags.ephemeral and not edited.flags.loading
    contents = [
        (m["content"], bool(m["flags"] & 64)) for m in fake.interaction_messages(interaction_id)
    ]
    assert contents == [("done", True), ("secret", True), ("public", False)]
    entries = fake.interaction_responses[interaction_id]
    assert [e["type"] for e in entries] == [5, "edit", "followup", "followup"]
    assert entries[0]["data"] == {"flags": 64} and entries[1]["message_id"] == str(edited.id)
    assert public.id == fake.messages(fake.control_channel_id)[0].id


async def test_an_interaction_is_acknowledged_once(fake: FakeDiscord, slash: SlashBot) -> None:
    """discord.py refuses a second response itself; the API answers a second callback 40060,
    a wrong token 10062, and a followup before any response 10015 (Unknown Webhook)."""

    async def twice(interaction: discord.Interaction, text: str) -> Any:
        await interaction.response.send_message("first")
        return await interaction.response.send_message("second")

    slash.answer = twice
    interaction_id, _ = await use_fleet(fake, slash, "status")
    (refused,) = slash.results
    assert isinstance(refused, discord.InteractionResponded)
    assert [m.content for m in fake.messages(fake.control_channel_id)] == ["first"]

    async def silent(interaction: discord.Interaction, text: str) -> Any:
        return None

    slash.answer = silent
    unanswered, _ = await use_fleet(fake, slash, "quiet")
    token = fake.interactions[unanswered]["token"]
    followup = f"{fake.api_base}/webhooks/{fake.application_id}/{token}?wait=1"
    body = {"type": 4, "data": {"content": "again"}}
    async with aiohttp.ClientSession() as session:
        async with session.post(callback_url(fake, interaction_id), json=body) as response:
            assert response.status == 400
            assert await response.json() == {
                "message": "Interaction has already been acknowledged.",
                "code": 40060,
            }
        async with session.post(callback_url(fake, interaction_id, "nope"), json=body) as response:
            assert (response.status, (await response.json())["code"]) == (404, 10062)
        async with session.post(followup, json={"content": "early"}) as response:
            assert (response.status, (await response.json())["code"]) == (404, 10015)
        async with session.post(callback_url(fake, unanswered), json=body) as response:
            assert response.status == 204  # without ?with_response there is no body
    assert fake.interaction_responses[unanswered] == [body]
    assert [m.content for m in fake.messages(fake.control_channel_id)] == ["first", "again"]


async def test_interaction_in_a_thread(fake: FakeDiscord, slash: SlashBot) -> None:
    """In a thread, interaction.channel is the Thread and the reply lands there; in an
    archived (uncached) thread discord.py builds the Thread from the interaction's channel."""
    thread = await thread_of(slash, fake, "job-1")
    interaction_id, interaction = await use_fleet(fake, slash, "tail", channel=thread.id)
    assert isinstance(interaction.channel, discord.Thread) and interaction.channel.id == thread.id
    assert interaction.channel.parent_id == fake.control_channel_id
    channel = fake.interactions[interaction_id]["channel"]
    assert (channel["type"], channel["parent_id"]) == (11, str(fake.control_channel_id))
    assert [m.content for m in fake.messages(thread.id)] == ["ran tail"]

    await fake.archive_thread(thread.id)
    await eventually(lambda: slash.get_channel(thread.id) is None)
    _, later = await use_fleet(fake, slash, "tail", channel=thread.id)
    assert isinstance(later.channel, discord.Thread) and later.channel.archived
    assert [m.content for m in fake.messages(thread.id)] == ["ran tail", "ran tail"]


async def test_post_interaction_checks_the_command(fake: FakeDiscord, slash: SlashBot) -> None:
    """Only a registered command, with its own string options, can be used."""
    with pytest.raises(KeyError):
        await fake.post_interaction(fake.control_channel_id, "alice", "fleet", {"text": "x"})
    await slash.tree.sync(guild=slash.guild)
    with pytest.raises(ValueError):
        await fake.post_interaction(fake.control_channel_id, "alice", "fleet", {"txt": "x"})
    with pytest.raises(ValueError):
        await fake.post_interaction(fake.control_channel_id, "alice", "fleet", {})
    with pytest.raises(KeyError):
        await fake.post_interaction(12345, "alice", "fleet", {"text": "x"})
    assert fake.interactions == {}


async def test_a_late_callback_is_refused(fake: FakeDiscord, slash: SlashBot) -> None:
    """With interaction_deadline set (Discord allows 3 s), a later callback is 10062."""

    async def late(interaction: discord.Interaction, text: str) -> Any:
        await asyncio.sleep(0.05)
        return await interaction.response.send_message("too late")

    fake.interaction_deadline = 0.01
    slash.answer = late
    interaction_id, _ = await use_fleet(fake, slash, "status")
    (refused,) = slash.results
    assert isinstance(refused, discord.NotFound) and refused.code == 10062
    assert fake.interaction_responses[interaction_id] == []
    assert fake.messages(fake.control_channel_id) == []
