"""Concurrency caps and the spawn queue in the running App, with real stub agents: a spawn
beyond a cap is queued with why, starts first-in-first-out when a slot frees and is
announced where it was asked; `queue` lists and `cancel` drops; entries — queued and
deferred — survive a restart of the App."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from bot.app.lifecycle import App
from bot.config import Config, parse_config
from connectors.base import InboundMessage, RoomId, UserId
from fleet.ledger import Ledger, SpawnAsk
from fleet.timing.clock import SystemClock
from tests.integration.agents.test_schedules import QueueConnector

pytestmark = pytest.mark.integration

METERED = "state_dir: ./state\nconnectors:\n  console: {}\n"
BASE = METERED + "metering: {enabled: false}\n"
ENVIRON = {"PATH": "/usr/bin:/bin", "K": "fake-api-key-for-tests"}


class Console(QueueConnector):
    """The test's console: it may also type without waiting for the answer."""

    def say(self, text: str) -> None:
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


def config(tmp_path: Path, text: str) -> Config:
    return parse_config(text, "fleetwarden.yaml", base_dir=tmp_path, environ=ENVIRON)


@contextlib.asynccontextmanager
async def running(cfg: Config) -> AsyncIterator[tuple[App, Console]]:
    """The App on ``cfg`` with a console the test types into. Stopping the App leaves its
    agents running (the next App reattaches them): :func:`stop_all` ends them."""
    console = Console()
    app = App(cfg, clock=SystemClock(), environ=ENVIRON, connectors=[console])
    await app.start()
    try:
        yield app, console
    finally:
        await app.stop()


async def stop_all(cfg: Config) -> None:
    """Stop every agent still running on ``cfg``'s state dir (after a test, pass or fail),
    from an App with no roster and no caps, so that nothing starts meanwhile."""
    bare = config(cfg.state_dir.parent, BASE)
    async with running(bare) as (app, _):
        for status in await app.fleet.ps():
            if status.state.is_live:
                with contextlib.suppress(Exception):
                    await app.fleet.stop_agent(status.name, force=True)


async def replies_until(console: Console, *needles: str) -> list[str]:
    """Read replies until every needle has been seen in one of them."""
    seen: list[str] = []
    deadline = time.monotonic() + 30
    while not all(any(n in text for text in seen) for n in needles):
        left = deadline - time.monotonic()
        if left <= 0:
            raise AssertionError(f"never saw {needles}; got {seen}")
        seen.append((await asyncio.wait_for(console.replies.get(), left)).markdown)
    return seen


async def live(app: App) -> set[str]:
    return {s.name for s in await app.fleet.ps() if s.state.is_live}


async def test_a_spawn_beyond_the_global_cap_waits_and_starts_fifo_when_a_slot_frees(
    tmp_path: Path,
) -> None:
    """max_running 1: the second and third spawns are queued with the reason and their
    place; `queue` lists them in order; stopping the running agent starts the oldest,
    announced in the room; `cancel` drops the other."""
    cfg = config(tmp_path, BASE + "limits:\n  max_running: 1\n")
    try:
        async with running(cfg) as (app, console):
            assert "Agent **one** started" in await console.type("spawn one")
            two = await console.type('spawn two --prompt "count to 2"')
            assert two == (
                "Not started now: global max_running 1 reached (1 running). Queued as #1, "
                "position 1 of 1: it starts when a slot frees, as you, here. `queue` lists "
                "it, `cancel 1` drops it.\n\n"
                "Task #1 count-to-2 · no projection yet: no finished task of its kind"
            )  # a spawn with a prompt is a task, waiting with its launch
            three = await console.type("spawn three")
            assert "Queued as #2, position 2 of 2" in three
            again = await console.type("spawn two")
            assert again.startswith("**two** is already queued (#1)")
            listing = await console.type("queue")
            rows = [line for line in listing.splitlines() if "#1" in line or "#2" in line]
            assert [("two" in r, "three" in r) for r in rows] == [(True, False), (False, True)]
            assert "global max_running 1 reached" in rows[0] and "console on console" in rows[0]
            assert await live(app) == {"one"}
            assert "2 launches queued: `queue` lists why." in await console.type("ps")

            console.say("stop one")
            seen = await replies_until(console, "Stopped **one**", "Agent **two** started")
            started = next(text for text in seen if "Agent **two** started" in text)
            assert started.startswith("Queued launch #1 of **two** (waiting since ")
            assert await live(app) == {"two"}
            assert "three" in await console.type("queue")
            assert await console.type("restart one") == (
                "not restarted: global max_running 1 reached (1 running) — `spawn one` waits "
                "for a slot"
            )

            assert "Dropped from the queue: #2 (three)" in await console.type("cancel three")
            assert "nothing queued as '2'" in await console.type("cancel 2")
            assert (
                await console.type("queue")
                == "Nothing is queued: every launch asked for has started."
            )
        async with running(cfg) as (app, console):
            assert await live(app) == {"two"}
    finally:
        await stop_all(cfg)


