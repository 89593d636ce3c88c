"""Readable agents through the real ``fleetwarden run``: the real Claude Code against the
strict fake provider, commanded from the fake Discord. The agent's thread shows its work
as people read it — a line per tool, its answer as text, the ask the operator denied —
in few messages; the summary at the end counts exactly what the ledger metered; and an
agent without credentials is refused in one line naming the fix."""

from __future__ import annotations

import asyncio
import os
import re
import sqlite3
import subprocess
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest

from tests.fakes.discord.records import PostedMessage
from tests.fakes.discord.server import FakeDiscord
from tests.fakes.provider.background import fake_provider_thread
from tests.fakes.provider.server import Accepted, FakeProvider, ToolCall, Turn, Usage
from tests.integration.connectors.discord.test_discord_bot import TOKEN_ENV, Bot, eventually
from tests.integration.console_bot import FLEETWARDEN, ConsoleBot, clean_env
from tests.integration.runtimes.test_real_clis import bin_dir, cli, node_dir

pytestmark = [pytest.mark.integration, pytest.mark.agent_cli]

KEY = "fake-readable-key-0123456789abcdefghij"
ANSWER = "The notes say: ship on Friday."
TURNS = (
    Turn(text="", tool=ToolCall("Read", {"file_path": "NOTES"}), usage=Usage(input=900, output=40)),
    Turn(
        text="",
        tool=ToolCall("Bash", {"command": "rm -rf build", "description": "clean"}),
        usage=Usage(input=1100, output=30),
    ),
    Turn(text=ANSWER, usage=Usage(input=1300, output=25)),
)


def text_of(message: PostedMessage) -> str:
    """What a person reads of a bot message: its content and its embeds' text."""
    embeds = message.payload.get("embeds") or []
    return "\n".join([message.content, *(str(e.get("description", "")) for e in embeds)])


def agent_path() -> str:
    return os.pathsep.join(
        dict.fromkeys([str(bin_dir()), str(node_dir()), "/usr/local/bin", "/usr/bin", "/bin"])
    )


def write_config(fake: FakeDiscord, upstream: str, workdir: Path) -> Path:
    path = workdir / "fleetwarden.yaml"
    viewers = fake.add_role("fleet-viewers")
    fake.grant_role("rolf", viewers)
    path.write_text(
        "state_dir: ./state\n"
        "operators:\n"
        f"  - {{id: '{fake.user_id('ann')}', role: operator}}\n"
        f"  - {{id: 'role:{viewers}', role: viewer}}\n"
        "connectors:\n"
        "  discord:\n"
        f"    token_env: {TOKEN_ENV}\n"
        f"    guild_id: '{fake.guild_id}'\n"
        f"    channel_id: '{fake.control_channel_id}'\n"
        "    guild_ready_timeout_seconds: 0.2\n"
        "providers:\n"
        "  anthropic:\n"
        f"    upstream: {upstream}\n"
        "accounts:\n"
        "  team:\n"
        "    kind: api_key\n"
        "    provider: anthropic\n"
        "    key_env: FW_TEAM_KEY\n"
    )
    return path


