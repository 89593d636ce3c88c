"""The real `fleetwarden run` process serving a Discord control channel, against the fake
Discord on loopback (REST and gateway in Discord's wire shapes): people post in the
channel and in the agents' threads the way they would in the Discord app."""

from __future__ import annotations

import asyncio
import contextlib
import re
import signal
import subprocess
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import pytest

from tests.fakes.discord.records import PostedMessage
from tests.fakes.discord.server import FakeDiscord
from tests.integration.console_bot import FLEETWARDEN, clean_env

pytestmark = pytest.mark.integration

TOKEN_ENV = "FW_DISCORD_TOKEN"
TIMEOUT = 20.0
FENCE = "```"
T = TypeVar("T")


async def eventually(probe: Callable[[], T | None], within: float = TIMEOUT) -> T:
    """Poll ``probe`` until it returns something truthy; fail at the deadline."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while True:
        found = probe()
        if found:
            return found
        if loop.time() > deadline:
            raise AssertionError(f"timed out after {within} s waiting for {probe}")
        await asyncio.sleep(0.05)


@dataclass
class Bot:
    """The fake Discord and the `fleetwarden run` process logged in to it."""

    fake: FakeDiscord
    proc: subprocess.Popen[bytes]
    workdir: Path

    @property
    def channel(self) -> int:
        return self.fake.control_channel_id

    def posted(self, channel: int | None = None) -> list[PostedMessage]:
        return self.fake.messages(self.channel if channel is None else channel)

    async def say(self, author: str, text: str, channel: int | None = None) -> PostedMessage:
        return await self.fake.post_user_message(
            self.channel if channel is None else channel, author, text
        )

    async def ask(
        self, author: str, text: str, channel: int | None = None, *, answer_in: int | None = None
    ) -> list[PostedMessage]:
        """Post ``text`` and wait for the bot's answer in ``answer_in`` (default: where it
        was asked); the answer is every message that arrives until it goes quiet."""
        where = answer_in if answer_in is not None else (channel or self.channel)
        before = len(self.posted(where))
        await self.say(author, text, channel)
        await eventually(lambda: len(self.posted(where)) > before)
        count = -1
        while count != len(self.posted(where)):  # wait out a reply in several parts
            count = len(self.posted(where))
            await asyncio.sleep(0.3)
        return self.posted(where)[before:]

    def thread_named(self, name: str) -> int | None:
        live = [t for t in self.fake.threads if t["name"] == name]
        return int(live[-1]["id"]) if live else None

    def stop(self) -> str:
        """Its stderr once ended: SIGTERM, then SIGKILL if it has not ended in 30 s."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            _, err = self.proc.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            _, err = self.proc.communicate(timeout=10)
        return err.decode()


def write_config(fake: FakeDiscord, workdir: Path) -> Path:
    path = workdir / "fleetwarden.yaml"
    rolf_role = fake.add_role("fleet-operators")
    fake.grant_role("rolf", rolf_role)
    path.write_text(
        "state_dir: ./state\n"
        "operators:\n"
        f"  - {{id: '{fake.user_id('ann')}', role: operator}}\n"
        f"  - {{id: 'role:{rolf_role}', role: viewer}}\n"
        "connectors:\n"
        "  discord:\n"
        f"    token_env: {TOKEN_ENV}\n"
        f"    guild_id: '{fake.guild_id}'\n"
        f"    channel_id: '{fake.control_channel_id}'\n"
        "    guild_ready_timeout_seconds: 0.2\n"
        "    thread_auto_archive_minutes: 60\n"
        "budgets:\n"
        "  - {scope: global, limit_tokens: 1000000, window: daily}\n"
    )
    return path


def launch(fake: FakeDiscord, workdir: Path, config: Path | None = None) -> subprocess.Popen[bytes]:
    """`fleetwarden run` against ``fake`` with ``config`` (default: :func:`write_config`)."""
    config = config if config is not None else write_config(fake, workdir)
    return subprocess.Popen(
        [str(FLEETWARDEN), "run", "--config", str(config)],
        cwd=workdir,
        env=clean_env(
            **{
                TOKEN_ENV: fake.token,
                "FLEETWARDEN_DISCORD_API_BASE": fake.api_base,
                "FLEETWARDEN_DISCORD_GATEWAY_URL": fake.gateway_url,
            }
        ),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )


Launcher = Callable[[FakeDiscord, Path], "subprocess.Popen[bytes]"]


