"""Benchmark: a streamed LLM request direct, through Fleetwarden's metering proxy, through LiteLLM.

One run starts, each in its own process: the fake provider (:mod:`bench.metering_fake`,
a realistic ~300-token answer streamed as 248 SSE deltas), Fleetwarden's metering proxy
in front of it (:mod:`bench.metering_server`, with a real ledger in the temporary
directory) and LiteLLM's proxy in front of it twice (``bench/.venv-litellm``, made by
``bench/litellm/setup.sh`` when missing; no database, bound to 127.0.0.1), one process
per LiteLLM path: ``litellm-passthrough`` through its built-in ``/anthropic/``
pass-through route (which records no usage for a host that is not Anthropic's own), and
``litellm-messages`` through its own ``/v1/messages`` route and a ``model_list`` entry for
the bench's model with the fake as ``api_base`` (which counts usage on every stream: the
path that does Fleetwarden's job). Beside them: ``passthrough``, a minimal aiohttp
streaming pass-through (:mod:`bench.passthrough_server`), the floor of any proxy here; and
``fleetwarden-app``, the whole app (:mod:`bench.metering_app`: ``fleetwarden run`` with a
global budget reserving and settling every request and an account injecting the key, the
request sent to its agent's own proxy URL), whose ledger must hold one row with exactly the
fake's tokens per request sent; and ``fleetwarden-app-pg``, the same app in a process of its
own with its ledger on PostgreSQL (its config adds ``ledger: postgresql://…``, a database on
a real server the bench starts, ``tests/postgres_server.py``, and stops however the run
ends), checked the same way. This process is the client: aiohttp, one keep-alive pool
per path and concurrency level.

Every path gets the same request, an Anthropic Messages stream (``POST …/v1/messages``,
``stream: true``, ``x-api-key`` and ``anthropic-version`` headers; only the key differs:
the fake's for direct and Fleetwarden, LiteLLM's master key for LiteLLM), and must answer
with the fake's exact length and final event. Per request: TTFB = send → first bytes of
the SSE body; total = send → end of the body. At concurrency 1, then ``--concurrency``:
each path's uncounted warm-up, then ``--rounds`` rounds in which the paths take turns
(never two at once) with their share of the requests. Reported per path and level: TTFB
and total p50/p99, requests/s (requests / wall time of the path's turns), CPU per request
of the client, the fake and the proxy; per proxy its VmRSS idle and at the end and its
VmHWM (peak); Fleetwarden's TTFB p50 over direct in ms (goal ≤ 1 ms), and for each
LiteLLM path Fleetwarden's throughput over it (goal ≥ 5×) and its CPU per request over
Fleetwarden's; the app on PostgreSQL over the app on SQLite (req/s, TTFB p50, CPU per
request: the app's, and the PostgreSQL server's beside it; goal: req/s ≥ 0.9× and TTFB p50
≤ 1/0.9 of SQLite's); and the usage rows in each ledger afterwards. A proxy that cannot
be started or does not answer is skipped, with the reason; the rest runs.

    python -m bench.metering_proxy [--requests 300] [--concurrent-requests 2000]
        [--concurrency 32] [--rounds 10] [--json out.json] [--no-litellm]
        [--paths passthrough,fleetwarden-app,fleetwarden-app-pg]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import functools
import json
import os
import platform
import socket
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp

from bench import metering_app as app_bench
from bench.harness import execute, summary
from bench.metering_app import AppProxy, usage_check
from bench.metering_fake import TEXT, USAGE
from bench.processes import BenchError, Child, cpu_seconds
from tests.fakes.sse import pieces
from tests.integration.console_bot import clean_env
from tests.postgres_server import PostgresServer, find_bin_dir, processes_in

REPO_ROOT = Path(__file__).resolve().parents[1]
LITELLM_VENV = REPO_ROOT / "bench" / ".venv-litellm"
LITELLM_SETUP = REPO_ROOT / "bench" / "litellm" / "setup.sh"
LITELLM_CONFIG = REPO_ROOT / "bench" / "litellm" / "config.yaml"
LITELLM_PATHS = {  # path name → LiteLLM's route for the request
    "litellm-passthrough": "/anthropic/v1/messages",  # pass-through: no usage recorded
    "litellm-messages": "/v1/messages",  # its Messages route via model_list: metered
}
# "fleetwarden-accounts": the same proxy process, for an agent whose key it holds as an
# account, injecting it into each request in place of the placeholder the client sends.
# "passthrough": a minimal aiohttp pass-through, the floor of a proxy in this stack;
# "fleetwarden-app": the whole app (`fleetwarden run`), its agent's own URL, a budget on;
# "fleetwarden-app-pg": the same, another process, its ledger on PostgreSQL.
PATHS = (
    "direct",
    "passthrough",
    "fleetwarden",
    "fleetwarden-accounts",
    "fleetwarden-app",
    "fleetwarden-app-pg",
    *LITELLM_PATHS,
)
APP_PATHS = ("fleetwarden-app", "fleetwarden-app-pg")  # the whole app: SQLite, PostgreSQL
OWN_TURNS = ("passthrough", *APP_PATHS)  # proxy CPU counted over the path's own turns
APP_PG_DATABASE = "fleetwarden_bench"
PLACEHOLDER_KEY = "fleetwarden-placeholder-bench-1"
KEY_ENV = "FW_BENCH_PROVIDER_KEY"
FLEETWARDEN_LEDGER = "fleetwarden-ledger.db"  # in the temporary directory
PROVIDER_KEY = "fake-bench-provider-key"
LITELLM_MASTER_KEY = "sk-litellm-bench-master"
ANTHROPIC_VERSION = "2023-06-01"
MODEL = "claude-sonnet-4-5"
END_OF_STREAM = b'event: message_stop\ndata: {"type":"message_stop"}\n\n'
START_TIMEOUT = 120.0  # LiteLLM imports for several seconds
REQUEST_TIMEOUT = 60.0


# -- statistics ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Sample:
    ttfb_ms: float
    total_ms: float


@dataclass
class Block:
    """One path at one concurrency level."""

    path: str
    concurrency: int
    requests: int
    wall_s: float
    rps: float
    ttfb_ms: dict[str, float]
    total_ms: dict[str, float]
    cpu_ms_per_request: dict[str, float]


@dataclass
class Result:
    started: str
    machine: dict[str, Any]
    request: dict[str, Any]
    requests: dict[int, int]
    warmup: int
    rounds: int
    blocks: list[Block] = field(default_factory=list)
    memory_mib: dict[str, dict[str, float]] = field(default_factory=dict)
    skipped: dict[str, str] = field(default_factory=dict)
    versions: dict[str, str] = field(default_factory=dict)
    ledger_usage_rows: int | None = None
    app_usage: dict[str, int] | None = None  # the app's ledger: rows, rows with exact tokens
    app_pg_usage: dict[str, int] | None = None  # the same in the app's PostgreSQL ledger
    ratios: dict[str, float] = field(default_factory=dict)

    def block(self, path: str, concurrency: int) -> Block | None:
        return next(
            (b for b in self.blocks if b.path == path and b.concurrency == concurrency), None
        )


def ratios(result: Result, high: int) -> dict[str, float]:
    out: dict[str, float] = {}
    for level in (1, high):
        direct = result.block("direct", level)
        fw = result.block("fleetwarden", level)
        held = result.block("fleetwarden-accounts", level)
        if fw is not None and held is not None:
            out[f"accounts_over_plain_ttfb_p50_ms_c{level}"] = (
                held.ttfb_ms["p50"] - fw.ttfb_ms["p50"]
            )
            out[f"accounts_over_plain_rps_c{level}"] = held.rps / fw.rps
        if direct is not None and fw is not None:
            out[f"fleetwarden_ttfb_p50_overhead_ms_c{level}"] = (
                fw.ttfb_ms["p50"] - direct.ttfb_ms["p50"]
            )
            out[f"fleetwarden_total_p50_overhead_ms_c{level}"] = (
                fw.total_ms["p50"] - direct.total_ms["p50"]
            )
        app = result.block("fleetwarden-app", level)
        app_pg = result.block("fleetwarden-app-pg", level)
        floor = result.block("passthrough", level)
        if direct is not None and app is not None:
            out[f"app_ttfb_p50_overhead_ms_c{level}"] = app.ttfb_ms["p50"] - direct.ttfb_ms["p50"]
        if direct is not None and app_pg is not None:
            out[f"app_pg_ttfb_p50_overhead_ms_c{level}"] = (
                app_pg.ttfb_ms["p50"] - direct.ttfb_ms["p50"]
            )
        if app is not None and app_pg is not None:
            # PostgreSQL ÷ SQLite; for the latencies their inverse too (a speed: ≥ 0.9 is
            # the goal's "at least 0.9×", a TTFB at most 1/0.9 of SQLite's).
            out[f"app_pg_over_app_rps_c{level}"] = app_pg.rps / app.rps
            out[f"app_pg_over_app_ttfb_p50_c{level}"] = app_pg.ttfb_ms["p50"] / app.ttfb_ms["p50"]
            out[f"app_over_app_pg_ttfb_p50_c{level}"] = app.ttfb_ms["p50"] / app_pg.ttfb_ms["p50"]
            out[f"app_pg_over_app_total_p50_c{level}"] = (
                app_pg.total_ms["p50"] / app.total_ms["p50"]
            )
            out[f"app_pg_over_app_cpu_c{level}"] = (
                app_pg.cpu_ms_per_request["proxy"] / app.cpu_ms_per_request["proxy"]
            )
            out[f"app_pg_with_server_over_app_cpu_c{level}"] = (
                app_pg.cpu_ms_per_request["proxy"] + app_pg.cpu_ms_per_request.get("postgres", 0)
            ) / app.cpu_ms_per_request["proxy"]
        if direct is not None and floor is not None:
            out[f"passthrough_ttfb_p50_overhead_ms_c{level}"] = (
                floor.ttfb_ms["p50"] - direct.ttfb_ms["p50"]
            )
        if app is not None and floor is not None:
            out[f"app_over_passthrough_rps_c{level}"] = app.rps / floor.rps
            out[f"app_over_passthrough_cpu_c{level}"] = (
                app.cpu_ms_per_request["proxy"] / floor.cpu_ms_per_request["proxy"]
            )
        for name in LITELLM_PATHS:
            litellm = result.block(name, level)
            key = name.replace("-", "_")
            if app is not None and litellm is not None:
                out[f"app_over_{key}_rps_c{level}"] = app.rps / litellm.rps
            if direct is not None and litellm is not None:
                out[f"{key}_ttfb_p50_overhead_ms_c{level}"] = (
                    litellm.ttfb_ms["p50"] - direct.ttfb_ms["p50"]
                )
            if fw is not None and litellm is not None:
                out[f"fleetwarden_over_{key}_rps_c{level}"] = fw.rps / litellm.rps
                out[f"{key}_over_fleetwarden_cpu_c{level}"] = (
                    litellm.cpu_ms_per_request["proxy"] / fw.cpu_ms_per_request["proxy"]
                )
    return out


def report(result: Result, high: int) -> str:
    req = result.request
    lines = [
        f"Streamed Anthropic Messages request, the same for every path: POST …/v1/messages, "
        f"stream: true, {req['body_bytes']} B request; answer {req['answer_bytes']} B of SSE "
        f"({req['deltas']} text deltas) from the fake provider (own process). "
        f"{result.warmup} warm-up requests per path and level not counted; the paths take "
        f"turns in {result.rounds} rounds.",
    ]
    for level in (1, high):
        lines += [
            "",
            f"concurrency {level}: {result.requests[level]} requests per path (ms)",
            f"{'':<21}{'TTFB p50':>9}{'p99':>8}{'total p50':>11}{'p99':>8}{'req/s':>9}"
            f"   CPU ms/request: client / fake / proxy (+ its PostgreSQL server)",
        ]
        for path in PATHS:
            b = result.block(path, level)
            if b is None:
                continue
            cpu = b.cpu_ms_per_request
            proxy_cpu = f"{cpu['proxy']:.2f}" if "proxy" in cpu else "-"
            if "postgres" in cpu:
                proxy_cpu += f" (+ {cpu['postgres']:.2f})"
            lines.append(
                f"{path:<21}{b.ttfb_ms['p50']:>9.2f}{b.ttfb_ms['p99']:>8.2f}"
                f"{b.total_ms['p50']:>11.2f}{b.total_ms['p99']:>8.2f}{b.rps:>9.1f}"
                f"   {cpu['client']:.2f} / {cpu['fake']:.2f} / {proxy_cpu}"
            )
    if result.memory_mib:
        lines += ["", "proxy memory (MiB): VmRSS idle / VmRSS at the end / VmHWM (peak)"]
        for path, mem in result.memory_mib.items():
            lines.append(f"{path:<21}{mem['idle']:.1f} / {mem['end']:.1f} / {mem['peak']:.1f}")
    r = result.ratios
    lines.append("")
    for level in (1, high):
        key = f"fleetwarden_ttfb_p50_overhead_ms_c{level}"
        if key in r:
            goal = "   (goal <= 1 ms)" if level == 1 else ""
            lines.append(
                f"Fleetwarden over direct, concurrency {level}: TTFB p50 {r[key]:+.2f} ms, "
                f"total p50 {r[f'fleetwarden_total_p50_overhead_ms_c{level}']:+.2f} ms{goal}"
            )
        for name in LITELLM_PATHS:
            key = f"{name.replace('-', '_')}_ttfb_p50_overhead_ms_c{level}"
            if key in r:
                lines.append(f"{name} over direct, concurrency {level}: TTFB p50 {r[key]:+.2f} ms")
    for level in (1, high):
        key = f"app_over_passthrough_rps_c{level}"
        if key in r:
            lines.append(
                f"fleetwarden-app / passthrough, concurrency {level}: throughput {r[key]:.3f}x "
                f"(goal >= 0.9x), proxy CPU per request "
                f"{r[f'app_over_passthrough_cpu_c{level}']:.3f}x (goal <= 1.25x); TTFB p50 over "
                f"direct: app {r.get(f'app_ttfb_p50_overhead_ms_c{level}', float('nan')):+.2f} ms"
                f", passthrough {r[f'passthrough_ttfb_p50_overhead_ms_c{level}']:+.2f} ms"
                + ("   (goal: app <= 1 ms)" if level == 1 else "")
            )
        for name in LITELLM_PATHS:
            key = f"app_over_{name.replace('-', '_')}_rps_c{level}"
            if key in r:
                goal = "   (goal >= 25x)" if name == "litellm-messages" else ""
                lines.append(
                    f"fleetwarden-app / {name} throughput, concurrency {level}: {r[key]:.2f}x{goal}"
                )
    for level in (1, high):
        key = f"app_pg_over_app_rps_c{level}"
        if key in r:
            lines.append(
                f"fleetwarden-app-pg / fleetwarden-app (PostgreSQL / SQLite ledger), concurrency "
                f"{level}: throughput {r[key]:.3f}x (goal >= 0.9x); TTFB p50 "
                f"{r[f'app_pg_over_app_ttfb_p50_c{level}']:.3f}x (as a speed "
                f"{r[f'app_over_app_pg_ttfb_p50_c{level}']:.3f}x, goal >= 0.9x); total p50 "
                f"{r[f'app_pg_over_app_total_p50_c{level}']:.3f}x; app CPU per request "
                f"{r[f'app_pg_over_app_cpu_c{level}']:.3f}x, with its PostgreSQL server's "
                f"{r[f'app_pg_with_server_over_app_cpu_c{level}']:.3f}x"
            )
    for level in (1, high):
        key = f"accounts_over_plain_rps_c{level}"
        if key in r:
            lines.append(
                f"Credential injection (fleetwarden-accounts / fleetwarden), concurrency "
                f"{level}: TTFB p50 {r[f'accounts_over_plain_ttfb_p50_ms_c{level}']:+.2f} ms, "
                f"throughput {r[key]:.3f}x   (goal: within 5 %)"
            )
    for name in LITELLM_PATHS:
        key = name.replace("-", "_")
        for level in (1, high):
            rps = f"fleetwarden_over_{key}_rps_c{level}"
            if rps in r:
                goal = "   (goal >= 5x)" if level == high else ""
                lines.append(
                    f"Fleetwarden / {name} throughput, concurrency {level}: {r[rps]:.2f}x{goal}; "
                    f"{name} / Fleetwarden proxy CPU per request "
                    f"{r[f'{key}_over_fleetwarden_cpu_c{level}']:.2f}x"
                )
    if result.ledger_usage_rows is not None:
        sent = 1 + sum(result.warmup + count for count in result.requests.values())
        lines.append(
            f"Fleetwarden's ledger: {result.ledger_usage_rows} usage rows for the {sent} "
            "requests sent through it (probe and warm-ups included)"
        )
    for name, usage in (
        ("fleetwarden-app", result.app_usage),
        ("fleetwarden-app-pg", result.app_pg_usage),
    ):
        if usage is None:
            continue
        sent = 1 + sum(result.warmup + count for count in result.requests.values())
        rows, exact = usage["rows"], usage["exact"]
        verdict = "exact" if rows == exact == sent else "NOT EXACT"
        engine = "PostgreSQL" if name == "fleetwarden-app-pg" else "SQLite"
        lines.append(
            f"{name}'s ledger ({engine}): {rows} usage rows for the {sent} requests sent "
            f"through it, {exact} with exactly the fake's tokens: {verdict}"
        )
    if result.versions:
        lines.append("versions: " + ", ".join(f"{k} {v}" for k, v in result.versions.items()))
    for path, reason in result.skipped.items():
        lines.append(f"SKIPPED {path}: {reason}")
    return "\n".join(lines)


# -- the request and the client ------------------------------------------------------------


def request_body(prompt_kib: int) -> bytes:
    """A coding agent's request: a system prompt and a conversation of ``prompt_kib`` KiB."""
    system = (
        "You are a coding agent working in a git repository on the user's behalf. Read "
        "before you edit, run the tests after every change, and keep your answers short."
    )
    messages: list[dict[str, str]] = [
        {"role": "user", "content": "The test tests/test_fetch.py hangs. Find out why."}
    ]
    body: dict[str, Any] = {
        "model": MODEL,
        "max_tokens": 4096,
        "stream": True,
        "system": system,
        "messages": messages,
    }
    while len(json.dumps(body)) < prompt_kib * 1024:
        messages.append({"role": "assistant", "content": TEXT})
        messages.append({"role": "user", "content": "Good. Go on, and show me the diff."})
    return json.dumps(body).encode()


