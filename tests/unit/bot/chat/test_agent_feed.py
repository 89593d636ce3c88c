"""The live feed: a running agent's events batched into few messages, spaced apart, the
rest of its output posted when it ends, then its summary."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import pytest

from bot.chat.agent_feed import AgentFeed, FeedSettings
from bot.chat.notifier import Notifier
from fleet.budgets.model import Transition
from fleet.events import EventKind, FleetEvent
from fleet.ledger import Ledger
from fleet.ledger.records.budgets import Step
from fleet.model import AgentState
from fleet.names import AgentName
from fleet.notices import Delivery, Notice
from fleet.runs.output.reading import RunOutput
from fleet.timing.clock import ManualClock
from fleet.transcript.events import AgentEvent, Said, Text, ToolUsed, Waiting
from tests.fakes.doubles.fleet import FakeFleet
from tests.polling import eventually
from tests.unit.chat_fakes import HomeConnector

T0 = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
FAST = FeedSettings(poll=0.02, batch=0.3, gap=0.2)
ROOM = "!ops:example.org"
_LOOKS: set[asyncio.Task[None]] = set()


def looked_at(feed: AgentFeed) -> AgentFeed:
    """``feed``, looked at every ``FAST.poll`` seconds as the scheduler's job does."""

    async def look() -> None:
        while True:
            await feed.look()
            await asyncio.sleep(FAST.poll)

    _LOOKS.add(asyncio.create_task(look()))
    return feed


@pytest.fixture(autouse=True)
async def _no_look_outlives_its_test() -> AsyncIterator[None]:
    yield
    for task in _LOOKS:
        task.cancel()
    await asyncio.gather(*_LOOKS, return_exceptions=True)
    _LOOKS.clear()


class LineParser:
    """``tool X`` → a Bash call, ``say X`` → said, ``wait X`` → waiting, else text."""

    def feed(self, line: str) -> list[AgentEvent]:
        verb, _, rest = line.partition(" ")
        if verb == "tool":
            return [ToolUsed("Bash", rest)]
        if verb == "say":
            return [Said(rest)]
        if verb == "wait":
            return [Waiting(rest)]
        return [Text(line)] if line else []


class NoStories:
    async def story(self, run_id: int) -> None:
        return None


@dataclass
class Outputs:
    log: Path
    stories: NoStories = field(default_factory=NoStories)

    async def of_run(self, run_id: int) -> RunOutput:
        return RunOutput(self.log, 0, LineParser())


class Board:
    def __init__(self) -> None:
        self.posts: list[tuple[float, Notice]] = []

    async def post(self, notice: Notice) -> Delivery:
        self.posts.append((asyncio.get_running_loop().time(), notice))
        return Delivery(())


def started(run_id: int = 1) -> FleetEvent:
    return FleetEvent(
        AgentName("c1"), EventKind.STARTED, AgentState.RUNNING, "spawned", True, run_id
    )


def ended(run_id: int = 1) -> FleetEvent:
    return FleetEvent(
        AgentName("c1"), EventKind.ENDED, AgentState.EXITED, "exited with status 0", False, run_id
    )


async def test_tool_calls_within_the_batch_window_become_one_message(tmp_path: Path) -> None:
    """Ten tool calls written at once are one feed message, in the agent's threads only."""
    log = tmp_path / "output.log"
    log.write_text("")
    board = Board()
    feed = looked_at(AgentFeed(FakeFleet(outputs=Outputs(log)), board.post, ManualClock(T0), FAST))  # type: ignore[arg-type]
    await feed.on_fleet_event(started())
    with log.open("a") as fh:
        fh.write("".join(f"tool ls /dir{i}\n" for i in range(10)))
    await eventually(lambda: board.posts, "the feed's post")
    await feed.stop()
    assert len(board.posts) == 1
    notice = board.posts[0][1]
    assert notice.feed and notice.agents == ("c1",) and not notice.home_too
    assert notice.markdown.splitlines() == [
        "**c1** ›",
        *(f"> ▸ Bash `ls /dir{i}`" for i in range(10)),
    ]


