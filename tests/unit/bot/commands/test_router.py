"""Tests for bot.commands.routing.router: dedupe, ACL, parse, authorise, dispatch, reply and
audit."""

from __future__ import annotations

import logging

import pytest

from bot.acl import Acl, Grant, Role
from bot.commands.errors import CommandError, NotFound
from bot.commands.parsing.grammar import Grammar
from bot.commands.routing.request import Request
from bot.commands.routing.router import Router
from bot.commands.specs import COMMANDS
from fleet.errors import AgentNotRunning
from fleet.ledger import Ledger
from tests.unit.chat_fakes import OPERATOR, STRANGER, T0, VIEWER, Calls, FakeConnector, message


def router_warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [
        r.getMessage()
        for r in caplog.records
        if r.name == "bot.commands.routing.router" and r.levelno == logging.WARNING
    ]


def test_a_command_without_a_handler_is_refused(ledger: Ledger, calls: Calls) -> None:
    """Constructing a Router where some command has no handler raises ValueError naming it."""
    handlers = calls.table()
    del handlers["logs"]
    with pytest.raises(ValueError, match="logs"):
        Router(
            grammar=Grammar(COMMANDS),
            acl=Acl([]),
            handlers=handlers,
            audit=ledger.audit,
            chat=ledger.chat,
        )


async def test_a_command_runs_its_handler_and_the_reply_is_sent(
    router: Router, chat: FakeConnector, calls: Calls
) -> None:
    """An operator's command reaches its handler with the parsed command, role and message."""
    msg = message("!send coder-1 run the tests")
    await router.handle(chat, msg)
    [req] = calls.requests
    assert req.command.name == "send"
    assert req.arg("NAME") == "coder-1"
    assert req.arg("TEXT") == "run the tests"
    assert req.role is Role.OPERATOR
    assert req.message == msg
    assert [m.markdown for m in chat.sent] == ["ran **send**"]


