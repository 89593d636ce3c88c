"""Presence and alerts on Discord, against the fake Discord: the typing indicator while a
slow command is handled, and an agent's failure pinging the operator who started it."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.fakes.discord.server import FakeDiscord
from tests.integration.connectors.discord.test_discord_bot import (
    Bot,
    eventually,
    serving,
    write_config,
)
from tests.integration.connectors.discord.test_discord_bot import launch as launch_bot
from tests.integration.connectors.matrix.test_matrix_presence import FAILING, SILENT

pytestmark = pytest.mark.integration


def launch(fake: FakeDiscord, workdir: Path) -> subprocess.Popen[bytes]:
    config = write_config(fake, workdir)
    agents = "".join(
        f"  - name: {name}\n"
        "    runtime: command\n"
        f"    argv: {json.dumps([sys.executable, '-I', '-c', code])}\n"
        "    restart: never\n"
        for name, code in (("silent", SILENT), ("failing", FAILING))
    )
    config.write_text(config.read_text() + "agents:\n" + agents)
    return launch_bot(fake, workdir, config)


@pytest.fixture
async def presence_bot(tmp_path: Path) -> AsyncIterator[Bot]:
    async with serving(tmp_path, launch) as running:
        yield running


async def test_a_slow_command_shows_typing_and_a_quick_one_does_not(presence_bot: Bot) -> None:
    """`help` is answered without a typing indicator; a spawn that waits on a silent
    agent triggers it in the channel where it was asked."""
    await presence_bot.ask("ann", "!help")
    assert presence_bot.fake.typing == []
    await presence_bot.say("ann", "!spawn silent")
    await eventually(lambda: presence_bot.thread_named("silent"))
    assert presence_bot.channel in presence_bot.fake.typing
    assert ("POST", f"/channels/{presence_bot.channel}/typing") in presence_bot.fake.requests


async def test_a_failure_pings_the_operator_who_started_it(presence_bot: Bot) -> None:
    """An agent that exits 1: its summary pings the operator (`<@id>` allowed by
    `allowed_mentions`); the spawn's answer pings nobody."""
    ann = presence_bot.fake.user_id("ann")
    await presence_bot.say("ann", "!spawn failing")
    thread = await eventually(lambda: presence_bot.thread_named("failing"))
    failed = await eventually(
        lambda: [
            m for m in presence_bot.posted() if m.payload["embeds"] and "failed" in str(m.payload)
        ]
    )
    (alert,) = failed
    assert alert.content.startswith(f"<@{ann}>")
    assert [u["id"] for u in alert.payload["mentions"]] == [str(ann)]
    in_thread = await eventually(
        lambda: [m for m in presence_bot.posted(thread) if "failed" in str(m.payload)]
    )
    assert [u["id"] for u in in_thread[0].payload["mentions"]] == [str(ann)]
    root = [m for m in presence_bot.posted() if m.id == thread]
    assert root and root[0].payload["mentions"] == []