async def test_posts_about_one_agent_are_spaced_by_the_gap(tmp_path: Path) -> None:
    """An agent that says something every few milliseconds is posted at most once a gap,
    and nothing it said is lost."""
    log = tmp_path / "output.log"
    log.write_text("")
    board = Board()
    feed = looked_at(AgentFeed(FakeFleet(outputs=Outputs(log)), board.post, ManualClock(T0), FAST))  # type: ignore[arg-type]
    await feed.on_fleet_event(started())
    for i in range(30):
        with log.open("a") as fh:
            fh.write(f"say line {i}\n")
        await asyncio.sleep(0.03)
    await feed.on_fleet_event(ended())
    times = [t for t, notice in board.posts if notice.feed]
    assert all(b - a >= FAST.gap * 0.95 for a, b in itertools.pairwise(times))
    assert len(times) < 10
    text = "\n\n".join(n.markdown for _, n in board.posts if n.feed)
    said = [line[2:] for line in text.splitlines() if line.startswith("> line")]
    assert said == [f"line {i}" for i in range(30)]


async def test_the_end_posts_the_rest_even_an_unfinished_last_line(tmp_path: Path) -> None:
    """At the run's end the feed reads what is left, a last line without its newline too."""
    log = tmp_path / "output.log"
    log.write_text("")
    board = Board()
    feed = looked_at(AgentFeed(FakeFleet(outputs=Outputs(log)), board.post, ManualClock(T0), FAST))  # type: ignore[arg-type]
    await feed.on_fleet_event(started())
    # A line a bare \r rewrites reads as its last state, as a terminal showed it.
    log.write_text("wait approve Bash(rm -rf build)?\nsay 10%\rsay almost")
    await feed.on_fleet_event(ended())
    feed_posts = [n for _, n in board.posts if n.feed]
    assert feed_posts and feed_posts[-1].markdown.endswith("almost")
    assert "10%" not in feed_posts[-1].markdown
    assert "**⏸ Waiting: approve Bash(rm -rf build)?**" in feed_posts[-1].markdown
    assert feed_posts[-1].tone == "warning"
    # No story in the ledger: the end is said the old way, in its threads.
    last = board.posts[-1][1]
    assert not last.feed and "finished" in last.markdown


async def test_a_ten_megabyte_line_is_one_short_note(tmp_path: Path) -> None:
    """A single 10 MB line is posted once, cut, saying its size; what follows is read."""
    log = tmp_path / "output.log"
    log.write_text("")
    board = Board()
    feed = looked_at(AgentFeed(FakeFleet(outputs=Outputs(log)), board.post, ManualClock(T0), FAST))  # type: ignore[arg-type]
    await feed.on_fleet_event(started())
    with log.open("a") as fh:
        fh.write("x" * 10_000_000 + "\nsay after it\n")
    await feed.on_fleet_event(ended())
    text = "\n\n".join(n.markdown for _, n in board.posts if n.feed)
    assert text.count("a line of 10.0 MB, too long for chat: `logs c1 --raw`") == 1
    assert "after it" in text
    assert len(text) < 1000


async def test_the_watchdogs_news_and_a_freeze_reach_the_agents_thread(
    tmp_path: Path, ledger: Ledger
) -> None:
    """A stall and a watchdog restart (through the feed) and a budget's freeze (its
    transition's notice) are posted into the agent's thread through the real notifier."""
    await ledger.chat.bind_thread("matrix", ROOM, "c1", "$c1")
    chat = HomeConnector("matrix", ROOM)
    notifier = Notifier(ledger.chat, lambda: [chat])
    fleet = FakeFleet(outputs=Outputs(tmp_path / "log"))
    feed = looked_at(AgentFeed(fleet, notifier.post, ManualClock(T0), FAST))  # type: ignore[arg-type]
    for kind, what in ((EventKind.STALLED, "no heartbeat"), (EventKind.RESTARTED, "again")):
        await feed.on_fleet_event(
            FleetEvent(AgentName("c1"), kind, AgentState.RUNNING, what, False)
        )
    freeze = Transition("agent:c1", ("c1",), Step.QUEUE, Step.REFUSE, "c1 reached its limit")
    await notifier.post(freeze.notice())
    assert [(m.thread_id, m.tone) for m in chat.sent] == [
        ("$c1", "warning"),
        ("$c1", "warning"),
        ("$c1", "error"),
        (None, "error"),  # a limit is news for the room too
    ]
    assert "stalled" in chat.sent[0].markdown and "reached its limit" in chat.sent[2].markdown