@dataclass(frozen=True)
class Target:
    """Where one path sends the request; ``pid`` is its proxy's process (None: direct);
    ``helpers`` lists the processes that work for it alone besides (its PostgreSQL server's),
    whose CPU is counted with it."""

    name: str
    url: str
    api_key: str
    pid: int | None
    helpers: Callable[[], list[int]] | None = None

    def headers(self) -> dict[str, str]:
        return {
            "x-api-key": self.api_key,
            "anthropic-version": ANTHROPIC_VERSION,
            "content-type": "application/json",
        }


async def fetch(
    session: aiohttp.ClientSession, target: Target, body: bytes, expected: int | None
) -> tuple[Sample, int]:
    """One streamed request: its timings and the size of the body it got."""
    headers = target.headers()
    t0 = time.perf_counter()
    try:
        async with session.post(target.url, data=body, headers=headers) as response:
            if response.status != 200:
                text = (await response.read())[:500].decode(errors="replace")
                raise BenchError(f"{target.name}: HTTP {response.status}: {text}")
            first = await response.content.readany()
            t1 = time.perf_counter()
            size, tail = len(first), first[-len(END_OF_STREAM) :]
            while chunk := await response.content.readany():
                size += len(chunk)
                tail = (tail + chunk)[-len(END_OF_STREAM) :]
    except (aiohttp.ClientError, TimeoutError) as exc:
        raise BenchError(f"{target.name}: {type(exc).__name__}: {exc}") from exc
    t2 = time.perf_counter()
    if tail != END_OF_STREAM or (expected is not None and size != expected):
        raise BenchError(
            f"{target.name}: the stream ended after {size} B (direct: {expected} B) "
            f"with {tail!r}, not the fake's message_stop"
        )
    return Sample((t1 - t0) * 1000, (t2 - t0) * 1000), size


