"""An MCP ``tools/call`` through Fleetwarden's MCP door against the same call made
directly to the server, in one interleaved run.

The server is the MCP SDK's streamable HTTP server (:mod:`tests.integration.mcp.mcp_http_server`,
uvicorn on 127.0.0.1, the bearer token checked). The door is the real
:class:`~fleet.mcp.door.routes.McpDoor` mounted on the real heartbeat endpoint, holding the server's
credential, its audits kept in memory (the app's ledger write and thread line are not in
this figure). Both parties are one client posting JSON-RPC as an agent's CLI does, over a
kept-alive connection, each in a session of its own opened first: ``direct`` with the
credential, ``door`` with the run's token. Rounds alternate door, direct, door, … one at a
time; each round is one ``tools/call`` of ``echo`` whose text is ``--text-bytes`` long.
Then each party's rate with ``--in-flight`` calls at once over its session (``--burst``
calls each, in blocks alternating door, direct, door, …).

Goals (issue 73): the door's p50 ≤ 1.2× the direct call's; ≥ 1,000 calls/s through the door
at 16 in flight.

Run: ``.venv/bin/python -m bench.mcp_door [--rounds 500] [--warmup 20] [--text-bytes 1024]
[--in-flight 16] [--burst 1200] [--json out.json]``
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import time
from asyncio.subprocess import DEVNULL, PIPE
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx2

from bench.harness import execute, summary
from bench.processes import BenchError
from fleet.mcp.model import HttpServer, McpServer
from fleet.model import McpGrant
from tests.integration.mcp.rig import CREDENTIAL, door_on_endpoint

PARTIES = ("door", "direct")
AGENT = "coder"
SERVER = "tracker"
REPO = Path(__file__).resolve().parent.parent
GOAL_RATIO = 1.2
GOAL_RATE = 1000.0
BLOCKS = 4
"""Blocks each party's burst is run in, alternating with the other's."""
Summaries = dict[str, dict[str, float]]


@dataclass
class McpDoorResult:
    """Each party's round trips (ms) summarised, and the door's over the direct call's."""

    rounds: int
    text_bytes: int
    latency: Summaries
    ratio: dict[str, float]
    cpu_ms_per_call: dict[str, float]
    in_flight: int = 0
    per_second: dict[str, float] | None = None
    load: str = ""


@asynccontextmanager
async def mcp_server(root: Path) -> AsyncIterator[str]:
    """The SDK's HTTP server listening until the block ends: its URL."""
    record = root / "authorizations.jsonl"
    env = {**os.environ, "MCP_TEST_TOKEN": CREDENTIAL}
    argv = [sys.executable, "-m", "tests.integration.mcp.mcp_http_server", str(record)]
    process = await asyncio.create_subprocess_exec(
        *argv, cwd=REPO, env=env, stdout=PIPE, stderr=DEVNULL
    )
    try:
        assert process.stdout is not None
        line = await asyncio.wait_for(process.stdout.readline(), 30)
        if not line.strip().isdigit():
            raise BenchError(f"the MCP server did not start: {line!r}")
        yield f"http://127.0.0.1:{int(line)}/mcp"
    finally:
        if process.returncode is None:
            process.terminate()
            try:
                await asyncio.wait_for(process.wait(), 10)
            except TimeoutError:
                process.kill()
                await process.wait()


class Client:
    """One MCP client over streamable HTTP: its session opened, then calls timed."""

    def __init__(self, http: httpx2.AsyncClient, url: str, bearer: str) -> None:
        self.http, self.url = http, url
        self.headers = {
            "Authorization": f"Bearer {bearer}",
            "Accept": "application/json, text/event-stream",
            "Content-Type": "application/json",
        }
        self.next_id = 0

    async def post(self, message: dict[str, object]) -> tuple[int, str]:
        """Post ``message``; the answer's status and JSON text, read as the SDK's client
        reads it: an event stream up to its first message, not to its end."""
        data = json.dumps(message).encode()
        async with self.http.stream("POST", self.url, content=data, headers=self.headers) as r:
            if "Mcp-Session-Id" in r.headers:
                self.headers["Mcp-Session-Id"] = r.headers["Mcp-Session-Id"]
            if not r.headers.get("content-type", "").startswith("text/event-stream"):
                return r.status_code, (await r.aread()).decode()
            async for line in r.aiter_lines():
                if line.startswith("data:"):
                    return r.status_code, line[5:]
            return r.status_code, ""

    async def open(self) -> None:
        hello = {
            "protocolVersion": "2025-06-18",
            "capabilities": {},
            "clientInfo": {"name": "bench", "version": "1"},
        }
        status, body = await self.post(
            {"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": hello}
        )
        if status != 200:
            raise BenchError(f"{self.url}: initialize answered {status}: {body[:200]}")
        await self.post({"jsonrpc": "2.0", "method": "notifications/initialized"})

    async def call(self, text: str) -> float:
        """One ``tools/call`` of ``echo``: its round trip (ms), the answer checked."""
        self.next_id += 1
        params = {"name": "echo", "arguments": {"text": text}}
        message = {"jsonrpc": "2.0", "id": self.next_id, "method": "tools/call", "params": params}
        started = time.perf_counter()
        status, body = await self.post(message)
        took = (time.perf_counter() - started) * 1000
        answer = json.loads(body) if status == 200 else {}
        if answer.get("result", {}).get("content", [{}])[0].get("text") != text:
            raise BenchError(f"{self.url}: tools/call answered {status}: {body[:200]}")
        return took