async def test_a_turns_end_and_a_pause_are_never_posted(tmp_path: Path, ledger: Ledger) -> None:
    """A live session's turn over and a freeze, told as fleet events, post nothing (the
    freeze is said by whoever made it: a budget's notice, the lever's answer)."""
    await ledger.chat.bind_thread("matrix", ROOM, "c1", "$c1")
    chat = HomeConnector("matrix", ROOM)
    notifier = Notifier(ledger.chat, lambda: [chat])
    fleet = FakeFleet(outputs=Outputs(tmp_path / "log"))
    feed = looked_at(AgentFeed(fleet, notifier.post, ManualClock(T0), FAST))  # type: ignore[arg-type]
    for kind, state in (
        (EventKind.TURN_OVER, AgentState.IDLE),
        (EventKind.FROZEN, AgentState.RUNNING),
    ):
        await feed.on_fleet_event(FleetEvent(AgentName("c1"), kind, state, "<@everyone>", False, 3))
    assert chat.sent == []


@dataclass
class ManyOutputs:
    logs: dict[int, Path]
    stories: NoStories = field(default_factory=NoStories)

    async def of_run(self, run_id: int) -> RunOutput:
        return RunOutput(self.logs[run_id], 0, LineParser())


async def test_one_reader_reads_only_the_logs_that_grew(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Fifty quiet agents and one busy one: each tick stats every log in one trip off the
    loop, and only the busy agent's log is read; its lines are posted, in order."""
    from bot.chat import agent_feed

    logs = {run: tmp_path / f"a{run:02d}.log" for run in range(1, 51)}
    for log in logs.values():
        log.write_text("")
    reads: list[Path] = []
    stat_trips = 0
    real_read, real_sizes = agent_feed.read_new, agent_feed._sizes

    def counted_read(path: Path, *args: object, **kwargs: object) -> object:
        reads.append(path)
        return real_read(path, *args, **kwargs)  # type: ignore[arg-type]

    def counted_sizes(paths: list[Path]) -> list[int]:
        nonlocal stat_trips
        stat_trips += 1
        return real_sizes(paths)

    monkeypatch.setattr(agent_feed, "read_new", counted_read)
    monkeypatch.setattr(agent_feed, "_sizes", counted_sizes)
    board = Board()
    feed = looked_at(
        AgentFeed(FakeFleet(outputs=ManyOutputs(logs)), board.post, ManualClock(T0), FAST)
    )  # type: ignore[arg-type]
    for run in logs:
        name = AgentName(f"a{run:02d}")
        await feed.on_fleet_event(
            FleetEvent(name, EventKind.STARTED, AgentState.RUNNING, "spawned", True, run)
        )
    everyone = set(logs.values())
    await eventually(lambda: set(reads) == everyone, "the first read of each log, at once")
    settled = stat_trips + 3  # the first ticks wake every follow once more: its size unknown
    await eventually(lambda: stat_trips >= settled, "three ticks past the first reads")
    reads.clear()
    trips_before = stat_trips
    for i in range(5):
        with logs[7].open("a") as fh:
            fh.write(f"say step {i}\n")
        await asyncio.sleep(0.05)
    await eventually(
        lambda: logs[7] in reads and stat_trips - trips_before >= 10, "ten ticks past the writes"
    )
    read_while_running = set(reads)
    await feed.stop()  # reads each log once more, for what came last
    assert read_while_running == {logs[7]}
    assert stat_trips - trips_before >= 10  # a trip per tick, for all fifty logs
    said = [
        line[2:]
        for _, notice in board.posts
        for line in notice.markdown.splitlines()
        if line.startswith("> step")
    ]
    assert said == [f"step {i}" for i in range(5)]
    assert {notice.agents for _, notice in board.posts} == {("a07",)}