async def load(
    session: aiohttp.ClientSession,
    target: Target,
    body: bytes,
    expected: int,
    concurrency: int,
    count: int,
) -> tuple[list[Sample], float]:
    """``count`` requests, ``concurrency`` at a time: the samples and the wall time."""
    samples: list[Sample] = []
    issued = 0

    async def worker() -> None:
        nonlocal issued
        while issued < count:
            issued += 1
            sample, _ = await fetch(session, target, body, expected)
            samples.append(sample)

    t0 = time.perf_counter()
    try:
        async with asyncio.TaskGroup() as group:
            for _ in range(min(concurrency, count)):
                group.create_task(worker())
    except* BenchError as failed:  # the first is enough: the run is over
        raise failed.exceptions[0] from None
    return samples, time.perf_counter() - t0


def cpu_of(pids: Sequence[int]) -> dict[int, float]:
    """Each process's CPU seconds so far."""
    return {pid: cpu_seconds(pid) for pid in pids}


def cpu_since(before: dict[int, float], pids: Sequence[int]) -> float:
    """The CPU ``pids`` used since ``before`` (a process started since: all of its own)."""
    return sum(max(0.0, cpu_seconds(pid) - before.get(pid, 0.0)) for pid in pids)


@dataclass
class Tally:
    """What the rounds of one path at one level added up to."""

    samples: list[Sample] = field(default_factory=list)
    wall_s: float = 0.0
    cpu_s: dict[str, float] = field(default_factory=dict)

    def add_cpu(self, name: str, seconds: float) -> None:
        self.cpu_s[name] = self.cpu_s.get(name, 0.0) + seconds


