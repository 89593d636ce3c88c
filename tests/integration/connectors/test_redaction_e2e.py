"""No secret reaches the chat: the real `fleetwarden run` on the fake Discord, with an agent
that prints its whole environment and a planted API key, seen by a viewer through `logs`
and `watch` and by the operator who spawned it.

The agent is a sandboxed ``command`` agent whose script sits in its workdir. What it
prints: ``env`` (its heartbeat token, its metering URL with its key, a secret variable
the roster gives it), an Anthropic-shaped key it makes up at run time, and the same
values inside JSON and alone on a line. Every secret here is made at run time.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.integration.connectors.discord.secret_agent import SECRET_VAR, bot_with_a_secret
from tests.integration.connectors.discord.test_discord_bot import Bot, eventually

pytestmark = pytest.mark.integration

AGENT = "leaky"
SCRIPT = """\
import json, os, secrets, sys, time

key = "sk-" + "ant-" + "api03-" + secrets.token_urlsafe(60)
with open("planted.txt", "w") as fh:
    fh.write(key)
print("AGENT-READY")
for name, value in sorted(os.environ.items()):
    print(f"{name}={value}")
print("deploying with", os.environ["DEPLOY_TOKEN"])
print("my key is", key)
print(json.dumps({"heartbeat": os.environ["FLEETWARDEN_HEARTBEAT_TOKEN"]}))
print("proxy at", os.environ["ANTHROPIC_BASE_URL"])
print("AGENT-END", flush=True)
time.sleep(120)  # until stopped; gone by itself if a failed test leaves it
"""


@pytest.fixture
async def leaky_bot(tmp_path: Path) -> AsyncIterator[tuple[Bot, str]]:
    """The bot on the fake Discord, its agent ``leaky`` printing secrets, and its own."""
    async with bot_with_a_secret(tmp_path, AGENT, SCRIPT, "leaky_agent.py") as running:
        yield running


def everything_posted(bot: Bot) -> str:
    """Every message the bot posted anywhere: the channel and every thread, with embeds
    and attachments."""
    channels = [bot.channel, *(int(t["id"]) for t in bot.fake.threads)]
    texts: list[str] = []
    for channel in channels:
        for message in bot.posted(channel):
            texts += [message.content, json.dumps(message.payload)]
            texts += [a.data.decode(errors="replace") for a in message.attachments]
    return "\n".join(texts)


def agent_secrets(bot: Bot, deploy_token: str) -> dict[str, str]:
    """What the agent had and printed, read where Fleetwarden keeps it."""
    state = bot.workdir / "state"
    tokens = {
        name: json.loads((state / name).read_text())["tokens"][AGENT]
        for name in ("heartbeat.json", "metering.json")
    }
    return {
        "api key": (bot.workdir / AGENT / "planted.txt").read_text(),
        "heartbeat token": tokens["heartbeat.json"],
        "metering key": tokens["metering.json"],
        "deploy token": deploy_token,
        "discord token": bot.fake.token,
    }


def assert_none_in(text: str, values: dict[str, str]) -> None:
    shown = [what for what, value in values.items() if value in text or value[-16:] in text]
    assert shown == [], f"{shown} posted:\n{text[-3000:]}"


async def test_a_viewer_sees_the_agents_env_without_a_secret(
    leaky_bot: tuple[Bot, str],
) -> None:
    """`spawn` (the operator's reply and the thread it opens), a viewer's `logs` and
    `watch`: the agent's output is shown, every secret in it replaced by its label."""
    running, deploy_token = leaky_bot
    await running.ask("ann", f"!spawn {AGENT}")
    thread = await eventually(lambda: running.thread_named(AGENT))
    await eventually(lambda: (running.workdir / AGENT / "planted.txt").exists())
    values = agent_secrets(running, deploy_token)

    logs = "".join(m.content for m in await running.ask("vic", f"!logs {AGENT} --lines 200"))
    assert "AGENT-READY" in logs and "AGENT-END" in logs, logs  # the output is there
    for label in ("DEPLOY_TOKEN", "heartbeat token", "metering key", "Anthropic Key"):
        assert f"[redacted: {label}]" in logs, logs
    assert f"{SECRET_VAR}=[redacted: " in logs  # the line is kept, its value not
    assert_none_in(logs, values)

    watched = await running.ask("vic", f"!watch {AGENT}", answer_in=thread)
    screen = "".join(m.content for m in watched)
    assert "AGENT-END" in screen and "[redacted: heartbeat token]" in screen, screen
    assert_none_in(screen, values)

    assert_none_in(everything_posted(running), values)
    assert_none_in((running.workdir / "state" / "fleetwarden.log").read_text(), values)
