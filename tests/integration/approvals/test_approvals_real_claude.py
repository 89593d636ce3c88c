"""An approval round trip through the real ``fleetwarden run``: the real Claude Code,
sandboxed, against the strict fake provider, asks to run ``rm -rf build``; the ask shows in
its Discord thread (the fake Discord) pinging its starter; a viewer's ✅ changes nothing;
the operator's ✅ lets the command run, and the message is edited to say who answered."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.fakes.discord.records import PostedMessage
from tests.fakes.provider.background import fake_provider_thread
from tests.fakes.provider.server import Accepted, ToolCall, Turn
from tests.integration.connectors.discord.test_discord_bot import Bot, eventually
from tests.integration.runtimes.test_readable_agents import discord_bot, text_of
from tests.integration.runtimes.test_real_clis import cli

pytestmark = [pytest.mark.integration, pytest.mark.agent_cli]

KEY = "fake-readable-key-0123456789abcdefghij"  # the key test_readable_agents' config names
TURNS = (
    Turn(text="", tool=ToolCall("Bash", {"command": "rm -rf build", "description": "clean"})),
    Turn(text="Cleaned."),
)


@pytest.fixture
async def claude_bot(tmp_path: Path) -> AsyncIterator[Bot]:
    cli("claude")
    (tmp_path / "work" / "build").mkdir(parents=True)
    (tmp_path / "work" / "build" / "out.o").write_text("x")
    with fake_provider_thread(
        *TURNS, default=Turn(text="(no more turns)"), accept=Accepted(api_keys=frozenset({KEY}))
    ) as provider:
        async with discord_bot(provider.base_url, tmp_path) as bot:
            yield bot


async def test_the_operators_reaction_lets_a_real_claude_run_its_command(
    claude_bot: Bot, tmp_path: Path
) -> None:
    """Claude Code asks for `rm -rf build`; the viewer's ✅ changes nothing, the
    operator's ✅ lets it run; the message then says who allowed it."""
    bot, build = claude_bot, tmp_path / "work" / "build"
    await bot.say("ann", f'!spawn c1 --runtime claude --workdir {build.parent} --prompt "clean"')
    thread = await eventually(lambda: bot.thread_named("c1"))

    def asked() -> PostedMessage | None:
        found = [m for m in bot.posted(thread) if "🔐 Approval" in text_of(m)]
        return found[0] if found else None

    message = await eventually(asked, within=90)  # in the thread, not before it
    shown = text_of(message)
    assert "**c1** asks to use **Bash**" in shown and "rm -rf build" in shown
    assert [int(u) for u in message.request["allowed_mentions"]["users"]] == [
        bot.fake.user_id("ann")
    ]
    before = len(bot.posted(thread))
    await bot.fake.add_user_reaction(thread, message.id, "rolf", "✅")  # a viewer
    await eventually(
        lambda: [m for m in bot.posted(thread)[before:] if "not an answer" in m.content]
    )
    assert build.exists()

    await bot.fake.add_user_reaction(thread, message.id, "ann", "✅")
    await eventually(lambda: not build.exists(), within=60)

    def edited() -> bool:
        now = [m for m in bot.posted(thread) if m.id == message.id]
        return bool(now) and "Allowed once by" in text_of(now[0])

    await eventually(edited)