async def measure(
    targets: Sequence[Target],
    body: bytes,
    expected: int,
    fake_pid: int,
    level: int,
    count: int,
    args: argparse.Namespace,
) -> list[Block]:
    """Every path at ``level``: a warm-up each, then ``--rounds`` rounds, each path in turn
    (the order rotating) with its share of ``count``, on one keep-alive pool per path.

    The client's and the fake's CPU are counted per block; a proxy's from the end of its
    warm-up to a second after the last round (it serves only its own requests, and LiteLLM
    logs after the answer has gone) — or, for a proxy process serving two paths
    (Fleetwarden's with and without an account) and for the paths of :data:`OWN_TURNS`
    (the whole app's timers and agent are not its requests' cost), over each path's own
    turns. A path's helper processes (the app's PostgreSQL server) are counted over its own
    turns too, as ``postgres``."""
    tallies = {t.name: Tally() for t in targets}
    pids = [t.pid for t in targets if t.pid is not None]
    shared = {pid for pid in pids if pids.count(pid) > 1}
    shared |= {t.pid for t in targets if t.name in OWN_TURNS and t.pid is not None}
    timeout = aiohttp.ClientTimeout(total=REQUEST_TIMEOUT)
    async with contextlib.AsyncExitStack() as stack:
        sessions: dict[str, aiohttp.ClientSession] = {}
        for target in targets:
            connector = aiohttp.TCPConnector(limit=level)
            session = aiohttp.ClientSession(connector=connector, timeout=timeout)
            sessions[target.name] = await stack.enter_async_context(session)
            await load(session, target, body, expected, level, args.warmup)
        proxy_before = {t.name: cpu_seconds(t.pid) for t in targets if t.pid is not None}
        for index in range(args.rounds):
            share = count // args.rounds + (index < count % args.rounds)
            turn = index % len(targets)
            order = [*targets[turn:], *targets[:turn]]
            if index % 2:
                # Reversed every other round, so no path mostly follows another: the two
                # Fleetwarden paths share a process, whose batched ledger write from one
                # turn lands in the next.
                order.reverse()
            for target in order:
                if args.progress:
                    print(
                        f"  concurrency {level}, round {index + 1}/{args.rounds}: {target.name}",
                        file=sys.stderr,
                        flush=True,
                    )
                tally = tallies[target.name]
                helpers_before = cpu_of(target.helpers()) if target.helpers is not None else {}
                fake_before, client_before = cpu_seconds(fake_pid), time.process_time()
                own = target.pid if target.pid in shared else None
                proxy_turn = cpu_seconds(own) if own is not None else 0.0
                samples, wall = await load(
                    sessions[target.name], target, body, expected, level, share
                )
                tally.add_cpu("client", time.process_time() - client_before)
                tally.add_cpu("fake", cpu_seconds(fake_pid) - fake_before)
                if own is not None:
                    tally.add_cpu("proxy", cpu_seconds(own) - proxy_turn)
                if target.helpers is not None:
                    tally.add_cpu("postgres", cpu_since(helpers_before, target.helpers()))
                tally.samples += samples
                tally.wall_s += wall
        await asyncio.sleep(1.0)
        for target in targets:
            if target.pid is not None and target.pid not in shared:
                used = cpu_seconds(target.pid) - proxy_before[target.name]
                tallies[target.name].add_cpu("proxy", used)
    return [
        Block(
            path=name,
            concurrency=level,
            requests=count,
            wall_s=tally.wall_s,
            rps=count / tally.wall_s,
            ttfb_ms=summary([s.ttfb_ms for s in tally.samples]),
            total_ms=summary([s.total_ms for s in tally.samples]),
            cpu_ms_per_request={k: v * 1000 / count for k, v in tally.cpu_s.items()},
        )
        for name, tally in tallies.items()
    ]


