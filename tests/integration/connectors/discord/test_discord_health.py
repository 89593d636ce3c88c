"""Discord's health through the real ``fleetwarden run`` serving the console and the fake
Discord: the gateway gone for a while shows in ``/metrics`` and the dashboard API, and the
console is told once it is down and once it is back; a reconnect at once tells nobody."""

from __future__ import annotations

from functools import partial
from pathlib import Path

import pytest

from tests.fakes.discord.server import FakeDiscord
from tests.integration.connectors.discord.test_discord_bot import TOKEN_ENV, write_config
from tests.integration.connectors.link_probe import TOKEN, dashboard_section, links, up_is
from tests.integration.connectors.link_probe import TOKEN_ENV as METRICS_TOKEN_ENV
from tests.integration.console_bot import ConsoleBot, clean_env
from tests.polling import eventually
from tests.postgres_server import free_port

pytestmark = pytest.mark.integration

DOWN = "discord is down since"
BACK = "discord is back"


async def test_the_gateway_gone_and_back_is_shown_and_told_once_each_way(tmp_path: Path) -> None:
    """A resume at once tells nothing; the gateway refusing past the threshold: discord_up
    0 and the console told once; back: discord_up 1 and told once."""
    async with FakeDiscord(heartbeat_interval_ms=2_000) as fake:
        port = free_port()
        base = f"http://127.0.0.1:{port}"
        config = write_config(fake, tmp_path)
        config.write_text(
            config.read_text().replace(
                "connectors:\n", "connectors:\n  down_after_seconds: 3\n  console: {}\n"
            )
            + dashboard_section(port)
        )
        env = clean_env(
            **{
                TOKEN_ENV: fake.token,
                METRICS_TOKEN_ENV: TOKEN,
                "FLEETWARDEN_DISCORD_API_BASE": fake.api_base,
                "FLEETWARDEN_DISCORD_GATEWAY_URL": fake.gateway_url,
            }
        )
        bot = ConsoleBot(tmp_path, "--config", str(config), env=env)
        discord_up = partial(up_is, base, "discord")
        try:
            await eventually(partial(discord_up, 1.0), "discord up in /metrics", within=30)
            resumes = fake.resumes
            await fake.force_reconnect()  # down and back at once: nobody is told
            await eventually(lambda: fake.resumes > resumes and fake.connected, "resumed", 20)

            await fake.go_away()
            await eventually(partial(discord_up, 0.0), "discord down in /metrics", within=30)
            await eventually(lambda: DOWN in bot.stdout, "the console told discord is down", 30)
            discord = (await links(base))["discord"]
            assert not discord["up"] and discord["last_error"]
            fake.come_back()
            await eventually(partial(discord_up, 1.0), "discord up again in /metrics", within=60)
            await eventually(lambda: BACK in bot.stdout, "the console told discord is back", 30)
            bot.command("whoami", r"admin")  # one more turn of the console: nothing else told
            assert (bot.stdout.count(DOWN), bot.stdout.count(BACK)) == (1, 1), bot.stdout
            assert bot.close() == 0, bot.stderr[-3000:]
        finally:
            if bot.proc.poll() is None:
                bot.kill()