async def test_a_queued_spawn_survives_a_restart_and_starts_when_a_slot_frees(
    tmp_path: Path,
) -> None:
    """Queued in one App, still queued in the next on the same state dir (the running agent
    reattached): when it stops, the queued spawn starts and is announced."""
    cfg = config(tmp_path, BASE + "limits:\n  max_running: 1\n")
    try:
        async with running(cfg) as (app, console):
            assert "Agent **one** started" in await console.type("spawn one")
            assert "Queued as #1" in await console.type('spawn two --prompt "count to 2"')
        async with running(cfg) as (app, console):
            assert await live(app) == {"one"}
            listing = await console.type("queue")
            assert "two" in listing and "global max_running 1 reached" in listing
            console.say("stop one")
            seen = await replies_until(console, "Agent **two** started")
            assert any(t.startswith("Queued launch #1 of **two**") for t in seen)
            assert await live(app) == {"two"}
            assert (await console.type("queue")).startswith("Nothing is queued")
        ledger = await Ledger.open(cfg.ledger_path, SystemClock())
        try:
            spawns = [e for e in await ledger.audit.audit_entries() if e.command == "spawn"]
            assert [(e.source, e.outcome) for e in spawns] == [
                ("queue:1", "ok"),
                ("typed", "ok"),
                ("typed", "ok"),
            ]
        finally:
            await ledger.close()
    finally:
        await stop_all(cfg)


async def test_an_account_cap_counts_only_the_agents_on_that_account(tmp_path: Path) -> None:
    """accounts.capped.max_running 1: a second agent on it waits, one on another account
    starts; when the first stops the waiting one starts."""
    cfg = config(
        tmp_path,
        "state_dir: ./state\nconnectors:\n  console: {}\n"
        "accounts:\n"
        "  capped:\n    kind: api_key\n    provider: anthropic\n    key_env: K\n"
        "    max_running: 1\n"
        "  roomy:\n    kind: api_key\n    provider: anthropic\n    key_env: K\n",
    )
    try:
        async with running(cfg) as (app, console):
            assert "Agent **x** started" in await console.type("spawn x --account capped")
            queued = await console.type("spawn y --account capped")
            assert "account capped: max_running 1 reached (1 running)" in queued
            assert "Agent **z** started" in await console.type("spawn z --account roomy")
            console.say("stop x")
            await replies_until(console, "Agent **y** started")
            assert await live(app) == {"y", "z"}
    finally:
        await stop_all(cfg)


async def test_a_budget_cap_counts_the_agents_its_scope_covers(tmp_path: Path) -> None:
    """A group budget's max_running 1: a second agent of the group waits, an agent outside
    it starts; the waiting one starts when the group's agent stops."""
    cfg = config(
        tmp_path,
        # Metered: budgets bind through the proxy, so a budget needs it on.
        METERED + "groups:\n  backend:\n    agents: [b1, b2]\n"
        "budgets:\n  - scope: group:backend\n    limit_tokens: 100000000\n    window: 5h\n"
        "    max_running: 1\n",
    )
    try:
        async with running(cfg) as (app, console):
            assert "Agent **b1** started" in await console.type("spawn b1")
            queued = await console.type("spawn b2")
            assert "budget group:backend: max_running 1 reached (1 running)" in queued
            assert "Agent **free** started" in await console.type("spawn free")
            console.say("stop b1")
            await replies_until(console, "Agent **b2** started")
            assert await live(app) == {"b2", "free"}
    finally:
        await stop_all(cfg)