# -- the processes ------------------------------------------------------------------------


def memory_mib(pid: int) -> dict[str, float]:
    """VmRSS and VmHWM of ``pid`` in MiB, from /proc/<pid>/status."""
    values: dict[str, float] = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, rest = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            values[key] = int(rest.split()[0]) / 1024
    return values


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def child_env(**extra: str) -> dict[str, str]:
    """Our environment without anything that would point a child elsewhere, plus ``extra``."""
    drop = ("ANTHROPIC_", "OPENAI_", "LITELLM_", "DATABASE_URL", "DIRECT_URL", "PG")
    env = {k: v for k, v in clean_env().items() if not k.startswith(drop)}
    env.update(extra)
    return env


async def wait_healthy(child: Child, url: str, within: float) -> None:
    deadline = time.monotonic() + within
    async with aiohttp.ClientSession() as session:
        while True:
            child.check()
            try:
                async with session.get(url) as response:
                    if response.status == 200:
                        return
            except aiohttp.ClientConnectionError:
                pass
            if time.monotonic() > deadline:
                raise BenchError(f"{child.name} did not answer {url} within {within:.0f} s")
            await asyncio.sleep(0.25)


def setup_litellm(root: Path) -> None:
    """Make bench/.venv-litellm with ``litellm[proxy]`` if it has none (a few minutes once)."""
    if (LITELLM_VENV / "bin" / "litellm").exists():
        return
    print(f"installing LiteLLM into {LITELLM_VENV} …", file=sys.stderr, flush=True)
    log = root / "litellm-setup.log"
    with log.open("wb") as out:
        done = subprocess.run([str(LITELLM_SETUP)], stdout=out, stderr=subprocess.STDOUT)
    if done.returncode != 0:
        tail = log.read_text(errors="replace")[-1500:]
        raise BenchError(f"{LITELLM_SETUP} failed with {done.returncode}:\n{tail}")


