"""Tests for bot.commands.routing.router's threads: answers where the command was typed, a thread
per agent (a new one for each fresh run), links and lines for it, and plain messages in its
thread."""

from __future__ import annotations

import pytest

from bot.acl import Acl, Grant, Role
from bot.commands.parsing.grammar import Grammar
from bot.commands.routing.request import Reply, Request
from bot.commands.routing.router import Router
from bot.commands.routing.threads import link_line, moved, thread_note
from bot.commands.specs import COMMANDS
from connectors.base import EventId, OutboundMessage, RoomId
from fleet.ledger import Ledger
from tests.unit.chat_fakes import (
    OPERATOR,
    VIEWER,
    Calls,
    FakeConnector,
    ThreadedConnector,
    message,
    thread_url,
)

ROOM = "!ops:example.org"


@pytest.fixture
def agent_commands(calls: Calls) -> Calls:
    """spawn, watch and stop answer as the real handlers do."""

    async def spawn(req: Request) -> Reply:
        name = req.arg("NAME")
        return Reply(f"Agent **{name}** started", topic=name, new_thread=True)

    async def watch(req: Request) -> Reply:
        return Reply(f"**{req.arg('NAME')}** lately", topic=req.arg("NAME"), open_thread=True)

    async def stop(req: Request) -> Reply:
        name = req.arg("NAME")
        line = f"Stopped by {req.message.sender}."
        return Reply(f"Stopped **{name}**.", topic=name, thread_line=line)

    for name, handler in (("spawn", spawn), ("watch", watch), ("stop", stop)):
        calls.behaviour[name] = handler  # type: ignore[assignment]
    return calls


@pytest.fixture
def threaded_router(ledger: Ledger, agent_commands: Calls) -> Router:
    acl = Acl([Grant(OPERATOR, Role.OPERATOR), Grant(VIEWER, Role.VIEWER)])
    return Router(
        grammar=Grammar(COMMANDS),
        acl=acl,
        handlers=agent_commands.table(),
        audit=ledger.audit,
        chat=ledger.chat,
    )


@pytest.fixture
def threaded() -> ThreadedConnector:
    return ThreadedConnector()


async def spawned(router: Router, connector: ThreadedConnector, event: str = "$1") -> None:
    await router.handle(connector, message("!spawn demo", room=ROOM, event_id=event))


async def test_a_spawn_opens_a_thread_and_binds_it(
    threaded_router: Router, threaded: ThreadedConnector, ledger: Ledger
) -> None:
    """A fresh run's answer becomes the root of the agent's thread, in the room."""
    await spawned(threaded_router, threaded)
    assert threaded.roots == [(ROOM, "demo", "Agent **demo** started" + thread_note("demo"))]
    assert threaded.sent == []
    assert await ledger.chat.thread_for_topic("matrix", ROOM, "demo") == "$root-1"


async def test_a_respawn_opens_a_new_thread_and_the_old_points_to_it(
    threaded_router: Router, threaded: ThreadedConnector, ledger: Ledger
) -> None:
    """Spawned again from the room: a new root there, the ledger moves the agent to it,
    and the old thread gets a last line with the way to the new one."""
    await spawned(threaded_router, threaded)
    await spawned(threaded_router, threaded, "$2")
    assert [root[:2] for root in threaded.roots] == [(ROOM, "demo"), (ROOM, "demo")]
    assert await ledger.chat.thread_for_topic("matrix", ROOM, "demo") == "$root-2"
    assert await ledger.chat.topic_for_thread("matrix", ROOM, "$root-1") is None
    assert await ledger.chat.threads_for_topic("matrix", "demo") == [(ROOM, "$root-2")]
    (pointer,) = threaded.sent
    assert pointer.thread_id == "$root-1" and pointer.in_reply_to is None
    assert pointer.markdown == moved("demo", thread_url(ROOM, "$root-2")).strip()
    assert "[its new thread](https://chat.example/!ops:example.org/$root-2)" in pointer.markdown


async def test_a_respawn_typed_in_the_old_thread_is_answered_there_with_the_way_out(
    threaded_router: Router, threaded: ThreadedConnector
) -> None:
    """Typed in the old thread: the new root goes to the room, and the answer in the old
    thread (replying to the command) is its last line — no second pointer."""
    await spawned(threaded_router, threaded)
    await threaded_router.handle(
        threaded, message("!spawn demo", room=ROOM, event_id="$2", thread_id="$root-1")
    )
    assert len(threaded.roots) == 2
    (answer,) = threaded.sent
    assert (answer.thread_id, answer.in_reply_to) == ("$root-1", "$2")
    assert answer.markdown == "Agent **demo** started" + moved("demo", thread_url(ROOM, "$root-2"))


async def test_a_respawn_typed_in_another_thread_links_there_and_points_from_the_old(
    threaded_router: Router, threaded: ThreadedConnector, ledger: Ledger
) -> None:
    """Typed in some other thread: answered there with a link to the new thread; the old
    thread still gets its pointer."""
    await spawned(threaded_router, threaded)
    threaded.add_thread(ROOM, "$theirs")
    await ledger.chat.bind_thread("matrix", ROOM, "other", "$theirs")
    await threaded_router.handle(
        threaded, message("!spawn demo", room=ROOM, event_id="$2", thread_id="$theirs")
    )
    answer, pointer = threaded.sent
    assert (answer.thread_id, answer.in_reply_to) == ("$theirs", "$2")
    assert answer.markdown == "Agent **demo** started" + link_line(
        "demo", thread_url(ROOM, "$root-2")
    )
    assert pointer.thread_id == "$root-1" and "started again" in pointer.markdown