@contextlib.asynccontextmanager
async def serving(workdir: Path, launcher: Launcher | None = None) -> AsyncIterator[Bot]:
    """A fake Discord and `fleetwarden run` connected to it (started by ``launcher``,
    default :func:`launch`); stopped at the end, which must be clean and leak no token."""
    async with FakeDiscord(heartbeat_interval_ms=2_000) as fake:
        running = Bot(fake, (launcher or launch)(fake, workdir), workdir)
        try:
            await eventually(lambda: fake.connected)
            yield running
        finally:
            err = await asyncio.to_thread(running.stop)  # the fake must answer meanwhile
            assert running.proc.returncode == 0, err
            assert fake.token not in err
            log = (workdir / "state" / "fleetwarden.log").read_text()
            assert fake.token not in log


@pytest.fixture
async def discord_bot(tmp_path: Path) -> AsyncIterator[Bot]:
    async with serving(tmp_path) as running:
        yield running


async def test_help_whoami_and_a_role_member(discord_bot: Bot) -> None:
    replies = await discord_bot.ask("ann", "!help")
    assert "**spawn NAME" in replies[0].content  # too wide for columns: a list
    assert any("**logs NAME" in m.content for m in replies)
    help_reply = replies[0]
    # Replies quote the command they answer, and never ping anyone.
    assert help_reply.request["message_reference"]["message_id"]
    assert help_reply.request["allowed_mentions"]["parse"] == []

    (who,) = await discord_bot.ask("ann", "!whoami")
    assert "operator" in who.content
    (rolf,) = await discord_bot.ask("rolf", "!whoami")
    assert "viewer" in rolf.content
    (denied,) = await discord_bot.ask("rolf", "!spawn x --runtime stub")
    assert "needs the operator role" in denied.content


async def test_an_edit_runs_only_while_nothing_was_done_about_its_message(discord_bot: Bot) -> None:
    """A message without the prefix edited into `!whoami` is answered under it; an edit of
    the answered command then is not applied, and says so under the same message."""
    asked = await discord_bot.say("ann", "whoami")
    before = len(discord_bot.posted())
    await discord_bot.fake.edit_user_message(discord_bot.channel, asked.id, "!whoami")
    await eventually(lambda: len(discord_bot.posted()) > before)
    answer = discord_bot.posted()[before]
    assert "operator" in answer.content
    assert int(answer.request["message_reference"]["message_id"]) == asked.id
    await discord_bot.fake.edit_user_message(discord_bot.channel, asked.id, "!ps")
    await eventually(lambda: len(discord_bot.posted()) > before + 1)
    refused = discord_bot.posted()[before + 1]
    assert refused.content.startswith("Edit not applied: `whoami` already ran (ok).")
    assert int(refused.request["message_reference"]["message_id"]) == asked.id


async def test_the_pacing_report_comes_with_its_chart_attached(discord_bot: Bot) -> None:
    replies = await discord_bot.ask("ann", "!report")
    assert "global" in replies[0].content
    (chart,) = [a for m in replies for a in m.attachments]
    assert chart.filename.endswith(".png") and chart.data.startswith(b"\x89PNG\r\n\x1a\n")


async def test_the_slash_command_is_the_same_grammar_and_acl(discord_bot: Bot) -> None:
    await eventually(lambda: discord_bot.fake.guild_commands)
    before = len(discord_bot.posted())
    asked = await discord_bot.fake.post_interaction(
        discord_bot.channel, "ann", "fleet", {"command": "whoami"}
    )
    await eventually(lambda: len(discord_bot.posted()) == before + 2)  # the ask, then the answer
    ask, answer = discord_bot.posted()[before:]
    assert ask.content == "`whoami`" and "operator" in answer.content
    assert discord_bot.fake.interaction_responses[asked][0]["type"] == 4
    ignored = await discord_bot.fake.post_interaction(
        discord_bot.channel, "mallory", "fleet", {"command": "ps"}
    )
    assert len(await discord_bot.ask("ann", "!whoami")) == 1  # handled in order: mallory's is done
    assert discord_bot.fake.interaction_responses[ignored] == []


async def test_a_stranger_is_ignored(discord_bot: Bot) -> None:
    before = len(discord_bot.posted())
    await discord_bot.say("mallory", "!ps")
    await discord_bot.say("mallory", "!spawn evil --runtime stub")
    # Messages in one channel are handled in order: once ann's answer is there,
    # mallory's two have been handled (and ignored).
    answer = await discord_bot.ask("ann", "!whoami")
    assert len(answer) == 1
    assert len(discord_bot.posted()) == before + 1
    assert discord_bot.thread_named("evil") is None


