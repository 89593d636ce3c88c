"""No secret reaches the chat: the real `fleetwarden run` on the fake Discord, with an agent
that prints its whole environment and a planted API key, seen by a viewer through `logs`
and `watch` and by the operator who spawned it.

The agent is a sandboxed ``command`` agent whose script sits in its workdir. What it
prints: ``env`` (its heartbeat token, its metering URL with its key, a secret variable
the roster gives it), an Anthropic-shaped key it makes up at run time, and the same
values inside JSON and alone on a line. Every secret here is made at run time.
"""

from __future__ import annotations

import asyncio
import json
import secrets
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.fakes.discord_server import FakeDiscord
from tests.integration.connectors.discord.test_discord_bot import TOKEN_ENV, Bot, eventually
from tests.integration.console_bot import FLEETWARDEN, clean_env

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[3]
AGENT = "leaky"
SECRET_VAR = "DEPLOY_TOKEN"
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


def write_config(fake: FakeDiscord, workdir: Path) -> Path:
    (workdir / AGENT).mkdir()
    # In its workdir: the sandbox's /tmp is its own.
    (workdir / AGENT / "leaky_agent.py").write_text(SCRIPT)
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
        f"    argv: [{sys.executable}, -I, leaky_agent.py]\n"
        f"    workdir: ./{AGENT}\n"
        f"    secret_env: [{SECRET_VAR}]\n"
    )
    return path


def launch(fake: FakeDiscord, workdir: Path, deploy_token: str) -> subprocess.Popen[bytes]:
    env = clean_env(
        **{
            TOKEN_ENV: fake.token,
            SECRET_VAR: deploy_token,
            "FLEETWARDEN_DISCORD_API_BASE": fake.api_base,
            "FLEETWARDEN_DISCORD_GATEWAY_URL": fake.gateway_url,
            "PYTHONPATH": str(REPO),  # this checkout's code, whatever the venv points at
        }
    )
    return subprocess.Popen(
        [str(FLEETWARDEN), "run", "--config", str(write_config(fake, workdir))],
        cwd=workdir,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )


@pytest.fixture
async def bot(tmp_path: Path) -> AsyncIterator[tuple[Bot, str]]:
    deploy_token = "fake-deploy-" + secrets.token_hex(16)
    async with FakeDiscord(heartbeat_interval_ms=2_000) as fake:
        running = Bot(fake, launch(fake, tmp_path, deploy_token), tmp_path)
        try:
            await eventually(lambda: fake.connected)
            yield running, deploy_token
        finally:
            if fake.connected and running.proc.poll() is None:
                await running.ask("ann", f"!stop {AGENT}")
            err = await asyncio.to_thread(running.stop)
            assert running.proc.returncode == 0, err


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
    bot: tuple[Bot, str],
) -> None:
    """`spawn` (the operator's reply and the thread it opens), a viewer's `logs` and
    `watch`: the agent's output is shown, every secret in it replaced by its label."""
    running, deploy_token = bot
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
