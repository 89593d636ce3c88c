"""Tests for bot.chat.notifier: the one notice board — agents' threads from the real ledger, the
home rooms, and one connector's failure never stopping the others."""

from __future__ import annotations

import pytest

from bot.chat.notifier import Notifier
from connectors.base import Connector, OutboundMessage, RoomId, ThreadId
from fleet.errors import LedgerError
from fleet.ledger import Ledger
from fleet.notices import Delivery, Notice
from tests.unit.chat_fakes import FakeConnector, HomeConnector

HOME = "!home:example.org"
OTHER = "!other:example.org"


def where(connector: FakeConnector) -> list[tuple[str, str | None]]:
    return [(m.room, m.thread_id) for m in connector.sent]


def board(ledger: Ledger, *connectors: Connector) -> Notifier:
    return Notifier(ledger.chat, lambda: list(connectors))


async def test_a_notice_about_no_agent_goes_to_every_home_room(ledger: Ledger) -> None:
    """Text, tone and images reach each connector's home room; one without a home is
    skipped."""
    matrix, discord, quiet = (
        HomeConnector("matrix", HOME),
        HomeConnector("discord", HOME),
        HomeConnector("console", None),
    )
    notice = Notice("**report**", tone="info")
    assert await board(ledger, matrix, discord, quiet).post(notice) == Delivery()
    for connector in (matrix, discord):
        assert connector.sent == [
            OutboundMessage(room=RoomId(HOME), markdown="**report**", tone="info")
        ]
    assert quiet.sent == []


async def test_an_agents_notice_goes_into_its_threads_and_the_home_room(ledger: Ledger) -> None:
    """Every thread bound to the agent on that connector gets it, then the home room once
    (a thread in the home room is not the home room itself)."""
    await ledger.chat.bind_thread("matrix", HOME, "coder-1", "$t1")
    await ledger.chat.bind_thread("matrix", OTHER, "coder-1", "$t2")
    await ledger.chat.bind_thread("matrix", HOME, "coder-2", "$t3")
    matrix = HomeConnector("matrix", HOME)
    await board(ledger, matrix).post(Notice("budget stepped up", agents=("coder-1",)))
    assert where(matrix) == [(HOME, ThreadId("$t1")), (OTHER, ThreadId("$t2")), (HOME, None)]


async def test_without_home_too_the_home_room_only_stands_in_for_a_missing_thread(
    ledger: Ledger,
) -> None:
    """An agent's own news (``home_too=False``) stays in its threads; on a connector where
    it has none, the home room gets it instead."""
    await ledger.chat.bind_thread("matrix", HOME, "coder-1", "$t1")
    matrix, discord = HomeConnector("matrix", HOME), HomeConnector("discord", HOME)
    notice = Notice("coder-1 failed", tone="error", agents=("coder-1",), home_too=False)
    await board(ledger, matrix, discord).post(notice)
    assert where(matrix) == [(HOME, ThreadId("$t1"))]
    assert where(discord) == [(HOME, None)]


async def test_a_connector_that_refuses_is_reported_and_the_others_still_get_it(
    ledger: Ledger, caplog: pytest.LogCaptureFixture
) -> None:
    """The failure is logged and named in the delivery; it is never raised."""
    broken, console = HomeConnector("matrix", HOME, broken=True), HomeConnector("console", HOME)
    delivery = await board(ledger, broken, console).post(Notice("hello"))
    assert delivery.failed == ("matrix: matrix is down",) and not delivery.ok
    assert len(console.sent) == 1
    assert "a notice was not posted on matrix: matrix is down" in caplog.text


async def test_a_ledger_that_cannot_say_where_threads_are_fails_one_connector_only(
    ledger: Ledger,
) -> None:
    """If the threads cannot be read for one connector, the others are still posted to."""

    class Flaky:
        async def threads_for_topic(self, connector: str, topic: str) -> list[tuple[str, str]]:
            if connector == "matrix":
                raise LedgerError("database is locked")
            return await ledger.chat.threads_for_topic(connector, topic)

    matrix, console = HomeConnector("matrix", HOME), HomeConnector("console", HOME)
    delivery = await Notifier(Flaky(), lambda: [matrix, console]).post(
        Notice("x", agents=("coder-1",))
    )
    assert delivery.failed == ("matrix: database is locked",)
    assert (matrix.sent, where(console)) == ([], [(HOME, None)])


async def test_connectors_are_read_at_each_post(ledger: Ledger) -> None:
    """A connector started after the notifier was made is reached; a stopped one is not."""
    running: list[Connector] = []
    notifier = Notifier(ledger.chat, lambda: running)
    late = HomeConnector("matrix", HOME)
    await notifier.post(Notice("before"))
    running.append(late)
    await notifier.post(Notice("after"))
    assert [m.markdown for m in late.sent] == ["after"]


async def test_an_alert_mentions_its_starter_on_their_connector_only(ledger: Ledger) -> None:
    """The operator who started the agent is mentioned where they are a user; elsewhere the
    alert names nobody (the connector's on-call users stand in); routine news is no alert."""
    matrix, discord = HomeConnector("matrix", HOME), HomeConnector("discord", HOME)
    alert = Notice("**x** failed", tone="error", alert=True, by="@ann:example.org on matrix")
    await board(ledger, matrix, discord).post(alert)
    assert [(m.alert, m.mentions) for m in matrix.sent] == [(True, ("@ann:example.org",))]
    assert [(m.alert, m.mentions) for m in discord.sent] == [(True, ())]
    await board(ledger, matrix).post(Notice("report", by="@ann:example.org on matrix"))
    assert (matrix.sent[-1].alert, matrix.sent[-1].mentions) == (False, ())


async def test_typing_shows_in_every_thread_of_the_agent(ledger: Ledger) -> None:
    """The feed's typing goes to the agent's threads on connectors with threads."""
    await ledger.chat.bind_thread("matrix", HOME, "coder-1", "$t1")

    class Threaded(HomeConnector):
        @property
        def has_threads(self) -> bool:
            return True

    matrix, console = Threaded("matrix", HOME), HomeConnector("console", HOME)
    async with board(ledger, matrix, console).typing("coder-1"):
        pass
    assert matrix.typed == [(RoomId(HOME), ThreadId("$t1"))] and console.typed == []


async def test_notices_held_at_start_are_posted_in_order_once_released(ledger: Ledger) -> None:
    """While held (the connectors not started yet), nothing is sent and nothing is lost;
    release posts them oldest first, and later notices go out at once."""
    started: list[Connector] = []
    notifier = Notifier(ledger.chat, lambda: started)
    notifier.hold()
    assert await notifier.post(Notice("coder could not start")) == Delivery()
    await notifier.post(Notice("queued launch failed"))
    console = HomeConnector("console", HOME)
    started.append(console)
    assert console.sent == []
    await notifier.release()
    await notifier.post(Notice("later"))
    said = [m.markdown for m in console.sent]
    assert said == ["coder could not start", "queued launch failed", "later"]
