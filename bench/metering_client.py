"""The client of the metering benchmark: the request every path gets, one streamed request
timed (TTFB and total) and checked, a path's load at a concurrency level, and the rounds in
which the paths take turns, with the CPU each process spent on them."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import aiohttp

from bench.harness import summary
from bench.metering_fake import TEXT
from bench.metering_paths import OWN_TURNS, Target
from bench.metering_report import Block
from bench.processes import BenchError, cpu_seconds, kernel_seconds

MODEL = "claude-sonnet-4-5"
END_OF_STREAM = b'event: message_stop\ndata: {"type":"message_stop"}\n\n'
REQUEST_TIMEOUT = 60.0


@dataclass(frozen=True)
class Sample:
    ttfb_ms: float
    total_ms: float
    pieces: int  # the reads the answer's body took here: about the proxy's writes of it


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
            size, tail, pieces = len(first), first[-len(END_OF_STREAM) :], 1
            while chunk := await response.content.readany():
                size += len(chunk)
                pieces += 1
                tail = (tail + chunk)[-len(END_OF_STREAM) :]
    except (aiohttp.ClientError, TimeoutError) as exc:
        raise BenchError(f"{target.name}: {type(exc).__name__}: {exc}") from exc
    t2 = time.perf_counter()
    if tail != END_OF_STREAM or (expected is not None and size != expected):
        raise BenchError(
            f"{target.name}: the stream ended after {size} B (direct: {expected} B) "
            f"with {tail!r}, not the fake's message_stop"
        )
    return Sample((t1 - t0) * 1000, (t2 - t0) * 1000, pieces), size


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
        kernel_before = {t.name: kernel_seconds(t.pid) for t in targets if t.pid is not None}
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
                kernel_turn = kernel_seconds(own) if own is not None else 0.0
                samples, wall = await load(
                    sessions[target.name], target, body, expected, level, share
                )
                tally.add_cpu("client", time.process_time() - client_before)
                tally.add_cpu("fake", cpu_seconds(fake_pid) - fake_before)
                if own is not None:
                    tally.add_cpu("proxy", cpu_seconds(own) - proxy_turn)
                    tally.add_cpu("proxy_kernel", kernel_seconds(own) - kernel_turn)
                if target.helpers is not None:
                    tally.add_cpu("postgres", cpu_since(helpers_before, target.helpers()))
                tally.samples += samples
                tally.wall_s += wall
        await asyncio.sleep(1.0)
        for target in targets:
            if target.pid is not None and target.pid not in shared:
                used = cpu_seconds(target.pid) - proxy_before[target.name]
                tallies[target.name].add_cpu("proxy", used)
                kernel = kernel_seconds(target.pid) - kernel_before[target.name]
                tallies[target.name].add_cpu("proxy_kernel", kernel)
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
            pieces=sum(s.pieces for s in tally.samples) / max(len(tally.samples), 1),
        )
        for name, tally in tallies.items()
    ]
