"""The two parties of :mod:`bench.forge` — Fleetwarden's server and its floor, a bare aiohttp
handler — served side by side on 127.0.0.1, the forge and repository both measure on, and
how their latencies compare."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from typing import cast

from aiohttp import ClientSession, TCPConnector, web

from bench.harness import summary
from fleet.ledger.records.forge import Slug

PARTIES = ("fleetwarden", "floor")
FORGE = "gh"
REPO = Slug("acme", "app")

Summaries = dict[str, dict[str, float]]  # a latency summary (ms) by party


@asynccontextmanager
async def served(
    fleetwarden: web.Application, floor: web.Application
) -> AsyncIterator[tuple[dict[str, str], dict[str, ClientSession]]]:
    """Both apps on 127.0.0.1 (free ports), and a client session for each (keep-alive, up
    to 16 connections), until the block ends: base URLs and sessions by party."""
    async with AsyncExitStack() as stack:
        bases, clients = {}, {}
        for party, app in zip(PARTIES, (fleetwarden, floor), strict=True):
            runner = web.AppRunner(app, access_log=None, handle_signals=False)
            await runner.setup()
            stack.push_async_callback(runner.cleanup)
            await web.TCPSite(runner, "127.0.0.1", 0).start()
            bases[party] = f"http://127.0.0.1:{cast(tuple[str, int], runner.addresses[0])[1]}"
            session = ClientSession(connector=TCPConnector(limit=16))
            clients[party] = await stack.enter_async_context(session)
        yield bases, clients


def compared(samples: dict[str, list[float]]) -> tuple[Summaries, dict[str, float]]:
    """Each party's latency summary, and Fleetwarden's p50 and p95 over the floor's."""
    latency = {p: summary(samples[p]) for p in PARTIES}
    return latency, {q: latency["fleetwarden"][q] / latency["floor"][q] for q in ("p50", "p95")}