@asynccontextmanager
async def discord_bot(provider: str, tmp_path: Path) -> AsyncIterator[Bot]:
    """The real ``fleetwarden run`` in ``tmp_path`` on a fake Discord, on :func:`write_config`
    (its agents' model at ``provider``), once connected; stopped after, exiting 0."""
    async with FakeDiscord(heartbeat_interval_ms=2_000) as fake:
        proc = subprocess.Popen(  # noqa: ASYNC220 - it runs for the whole block
            [str(FLEETWARDEN), "run", "--config", str(write_config(fake, provider, tmp_path))],
            cwd=tmp_path,
            env=clean_env(
                PATH=agent_path(),
                FW_TEAM_KEY=KEY,
                **{
                    TOKEN_ENV: fake.token,
                    "FLEETWARDEN_DISCORD_API_BASE": fake.api_base,
                    "FLEETWARDEN_DISCORD_GATEWAY_URL": fake.gateway_url,
                },
            ),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        bot = Bot(fake, proc, tmp_path)
        try:
            await eventually(lambda: fake.connected)
            yield bot
        finally:
            err = await asyncio.to_thread(bot.stop)
            assert proc.returncode == 0, err


@pytest.fixture
async def claude_bot(tmp_path: Path) -> AsyncIterator[tuple[Bot, FakeProvider]]:
    cli("claude")
    notes = tmp_path / "work" / "notes.txt"
    notes.parent.mkdir()
    notes.write_text("ship on Friday\n")
    turns = [
        Turn(
            text=t.text,
            tool=ToolCall("Read", {"file_path": str(notes)})
            if t.tool and t.tool.name == "Read"
            else t.tool,
            usage=t.usage,
        )
        for t in TURNS
    ]
    with fake_provider_thread(
        *turns, default=Turn(text="(no more turns)"), accept=Accepted(api_keys=frozenset({KEY}))
    ) as provider:
        async with discord_bot(provider.base_url, tmp_path) as bot:
            yield bot, provider


async def test_a_claude_run_reads_as_chat_and_its_summary_counts_the_ledger(
    claude_bot: tuple[Bot, FakeProvider], tmp_path: Path
) -> None:
    bot, provider = claude_bot
    work = tmp_path / "work"
    await bot.say(
        "ann", f'!spawn c1 --runtime claude --workdir {work} --prompt "what do the notes say?"'
    )
    thread = await eventually(lambda: bot.thread_named("c1"))
    # `rm` is asked in chat: the operator's ❌ denies it, and the agent goes on without it.
    ask = await eventually(
        lambda: next((m for m in bot.posted(thread) if "🔐 Approval" in text_of(m)), None),
        within=90,
    )
    await bot.fake.add_user_reaction(thread, ask.id, "ann", "❌")
    summary = await eventually(
        lambda: next((m for m in bot.posted(thread) if "finished after" in text_of(m)), None),
        within=90,
    )
    posted = bot.posted(thread)
    (root,) = [m for m in bot.posted() if m.id == thread]
    assert re.search(r"Agent \*\*c1\*\* started \(claude\), pid \d+\.", root.content)
    assert "goes to c1 only from an operator" in root.content
    work_lines = "\n".join(text_of(m) for m in posted if m.id != summary.id)
    assert f"▸ Read `{work / 'notes.txt'}`" in work_lines
    assert "▸ Bash `rm -rf build`" in work_lines
    assert ANSWER in work_lines
    assert "{" not in work_lines  # no raw JSON in the thread
    # Few messages: the tool lines, the ask and the answer, not one message per event.
    assert len(posted) <= 7, [m.content for m in posted]

    # The summary: its answer, what Fleetwarden metered (exactly the ledger's rows), where.
    text = text_of(summary)
    assert ANSWER in text
    with sqlite3.connect(tmp_path / "state" / "ledger.db") as db:
        requests, tokens = db.execute(
            "SELECT COUNT(*), SUM(input_tokens + output_tokens + cache_read_tokens +"
            " cache_write_tokens) FROM usage WHERE agent = 'c1'"
        ).fetchone()
    assert requests == len([r for r in provider.requests if r.api is not None]) >= 3
    assert f"{requests} model requests · {tokens:,} tokens" in text
    assert f"In `{work}`" in text
    # The answer to the spawn comes first; the summary after it, in the thread (and in the
    # channel too unless the run ended while the spawn was still being answered — how
    # fast the CLI is here decides which, so either is right, but never before the root).
    assert summary.id > root.id
    assert all(m.id > root.id for m in bot.posted() if "finished after" in text_of(m))


def test_an_agent_without_credentials_is_refused_in_one_line(tmp_path: Path) -> None:
    cli("claude")
    # A provider entry of its own: the offline provider no longer answers `anthropic`.
    config = tmp_path / "fleetwarden.yaml"
    config.write_text(
        "connectors:\n  console: {}\n"
        "providers:\n  anthropic:\n    upstream: https://api.anthropic.com\n"
    )
    bot = ConsoleBot(tmp_path, "--config", str(config), env=clean_env(PATH=agent_path()))
    try:
        line = bot.command('spawn c2 --runtime claude --prompt "say hi"', r"^.*cannot start.*$")
        assert line.group(0).strip() == (
            "c2 cannot start: claude has no credentials — add an account for anthropic (see "
            "docs/accounts.md) and start it again"
        )
        assert bot.close() == 0
        assert "Traceback" not in bot.stderr
    finally:
        if bot.proc.poll() is None:
            bot.kill()