async def test_spawn_opens_a_thread_where_the_agent_is_talked_to(discord_bot: Bot) -> None:
    await discord_bot.ask("ann", "!spawn demo --runtime stub")
    thread = await eventually(lambda: discord_bot.thread_named("demo"))
    (root,) = [m for m in discord_bot.posted() if m.id == thread]  # the thread grows from a message
    assert "demo" in root.content
    assert int(discord_bot.fake.threads[-1]["thread_metadata"]["auto_archive_duration"]) == 60

    # A plain message in the thread goes to the agent (the stub echoes each line).
    await discord_bot.ask("ann", "hello from discord", thread)
    logs = await discord_bot.ask("ann", "!logs demo", thread)
    assert any("hello from discord" in m.content for m in logs)
    assert all(m.channel_id == thread for m in logs)

    # What the agent writes follows in its thread, batched into few messages.
    await discord_bot.say("ann", "lines 400", thread)
    await eventually(
        lambda: "line 400 of 400" in "".join(m.content for m in discord_bot.posted(thread))
    )
    feed = [m for m in discord_bot.posted(thread) if "line " in m.content]
    assert len(feed) < 20  # 400 lines, a handful of posts (each split at 2000 characters)

    # A long answer comes in parts of at most 2000 characters, each a whole code block.
    parts = await discord_bot.ask("ann", "!logs demo --lines 250 --raw")
    text = "".join(m.content for m in parts)
    assert len(text) > 5000 and len(parts) >= 3
    for part in parts:
        assert len(part.content) <= 2000
        assert part.content.count(FENCE) % 2 == 0, part.content[-200:]
    numbers = [int(n) for n in re.findall(r"line (\d+) of 400", text)]
    assert numbers == sorted(numbers) and numbers[-1] == 400  # nothing lost or repeated

    # The run's end: its summary, in the agent's thread and in the channel.
    await discord_bot.say("ann", "exit", thread)  # the stub says bye and exits
    notice = await eventually(
        lambda: next(
            (
                m
                for m in discord_bot.posted(thread)
                if m.payload["embeds"] and "finished" in str(m.payload)
            ),
            None,
        )
    )
    (embed,) = notice.payload["embeds"]  # a status notice: an embed, green for a clean exit
    assert "**demo** finished after" in embed["description"]
    assert embed["color"] == 0x57F287
    await eventually(lambda: any("finished after" in str(m.payload) for m in discord_bot.posted()))


async def test_archived_and_deleted_threads(discord_bot: Bot) -> None:
    await discord_bot.ask("ann", "!spawn arch --runtime stub")
    thread = await eventually(lambda: discord_bot.thread_named("arch"))

    await discord_bot.fake.archive_thread(thread)
    # Asked in the channel, answered there with the way to the thread; what the agent
    # does goes to the thread, which is fetched (not from the cache) and unarchived.
    (answer,) = await discord_bot.ask("ann", "!send arch ping")
    assert f"https://discord.com/channels/{discord_bot.fake.guild_id}/{thread}" in answer.content
    await eventually(lambda: any("received: ping" in m.content for m in discord_bot.posted(thread)))
    assert ("GET", f"/channels/{thread}") in discord_bot.fake.requests
    live = next(t for t in discord_bot.fake.threads if int(t["id"]) == thread)
    assert live["thread_metadata"]["archived"] is False

    await discord_bot.fake.delete_thread(thread)
    await discord_bot.say("ann", "!send arch hello again")
    again = await eventually(
        lambda: (
            (found := discord_bot.thread_named("arch")) != thread and found is not None and found
        )
    )
    await eventually(lambda: len(discord_bot.posted(again)) >= 1)
    # The new thread is the topic's thread now: a message there reaches the agent.
    await discord_bot.ask("ann", "still there?", again)
    logs = await discord_bot.ask("ann", "!logs arch", again)
    assert any("still there?" in m.content for m in logs)


