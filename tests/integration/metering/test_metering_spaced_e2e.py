"""A stream cut short is counted whatever its JSON's spacing: the real ``fleetwarden run``,
the fake provider writing its events as Python's ``json.dumps`` does by default
(``"text": "…"``, as OpenAI-compatible servers written in Python may), and an agent that
hangs up mid-answer on each API the proxy meters. With the drain cut short, the ledger row
counts at least the text the agent received."""

from __future__ import annotations

import asyncio
import json
import math
import os
import signal
import sqlite3
import time
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from tests.fakes.provider.background import fake_provider_thread
from tests.fakes.provider.server import Accepted, Api, Turn, Usage
from tests.integration.console_bot import ConsoleBot, clean_env, stub_processes_in
from tests.integration.metering.test_metering_cut import PATHS, WORDS, body, text_of

pytestmark = pytest.mark.integration

PROVIDER_KEY = "fake-spaced-provider-key-0123456789abcdef"
CONFIG = """\
state_dir: ./state
connectors:
  console: {{}}
metering:
  drain_timeout_seconds: 0.2
providers:
  anthropic:
    upstream: {upstream}
  openai:
    upstream: {upstream}
accounts:
  claude-team: {{kind: api_key, provider: anthropic, key_env: FW_PROVIDER_KEY, default: true}}
  openai-team: {{kind: api_key, provider: openai, key_env: FW_PROVIDER_KEY, default: true}}
agents:
  - name: asker
    runtime: stub
    model: claude-haiku-4-5
"""
SPACED = Turn(
    text=WORDS,
    usage=Usage(input=5000, output=2900),
    delay_between_events=0.002,
    spaced_json=True,
)
# What the agent sends: placeholders; the proxy puts the provider's key in their place.
HEADERS: dict[Api, dict[str, str]] = {
    "anthropic": {"x-api-key": "placeholder", "anthropic-version": "2023-06-01"},
    "responses": {"Authorization": "Bearer placeholder"},
    "chat": {"Authorization": "Bearer placeholder"},
}


async def hang_up(agent_url: str, key: str, api: Api, at_least: int) -> str:
    """Stream an answer as the agent, on its own proxy URL; hang up once ``at_least``
    characters of text came. The text received."""
    provider, path, _ = PATHS[api]
    url = f"{agent_url}/{provider}/{key}{path}"
    received, text = b"", ""
    async with (
        aiohttp.ClientSession() as http,
        http.post(url, json=body(api), headers=HEADERS[api]) as response,
    ):
        assert response.status == 200, await response.text()
        while len(text) < at_least:
            chunk = await response.content.readany()
            assert chunk, "the stream ended before the agent hung up"
            done, _, received = (received + chunk).rpartition(b"\n\n")
            text += text_of(api, done + b"\n\n") if done else ""
        response.close()
    return text


def proxy_state(state: Path) -> dict[str, Any]:
    """The proxy's port and the agents' keys, once the agent's key is saved."""
    deadline = time.monotonic() + 20
    while True:
        path = state / "metering.json"
        saved = json.loads(path.read_text()) if path.exists() else {}
        if "asker" in saved.get("tokens", {}) and saved.get("port"):
            return saved
        assert time.monotonic() < deadline, f"no key for asker in {saved}"
        time.sleep(0.05)


def rows(state: Path) -> list[tuple[str, int, str, int]]:
    ledger = sqlite3.connect(state / "ledger.db")
    try:
        return ledger.execute(
            "SELECT api, output_tokens, reason, partial FROM usage ORDER BY id"
        ).fetchall()
    finally:
        ledger.close()


def test_a_hung_up_spaced_json_stream_is_counted_at_what_the_agent_got_on_each_api(
    tmp_path: Path,
) -> None:
    """On Anthropic Messages, OpenAI Responses and Chat Completions alike, a stream of
    spaced JSON the agent left partway is recorded partial with output at least the
    received text's estimate (bytes ÷ 4), counted from the deltas that passed."""
    state = tmp_path / "state"
    got: dict[Api, int] = {}
    with fake_provider_thread(
        default=SPACED, accept=Accepted(api_keys=frozenset({PROVIDER_KEY}))
    ) as fake:
        config = tmp_path / "fleetwarden.yaml"
        config.write_text(CONFIG.format(upstream=fake.base_url))
        env = clean_env(FW_PROVIDER_KEY=PROVIDER_KEY)
        bot = ConsoleBot(tmp_path, "--config", str(config), env=env)
        try:
            bot.command('spawn asker --prompt "hold"', r"asker")  # its proxy key is issued
            saved = proxy_state(state)
            agent_url = f"http://127.0.0.1:{saved['port']}/a/asker"
            key = saved["tokens"]["asker"]
            for number, api in enumerate(PATHS, start=1):
                text = asyncio.run(hang_up(agent_url, key, api, at_least=2400))
                got[api] = math.ceil(len(text.encode()) / 4)
                deadline = time.monotonic() + 20
                while len(rows(state)) < number:  # the recorder writes in batches
                    assert time.monotonic() < deadline, "no usage row for the hung-up stream"
                    time.sleep(0.05)
            bot.command("stop asker", r"Stopped asker")
            assert bot.close() == 0
        finally:
            for pid in stub_processes_in(state / "agents" / "asker" / "work"):
                os.kill(pid, signal.SIGKILL)  # agents outlive Fleetwarden by design
            if bot.proc.poll() is None:
                bot.kill()
        assert {request.model for request in fake.requests} <= {m for _, _, m in PATHS.values()}
    recorded = rows(state)
    assert [row[0] for row in recorded] == list(PATHS)
    for (name, output, reason, partial), wanted in zip(recorded, got.values(), strict=True):
        assert partial == 1, (name, reason)
        assert "counted from the deltas" in reason, (name, reason)
        assert output >= wanted > 550, (name, output, wanted)
        assert output < SPACED.usage.output, (name, output)  # what passed, not the whole
