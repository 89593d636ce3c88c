"""The real ``fleetwarden run`` on the fake Discord with one ``command`` agent that is given
a secret (``secret_env``) and runs a Python script of the test's: what the chat shows of
what such an agent prints is what the agents' and the redaction's tests read."""

from __future__ import annotations

import asyncio
import secrets
import subprocess
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from tests.fakes.discord.server import FakeDiscord
from tests.integration.connectors.discord.test_discord_bot import TOKEN_ENV, Bot, eventually
from tests.integration.console_bot import FLEETWARDEN, clean_env

REPO = Path(__file__).resolve().parents[4]
SECRET_VAR = "DEPLOY_TOKEN"
"""The variable the agent's secret is given in."""


def write_config(fake: FakeDiscord, workdir: Path, agent: str, script: str, name: str) -> Path:
    """A config on ``fake`` (ann an operator, vic a viewer) whose one agent ``agent`` runs
    ``script`` as ``name`` in its own workdir (the sandbox's /tmp is its own) with the
    secret in :data:`SECRET_VAR`; the config's path."""
    (workdir / agent).mkdir()
    (workdir / agent / name).write_text(script)
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
        f"  - name: {agent}\n"
        "    runtime: command\n"
        f"    argv: [{sys.executable}, -I, {name}]\n"
        f"    workdir: ./{agent}\n"
        f"    secret_env: [{SECRET_VAR}]\n"
    )
    return path


def launch(fake: FakeDiscord, workdir: Path, config: Path, secret: str) -> subprocess.Popen[bytes]:
    """``fleetwarden run`` on ``config``, this checkout's code whatever the venv points at,
    with the Discord token and ``secret`` in its environment."""
    env = clean_env(
        **{
            TOKEN_ENV: fake.token,
            SECRET_VAR: secret,
            "FLEETWARDEN_DISCORD_API_BASE": fake.api_base,
            "FLEETWARDEN_DISCORD_GATEWAY_URL": fake.gateway_url,
            "PYTHONPATH": str(REPO),
        }
    )
    return subprocess.Popen(
        [str(FLEETWARDEN), "run", "--config", str(config)],
        cwd=workdir,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )


@asynccontextmanager
async def bot_with_a_secret(
    workdir: Path, agent: str, script: str, name: str
) -> AsyncIterator[tuple[Bot, str]]:
    """The bot connected to a fresh fake Discord, and the secret its agent holds; at the
    end the agent is stopped and the bot must exit 0."""
    secret = "fake-deploy-" + secrets.token_hex(16)
    async with FakeDiscord(heartbeat_interval_ms=2_000) as fake:
        config = write_config(fake, workdir, agent, script, name)
        running = Bot(fake, launch(fake, workdir, config, secret), workdir)
        try:
            await eventually(lambda: fake.connected)
            yield running, secret
        finally:
            try:
                if fake.connected and running.proc.poll() is None:
                    await running.ask("ann", f"!stop {agent}")
            finally:
                err = await asyncio.to_thread(running.stop)
            assert running.proc.returncode == 0, err