async def test_a_resume_replays_nothing_twice(discord_bot: Bot) -> None:
    await discord_bot.ask("ann", "!whoami")
    resumes, before = discord_bot.fake.resumes, len(discord_bot.posted())
    await discord_bot.fake.force_reconnect()
    # Posted while the bot is away: delivered when it resumes, and answered once.
    await discord_bot.say("ann", "!ps")
    await eventually(lambda: discord_bot.fake.resumes > resumes and discord_bot.fake.connected)
    await eventually(lambda: len(discord_bot.posted()) == before + 1)
    assert discord_bot.fake.identifies == 1  # resumed, not a new session
    # Discord may deliver an event again after a resume; the ledger has it handled.
    await discord_bot.fake.redeliver_last_user_message(discord_bot.channel)
    answer = await discord_bot.ask("ann", "!whoami")
    assert len(answer) == 1
    assert len(discord_bot.posted()) == before + 2


async def test_threads_still_lead_to_their_agents_after_a_restart(discord_bot: Bot) -> None:
    await discord_bot.ask("ann", "!spawn keeper --runtime stub")
    thread = await eventually(lambda: discord_bot.thread_named("keeper"))
    assert (
        await asyncio.to_thread(discord_bot.stop) is not None and discord_bot.proc.returncode == 0
    )
    # Agents outlive Fleetwarden; the new process learns the thread from the ledger.
    discord_bot.proc = launch(discord_bot.fake, discord_bot.workdir)
    await eventually(lambda: discord_bot.fake.identifies == 2 and discord_bot.fake.connected)
    await discord_bot.ask("ann", "after the restart", thread)
    logs = await discord_bot.ask("ann", "!logs keeper", thread)
    assert any("stub: received: after the restart" in m.content for m in logs)
    assert discord_bot.thread_named("keeper") == thread and len(discord_bot.fake.threads) == 1


async def test_what_was_said_while_it_was_down_is_answered_once(discord_bot: Bot) -> None:
    await discord_bot.ask("ann", "!spawn napper --runtime stub")
    thread = await eventually(lambda: discord_bot.thread_named("napper"))
    before = len(discord_bot.posted())
    await asyncio.to_thread(discord_bot.stop)
    await discord_bot.say("ann", "!whoami")  # nobody is connected: the gateway delivers nothing
    await discord_bot.say("rolf", "!whoami")  # a role member: roles come from the member record
    await discord_bot.say("ann", "while you were out", thread)
    await discord_bot.say("mallory", "!ps")
    for restart in (1, 2):
        discord_bot.proc = launch(discord_bot.fake, discord_bot.workdir)
        await eventually(
            lambda n=1 + restart: discord_bot.fake.identifies == n and discord_bot.fake.connected
        )
        if restart == 1:
            await eventually(lambda: len(discord_bot.posted()) == before + 2)
            # "Sent to napper" once (the thread also follows what the agent writes)
            await eventually(
                lambda: (
                    sum("Sent to **napper**" in m.content for m in discord_bot.posted(thread)) == 1
                )
            )
        assert len(await discord_bot.ask("ann", "!ps")) == 1  # in order: the old ones came first
        if restart == 1:
            await asyncio.to_thread(discord_bot.stop)
    answers = [m.content for m in discord_bot.posted()[before:]]
    assert len(answers) == 4, answers  # ann's and rolf's whoami once, then each !ps
    assert "operator" in answers[0] and "viewer" in answers[1]
    logs = (discord_bot.workdir / "state" / "agents" / "napper" / "output.log").read_text()
    assert logs.count("received: while you were out") == 1


async def test_an_intent_withdrawn_while_running_stops_it_saying_why(tmp_path: Path) -> None:
    async with FakeDiscord(heartbeat_interval_ms=2_000) as fake:
        bot = Bot(fake, launch(fake, tmp_path), tmp_path)
        assert len(await bot.ask("ann", "!whoami")) == 1
        fake.deny_message_content_intent = True  # an admin turned it off in the portal
        await fake.invalidate_session()  # the next IDENTIFY (after discord.py's 5 s) fails
        _, err = await asyncio.to_thread(bot.proc.communicate, timeout=60)
    message = err.decode()
    assert bot.proc.returncode == 2, message
    assert "MESSAGE CONTENT INTENT" in message and "Traceback" not in message


async def test_a_missing_message_content_intent_is_explained(tmp_path: Path) -> None:
    async with FakeDiscord() as fake:
        fake.deny_message_content_intent = True
        proc = launch(fake, tmp_path)
        _, err = await asyncio.to_thread(proc.communicate, timeout=60)
    message = err.decode()
    assert proc.returncode == 2, message
    assert "MESSAGE CONTENT INTENT" in message
    assert "Privileged Gateway Intents" in message
    assert f"https://discord.com/developers/applications/{fake.application_id}" in message
    assert "Traceback" not in message
