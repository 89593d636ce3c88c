"""The pacing report posted by its job through the real Matrix connector into a real Synapse
room: the chart arrives as an ``m.image`` whose bytes are the PNG, and the table's numbers
are the ledger's."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from itertools import accumulate
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from nio import MemoryDownloadResponse

from bot.chat.notifier import Notifier
from bot.render.spend.budgets import amount, ratio, share
from bot.render.spend.report import PacingReports
from fleet.budgets.model import BudgetStatus
from fleet.ledger.store import Ledger
from fleet.metering.counting.events import Outcome, Tokens, UsageEvent
from fleet.timing.clock import SystemClock
from scheduler.report_job import report_job
from tests.fakes.doubles.budget_book import budget, paced
from tests.fakes.doubles.job_context import job_context
from tests.integration.connectors.matrix.test_matrix_connector import World, make_world, running
from tests.synapse_server import SynapseServer
from tests.unit.bot.render.test_report import rows

pytestmark = [pytest.mark.integration, pytest.mark.synapse]

ZONE = ZoneInfo("Europe/Berlin")
NOW = datetime(2026, 11, 22, 10, 0, tzinfo=UTC)
WINDOW = timedelta(hours=10)
START = NOW - timedelta(hours=4)
GLOBAL_LIMIT = 1_000_000
CODER_LIMIT = 400_000
# What the agents used, as the metering proxy would have recorded it: (agent, hours after
# the window's start, tokens). The last row is from before the window and must not count.
REQUESTS = (
    ("coder-1", 0.5, Tokens(input=12_000, output=3_400, cache_read=40_000)),
    ("coder-2", 1.0, Tokens(input=8_000, output=2_000, cache_write=5_500)),
    ("coder-1", 2.25, Tokens(input=30_000, output=9_100, cache_read=61_000)),
    ("coder-1", 3.5, Tokens(input=21_000, output=4_000, cache_read=88_000, cache_write=1_200)),
    ("coder-2", 3.75, Tokens(input=17_500, output=6_300)),
    ("coder-1", -1.0, Tokens(input=999_999)),
)


def usage(agent: str, hours: float, tokens: Tokens) -> UsageEvent:
    return UsageEvent(
        at=START + timedelta(hours=hours),
        agent=agent,
        provider="anthropic",
        api="anthropic",
        requested_model="claude-sonnet-4-5",
        served_model="claude-sonnet-4-5",
        tokens=tokens,
        stream=True,
        status=200,
        outcome=Outcome.OK,
        latency_ms=900.0,
        ttfb_ms=120.0,
        request_id=None,
    )


@dataclass
class LedgerBook:
    """Budgets read straight from the ledger: the global budget and coder-1's own, with
    use and its series summed from the metered requests in the window."""

    ledger: Ledger

    @property
    def timezone(self) -> ZoneInfo:
        return ZONE

    def now(self) -> datetime:
        return NOW

    async def statuses(self) -> list[BudgetStatus]:
        per_agent = await self.ledger.metering.tokens_by_agent(START)
        events = await self.ledger.metering.usage_events(since=START)
        return [
            self._status("global", GLOBAL_LIMIT, sum(per_agent.values()), events),
            self._status(
                "agent:coder-1",
                CODER_LIMIT,
                per_agent["coder-1"],
                [e for e in events if e.agent == "coder-1"],
            ),
        ]

    @staticmethod
    def _status(scope: str, limit: int, used: int, events: list[UsageEvent]) -> BudgetStatus:
        ordered = sorted(events, key=lambda event: event.at)
        totals = accumulate(event.tokens.total for event in ordered)
        series = [(START, 0.0), *((e.at, float(t)) for e, t in zip(ordered, totals, strict=True))]
        return paced(budget(scope, WINDOW, limit), START, NOW, float(used), series=series)


@pytest.fixture
async def metered_world(synapse: SynapseServer, tmp_path: Path) -> AsyncIterator[World]:
    async with make_world(synapse, tmp_path) as made:
        await made.ledger.metering.record_metering([usage(*request) for request in REQUESTS], [])
        yield made


async def test_the_report_arrives_as_text_and_an_image_with_the_ledgers_numbers(
    metered_world: World, tmp_path: Path
) -> None:
    """The job posts the table and the chart to the home room; the image downloads as the
    same PNG, and each row's used, limit and pace are what the ledger's requests add up to."""
    reports = tmp_path / "state" / "reports"
    op = metered_world.operator
    async with running(metered_world.connector()) as run:
        context = job_context(
            reports=PacingReports(LedgerBook(metered_world.ledger), reports),
            notices=Notifier(metered_world.ledger.chat, lambda: [run.connector]),
            clock=SystemClock(),
        )
        await op.watch()
        report = await report_job(context)
        assert report is not None

        def arrived(events: list[dict[str, Any]]) -> bool:
            mine = [e for e in events if e.get("sender") == metered_world.bot.user_id]
            kinds = [e["content"].get("msgtype") for e in mine if e["type"] == "m.room.message"]
            return "m.image" in kinds and "m.notice" in kinds

        seen = await op.wait_seen(arrived)
        posted = [
            e
            for e in seen
            if e.get("sender") == metered_world.bot.user_id
            and e["type"] == "m.room.message"
            and e["room_id"] == metered_world.room
        ]
        assert [e["content"]["msgtype"] for e in posted] == ["m.notice", "m.image"]
        notice, image = (e["content"] for e in posted)

        (chart,) = report.images
        png = await asyncio.to_thread(chart.read_bytes)
        assert chart.parent == reports
        assert image["url"].startswith("mxc://")
        assert image["body"] == chart.name
        assert image["info"]["mimetype"] == "image/png"
        assert image["info"]["size"] == len(png)
        assert (image["info"]["w"], image["info"]["h"]) == (1000, 760)
        downloaded = await op.client.download(mxc=image["url"])
        assert isinstance(downloaded, MemoryDownloadResponse), downloaded
        assert downloaded.body == png

    # The numbers, from another of the ledger's sums than the one the book used.
    totals = await metered_world.ledger.metering.usage_totals(START)
    everyone = sum(total.total_tokens for total in totals)
    coder = sum(total.total_tokens for total in totals if total.agent == "coder-1")
    assert 0 < coder < everyone
    table = rows(notice["body"])
    assert set(table) == {"global", "agent:coder-1"}
    elapsed = (NOW - START) / WINDOW
    for scope, used, limit in (
        ("global", everyone, GLOBAL_LIMIT),
        ("agent:coder-1", coder, CODER_LIMIT),
    ):
        row = table[scope]
        assert row["used"] == amount(used, "tokens") + share(used, limit)
        assert row["limit"] == amount(limit, "tokens")
        assert row["pace"] == ratio(used / (limit * elapsed))
        assert row["projected at reset"] == amount(used / elapsed, "tokens") + share(
            used / elapsed, limit
        )
        assert row["source"] == "metering"
    assert "<table>" in notice["formatted_body"]
