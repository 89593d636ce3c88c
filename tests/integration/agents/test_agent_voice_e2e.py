"""Chat shows who speaks: the real `fleetwarden run` on the fake Discord, with a sandboxed
``command`` agent that prints a forged Fleetwarden notice, a markdown link, a known secret
with zero-width spaces inside it and a line of backticks meant to end a code block.

In the agent's thread (the live feed) and in a viewer's `logs`: the forged notice shows
only inside a quote under the agent's name, the link is plain text with its target, and
the secret is redacted — not even visible once the invisible characters are taken out.
"""

from __future__ import annotations

import asyncio
import secrets
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from markdown_it import MarkdownIt

from fleet.redaction.invisible import visible
from tests.fakes.discord_server import FakeDiscord
from tests.integration.connectors.discord.test_discord_bot import TOKEN_ENV, Bot, eventually
from tests.integration.console_bot import FLEETWARDEN, clean_env

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[3]
AGENT = "mimic"
SECRET_VAR = "DEPLOY_TOKEN"
FORGED = f"⏹ {AGENT} stopped after 2s: stopped by admin"
LINK = "[click here](https://evil.example/steal)"
SCRIPT = f"""\
import os, time

token = os.environ["{SECRET_VAR}"]
print({FORGED!r})
print({LINK!r})
print("my deploy token:", "\\u200b".join(token))
print("```")
print("**bold after the fence**")
print("VOICE-END", flush=True)
time.sleep(120)  # until stopped; gone by itself if a failed test leaves it
"""


def write_config(fake: FakeDiscord, workdir: Path) -> Path:
    (workdir / AGENT).mkdir()
    (workdir / AGENT / "mimic.py").write_text(SCRIPT)
    path = workdir / "fleetwarden.yaml"
    path.write_text(
        "state_dir: ./state\n"
        "operators:\n"
        f"  - {{id: '{fake.user_id('ann')}', role: operator}}\n"
        f"  - {{id: '{fake.user_id('vic')}', role: viewer}}\n"
        "connectors:\n"
        "  discord:\n"
        f"    token_env: {TOKEN_ENV}\n"
        f"    guild_id: '{fake.guild_id}'\n"
        f"    channel_id: '{fake.control_channel_id}'\n"
        "    guild_ready_timeout_seconds: 0.2\n"
        "agents:\n"
        f"  - name: {AGENT}\n"
        "    runtime: command\n"
        f"    argv: [{sys.executable}, -I, mimic.py]\n"
        f"    workdir: ./{AGENT}\n"
        f"    secret_env: [{SECRET_VAR}]\n"
    )
    return path


@pytest.fixture
async def bot(tmp_path: Path) -> AsyncIterator[tuple[Bot, str]]:
    token = "fake-deploy-" + secrets.token_hex(16)
    async with FakeDiscord(heartbeat_interval_ms=2_000) as fake:
        proc = subprocess.Popen(  # noqa: ASYNC220 - it runs for the whole test
            [str(FLEETWARDEN), "run", "--config", str(write_config(fake, tmp_path))],
            cwd=tmp_path,
            env=clean_env(
                **{
                    TOKEN_ENV: fake.token,
                    SECRET_VAR: token,
                    "FLEETWARDEN_DISCORD_API_BASE": fake.api_base,
                    "FLEETWARDEN_DISCORD_GATEWAY_URL": fake.gateway_url,
                    "PYTHONPATH": str(REPO),
                }
            ),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        running = Bot(fake, proc, tmp_path)
        try:
            await eventually(lambda: fake.connected)
            yield running, token
        finally:
            if fake.connected and running.proc.poll() is None:
                await running.ask("ann", f"!stop {AGENT}")
            err = await asyncio.to_thread(running.stop)
            assert running.proc.returncode == 0, err


def assert_the_agents(text: str, token: str) -> None:
    """``text`` (one message, as Discord got it) shows the agent's lines as the agent's."""
    lines = text.splitlines()
    forged = [line for line in lines if "stopped by admin" in line]
    assert forged, text
    # Only inside a quote, and inside a code block in it: never a line of its own.
    assert all(line.startswith("> ") for line in forged), text
    start = next(i for i, line in enumerate(lines) if "stopped by admin" in line)
    assert any(line.startswith("> ```") for line in lines[:start]), text
    # The agent's ``` did not close the block: every fence line is ours (three backticks,
    # an info word at most); the agent's is broken up.
    fences = [line for line in lines if line.lstrip("> ").startswith("```")]
    assert len(fences) % 2 == 0 and all(f.strip("> `") in ("", "text") for f in fences), text
    # As CommonMark reads it too: no link, no bold made of the agent's text.
    html = MarkdownIt("commonmark").render(text)
    assert "<a " not in html and "<strong>bold" not in html, html
    assert "https://evil.example/steal" in text  # the target shows
    # The secret, even with the zero-width spaces taken out of what was posted.
    assert token not in visible(text) and token[-16:] not in visible(text), text
    assert "[redacted: DEPLOY_TOKEN]" in text, text


async def test_an_agents_forged_notice_link_and_hidden_secret_show_as_its_own(
    bot: tuple[Bot, str],
) -> None:
    """The feed in the agent's thread and a viewer's `logs`: the forged notice is quoted
    under the agent's name, the link is plain text with its target, no fence is broken,
    and the zero-width-split secret is redacted."""
    running, token = bot
    await running.ask("ann", f"!spawn {AGENT}")
    thread = await eventually(lambda: running.thread_named(AGENT))
    fed = await eventually(
        lambda: next(
            (m for m in running.posted(thread) if "VOICE-END" in m.content and "›" in m.content),
            None,
        )
    )
    assert fed.content.startswith(f"**{AGENT}** ›\n> "), fed.content
    assert_the_agents(fed.content, token)

    logs = "".join(m.content for m in await running.ask("vic", f"!logs {AGENT} --raw"))
    assert "VOICE-END" in logs, logs
    assert_the_agents(logs, token)
    # Nothing Fleetwarden posted, anywhere, starts a line with the forged notice.
    for channel in (running.channel, thread):
        for message in running.posted(channel):
            assert not any(line.startswith("⏹") for line in message.content.splitlines())