def litellm_version() -> str:
    done = subprocess.run(
        [str(LITELLM_VENV / "bin" / "python"), "-m", "pip", "show", "litellm"],
        capture_output=True,
        text=True,
    )
    return next(
        (line.split()[1] for line in done.stdout.splitlines() if line.startswith("Version:")),
        "?",
    )


async def start_litellm(name: str, root: Path, upstream: str, children: dict[str, Child]) -> Target:
    """LiteLLM's proxy for the path ``name`` (a process of its own, the same config)."""
    await asyncio.to_thread(setup_litellm, root)
    port = free_port()
    workdir = root / name
    workdir.mkdir()
    env = child_env(
        LITELLM_MASTER_KEY=LITELLM_MASTER_KEY,
        ANTHROPIC_API_BASE=upstream,
        ANTHROPIC_API_KEY=PROVIDER_KEY,
        LITELLM_LOCAL_MODEL_COST_MAP="True",
        LITELLM_LOG="ERROR",
    )
    argv = [str(LITELLM_VENV / "bin" / "litellm"), "--config", str(LITELLM_CONFIG)]
    # Keep-alive 75 s, aiohttp's default (the fake's and Fleetwarden's servers), not
    # uvicorn's 5 s: idle between turns, the pool would race the server's close.
    argv += ["--host", "127.0.0.1", "--port", str(port), "--keepalive_timeout", "75"]
    child = Child(name, argv, cwd=workdir, env=env, log=workdir / "stderr.log")
    children[name] = child
    base = f"http://127.0.0.1:{port}"
    await wait_healthy(child, f"{base}/health/liveliness", START_TIMEOUT)
    return Target(name, f"{base}{LITELLM_PATHS[name]}", LITELLM_MASTER_KEY, child.pid)


async def start_fleetwarden(
    root: Path, upstream: str, children: dict[str, Child], args: argparse.Namespace
) -> tuple[Target, Target | None]:
    """Fleetwarden's proxy, and on it the agent whose key it holds as an account (None
    when a --fleetwarden-src checkout has no accounts)."""
    state = root / "fleetwarden"
    state.mkdir()
    paths = [] if args.fleetwarden_src is None else [str(args.fleetwarden_src)]
    env = child_env(PYTHONPATH=os.pathsep.join([*paths, str(REPO_ROOT)]), **{KEY_ENV: PROVIDER_KEY})
    ledger = root / FLEETWARDEN_LEDGER
    argv = [sys.executable, "-m", "bench.metering_server", upstream, str(state), str(ledger)]
    if args.fleetwarden_src is None or (args.fleetwarden_src / "fleet" / "accounts").is_dir():
        argv += ["--account-key-env", KEY_ENV]
    # cwd: not the repository, which ``-m`` would put first on sys.path, before a --src.
    child = Child("fleetwarden", argv, cwd=state, env=env, log=root / "fleetwarden.log")
    children["fleetwarden"] = child
    base = (await child.read_line(START_TIMEOUT)).rstrip("/")
    plain = Target("fleetwarden", f"{base}/v1/messages", PROVIDER_KEY, child.pid)
    if "--account-key-env" not in argv:
        return plain, None
    held = (await child.read_line(START_TIMEOUT)).rstrip("/")
    return plain, Target("fleetwarden-accounts", f"{held}/v1/messages", PLACEHOLDER_KEY, child.pid)


