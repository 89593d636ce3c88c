"""Tests for bot.chat.ordering with the router and the notifier: an answer comes before the
notices its command causes, without deadlock, and notices about other agents never wait."""

from __future__ import annotations

import asyncio

import pytest

from bot.acl import Acl, Grant, Role
from bot.chat.notifier import Notifier
from bot.chat.ordering import Ordering, Post
from bot.commands.parsing.grammar import Grammar
from bot.commands.routing.request import Reply, Request
from bot.commands.routing.router import Router
from bot.commands.specs import COMMANDS
from connectors.base import OutboundMessage, RoomId, ThreadId
from fleet.ledger import Ledger
from fleet.notices import Delivery, Notice
from tests.unit.chat_fakes import OPERATOR, Calls, HomeConnector, message

HOME = "!home:example.org"


@pytest.fixture
def home() -> HomeConnector:
    return HomeConnector("matrix", HOME)


@pytest.fixture
def notifier(ledger: Ledger, home: HomeConnector) -> Notifier:
    return Notifier(ledger.chat, lambda: [home], Ordering())


@pytest.fixture
def ordering_router(ledger: Ledger, calls: Calls, notifier: Notifier) -> Router:
    acl = Acl([Grant(OPERATOR, Role.OPERATOR)])
    return Router(
        grammar=Grammar(COMMANDS),
        acl=acl,
        handlers=calls.table(),
        audit=ledger.audit,
        chat=ledger.chat,
        ordering=notifier.ordering,
    )


def texts(connector: HomeConnector) -> list[str]:
    return [m.markdown for m in connector.sent]


async def test_a_notice_the_handler_awaits_comes_after_the_answer(
    ordering_router: Router, calls: Calls, notifier: Notifier, home: HomeConnector
) -> None:
    """The handler posts a notice about its agent and awaits the post (as the fleet does):
    it returns at once, queued, and is posted right after the answer."""
    deliveries: list[Delivery] = []

    async def spawn(req: Request) -> Reply:
        deliveries.append(await notifier.post(Notice("**c1** failed", agents=("c1",))))
        assert home.sent == []  # not posted yet, and nobody waits on it
        return Reply("Agent **c1** started", topic="c1")

    calls.behaviour["spawn"] = spawn  # type: ignore[assignment]
    await ordering_router.handle(home, message("!spawn c1", room=HOME))
    assert texts(home) == ["Agent **c1** started", "**c1** failed"]
    assert deliveries == [Delivery()]


async def test_notices_about_other_agents_and_none_go_at_once(
    ordering_router: Router, calls: Calls, notifier: Notifier, home: HomeConnector
) -> None:
    """Only notices about the agent the command names wait."""

    async def stop(req: Request) -> str:
        await notifier.post(Notice("**c2** stalled", agents=("c2",)))
        await notifier.post(Notice("pacing report"))
        return "Stopped **c1**."

    calls.behaviour["stop"] = stop
    await ordering_router.handle(home, message("!stop c1", room=HOME))
    assert texts(home) == ["**c2** stalled", "pacing report", "Stopped **c1**."]


async def test_a_notice_from_elsewhere_waits_for_the_answer_then_keeps_its_order(
    ordering_router: Router, calls: Calls, notifier: Notifier, home: HomeConnector
) -> None:
    """Notices about the agent from other tasks while its command runs wait, and arrive
    after the answer in the order they were posted; a later one does not overtake them."""
    running, finish = asyncio.Event(), asyncio.Event()

    async def stop(req: Request) -> str:
        running.set()
        await finish.wait()
        return "Stopped **c1**."

    calls.behaviour["stop"] = stop
    command = asyncio.create_task(ordering_router.handle(home, message("!stop c1", room=HOME)))
    await running.wait()
    await notifier.post(Notice("c1: last output", agents=("c1",), feed=True))
    await notifier.post(Notice("c1: summary", agents=("c1",)))
    assert home.sent == []
    finish.set()
    await command
    await notifier.post(Notice("c1: after", agents=("c1",)))
    assert texts(home) == ["Stopped **c1**.", "c1: last output", "c1: summary", "c1: after"]


async def test_a_failed_command_still_lets_its_notices_through(
    ordering_router: Router, calls: Calls, notifier: Notifier, home: HomeConnector
) -> None:
    """An error answer is an answer too: the notices follow it."""

    async def stop(req: Request) -> str:
        await notifier.post(Notice("c1: stopped", agents=("c1",)))
        raise RuntimeError("boom")

    calls.behaviour["stop"] = stop
    await ordering_router.handle(home, message("!stop c1", room=HOME))
    assert texts(home)[1:] == ["c1: stopped"]
    assert "Something went wrong" in texts(home)[0]


async def test_a_cancelled_command_does_not_leave_notices_stuck(
    ordering_router: Router, calls: Calls, notifier: Notifier, home: HomeConnector
) -> None:
    """The command's task is cancelled (the app stopping): what waited is still posted,
    and later notices about the agent go straight out."""
    running = asyncio.Event()

    async def stop(req: Request) -> str:
        await notifier.post(Notice("c1: stopping", agents=("c1",)))
        running.set()
        await asyncio.Event().wait()
        return "never"

    calls.behaviour["stop"] = stop
    command = asyncio.create_task(ordering_router.handle(home, message("!stop c1", room=HOME)))
    await running.wait()
    command.cancel()
    with pytest.raises(asyncio.CancelledError):
        await command
    await notifier.ordering.drain()
    assert texts(home) == ["c1: stopping"]
    await notifier.post(Notice("c1: later", agents=("c1",)))
    assert texts(home) == ["c1: stopping", "c1: later"]


async def test_a_notice_about_two_agents_waits_for_either() -> None:
    """A notice naming a held agent waits even if it names others; one posted that failed
    does not stop the next."""
    ordering, posted = Ordering(), list[str]()

    def post(text: str, *, fail: bool = False) -> Post:
        async def go() -> None:
            if fail:
                raise RuntimeError("down")
            posted.append(text)

        return go

    async with ordering.answering(["c1"]):
        assert ordering.defer(["c1", "c2"], post("budget", fail=True))
        assert ordering.defer(["c2"], post("c2 after budget"))
        assert not ordering.defer(["c3"], post("c3"))
        assert not ordering.defer([], post("home"))
        assert ordering.holds("c1") and not ordering.holds("c2")
    assert posted == ["c2 after budget"]
    assert not ordering.holds("c1")


async def test_the_same_agent_held_twice_waits_for_both_answers() -> None:
    """Two commands about one agent at once: its notices wait for the last answer."""
    ordering, posted = Ordering(), list[str]()

    async def note() -> None:
        posted.append("c1 news")

    first = ordering.answering(["c1"])
    await first.__aenter__()
    async with ordering.answering(["c1"]):
        assert ordering.defer(["c1"], note)
    assert posted == []
    await first.__aexit__(None, None, None)
    assert posted == ["c1 news"]


async def test_the_notifier_posts_only_into_an_agents_current_thread(
    ledger: Ledger, notifier: Notifier, home: HomeConnector
) -> None:
    """Re-bound to a new thread (a re-spawn), the agent's notices go there, not to the
    old thread as well."""
    await ledger.chat.bind_thread("matrix", HOME, "c1", "$old")
    await ledger.chat.bind_thread("matrix", HOME, "c1", "$new")
    await notifier.post(Notice("c1 ended", agents=("c1",), home_too=False))
    assert home.sent == [OutboundMessage(RoomId(HOME), "c1 ended", thread_id=ThreadId("$new"))]
