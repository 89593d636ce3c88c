"""The dashboard at 200 agents: page loads, live-update latency, the orchestrator's CPU with
open dashboards, and ``/metrics`` scrapes — against the real ``fleetwarden run``.

Run from the repository root::

    python -m bench.dashboard [--agents 200] [--tabs 20] [--rounds 30] [--usage-rows 100000]
        [--json out.json]

One orchestrator (console on pipes, :class:`bench.fleet_scale.Console`) with its dashboard
on loopback and a daily global budget spawns ``--agents`` sandboxed stub agents; then
``--usage-rows`` metered requests are written into its ledger (spread over the last week,
over the agents, four models and two accounts), as a fleet that has worked a while has.
A sign-in link from the console signs an HTTP client in, and:

* ``fleet page``: ``GET /`` (the whole page, rendered from the ledger) ``--rounds`` times,
  one after the other; p50/p95. The goal is p95 ≤ 300 ms.
* ``fleet api``: ``GET /api/fleet`` the same way (the JSON twin, what ``fleetwarden status``
  reads).
* ``update latency``: with the agent page of ``a001`` open (its ``/events`` stream), a line
  is sent to the agent; the time from the line typed to the stream's fragment holding the
  agent's answer, ``--rounds`` times. The goal is p95 ≤ 1 s.
* ``fleet update``: with the fleet page's stream open, an agent is spawned; the time from
  the line typed to the fragment listing it (the spawn itself included).
* ``CPU``: the orchestrator's CPU over 20 s with nothing open, then over 20 s with
  ``--tabs`` fleet pages streaming (the heaviest page), as % of one core. The goal is at
  most 5 points over idle.
* ``/metrics``: ``--rounds`` scrapes; p50/p95, and the size of the text.

Every agent is killed at the end, on error and on Ctrl-C too.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import re
import socket
import sqlite3
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp.abc import ResolveResult

from bench.console_driver import Console
from bench.fleet_procs import cpu_seconds, kill_agents
from bench.harness import stats
from tests.postgres_server import free_port

GOALS = {"page_p95_ms": 300.0, "update_p95_ms": 1000.0, "cpu_over_idle_pct": 5.0}
STARTED = re.compile(r"Agent \**(a\d+)\** started")
LINK = re.compile(r"(http://fleetwarden-[a-z2-7]{26}\.localhost:\d+/signin/[A-Za-z0-9_-]{43})")
MODELS = ("claude-sonnet-4-5", "claude-haiku-4-5", "gpt-5-codex", "gpt-5-mini")


def config_text(port: int) -> str:
    return (
        "state_dir: ./state\n"
        "defaults:\n"
        "  send_reply_wait_seconds: 0\n"
        "  runtime: stub\n"
        f"dashboard: {{listen: 127.0.0.1:{port}}}\n"
        "budgets:\n"
        "  - {scope: global, limit_tokens: 500000000, window: daily}\n"
    )


def add_usage(ledger: Path, agents: int, rows: int) -> None:
    """``rows`` metered requests in the last week, written as the proxy writes them."""
    now = time.time()
    rng = random.Random(7)
    batch = []
    for i in range(rows):
        agent = f"a{rng.randrange(1, agents + 1):03d}"
        model = MODELS[i % len(MODELS)]
        provider = "anthropic" if model.startswith("claude") else "openai"
        batch.append(
            (
                now - rng.random() * 7 * 86400,
                agent,
                provider,
                provider,
                model,
                model,
                rng.randrange(100, 5000),
                rng.randrange(10, 800),
                rng.randrange(0, 20000),
                rng.randrange(0, 2000),
                0,
                1,
                200,
                "ok",
                800.0,
                120.0,
                f"req-{i}",
                0,
                "",
                0.001,
                1,
                None,
                f"team-{i % 2}",
                "local",
            )
        )
    with sqlite3.connect(ledger, timeout=30) as db:
        db.executemany(
            "INSERT INTO usage (at, agent, provider, api, requested_model, served_model,"
            " input_tokens, output_tokens, cache_read_tokens, cache_write_tokens,"
            " reasoning_tokens, stream, status, outcome, latency_ms, ttfb_ms, request_id,"
            " partial, reason, cost_usd, priced, rewritten_from, account, host)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            batch,
        )


async def timed_gets(http: aiohttp.ClientSession, url: str, rounds: int) -> list[float]:
    out = []
    for _ in range(rounds):
        t0 = time.perf_counter()
        async with http.get(url) as reply:
            body = await reply.read()
            if reply.status != 200:
                raise RuntimeError(f"GET {url}: {reply.status} {body[:200]!r}")
        out.append((time.perf_counter() - t0) * 1000)
    return out


class Loopback(aiohttp.ThreadedResolver):
    """Resolves ``*.localhost`` to 127.0.0.1, as browsers do (the dashboard's own name)."""

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        return await super().resolve(
            "127.0.0.1" if host.endswith(".localhost") else host, port, family
        )


async def sign_in(base: str, link: str) -> aiohttp.ClientSession:
    http = aiohttp.ClientSession(
        cookie_jar=aiohttp.CookieJar(unsafe=True),
        connector=aiohttp.TCPConnector(resolver=Loopback()),
    )
    secret = link.rsplit("/", 1)[1]
    async with http.post(
        f"{base}/signin", data={"link": secret}, headers={"Sec-Fetch-Site": "same-origin"}
    ) as reply:
        if str(reply.url) != f"{base}/":
            raise RuntimeError(f"sign-in failed: {reply.status}")
    return http


async def stream(http: aiohttp.ClientSession, url: str, seen: list[tuple[float, str]]) -> None:
    """Read an SSE stream, keeping (arrival, fragment) for each fragment."""
    async with http.get(url) as reply:
        data: list[str] = []
        async for raw in reply.content:
            line = raw.decode().rstrip("\n")
            if line.startswith("data: "):
                data.append(line[6:])
            elif not line and data:
                seen.append((time.perf_counter(), "\n".join(data)))
                data = []


async def measure(bot: Console, base: str, args: argparse.Namespace) -> dict[str, Any]:
    since = bot.mark()
    bot.send("dashboard")
    _, found, _ = bot.expect(LINK, since)
    http = await sign_in(base, found.group(1))
    try:
        await timed_gets(http, f"{base}/", 3)  # warm
        page = await timed_gets(http, f"{base}/", args.rounds)
        api = await timed_gets(http, f"{base}/api/fleet", args.rounds)
        agent_page = await timed_gets(http, f"{base}/agents/a001", args.rounds)
        metrics = await timed_gets(http, f"{base}/metrics", args.rounds)
        async with http.get(f"{base}/metrics") as reply:
            metrics_bytes = len(await reply.read())

        seen: list[tuple[float, str]] = []
        watcher = asyncio.create_task(stream(http, f"{base}/events?topic=agent:a001", seen))
        await asyncio.sleep(2)
        updates = []
        for i in range(args.rounds):
            word = f"mark-{i}-{random.randrange(10**6)}"
            t0 = bot.send(f"send a001 {word}")
            deadline = time.perf_counter() + 10
            while not any(word in text for _, text in seen):
                if time.perf_counter() > deadline:
                    raise RuntimeError(f"no update with {word} within 10 s")
                await asyncio.sleep(0.005)
            at = next(at for at, text in seen if word in text)
            updates.append((at - t0) * 1000)
            await asyncio.sleep(random.random() * 0.5)  # not in step with the hub's tick
        watcher.cancel()
        await asyncio.gather(watcher, return_exceptions=True)

        fleet_seen: list[tuple[float, str]] = []
        watcher = asyncio.create_task(stream(http, f"{base}/events?topic=fleet", fleet_seen))
        await asyncio.sleep(2)
        spawns = []
        for i in range(min(args.rounds, 10)):
            name = f"z{i:03d}"
            t0 = bot.send(f"spawn {name} --prompt hi")  # its row is awaited on the stream
            deadline = time.perf_counter() + 10
            while not any(f'data-agent="{name}"' in text for _, text in fleet_seen):
                if time.perf_counter() > deadline:
                    raise RuntimeError(f"{name} not on the fleet page within 10 s")
                await asyncio.sleep(0.005)
            at = next(at for at, text in fleet_seen if f'data-agent="{name}"' in text)
            spawns.append((at - t0) * 1000)
        watcher.cancel()
        await asyncio.gather(watcher, return_exceptions=True)

        window = 20.0
        await asyncio.sleep(2)
        cpu0 = cpu_seconds(bot.pid)
        await asyncio.sleep(window)
        idle_pct = (cpu_seconds(bot.pid) - cpu0) / window * 100
        tabs: list[list[tuple[float, str]]] = [[] for _ in range(args.tabs)]
        clients = [await sign_in(base, await fresh_link(bot)) for _ in range(args.tabs)]
        tasks = [
            asyncio.create_task(stream(c, f"{base}/events?topic=fleet", tabs[i]))
            for i, c in enumerate(clients)
        ]
        await asyncio.sleep(3)
        cpu0 = cpu_seconds(bot.pid)
        await asyncio.sleep(window)
        open_pct = (cpu_seconds(bot.pid) - cpu0) / window * 100
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        for client in clients:
            await client.close()
        return {
            "page_ms": stats(page),
            "api_ms": stats(api),
            "agent_page_ms": stats(agent_page),
            "update_ms": stats(updates),
            "fleet_update_ms": stats(spawns),
            "metrics_ms": stats(metrics),
            "metrics_bytes": metrics_bytes,
            "cpu_idle_pct": idle_pct,
            "cpu_tabs_pct": open_pct,
            "tabs_got_fragments": min(len(t) for t in tabs),
        }
    finally:
        await http.close()


async def fresh_link(bot: Console) -> str:
    since = bot.mark()
    bot.send("dashboard")
    _, found, _ = bot.expect(LINK, since)
    return found.group(1)


def run(args: argparse.Namespace) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="fw-dash-") as tmp:
        root = Path(tmp)
        port = free_port()
        config = root / "fleetwarden.yaml"
        config.write_text(config_text(port))
        bot = Console(root, config)
        try:
            for i in range(1, args.agents + 1):
                name = f"a{i:03d}"
                since = bot.mark()
                bot.send(f"spawn {name} --prompt hi")
                bot.expect(STARTED, since, timeout=60)
                if i % 50 == 0:
                    print(f"  spawned {i}/{args.agents}", file=sys.stderr)
            add_usage(root / "state" / "ledger.db", args.agents, args.usage_rows)
            time.sleep(6)  # every agent has beaten once
            name = (root / "state" / "dashboard-name").read_text().strip()
            result = asyncio.run(measure(bot, f"http://{name}:{port}", args))
            result.update(agents=args.agents, tabs=args.tabs, usage_rows=args.usage_rows)
            return result
        finally:
            bot.kill()
            kill_agents(root / "state")