async def start_passthrough(upstream: str, root: Path, children: dict[str, Child]) -> Target:
    """The minimal pass-through (:mod:`bench.passthrough_server`), in its own process."""
    env = child_env(PYTHONPATH=str(REPO_ROOT))
    argv = [sys.executable, "-m", "bench.passthrough_server", upstream]
    child = Child("passthrough", argv, cwd=REPO_ROOT, env=env, log=root / "passthrough.log")
    children["passthrough"] = child
    base = (await child.read_line(START_TIMEOUT)).rstrip("/")
    return Target("passthrough", f"{base}/v1/messages", PROVIDER_KEY, child.pid)


async def start_app(
    name: str,
    root: Path,
    upstream: str,
    args: argparse.Namespace,
    postgres: PostgresServer | None = None,
) -> tuple[AppProxy, Target]:
    """The whole app (:mod:`bench.metering_app`) as path ``name``, its ledger in its state
    dir or, with ``postgres``, a database of its own there; its agent's URL and placeholder."""
    paths = [] if args.fleetwarden_src is None else [str(args.fleetwarden_src)]
    env = child_env(**{app_bench.KEY_ENV: PROVIDER_KEY})
    if paths:
        env["PYTHONPATH"] = os.pathsep.join(paths)
    ledger_url = None
    if postgres is not None:
        await asyncio.to_thread(postgres.create_database, APP_PG_DATABASE)
        ledger_url = postgres.dsn(APP_PG_DATABASE)
    app = AppProxy(root / name, upstream, env, ledger_url)
    try:
        view = await app.spawn()
    except BaseException:
        await app.stop()
        raise
    if not view.placeholder or view.placeholder == PROVIDER_KEY:
        await app.stop()
        raise BenchError(f"{name}: the agent holds no placeholder, or the real key")
    helpers = None if postgres is None else functools.partial(processes_in, postgres.data_dir)
    target = Target(name, f"{view.base_url}/v1/messages", view.placeholder, app.pid, helpers)
    return app, target


def start_postgres(stack: contextlib.AsyncExitStack) -> PostgresServer:
    """A real PostgreSQL server (``tests/postgres_server.py``: its own directory and port,
    the tests' settings), closed by ``stack`` however the run ends. Called on the main
    thread: the server dies with the thread that started it."""
    bin_dir = find_bin_dir()
    if bin_dir is None:
        raise BenchError("no PostgreSQL binaries (apt-get install postgresql)")
    try:
        import psycopg  # noqa: F401 - the app's PostgreSQL driver
    except ImportError:
        raise BenchError("psycopg is not installed (pip install 'psycopg[binary]')") from None
    server = PostgresServer(None, bin_dir=bin_dir)
    stack.callback(server.close)  # registered first: a failed start is cleaned up too
    server.start()
    return server


def usage_rows(ledger: Path) -> int | None:
    """The rows in the ledger's ``usage`` table, read after the proxy has stopped."""
    try:
        with sqlite3.connect(f"file:{ledger}?mode=ro", uri=True) as conn:
            row = conn.execute("SELECT COUNT(*) FROM usage").fetchone()
    except sqlite3.Error:
        return None
    return int(row[0])


# -- the run ------------------------------------------------------------------------------


