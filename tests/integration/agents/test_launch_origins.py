"""Where a launch came from, kept with it end to end in the running App: a typed `spawn`
and an operator schedule's `spawn`, both held by a full cap, wait in the one spawn queue
with their request — its origin `chat` or `schedule` — and start as asked when a slot
frees."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from fleet.ledger import Ledger
from fleet.supervisor.admission.held import request_of
from fleet.timing.clock import ManualClock
from tests.integration.agents.test_spawn_queue import (
    BASE,
    config,
    live,
    replies_until,
    running,
    stop_all,
)

pytestmark = pytest.mark.integration


async def test_a_typed_and_a_scheduled_spawn_wait_with_their_origin(tmp_path: Path) -> None:
    """max_running 1: `spawn two` typed and `spawn three` run by a schedule are queued; the
    queue holds each request with its origin (chat, schedule) and prompt; stopping the
    running agent starts the typed one first."""
    cfg = config(tmp_path, BASE + "limits:\n  max_running: 1\n")
    try:
        async with running(cfg) as (app, console):
            assert "Agent **one** started" in await console.type("spawn one")
            assert "Queued as #1" in await console.type('spawn two --prompt "count to 2"')
            added = await console.type('schedule add "0 2 * * *" spawn three --prompt "count"')
            assert "Schedule **1** added" in added
            assert await app.scheduler.run_now("schedule-1") == "ok"
            assert "Queued as #2" in (await console.replies.get()).markdown
            ledger = await Ledger.open(cfg.ledger_path, ManualClock(datetime.now(UTC)))
            try:
                entries = await ledger.spawn_queue.queued_spawns()
            finally:
                await ledger.close()
            held = [request_of(entry) for entry in entries]
            assert [(r.agent, r.origin, r.prompt) for r in held if r is not None] == [
                ("two", "chat", "count to 2"),
                ("three", "schedule", "count"),
            ]
            console.say("stop one")
            await replies_until(console, "Queued launch #1 of **two**")
            assert await live(app) == {"two"}
    finally:
        await stop_all(cfg)