def report(r: dict[str, Any]) -> str:
    def line(label: str, s: dict[str, float]) -> str:
        return (
            f"  {label:<22} p50 {s['p50']:7.1f} ms   p95 {s['p95']:7.1f} ms   max {s['max']:7.1f}"
        )

    over = r["cpu_tabs_pct"] - r["cpu_idle_pct"]
    verdicts = {
        "page": r["page_ms"]["p95"] <= GOALS["page_p95_ms"],
        "update": r["update_ms"]["p95"] <= GOALS["update_p95_ms"],
        "cpu": over <= GOALS["cpu_over_idle_pct"],
    }
    ok = {True: "meets", False: "MISSES"}
    return "\n".join(
        [
            f"dashboard, {r['agents']} agents, {r['usage_rows']:,} usage rows in the ledger:",
            line("fleet page (GET /)", r["page_ms"]) + f"   goal ≤ 300 ms: {ok[verdicts['page']]}",
            line("fleet api", r["api_ms"]),
            line("agent page", r["agent_page_ms"]),
            line("SSE update (agent)", r["update_ms"]) + f"   goal ≤ 1 s: {ok[verdicts['update']]}",
            line("SSE update (fleet)", r["fleet_update_ms"]) + "   (spawn typed → row shown)",
            line("/metrics scrape", r["metrics_ms"]) + f"   ({r['metrics_bytes']:,} bytes)",
            f"  CPU idle {r['cpu_idle_pct']:.1f} % of a core; with {r['tabs']} fleet pages"
            f" streaming {r['cpu_tabs_pct']:.1f} % (+{over:.1f}, goal ≤ +5:"
            f" {ok[verdicts['cpu']]}); every tab got ≥ {r['tabs_got_fragments']} fragments",
        ]
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.dashboard", description=__doc__)
    parser.add_argument("--agents", type=int, default=200)
    parser.add_argument("--tabs", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=30)
    parser.add_argument("--usage-rows", type=int, default=100_000)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    result = run(args)
    print(report(result))
    if args.json is not None:
        args.json.write_text(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