async def run(args: argparse.Namespace, root: Path) -> Result:
    body = request_body(args.prompt_kib)
    result = Result(
        started=dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        machine={
            "cpus": os.cpu_count(),
            "platform": platform.platform(),
            "python": platform.python_version(),
        },
        request={"body_bytes": len(body), "deltas": len(pieces(TEXT))},
        requests={1: args.requests, args.concurrency: args.concurrent_requests},
        warmup=args.warmup,
        rounds=args.rounds,
    )
    children: dict[str, Child] = {}  # by path name, and the fake
    apps: dict[str, AppProxy] = {}  # by path name
    async with contextlib.AsyncExitStack() as stack:
        # Unwound in reverse order, each step whatever the one before did (an error, a
        # second Ctrl-C): the app on PostgreSQL (flushing its ledger on EOF), then the
        # PostgreSQL server, then the app on SQLite, then every child process.
        stack.callback(stop_children, children)
        fake_env = child_env(PYTHONPATH=str(REPO_ROOT))
        fake_argv = [sys.executable, "-m", "bench.metering_fake"]
        fake_argv += ["--event-delay-ms", f"{args.event_delay_ms:g}", "--key", PROVIDER_KEY]
        fake = Child("fake provider", fake_argv, cwd=REPO_ROOT, env=fake_env, log=root / "fake.log")
        children["fake"] = fake
        upstream = await fake.read_line(START_TIMEOUT)
        targets = [Target("direct", f"{upstream}/v1/messages", PROVIDER_KEY, None)]
        timeout = aiohttp.ClientTimeout(total=REQUEST_TIMEOUT)
        async with aiohttp.ClientSession(timeout=timeout) as session:
            _, expected = await fetch(session, targets[0], body, None)
            result.request["answer_bytes"] = expected
            for name in PATHS[1:]:
                if name in LITELLM_PATHS and args.no_litellm:
                    result.skipped[name] = "--no-litellm"
                    continue
                if name not in args.paths or name == "fleetwarden-accounts":
                    continue  # not asked for, or started with fleetwarden: the same process
                try:
                    if name == "fleetwarden":
                        plain, held = await start_fleetwarden(root, upstream, children, args)
                        started = [plain] if held is None else [plain, held]
                    elif name == "passthrough":
                        started = [await start_passthrough(upstream, root, children)]
                    elif name in APP_PATHS:
                        postgres = start_postgres(stack) if name == "fleetwarden-app-pg" else None
                        app, started_app = await start_app(name, root, upstream, args, postgres)
                        apps[name] = app
                        stack.push_async_callback(app.stop)  # safe to repeat
                        started = [started_app]
                    else:
                        started = [await start_litellm(name, root, upstream, children)]
                    for target in started:
                        await fetch(session, target, body, expected)  # it works end to end
                except (BenchError, RuntimeError, AssertionError) as exc:
                    result.skipped[name] = str(exc)
                    if name in children:
                        children.pop(name).stop()
                    if name in apps:
                        await apps.pop(name).stop()
                    continue
                targets.extend(started)
        result.versions["aiohttp"] = aiohttp.__version__
        if any(name in children for name in LITELLM_PATHS):
            result.versions["litellm"] = litellm_version()
        idle = {t.name: memory_mib(t.pid)["VmRSS"] for t in targets if t.pid is not None}
        for level, count in result.requests.items():
            result.blocks += await measure(targets, body, expected, fake.pid, level, count, args)
        for target in targets:
            if target.pid is not None:
                mem = memory_mib(target.pid)
                result.memory_mib[target.name] = {
                    "idle": idle[target.name],
                    "end": mem["VmRSS"],
                    "peak": mem["VmHWM"],
                }
        if "fleetwarden" in children:
            children["fleetwarden"].stop()  # flushes the proxy's pending ledger writes
            result.ledger_usage_rows = usage_rows(root / FLEETWARDEN_LEDGER)
        tokens = (USAGE.input, USAGE.output, USAGE.cache_read, USAGE.cache_write)
        for name, app in apps.items():
            await app.stop()  # the app ends on EOF, its ledger written
            check = await usage_check(app.ledger, tokens)  # PostgreSQL's server still runs
            if check is not None:
                usage = {"rows": check.rows, "exact": check.exact}
                if name == "fleetwarden-app-pg":
                    result.app_pg_usage = usage
                else:
                    result.app_usage = usage
        result.ratios = ratios(result, args.concurrency)
        return result


def stop_children(children: dict[str, Child]) -> None:
    """Stop every child process, the last started first."""
    for child in reversed(children.values()):
        child.stop()


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.metering_proxy", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--requests", type=int, default=300, help="measured at concurrency 1")
    parser.add_argument(
        "--concurrent-requests", type=int, default=2000, help="measured at --concurrency"
    )
    parser.add_argument("--concurrency", type=int, default=32, help="the loaded level")
    parser.add_argument("--warmup", type=int, default=50, help="uncounted requests per path+level")
    parser.add_argument("--rounds", type=int, default=10, help="the paths take turns this often")
    parser.add_argument("--prompt-kib", type=int, default=16, help="request body size")
    parser.add_argument(
        "--event-delay-ms", type=float, default=0.0, help="the fake's pause between SSE events"
    )
    parser.add_argument("--no-litellm", action="store_true", help="skip both LiteLLM paths")
    parser.add_argument(
        "--paths",
        default=",".join(PATHS[1:]),
        help="the proxies to measure besides direct, comma-separated (default: all)",
    )
    parser.add_argument(
        "--fleetwarden-src",
        type=Path,
        help="run Fleetwarden's packages from this checkout (e.g. a scratch copy) instead",
    )
    parser.add_argument("--json", type=Path, help="also write the results here")
    parser.add_argument("--keep", action="store_true", help="keep the temporary directory")
    parser.add_argument("--progress", action="store_true", help="print progress on stderr")
    args = parser.parse_args(argv)
    if args.rounds < 1 or min(args.requests, args.concurrent_requests) < args.rounds:
        parser.error("--rounds must be at least 1, and each request count at least --rounds")
    if args.warmup < 0:
        parser.error("--warmup must not be negative")
    if args.concurrency < 2:
        parser.error("--concurrency must be at least 2 (1 is always measured)")

    args.paths = {name.strip() for name in args.paths.split(",") if name.strip()}
    if not args.paths <= set(PATHS):
        parser.error(f"--paths: unknown {sorted(args.paths - set(PATHS))}; known: {PATHS[1:]}")
    if "fleetwarden-accounts" in args.paths:
        args.paths.add("fleetwarden")
    if args.fleetwarden_src is not None:
        args.fleetwarden_src = args.fleetwarden_src.resolve()
    return execute(
        lambda root: run(args, root),
        lambda result: report(result, args.concurrency),
        keep=args.keep,
        json_path=args.json,
        prefix="fw-bench-metering-",
    )


if __name__ == "__main__":
    sys.exit(main())
