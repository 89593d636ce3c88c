"""Matrix's health through the real ``fleetwarden run`` serving the console and a real
Synapse: Synapse stopped under the running fleet shows in ``/metrics``, the dashboard API
and ``fleetwarden status --json``, and the console is told once it is down and once it is
back — not at each failed sync."""

from __future__ import annotations

import asyncio
import json
import re
import subprocess
import urllib.error
import urllib.request
from functools import partial
from pathlib import Path

import pytest

from tests.integration.connectors.matrix.test_matrix_bot import PASSWORD, joined, make_deployment
from tests.integration.console_bot import FLEETWARDEN, ConsoleBot, clean_env
from tests.polling import eventually
from tests.postgres_server import free_port
from tests.synapse_server import SynapseServer

pytestmark = [pytest.mark.integration, pytest.mark.synapse]

TOKEN_ENV = "FW_TEST_METRICS_TOKEN"
TOKEN = "metrics-token-for-this-test-0123456789"
DOWN = "matrix is down since"
BACK = "matrix is back"


def _get(url: str) -> str | None:
    request = urllib.request.Request(url, headers={"Authorization": f"Bearer {TOKEN}"})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return str(response.read().decode())
    except (urllib.error.URLError, OSError):
        return None  # the dashboard is not serving yet


def _matrix_up(base: str) -> float | None:
    """``fleetwarden_connector_up{connector="matrix"}`` as scraped (None: not there)."""
    text = _get(f"{base}/metrics") or ""
    found = re.search(r'^fleetwarden_connector_up\{connector="matrix"\} (\S+)$', text, re.M)
    return float(found.group(1)) if found else None


async def _up_is(base: str, value: float) -> bool:
    return await asyncio.to_thread(_matrix_up, base) == value


async def _links(base: str) -> dict[str, dict[str, object]]:
    fleet = json.loads(await asyncio.to_thread(_get, f"{base}/api/fleet") or "{}")
    return {link["name"]: link for link in fleet.get("connectors", [])}


async def _status(config: Path, env: dict[str, str], *args: str) -> str:
    """``fleetwarden status ARGS --config CONFIG``'s output (it must succeed)."""
    done = await asyncio.to_thread(
        subprocess.run,
        [str(FLEETWARDEN), "status", *args, "--config", str(config)],
        cwd=config.parent,
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


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
        + f"dashboard:\n  listen: 127.0.0.1:{port}\n  metrics_token_env: {TOKEN_ENV}\n"
    )
    env = clean_env(FW_BOT_PASSWORD=PASSWORD, **{TOKEN_ENV: TOKEN})
    bot = ConsoleBot(tmp_path, "--config", str(config), env=env)
    try:
        await joined(op, room, me)
        await eventually(partial(_up_is, base, 1.0), "matrix up in /metrics", within=30)
        links = await _links(base)
        assert links["matrix"]["up"] and links["matrix"]["logged_in"]
        assert links["console"]["up"] and links["console"]["last_error"] is None

        private_synapse.stop()
        await eventually(partial(_up_is, base, 0.0), "matrix down in /metrics", within=30)
        await eventually(lambda: DOWN in bot.stdout, "the console told matrix is down", 30)
        matrix = (await _links(base))["matrix"]
        assert not matrix["up"] and not matrix["connected"] and matrix["last_error"]
        shown = json.loads(await _status(config, env, "--json"))["connectors"]
        assert {link["name"]: link["up"] for link in shown} == {"console": True, "matrix": False}
        plain = await _status(config, env)
        assert re.search(r"^matrix DOWN since .*; last error: ", plain, re.M), plain

        private_synapse.start()
        await eventually(partial(_up_is, base, 1.0), "matrix up again in /metrics", within=60)
        await eventually(lambda: BACK in bot.stdout, "the console told matrix is back", 30)
        assert (await _links(base))["matrix"]["up"]
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
