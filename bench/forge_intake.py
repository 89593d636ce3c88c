"""The webhook intake part of :mod:`bench.forge`: real signed GitHub deliveries posted to
the real :class:`~fleet.forge.events.endpoint.WebhookEndpoint` and to a bare handler, new
and redelivered, 1 and 16 in flight; and where the intake's time goes
(:mod:`bench.forge_stages`)."""

from __future__ import annotations

import asyncio
import copy
import itertools
import statistics
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from aiohttp import ClientSession, web

from bench.forge_parties import FORGE, PARTIES, REPO, Summaries, compared, served
from bench.forge_stages import Stages, steps, timed
from bench.processes import BenchError
from fleet.forge.events.endpoint import ALREADY, Refusal, WebhookEndpoint, WebhookForge
from fleet.forge.model import ForgeEvent
from fleet.forge.schema import ForgeEntry
from fleet.ledger import Ledger
from fleet.timing.clock import SystemClock
from tests.fakes.forge.webhook_sender import github_comment, github_delivery, github_issue, post

SECRET = b"bench-hook-secret-not-a-real-one"
ENTRY = ForgeEntry(
    kind="github", token_env="GH_TOKEN", webhook_secret_env="GH_HOOK", login="fw-bot", agent="coder"
)
OUTCOME = "counted"
POOL = 200  # deliveries recorded once, then redelivered

Delivery = tuple[dict[str, str], bytes]
Answer = tuple[int, str]  # a status and its text


@dataclass
class Cell:
    """One webhook measurement: latencies and deliveries per second by party, ratios."""

    mode: str
    concurrency: int
    latency: Summaries
    per_second: dict[str, float]
    ratio: dict[str, float]


async def floor_hook(request: web.Request) -> web.Response:
    """The webhook floor: the body read, 202."""
    await request.read()
    return web.Response(status=202, text=OUTCOME)


class Intake:
    """The endpoint's ``receive`` (it only counts) and ``audit`` (the app's, to the ledger)."""

    def __init__(self, ledger: Ledger) -> None:
        self.ledger = ledger
        self.received = 0

    def endpoint(self) -> WebhookEndpoint:
        """The real endpoint for the bench's GitHub forge, receiving and auditing here, the
        ledger recording its deliveries."""
        return WebhookEndpoint(
            {FORGE: WebhookForge(ENTRY, SECRET)},
            receive=self.receive,
            seen=self.ledger.forge.take_delivery,
            audit=self.audit,
            clock=SystemClock(),
        )

    async def receive(self, event: ForgeEvent) -> str:
        self.received += 1
        return OUTCOME

    async def audit(self, refusal: Refusal) -> None:
        detail = f"webhook refused ({refusal.status}): {refusal.why}"
        if refusal.status == 200:
            detail = f"webhook {refusal.delivery}: {refusal.why}"
        await self.ledger.forge.audit_forge(None, "-", "webhook", refusal.status == 200, detail)


def events(count: int) -> list[tuple[str, dict[str, Any]]]:
    """``count`` GitHub events, half ``issues labeled``, half ``issue_comment created``."""
    now, said = datetime.now(UTC), "@fw-bot please look: the build fails on main."
    return [
        github_issue("labeled", repo=REPO, number=100 + n, sender="alice", label="fw", at=now)
        if n % 2
        else github_comment(
            repo=REPO, number=100 + n, sender="bob", body=said, comment_id=n + 1, at=now
        )
        for n in range(count)
    ]


_BODIES = itertools.count(1)


def deliveries(made: Sequence[tuple[str, dict[str, Any]]], count: int) -> list[Delivery]:
    """``count`` signed deliveries of ``made``'s events, each with a fresh delivery id and
    a body of its own (the endpoint takes a body it had under another id as a replay)."""
    out = []
    for i in range(count):
        name, payload = made[i % len(made)]
        payload = copy.deepcopy(payload)
        payload["issue"]["comments"] = next(_BODIES)  # an issue's comment count: no meaning here
        out.append(github_delivery(name, payload, secret=SECRET))
    return out


