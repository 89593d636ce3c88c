"""Nothing lost on a crash: the metering proxy, in a process of its own, is killed with
SIGKILL again and again while agents' requests stream through it; every answer an agent
received whole is in the ledger afterwards, with the usage the provider put on the wire.

The proxy process is ``bench.metering_server`` (a real ``MeteringProxy`` recording into a
real SQLite ledger). Clients stand in for agents: they send streamed and whole requests
concurrently and remember the request id of each answer they got to its end.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import random
import signal
import subprocess
import sys
from pathlib import Path

import aiohttp

from fleet.ledger import Ledger
from fleet.timing.clock import SystemClock
from tests.fakes.provider.background import fake_provider_thread
from tests.fakes.provider.server import Accepted, Turn, Usage

ROOT = Path(__file__).resolve().parents[3]
KEY = "fake-crash-key"
ROUNDS = 8
CLIENTS = 6


def _start_proxy(upstream: str, state: Path, ledger: Path) -> tuple[subprocess.Popen[str], str]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "bench.metering_server", upstream, str(state), str(ledger)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        start_new_session=True,
    )
    assert proc.stdout is not None
    url = proc.stdout.readline().strip()
    if not url:
        proc.kill()
        proc.wait()
        proc.stdout.close()
        raise AssertionError("the proxy process printed no URL")
    return proc, url


async def _agent(
    session: aiohttp.ClientSession, url: str, received: dict[str, bool], seed: int
) -> None:
    """Send requests until the proxy dies; note each answer received to its end."""
    rng = random.Random(seed)
    while True:
        stream = rng.random() < 0.6
        body = {
            "model": "claude-sonnet-4-5",
            "max_tokens": 64,
            "stream": stream,
            "messages": [{"role": "user", "content": "hi"}],
        }
        headers = {"x-api-key": KEY, "anthropic-version": "2023-06-01"}
        try:
            async with session.post(f"{url}/v1/messages", json=body, headers=headers) as resp:
                raw = await resp.read()
                rid = resp.headers.get("request-id")
        except (aiohttp.ClientError, ConnectionError):
            return  # the proxy is gone
        if resp.status != 200 or rid is None:
            continue
        if stream:
            whole = b"event: message_stop" in raw
        else:
            with contextlib.suppress(ValueError):
                whole = json.loads(raw).get("type") == "message"
        if whole:
            received[rid] = stream


async def _round(url: str, received: dict[str, bool], rng: random.Random) -> None:
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as session:
        agents = [
            asyncio.create_task(_agent(session, url, received, rng.randrange(1 << 30)))
            for _ in range(CLIENTS)
        ]
        await asyncio.gather(*agents)


async def test_sigkill_at_any_moment_loses_no_usage_of_a_received_answer(tmp_path: Path) -> None:
    usage = Usage(input=1200, output=345, cache_read=17, cache_write=5)
    turn = Turn(text="a streamed answer " * 20, usage=usage, delay_between_events=0.001)
    state, ledger_path = tmp_path / "state", tmp_path / "ledger.db"
    state.mkdir()
    received: dict[str, bool] = {}
    rng = random.Random(15)
    with fake_provider_thread(default=turn, accept=Accepted(api_keys=frozenset({KEY}))) as fake:
        for _ in range(ROUNDS):
            proc, url = _start_proxy(fake.base_url, state, ledger_path)
            try:
                work = asyncio.create_task(_round(url, received, rng))
                await asyncio.sleep(rng.uniform(0.3, 1.2))
                os.killpg(proc.pid, signal.SIGKILL)
                await asyncio.wait_for(work, 20)
            finally:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=10)
                if proc.stdout is not None:
                    proc.stdout.close()
        emitted = {e.request_id: e for e in fake.emitted}
    assert len(received) >= ROUNDS * 5, "too few answers got through to prove anything"
    assert any(received.values()) and not all(received.values())  # streams and whole bodies
    ledger = await Ledger.open(ledger_path, SystemClock())
    try:
        rows = {e.request_id: e for e in await ledger.metering.usage_events()}
    finally:
        await ledger.close()
    missing = [rid for rid in received if rid not in rows]
    assert not missing, f"{len(missing)} of {len(received)} received answers are not in the ledger"
    for rid in received:
        seen = emitted[rid].usage
        assert seen is not None
        tokens = rows[rid].tokens
        assert (tokens.input, tokens.output) == (seen.input, seen.output), rid
        assert (tokens.cache_read, tokens.cache_write) == (seen.cache_read, seen.cache_write)
