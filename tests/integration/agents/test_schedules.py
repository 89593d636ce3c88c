"""Operator schedules in the whole product: a schedule fires through the running App as its
creator and is audited so (started with run_now, no waiting for the clock), and schedules
survive a restart of the real `fleetwarden run`."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from bot.app.lifecycle import App
from bot.config import parse_config
from connectors.base import (
    ConnectorHealth,
    EventId,
    InboundMessage,
    OutboundMessage,
    RoomId,
    SendResult,
    ThreadId,
    UserId,
)
from connectors.defaults import ConnectorDefaults
from connectors.errors import ThreadsUnsupported
from connectors.health import LinkHealth
from fleet.ledger import Ledger
from fleet.timing.clock import ManualClock, SystemClock
from tests.integration.console_bot import ConsoleBot

pytestmark = pytest.mark.integration

REPLY_WAIT = 20.0


class QueueConnector(ConnectorDefaults):
    """A console-like connector the test types into and reads replies from."""

    name = "console"

    def __init__(self) -> None:
        self._inbound: asyncio.Queue[InboundMessage | None] = asyncio.Queue()
        self.replies: asyncio.Queue[OutboundMessage] = asyncio.Queue()

    @property
    def has_threads(self) -> bool:
        # So the agents' live feed (threads only) stays out of the replies read here.
        return True

    @property
    def home_room(self) -> RoomId | None:
        return RoomId("console")

    @property
    def link(self) -> LinkHealth:
        return LinkHealth(self.name, SystemClock())

    async def start(self) -> None:
        pass

    async def stop(self) -> None:
        self._inbound.put_nowait(None)

    async def inbound(self) -> AsyncIterator[InboundMessage]:
        while (message := await self._inbound.get()) is not None:
            yield message

    async def send(self, message: OutboundMessage) -> SendResult:
        self.replies.put_nowait(message)
        return SendResult(event_ids=(EventId(f"out-{self.replies.qsize()}"),))

    async def health(self) -> ConnectorHealth:
        return ConnectorHealth(ok=True, detail="queue")

    async def open_thread(self, room: RoomId, topic: str, first_message: str) -> ThreadId:
        raise ThreadsUnsupported("no threads on this console")

    async def type(self, text: str) -> str:
        """Send ``text`` as the console user; return the bot's reply."""
        self._inbound.put_nowait(
            InboundMessage(
                connector="console",
                sender=UserId("console"),
                text=text,
                room=RoomId("console"),
                timestamp=datetime.now(UTC),
                addressed=True,
            )
        )
        return await self.reply()

    async def reply(self) -> str:
        return (await asyncio.wait_for(self.replies.get(), REPLY_WAIT)).markdown


async def test_a_schedule_fires_through_the_app_as_its_creator(tmp_path: Path) -> None:
    """In the running App: `schedule add` of a spawn, then the job run at once — the agent
    starts, the reply is posted in the room under the schedule's heading, and the audit
    entry is the creator's, marked as from the schedule."""
    config = parse_config(
        "state_dir: ./state\nconnectors:\n  console: {}\nmetering: {enabled: false}\n",
        "fleetwarden.yaml",
        base_dir=tmp_path,
    )
    console = QueueConnector()
    app = App(config, clock=SystemClock(), environ={}, connectors=[console])
    await app.start()
    try:
        added = await console.type('schedule add "0 2 * * *" spawn nightly --prompt "count to 2"')
        assert "Schedule **1** added" in added
        assert await app.scheduler.run_now("schedule-1") == "ok"
        fired = await console.reply()
        assert fired.startswith("Schedule **1** (`0 2 * * *`, set up by console) ran")
        assert "Agent **nightly** started (stub)" in fired
        assert "Stopped" in await console.type("stop nightly --force")
    finally:
        await app.stop()
    ledger = await Ledger.open(config.ledger_path, ManualClock(datetime.now(UTC)))
    try:
        entries = {entry.command: entry for entry in await ledger.audit.audit_entries()}
        scheduled = entries["spawn"]
        assert (scheduled.sender, scheduled.source, scheduled.outcome) == (
            "console",
            "schedule:1",
            "ok",
        )
        assert entries["schedule add"].source == "typed"
        [record] = await ledger.schedules.list_schedules()
        assert record.last_outcome == "ok" and record.last_run_at is not None
    finally:
        await ledger.close()


async def test_a_scheduled_spawn_of_a_name_close_to_a_known_one_is_refused_when_added(
    tmp_path: Path,
) -> None:
    """`schedule add … spawn nightyl` once `nightly` has run is refused at once, naming
    `nightly` (not first when it fires at 2 am); with `--new` it is added."""
    config = parse_config(
        "state_dir: ./state\nconnectors:\n  console: {}\nmetering: {enabled: false}\n",
        "fleetwarden.yaml",
        base_dir=tmp_path,
    )
    console = QueueConnector()
    app = App(config, clock=SystemClock(), environ={}, connectors=[console])
    await app.start()
    try:
        assert "Agent **nightly** started (stub)" in await console.type("spawn nightly")
        assert "Stopped" in await console.type("stop nightly --force")
        refused = await console.type('schedule add "0 2 * * *" spawn nightyl --prompt "count"')
        assert "no agent is called 'nightyl' — did you mean 'nightly'?" in refused
        assert "spawn nightyl --new" in refused
        assert "No schedules" in await console.type("schedule")
        added = await console.type('schedule add "0 2 * * *" spawn nightyl --new')
        assert "Schedule **1** added" in added
    finally:
        await app.stop()


def test_schedules_survive_a_restart(tmp_path: Path) -> None:
    """The real `fleetwarden run`: add a schedule, quit, start again — `schedule list` shows
    it, registered (a next run at 02:00 UTC), never run; removing it works after restart."""
    with ConsoleBot(tmp_path) as first:
        first.command(
            'schedule add "0 2 * * *" spawn reviewer --prompt "review yesterday\'s merges"',
            r"Schedule 1 added",
        )
        first.send("quit")
        assert first.wait() == 0

    with ConsoleBot(tmp_path) as second:
        try:
            second.command("schedule list", r"Times are in UTC")
            text = second.output_since_command
            row = next(line for line in text.splitlines() if "0 2 * * *" in line)
            assert "spawn reviewer" in row and "console" in row and "never" in row
            assert re.search(r"\d{4}-\d\d-\d\d 02:00 \(in \d", row), row
            second.command("schedule remove 1", r"Schedule 1 removed")
            second.command("schedule", r"No schedules")
        finally:
            second.send("quit")
            assert second.wait() == 0
    assert second.stderr == ""