async def burst(
    session: ClientSession, url: str, batch: Sequence[Delivery], concurrency: int, expect: Answer
) -> tuple[list[float], float]:
    """Post ``batch`` with ``concurrency`` in flight; each one's latency (ms), and the
    seconds the whole took. An answer other than ``expect`` fails the run."""
    samples: list[float] = []
    pending = iter(batch)

    async def worker() -> None:
        for headers, body in pending:  # one iterator shared: each delivery posted once
            started = time.perf_counter()
            answer = await post(url, headers, body, session=session)
            samples.append((time.perf_counter() - started) * 1000)
            if answer != expect:
                raise BenchError(f"{url} answered {answer[0]} {answer[1][:80]!r}, not {expect}")

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return samples, time.perf_counter() - started


async def webhooks(ledger: Ledger, rounds: int, sizes: dict[int, int]) -> list[Cell]:
    """The webhook intake against the floor, interleaved (see the module's docstring)."""
    intake = Intake(ledger)
    endpoint = intake.endpoint()
    app, floor = web.Application(), web.Application()
    app.add_routes(endpoint.routes())
    floor.router.add_post("/webhooks/{forge}", floor_hook)
    made = events(16)
    samples: dict[tuple[str, int, str], list[float]] = {}
    seconds: dict[tuple[str, int, str], float] = {}
    async with served(app, floor) as (bases, clients):
        urls = {p: f"{bases[p]}/webhooks/{FORGE}" for p in PARTIES}
        pool = deliveries(made, POOL)  # the warm-up, and what is redelivered after
        for party in PARTIES:
            await burst(clients[party], urls[party], pool, 16, (202, OUTCOME))
        sent = len(pool)
        for round_ in range(rounds):
            order = PARTIES if round_ % 2 == 0 else PARTIES[::-1]
            for mode in ("new", "redelivery"):
                for concurrency, size in sizes.items():
                    if mode == "new":
                        batch = deliveries(made, size)
                        sent += size
                    else:
                        batch = [pool[(round_ * size + i) % POOL] for i in range(size)]
                    for party in order:
                        dedupe = party == "fleetwarden" and mode == "redelivery"
                        expect = (200, ALREADY) if dedupe else (202, OUTCOME)
                        taken, took = await burst(
                            clients[party], urls[party], batch, concurrency, expect
                        )
                        key = (mode, concurrency, party)
                        samples.setdefault(key, []).extend(taken)
                        seconds[key] = seconds.get(key, 0.0) + took
    if intake.received != sent:
        raise BenchError(f"{intake.received} deliveries received, {sent} new ones posted")
    cells = []
    for mode in ("new", "redelivery"):
        for concurrency in sizes:
            keys = {p: (mode, concurrency, p) for p in PARTIES}
            latency, ratio = compared({p: samples[k] for p, k in keys.items()})
            rate = {p: len(samples[k]) / seconds[k] for p, k in keys.items()}
            ratio["per_second"] = rate["fleetwarden"] / rate["floor"]
            cells.append(Cell(mode, concurrency, latency, rate, ratio))
    return cells


async def stages(ledger: Ledger, count: int) -> Stages:
    """Where the intake's time goes (:mod:`bench.forge_stages`): the accepted path's steps
    over ``count`` fresh deliveries, then each party's handler timed over ``count`` more,
    one at a time, on apps of their own (the measured ones are left as they are)."""
    made = events(16)
    found = await steps(ledger, deliveries(made, count), forge=FORGE, entry=ENTRY, secret=SECRET)
    intake = Intake(ledger)
    endpoint = intake.endpoint()
    times: dict[str, list[float]] = {p: [] for p in PARTIES}
    app, floor = web.Application(), web.Application()
    app.router.add_post("/webhooks/{forge}", timed(endpoint.handle, times["fleetwarden"]))
    floor.router.add_post("/webhooks/{forge}", timed(floor_hook, times["floor"]))
    async with served(app, floor) as (bases, clients):
        batch = deliveries(made, count)
        for party in PARTIES:
            url = f"{bases[party]}/webhooks/{FORGE}"
            await burst(clients[party], url, batch, 1, (202, OUTCOME))
    handlers = {p: statistics.median(v[len(v) // 5 :]) for p, v in times.items()}
    return Stages(found, handlers)


def goal_figures(cells: Sequence[Cell]) -> tuple[float, float]:
    """New deliveries: the p50 ratio one at a time, and Fleetwarden's rate 16 in flight."""
    by = {(c.mode, c.concurrency): c for c in cells}
    return by["new", 1].ratio["p50"], by["new", 16].per_second["fleetwarden"]