async def burst(client: Client, text: str, calls: int, in_flight: int) -> float:
    """``calls`` calls, ``in_flight`` at once: the seconds they took."""
    left = iter(range(calls))

    async def worker() -> None:
        for _ in left:
            await client.call(text)

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(in_flight)))
    return time.perf_counter() - started


async def measure(
    root: Path, rounds: int, warmup: int, text_bytes: int, in_flight: int = 16, calls: int = 1200
) -> McpDoorResult:
    """Both parties' calls, interleaved, and this process's CPU per call for each."""
    text = ("door bench " * (text_bytes // 11 + 1))[:text_bytes]
    async with mcp_server(root) as url:
        server = McpServer(SERVER, HttpServer(url, headers_env={"Authorization": "BENCH_MCP"}))
        environ = {"BENCH_MCP": f"Bearer {CREDENTIAL}"}
        grants = {AGENT: [McpGrant(SERVER)]}
        async with (
            door_on_endpoint(root, [server], grants, environ=environ) as door,
            httpx2.AsyncClient(timeout=30) as http,
        ):
            clients = {
                "door": Client(http, door.url(AGENT, SERVER), door.token(AGENT)),
                "direct": Client(http, url, CREDENTIAL),
            }
            for client in clients.values():
                await client.open()
                for _ in range(warmup):
                    await client.call(text)
            samples: dict[str, list[float]] = {p: [] for p in PARTIES}
            cpu = dict.fromkeys(PARTIES, 0.0)
            for _ in range(rounds):
                for party in PARTIES:
                    before = time.process_time()
                    samples[party].append(await clients[party].call(text))
                    cpu[party] += time.process_time() - before
            took = dict.fromkeys(PARTIES, 0.0)
            block = max(1, calls // BLOCKS)
            for _ in range(BLOCKS if calls else 0):
                for party in PARTIES:
                    took[party] += await burst(clients[party], text, block, in_flight)
    latency = {p: summary(samples[p]) for p in PARTIES}
    ratio = {q: latency["door"][q] / latency["direct"][q] for q in ("p50", "p95", "mean")}
    per_call = {p: cpu[p] * 1000 / rounds for p in PARTIES}
    rates = {p: block * BLOCKS / took[p] for p in PARTIES} if calls else None
    load = [f"{figure:.2f}" for figure in os.getloadavg()]
    return McpDoorResult(
        rounds, text_bytes, latency, ratio, per_call, in_flight, rates, " ".join(load)
    )


def report(result: McpDoorResult) -> str:
    """The two parties side by side, and the ratio."""
    columns = ("p50", "p95", "p99", "mean", "min", "max")
    lines = [
        f"tools/call echo, {result.text_bytes} bytes of text, {result.rounds} rounds each",
        f"{'ms':<10}" + "".join(f"{k:>8}" for k in columns),
    ]
    for party in PARTIES:
        lines.append(f"{party:<10}" + "".join(f"{result.latency[party][k]:>8.2f}" for k in columns))
    lines.append(
        f"{'ratio':<10}"
        + "".join(f"{result.ratio[k]:>8.2f}" for k in ("p50", "p95"))
        + f"   (mean {result.ratio['mean']:.2f})"
    )
    lines.append(
        "this process's CPU per call (ms; the client, and for the door the door too): "
        + ", ".join(f"{p} {v:.2f}" for p, v in result.cpu_ms_per_call.items())
    )
    rates = result.per_second
    if rates:
        lines.append(
            f"{result.in_flight} in flight, calls/s: "
            + ", ".join(f"{p} {rates[p]:,.0f}" for p in PARTIES)
            + f"; door/direct {rates['door'] / rates['direct']:.2f}"
        )
    p50 = result.ratio["p50"]
    lines.append(
        f"goal: door p50 ≤ {GOAL_RATIO:.1f}× direct — {p50:.2f}× "
        + ("met" if p50 <= GOAL_RATIO else "missed")
    )
    if rates:
        lines.append(
            f"goal: ≥ {GOAL_RATE:,.0f} calls/s through the door at 16 in flight — "
            f"{rates['door']:,.0f}/s at {result.in_flight} "
            + ("met" if rates["door"] >= GOAL_RATE and result.in_flight == 16 else "missed")
        )
    lines.append(f"load average at the end: {result.load}")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bench.mcp_door", description=__doc__)
    parser.add_argument("--rounds", type=int, default=500, help="measured calls per party")
    parser.add_argument("--warmup", type=int, default=20, help="uncounted calls per party first")
    parser.add_argument("--text-bytes", type=int, default=1024, help="the echoed text's size")
    parser.add_argument("--in-flight", type=int, default=16, help="calls at once in the burst")
    parser.add_argument("--burst", type=int, default=1200, help="calls per party at once (0: none)")
    parser.add_argument("--json", type=Path, help="also write the result here")
    parser.add_argument("--keep", action="store_true", help="keep the temporary directory")
    args = parser.parse_args(argv)

    async def work(root: Path) -> McpDoorResult:
        return await measure(
            root, args.rounds, args.warmup, args.text_bytes, args.in_flight, args.burst
        )

    return execute(work, report, keep=args.keep, json_path=args.json, prefix="fw-mcp-door-")


if __name__ == "__main__":
    raise SystemExit(main())
