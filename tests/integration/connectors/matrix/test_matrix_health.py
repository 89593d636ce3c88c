"""Matrix's health through the real ``fleetwarden run`` serving the console and a real
Synapse: Synapse stopped under the running fleet shows in ``/metrics``, the dashboard API
and ``fleetwarden status --json``, and the console is told once it is down and once it is
back — not at each failed sync."""

from __future__ import annotations

import json
import re
from functools import partial
from pathlib import Path

import pytest

from tests.integration.connectors.link_probe import (
    TOKEN,
    TOKEN_ENV,
    dashboard_section,
    links,
    status,
    up_is,
)
from tests.integration.connectors.matrix.test_matrix_bot import PASSWORD, joined, make_deployment
from tests.integration.console_bot import ConsoleBot, clean_env
from tests.polling import eventually
from tests.postgres_server import free_port
from tests.synapse_server import SynapseServer

pytestmark = [pytest.mark.integration, pytest.mark.synapse]

DOWN = "matrix is down since"
BACK = "matrix is back"


async def test_matrix_down_and_back_is_shown_and_told_once_each_way(
    private_synapse: SynapseServer, tmp_path: Path
) -> None:
    """Synapse stopped: matrix_up 0, the API and status say down with the error, the console
    is told once; Synapse started: matrix_up 1, told once it is back."""
    deployment = await make_deployment(private_synapse, tmp_path)
    op, room, me = deployment.operator, deployment.room, deployment.bot
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    config = deployment.config()
    config.write_text(
        config.read_text().replace(
            "connectors:\n", "connectors:\n  down_after_seconds: 1\n  console: {}\n"
        )
        + dashboard_section(port)
    )
    env = clean_env(FW_BOT_PASSWORD=PASSWORD, **{TOKEN_ENV: TOKEN})
    bot = ConsoleBot(tmp_path, "--config", str(config), env=env)
    matrix_up = partial(up_is, base, "matrix")
    try:
        await joined(op, room, me, within=60)
        await eventually(partial(matrix_up, 1.0), "matrix up in /metrics", within=30)
        shown = await links(base)
        assert shown["matrix"]["up"] and shown["matrix"]["logged_in"]
        assert shown["console"]["up"] and shown["console"]["last_error"] is None

        private_synapse.stop()
        await eventually(partial(matrix_up, 0.0), "matrix down in /metrics", within=30)
        await eventually(lambda: DOWN in bot.stdout, "the console told matrix is down", 30)
        matrix = (await links(base))["matrix"]
        assert not matrix["up"] and not matrix["connected"] and matrix["last_error"]
        told = json.loads(await status(config, env, "--json"))["connectors"]
        assert {link["name"]: link["up"] for link in told} == {"console": True, "matrix": False}
        plain = await status(config, env)
        assert re.search(r"^matrix DOWN since .*; last error: ", plain, re.M), plain

        private_synapse.start()
        await eventually(partial(matrix_up, 1.0), "matrix up again in /metrics", within=60)
        await eventually(lambda: BACK in bot.stdout, "the console told matrix is back", 30)
        assert (await links(base))["matrix"]["up"]
        reply = await op.reply(room, "!whoami", me, within=60)  # Matrix answers again
        assert "operator" in reply.body
        bot.command("whoami", r"admin")  # one more turn of the console: nothing else told
        assert (bot.stdout.count(DOWN), bot.stdout.count(BACK)) == (1, 1), bot.stdout
        assert bot.close() == 0, bot.stderr[-3000:]
    finally:
        if bot.proc.poll() is None:
            bot.kill()
        await op.close()
        await deployment.stranger.close()
