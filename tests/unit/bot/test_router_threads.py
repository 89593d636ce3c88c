"""Tests for bot.router's threads: one per topic, and plain messages in an agent's thread."""

from __future__ import annotations

import pytest

from bot.acl import Acl, Grant, Role
from bot.commands import COMMANDS
from bot.grammar import Grammar
from bot.request import Reply, Request
from bot.router import Router, thread_note
from connectors.base import EventId, OutboundMessage, RoomId, SendResult, ThreadId
from fleet.ledger import Ledger
from tests.unit.chat_fakes import OPERATOR, VIEWER, Calls, FakeConnector, message

ROOM = "!ops:example.org"


class ThreadedConnector(FakeConnector):
    """A fake connector with threads: ``open_thread`` posts a root and returns its id."""

    def __init__(self) -> None:
        super().__init__("matrix")
        self.roots: list[tuple[RoomId, str, str]] = []

    @property
    def has_threads(self) -> bool:
        return True

    async def open_thread(self, room: RoomId, topic: str, first_message: str) -> ThreadId:
        self.roots.append((room, topic, first_message))
        return ThreadId(f"$root-{len(self.roots)}")

    async def send(self, message: OutboundMessage) -> SendResult:
        self.sent.append(message)
        return SendResult(event_ids=(EventId(f"$sent-{len(self.sent)}"),))


@pytest.fixture
def spawn_opens_topic(calls: Calls) -> Calls:
    async def spawn(req: Request) -> Reply:
        return Reply(f"Agent **{req.arg('NAME')}** started", topic=req.arg("NAME"))

    calls.behaviour["spawn"] = spawn  # type: ignore[assignment]
    return calls


@pytest.fixture
def threaded_router(ledger: Ledger, spawn_opens_topic: Calls) -> Router:
    acl = Acl([Grant(OPERATOR, Role.OPERATOR), Grant(VIEWER, Role.VIEWER)])
    return Router(
        grammar=Grammar(COMMANDS), acl=acl, handlers=spawn_opens_topic.table(), ledger=ledger
    )


@pytest.fixture
def threaded() -> ThreadedConnector:
    return ThreadedConnector()


async def test_a_topic_reply_opens_a_thread_and_binds_it(
    threaded_router: Router, threaded: ThreadedConnector, ledger: Ledger
) -> None:
    """The first reply naming a topic becomes the root of that topic's thread."""
    await threaded_router.handle(threaded, message("!spawn demo", room=ROOM, event_id="$1"))
    assert threaded.roots == [(ROOM, "demo", "Agent **demo** started" + thread_note("demo"))]
    assert threaded.sent == []
    assert await ledger.thread_for_topic("matrix", ROOM, "demo") == "$root-1"


async def test_a_second_topic_reply_goes_into_the_existing_thread(
    threaded_router: Router, threaded: ThreadedConnector
) -> None:
    """Once a topic has a thread in a room, later replies for it are posted inside it."""
    await threaded_router.handle(threaded, message("!spawn demo", room=ROOM, event_id="$1"))
    await threaded_router.handle(threaded, message("!spawn demo", room=ROOM, event_id="$2"))
    assert len(threaded.roots) == 1
    assert threaded.sent[-1].thread_id == "$root-1"


async def test_without_threads_a_topic_reply_is_a_plain_reply(
    threaded_router: Router, chat: FakeConnector, ledger: Ledger
) -> None:
    """A connector without threads gets the topic reply as an ordinary reply."""
    await threaded_router.handle(chat, message("!spawn demo", room=ROOM, event_id="$1"))
    assert [m.markdown for m in chat.sent] == ["Agent **demo** started"]
    assert chat.sent[0].thread_id is None
    assert await ledger.thread_for_topic("matrix", ROOM, "demo") is None


async def test_plain_message_in_an_agent_thread_is_sent_to_the_agent(
    threaded_router: Router, threaded: ThreadedConnector, calls: Calls
) -> None:
    """Text without a prefix in an agent's thread becomes `send AGENT <text>`."""
    await threaded_router.handle(threaded, message("!spawn demo", room=ROOM, event_id="$1"))
    plain = message("it's done?", room=ROOM, event_id="$2", thread_id="$root-1")
    await threaded_router.handle(threaded, plain)
    sent = calls.requests[-1].command
    assert (sent.name, sent.args["NAME"], sent.args["TEXT"]) == ("send", "demo", "it's done?")
    assert threaded.sent[-1].thread_id == "$root-1"


async def test_commands_still_work_inside_a_thread(
    threaded_router: Router, threaded: ThreadedConnector, calls: Calls
) -> None:
    """A prefixed command in a thread runs as a command and is answered in the thread."""
    await threaded_router.handle(threaded, message("!spawn demo", room=ROOM, event_id="$1"))
    await threaded_router.handle(
        threaded, message("!logs demo", room=ROOM, event_id="$2", thread_id="$root-1")
    )
    assert calls.requests[-1].command.name == "logs"
    assert threaded.sent[-1].thread_id == "$root-1"


async def test_plain_message_in_an_unknown_thread_is_ignored(
    threaded_router: Router, threaded: ThreadedConnector, calls: Calls
) -> None:
    """Plain text in a thread that belongs to no agent is ordinary chat: no reply."""
    await threaded_router.handle(
        threaded, message("hello", room=ROOM, event_id="$9", thread_id="$elsewhere")
    )
    assert calls.requests == [] and threaded.sent == []


async def test_a_viewer_cannot_talk_to_an_agent_in_its_thread(
    threaded_router: Router, threaded: ThreadedConnector, calls: Calls
) -> None:
    """Forwarding to an agent is `send`, so a viewer is refused in the thread."""
    await threaded_router.handle(threaded, message("!spawn demo", room=ROOM, event_id="$1"))
    await threaded_router.handle(
        threaded,
        message("do it", sender=VIEWER, room=ROOM, event_id="$2", thread_id="$root-1"),
    )
    assert "needs the operator role" in threaded.sent[-1].markdown
    assert [r.command.name for r in calls.requests] == ["spawn"]


async def test_each_connector_may_have_its_own_prefix(
    ledger: Ledger, calls: Calls, threaded: ThreadedConnector
) -> None:
    """A per-connector grammar overrides the prefix for that connector only."""
    acl = Acl([Grant(OPERATOR, Role.OPERATOR)])
    router = Router(
        grammar=Grammar(COMMANDS),
        grammars={"matrix": Grammar(COMMANDS, prefix="?")},
        acl=acl,
        handlers=calls.table(),
        ledger=ledger,
    )
    await router.handle(threaded, message("!ps", room=ROOM, event_id="$1"))
    await router.handle(threaded, message("?ps", room=ROOM, event_id="$2"))
    assert [r.command.name for r in calls.requests] == ["ps"]