async def test_a_deferred_spawn_is_restored_and_starts_once_due(tmp_path: Path) -> None:
    """A launch deferred to a later time, left in the ledger by an App that stopped, is
    listed by the next App with its time, and started by the queue's sweep once due."""
    cfg = config(tmp_path, BASE)
    async with running(cfg):
        pass  # the state dir and the ledger, as a first run leaves them
    due = datetime.now(UTC) + timedelta(seconds=2)
    ledger = await Ledger.open(cfg.ledger_path, SystemClock())
    try:
        ask = SpawnAsk(
            agent="later",
            command='spawn later --prompt "count to 2"',
            sender="console",
            connector="console",
            room="console",
            reason="agent:later is queued until then: launch deferred",
            request={"prompt": "count to 2"},
            not_before=due,
        )
        await ledger.spawn_queue.enqueue_spawn(ask, host=socket.gethostname())
    finally:
        await ledger.close()
    try:
        async with running(cfg) as (app, console):
            listing = await console.type("queue")
            assert "later" in listing and f"{due:%H:%M} UTC" in listing
            assert await app.scheduler.run_now("spawn-queue") == 0  # not yet due
            await asyncio.sleep(max(0.0, (due - datetime.now(UTC)).total_seconds()) + 0.1)
            assert await app.scheduler.run_now("spawn-queue") == 1
            seen = await replies_until(console, "Agent **later** started")
            assert any(t.startswith("Queued launch #1 of **later**") for t in seen)
            assert (await console.type("queue")).startswith("Nothing is queued")
    finally:
        await stop_all(cfg)


async def test_autostart_beyond_the_cap_waits_and_starts_when_a_slot_frees(
    tmp_path: Path,
) -> None:
    """Two autostart agents under max_running 1: the first starts with Fleetwarden, the
    second waits in the queue as asked by autostart, and starts — told in the home room —
    when the first stops."""
    cfg = config(
        tmp_path,
        BASE + "limits:\n  max_running: 1\n"
        "agents:\n  - name: first\n    autostart: true\n  - name: second\n    autostart: true\n",
    )
    try:
        async with running(cfg) as (app, console):
            assert await live(app) == {"first"}
            listing = await console.type("queue")
            row = next(line for line in listing.splitlines() if "second" in line)
            assert "autostart" in row and "global max_running 1 reached (1 running)" in row
            console.say("stop first")
            seen = await replies_until(console, "Queued launch #1 of **second** (autostart)")
            assert any("(autostart) started, pid" in text for text in seen)
            assert await live(app) == {"second"}
    finally:
        await stop_all(cfg)


async def test_two_slots_freed_at_once_start_each_queued_spawn_once(tmp_path: Path) -> None:
    """max_running 2, two waiting: both running agents stopped at once start both queued
    spawns, each once, in order, and never a third process."""
    cfg = config(tmp_path, BASE + "limits:\n  max_running: 2\n")
    try:
        async with running(cfg) as (app, console):
            for name in ("a", "b"):
                assert f"Agent **{name}** started" in await console.type(f"spawn {name}")
            for name in ("c", "d"):
                assert "Queued as #" in await console.type(f"spawn {name}")
            console.say("stop a")
            console.say("stop b")
            await replies_until(console, "Agent **c** started", "Agent **d** started")
            assert await live(app) == {"c", "d"}
            assert (await console.type("queue")).startswith("Nothing is queued")
        ledger = await Ledger.open(cfg.ledger_path, SystemClock())
        try:
            sources = [e.source for e in await ledger.audit.audit_entries() if e.command == "spawn"]
            assert sorted(s for s in sources if s.startswith("queue:")) == ["queue:1", "queue:2"]
            runs = {name: await ledger.runs.last_run(name) for name in "abcd"}
            assert all(run is not None for run in runs.values())
            # Ids count every launch: four agents, four runs — nothing started twice.
            assert sorted(run.id for run in runs.values() if run is not None) == [1, 2, 3, 4]
        finally:
            await ledger.close()
    finally:
        await stop_all(cfg)