async def test_stranger_is_never_answered_and_logged_once_per_sender(
    router: Router,
    chat: FakeConnector,
    calls: Calls,
    ledger: Ledger,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A stranger gets no reply and no audit entry; each stranger is logged only the first time."""
    caplog.set_level(logging.WARNING, logger="bot.commands.routing.router")
    await router.handle(chat, message("!ps", sender=STRANGER, event_id="$1"))
    await router.handle(chat, message("!spawn x", sender=STRANGER, event_id="$2"))
    await router.handle(chat, message("!ps", sender="@eve:example.org", event_id="$3"))
    await router.handle(chat, message("!ps", sender="@eve:example.org", event_id="$4"))

    assert chat.sent == []
    assert calls.requests == []
    assert await ledger.audit.audit_entries() == []
    warnings = router_warnings(caplog)
    assert len(warnings) == 2
    assert STRANGER in warnings[0]
    assert "@eve:example.org" in warnings[1]


async def test_a_stranger_is_per_connector(
    ledger: Ledger, calls: Calls, caplog: pytest.LogCaptureFixture
) -> None:
    """An id granted on one connector is a stranger on another, and logged there once."""
    caplog.set_level(logging.WARNING, logger="bot.commands.routing.router")
    acl = Acl([Grant("bob", Role.ADMIN, connector="console")])
    router = Router(
        grammar=Grammar(COMMANDS),
        acl=acl,
        handlers=calls.table(),
        audit=ledger.audit,
        chat=ledger.chat,
    )
    console, matrix = FakeConnector("console"), FakeConnector("matrix")

    await router.handle(
        console, message("ps", sender="bob", connector="console", event_id=None, addressed=True)
    )
    await router.handle(matrix, message("!ps", sender="bob", event_id="$1"))
    await router.handle(matrix, message("!ps", sender="bob", event_id="$2"))

    assert len(console.sent) == 1
    assert matrix.sent == []
    assert len(router_warnings(caplog)) == 1


async def test_a_duplicate_event_is_handled_once(
    router: Router, chat: FakeConnector, calls: Calls, ledger: Ledger
) -> None:
    """A redelivered event_id does nothing: no handler call, no reply, no audit entry."""
    msg = message("!ps", event_id="$same")
    await router.handle(chat, msg)
    await router.handle(chat, msg)
    assert len(calls.requests) == 1
    assert len(chat.sent) == 1
    assert len(await ledger.audit.audit_entries()) == 1


async def test_the_same_event_id_on_another_connector_is_not_a_duplicate(
    router: Router, calls: Calls
) -> None:
    """Event ids are deduplicated per connector, not across connectors."""
    await router.handle(FakeConnector("matrix"), message("!ps", event_id="$1"))
    await router.handle(
        FakeConnector("discord"), message("!ps", event_id="$1", connector="discord")
    )
    assert len(calls.requests) == 2


async def test_messages_without_event_id_are_never_deduplicated(
    router: Router, chat: FakeConnector, calls: Calls
) -> None:
    """Messages with no event id (the console) are each handled, even with the same text."""
    await router.handle(chat, message("ps", event_id=None, addressed=True))
    await router.handle(chat, message("ps", event_id=None, addressed=True))
    assert len(calls.requests) == 2


@pytest.mark.parametrize("text", ["hello everyone", "ps", "  ", "is coder-1 ok?"])
async def test_ordinary_chat_is_ignored_and_not_audited(
    router: Router, chat: FakeConnector, calls: Calls, ledger: Ledger, text: str
) -> None:
    """Text without the prefix, not addressed to the bot, gets no reply and no audit entry."""
    await router.handle(chat, message(text))
    assert chat.sent == []
    assert calls.requests == []
    assert await ledger.audit.audit_entries() == []


async def test_addressed_text_needs_no_prefix(
    router: Router, chat: FakeConnector, calls: Calls
) -> None:
    """A message addressed to the bot (DM, mention, console) is a command without the prefix."""
    await router.handle(chat, message("ps", addressed=True))
    assert [req.command.name for req in calls.requests] == ["ps"]


async def test_a_parse_error_is_answered_and_audited_as_error(
    router: Router, chat: FakeConnector, calls: Calls, ledger: Ledger
) -> None:
    """An unparsable command gets the parse error as its reply and an 'error' audit entry."""
    await router.handle(chat, message("!spwan coder-1"))
    [reply] = chat.sent
    assert reply.markdown.startswith("unknown command 'spwan' — did you mean 'spawn'?")
    assert calls.requests == []
    [entry] = await ledger.audit.audit_entries()
    assert entry.outcome == "error"
    assert entry.command is None
    assert entry.detail == reply.markdown


async def test_a_viewers_control_command_is_denied_and_audited(
    router: Router, chat: FakeConnector, calls: Calls, ledger: Ledger
) -> None:
    """A viewer's control command is refused with 'needs the operator role' and audited 'denied'."""
    await router.handle(chat, message("!stop coder-1", sender=VIEWER))
    [reply] = chat.sent
    assert "needs the operator role" in reply.markdown
    assert "you are a viewer" in reply.markdown
    assert calls.requests == []
    [entry] = await ledger.audit.audit_entries()
    assert (entry.outcome, entry.command, entry.sender) == ("denied", "stop", VIEWER)


async def test_a_viewer_may_run_read_only_commands(
    router: Router, chat: FakeConnector, calls: Calls, ledger: Ledger
) -> None:
    """A viewer's read-only command runs and is audited 'ok'."""
    await router.handle(chat, message("!logs coder-1", sender=VIEWER))
    assert [req.role for req in calls.requests] == [Role.VIEWER]
    [entry] = await ledger.audit.audit_entries()
    assert entry.outcome == "ok"


@pytest.mark.parametrize(
    "error",
    [
        AgentNotRunning("coder-1 is stopped, not running — spawn it first"),
        NotFound("no agent named 'coder-9'"),
        CommandError("that did not work"),
    ],
    ids=lambda exc: type(exc).__name__,
)
async def test_a_fleet_or_command_error_becomes_a_one_line_reply(
    router: Router, chat: FakeConnector, calls: Calls, ledger: Ledger, error: Exception
) -> None:
    """A FleetError or CommandError from a handler is replied verbatim and audited 'error'."""

    async def fail(req: Request) -> str:
        raise error

    calls.behaviour["send"] = fail
    await router.handle(chat, message("!send coder-1 hi"))
    assert [m.markdown for m in chat.sent] == [str(error)]
    [entry] = await ledger.audit.audit_entries()
    assert (entry.outcome, entry.command, entry.detail) == ("error", "send", str(error))


async def test_an_unexpected_exception_gets_a_generic_reply_and_a_logged_traceback(
    router: Router,
    chat: FakeConnector,
    calls: Calls,
    ledger: Ledger,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A bug in a handler is logged with its traceback; the reply never shows the exception."""

    async def crash(req: Request) -> str:
        raise KeyError("internal-detail-42")

    calls.behaviour["ps"] = crash
    await router.handle(chat, message("!ps"))

    [reply] = chat.sent
    assert "went wrong" in reply.markdown
    assert "internal-detail-42" not in reply.markdown
    assert "KeyError" not in reply.markdown
    [record] = [r for r in caplog.records if r.name == "bot.commands.routing.execution"]
    assert record.levelno == logging.ERROR
    assert record.exc_info is not None
    assert isinstance(record.exc_info[1], KeyError)
    [entry] = await ledger.audit.audit_entries()
    assert (entry.outcome, entry.detail) == ("error", "internal error: KeyError")


async def test_replies_go_to_the_same_room_and_thread_in_reply_to_the_message(
    router: Router, chat: FakeConnector
) -> None:
    """A reply is posted in the message's room and thread, as a reply to its event."""
    await router.handle(
        chat, message("!ps", room="!ops:example.org", thread_id="$root", event_id="$cmd")
    )
    [reply] = chat.sent
    assert reply.room == "!ops:example.org"
    assert reply.thread_id == "$root"
    assert reply.in_reply_to == "$cmd"


async def test_every_command_is_audited_with_who_where_what_and_outcome(
    router: Router, chat: FakeConnector, ledger: Ledger
) -> None:
    """Each command from a known sender is one audit entry with sender, connector, room, text."""
    await router.handle(
        chat, message("!ps", room="!ops:example.org", thread_id="$root", event_id="$1")
    )
    await router.handle(chat, message("!restart coder-1", sender=VIEWER, event_id="$2"))
    await router.handle(chat, message("!nonsense", event_id="$3"))

    newest_first = await ledger.audit.audit_entries()
    got = [
        (e.sender, e.connector, e.room, e.thread, e.text, e.command, e.outcome)
        for e in reversed(newest_first)
    ]
    assert got == [
        (OPERATOR, "matrix", "!ops:example.org", "$root", "!ps", "ps", "ok"),
        (VIEWER, "matrix", "!room:example.org", None, "!restart coder-1", "restart", "denied"),
        (OPERATOR, "matrix", "!room:example.org", None, "!nonsense", None, "error"),
    ]
    assert all(e.at == T0 for e in newest_first)
    assert newest_first[-1].detail is None


async def test_a_message_taken_is_marked_read_once_and_a_strangers_never(
    router: Router,
) -> None:
    """A known sender's message gets a read receipt when it is claimed; a repeat of the
    same event and a stranger's message get none; a fast command shows no typing."""
    chat = FakeConnector()
    await router.handle(chat, message("!ps", event_id="$a"))
    await router.handle(chat, message("!ps", event_id="$a"))
    await router.handle(chat, message("!ps", sender=STRANGER, event_id="$b"))
    assert [event for _room, event, _thread in chat.read] == ["$a"]
    assert chat.typed == []


@pytest.mark.parametrize(
    ("text", "answer"),
    [
        ("!raise codr", "no agent is called 'codr' — did you mean 'coder'? `ps` lists them"),
        ("!resume codr", "no agent is called 'codr' — did you mean 'coder'? `ps` lists them"),
        ("!restart codr", "no agent is called 'codr' — did you mean 'coder'? `ps` lists them"),
        ("!logs codr", "no agent is called 'codr' — did you mean 'coder'? `ps` lists them"),
        ("!egress block codr", "no agent is called 'codr' — did you mean 'coder'? `ps` lists them"),
        ("!stop all", "refused as the handler says"),
        ("!raise zzzzzz", "refused as the handler says"),
        ("!raise coder", "refused as the handler says"),
        ("!raise budget global", "refused as the handler says"),
        ("!spawn codr --runtime nope", "refused as the handler says"),
    ],
)
async def test_a_refusal_of_an_agent_name_none_has_says_the_one_meant(
    ledger: Ledger, calls: Calls, chat: FakeConnector, text: str, answer: str
) -> None:
    """A command refused for an agent name close to one there is says that one, whatever
    its handler said; a name near none, a known one, `budget` and `spawn`'s new name keep
    the handler's words."""

    async def agents() -> set[str]:
        return {"coder", "reviewer"}

    async def refuse(req: Request) -> str:
        raise CommandError("refused as the handler says")

    for name in ("raise", "resume", "restart", "spawn", "logs", "egress block", "stop"):
        calls.behaviour[name] = refuse
    router = Router(
        grammar=Grammar(COMMANDS),
        acl=Acl([Grant(OPERATOR, Role.OPERATOR)]),
        handlers=calls.table(),
        audit=ledger.audit,
        chat=ledger.chat,
        agents=agents,
    )
    await router.handle(chat, message(text))
    assert [m.markdown for m in chat.sent] == [answer]