async def test_watch_in_the_room_is_answered_there_with_a_link_to_the_thread(
    threaded_router: Router, threaded: ThreadedConnector
) -> None:
    """An agent with a thread, watched from the room: the answer replies to the command
    in the room and links to the thread; nothing is posted into the thread."""
    await spawned(threaded_router, threaded)
    await threaded_router.handle(threaded, message("!watch demo", room=ROOM, event_id="$2"))
    assert len(threaded.roots) == 1
    assert threaded.sent == [
        OutboundMessage(
            room=RoomId(ROOM),
            markdown="**demo** lately" + link_line("demo", thread_url(ROOM, "$root-1")),
            in_reply_to=EventId("$2"),
        )
    ]


async def test_watch_of_an_agent_without_a_thread_here_opens_one(
    threaded_router: Router, threaded: ThreadedConnector, ledger: Ledger
) -> None:
    """Watching an agent that has no thread in this room opens one with the answer."""
    await threaded_router.handle(threaded, message("!watch demo", room=ROOM, event_id="$1"))
    assert threaded.roots == [(ROOM, "demo", "**demo** lately" + thread_note("demo"))]
    assert await ledger.chat.thread_for_topic("matrix", ROOM, "demo") == "$root-1"


async def test_watch_in_the_agents_thread_is_answered_there_without_a_link(
    threaded_router: Router, threaded: ThreadedConnector
) -> None:
    """Typed in the agent's own thread: the answer is there, with nothing to point to."""
    await spawned(threaded_router, threaded)
    await threaded_router.handle(
        threaded, message("!watch demo", room=ROOM, event_id="$2", thread_id="$root-1")
    )
    (answer,) = threaded.sent
    assert (answer.markdown, answer.thread_id, answer.in_reply_to) == (
        "**demo** lately",
        "$root-1",
        "$2",
    )


async def test_a_stop_in_the_room_leaves_a_line_in_the_agents_thread(
    threaded_router: Router, threaded: ThreadedConnector
) -> None:
    """`stop` typed in the room: answered there (with the link), then its line goes into
    the agent's thread."""
    await spawned(threaded_router, threaded)
    await threaded_router.handle(threaded, message("!stop demo", room=ROOM, event_id="$2"))
    answer, line = threaded.sent
    assert (answer.thread_id, answer.in_reply_to) == (None, "$2")
    assert answer.markdown.startswith("Stopped **demo**.\n\n→ [demo's thread](")
    assert (line.thread_id, line.in_reply_to) == ("$root-1", None)
    assert line.markdown == f"Stopped by {OPERATOR}."


async def test_a_stop_in_the_agents_thread_is_only_answered_there(
    threaded_router: Router, threaded: ThreadedConnector
) -> None:
    """Typed in the thread, the answer itself is the trace: no second line."""
    await spawned(threaded_router, threaded)
    await threaded_router.handle(
        threaded, message("!stop demo", room=ROOM, event_id="$2", thread_id="$root-1")
    )
    (answer,) = threaded.sent
    assert (answer.markdown, answer.thread_id) == ("Stopped **demo**.", "$root-1")


async def test_a_stop_of_an_agent_without_a_thread_opens_none(
    threaded_router: Router, threaded: ThreadedConnector
) -> None:
    """Only a watch or a fresh run opens a thread; a stop just answers."""
    await threaded_router.handle(threaded, message("!stop demo", room=ROOM, event_id="$1"))
    assert threaded.roots == []
    assert [(m.markdown, m.thread_id) for m in threaded.sent] == [("Stopped **demo**.", None)]


async def test_without_threads_a_topic_reply_is_a_plain_reply(
    threaded_router: Router, chat: FakeConnector, ledger: Ledger
) -> None:
    """A connector without threads gets every topic reply as an ordinary reply."""
    await threaded_router.handle(chat, message("!spawn demo", room=ROOM, event_id="$1"))
    await threaded_router.handle(chat, message("!stop demo", room=ROOM, event_id="$2"))
    assert [m.markdown for m in chat.sent] == ["Agent **demo** started", "Stopped **demo**."]
    assert [m.thread_id for m in chat.sent] == [None, None]
    assert await ledger.chat.thread_for_topic("matrix", ROOM, "demo") is None


async def test_plain_message_in_an_agent_thread_is_sent_to_the_agent(
    threaded_router: Router, threaded: ThreadedConnector, calls: Calls
) -> None:
    """Text without a prefix in an agent's thread becomes `send AGENT <text>`."""
    await spawned(threaded_router, threaded)
    plain = message("it's done?", room=ROOM, event_id="$2", thread_id="$root-1")
    await threaded_router.handle(threaded, plain)
    sent = calls.requests[-1].command
    assert (sent.name, sent.args["NAME"], sent.args["TEXT"]) == ("send", "demo", "it's done?")
    assert threaded.sent[-1].thread_id == "$root-1"


async def test_commands_still_work_inside_a_thread(
    threaded_router: Router, threaded: ThreadedConnector, calls: Calls
) -> None:
    """A prefixed command in a thread runs as a command and is answered in the thread."""
    await spawned(threaded_router, threaded)
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
    await spawned(threaded_router, threaded)
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
        audit=ledger.audit,
        chat=ledger.chat,
    )
    await router.handle(threaded, message("!ps", room=ROOM, event_id="$1"))
    await router.handle(threaded, message("?ps", room=ROOM, event_id="$2"))
    assert [r.command.name for r in calls.requests] == ["ps"]
