"""Tests for bot.commands.routing.router's edits: an edit of a message nothing was done about runs
in its place; an edit of one whose command ran is answered with why it was not applied."""

from __future__ import annotations

from dataclasses import replace

from bot.commands.routing.router import Router
from connectors.base import EventId, InboundMessage
from fleet.ledger import Ledger
from tests.unit.chat_fakes import VIEWER, Calls, FakeConnector, message

ROOM = "!room:example.org"


def edit(text: str, of: str = "$ev1", event_id: str = "$edit1") -> InboundMessage:
    """An edit of ``of`` saying ``text``, as a connector hands it over (no thread of its own)."""
    return replace(message(text, event_id=event_id), replaces=EventId(of))


async def test_an_edit_of_a_message_that_held_no_command_runs_it(
    router: Router, chat: FakeConnector, calls: Calls, ledger: Ledger
) -> None:
    """`ps` without the prefix is ignored; edited to `!ps`, it runs, answered under the original."""
    await router.handle(chat, message("ps"))
    assert chat.sent == [] and calls.requests == []
    await router.handle(chat, edit("!ps"))
    assert [r.command.name for r in calls.requests] == ["ps"]
    [answer] = chat.sent
    assert (answer.markdown, answer.in_reply_to) == ("ran **ps**", "$ev1")
    [entry] = await ledger.audit.audit_entries()
    assert (entry.command, entry.outcome, entry.source) == ("ps", "ok", "edit:$ev1")
    recorded = await ledger.chat.chat_answer("matrix", "$ev1")
    assert recorded is not None and (recorded.state, recorded.command) == ("ran", "ps")


async def test_an_edit_of_an_answered_command_is_not_applied(
    router: Router, chat: FakeConnector, calls: Calls, ledger: Ledger
) -> None:
    """`!stop c1` ran: its edit to `!stop c2` runs nothing and says why, under the original."""
    await router.handle(chat, message("!stop c1"))
    await router.handle(chat, edit("!stop c2"))
    assert [r.arg("NAME") for r in calls.requests] == ["c1"]
    answer = chat.sent[-1]
    assert answer.in_reply_to == "$ev1"
    assert answer.markdown == (
        "Edit not applied: `stop` already ran (ok). Send the new command as a new message."
    )
    latest = (await ledger.audit.audit_entries())[0]
    assert (latest.command, latest.outcome, latest.source) == ("stop", "denied", "edit:$ev1")
    assert latest.detail == "edit not applied: `stop` already ran (ok)"


async def test_a_replayed_edit_is_handled_once(
    router: Router, chat: FakeConnector, calls: Calls
) -> None:
    """The edit's own event id is claimed: delivered twice, it runs once and is answered once."""
    await router.handle(chat, message("ps"))
    await router.handle(chat, edit("!ps"))
    await router.handle(chat, edit("!ps"))
    assert len(calls.requests) == 1 and len(chat.sent) == 1


async def test_a_second_edit_of_a_command_the_first_edit_ran_is_not_applied(
    router: Router, chat: FakeConnector, calls: Calls
) -> None:
    """Edits point at the original: once one edit ran it, the next one is too late."""
    await router.handle(chat, message("ps"))
    await router.handle(chat, edit("!ps"))
    await router.handle(chat, edit("!status", event_id="$edit2"))
    assert [r.command.name for r in calls.requests] == ["ps"]
    assert chat.sent[-1].markdown.startswith("Edit not applied: `ps` already ran (ok).")


async def test_an_edit_of_a_refused_command_runs(
    router: Router, chat: FakeConnector, calls: Calls
) -> None:
    """A typo the bot refused (`!stpo c1`: unknown command) changed nothing: the fix runs."""
    await router.handle(chat, message("!stpo c1"))
    assert calls.requests == [] and len(chat.sent) == 1
    await router.handle(chat, edit("!stop c1"))
    assert [r.command.name for r in calls.requests] == ["stop"]
    assert chat.sent[-1].markdown == "ran **stop**"


async def test_an_edit_that_is_still_no_command_stays_quiet(
    router: Router, chat: FakeConnector, calls: Calls, ledger: Ledger
) -> None:
    """Plain text edited into other plain text: no answer, no audit, and a later edit may
    still make it a command."""
    await router.handle(chat, message("hello"))
    await router.handle(chat, edit("hello there"))
    assert chat.sent == [] and await ledger.audit.audit_entries() == []
    await router.handle(chat, edit("!ps", event_id="$edit2"))
    assert [r.command.name for r in calls.requests] == ["ps"]


async def test_an_edit_of_someone_elses_message_is_not_applied(
    router: Router, chat: FakeConnector, calls: Calls
) -> None:
    """Only the author edits a message (servers do not enforce that; the bot does)."""
    await router.handle(chat, message("ps", sender=VIEWER))
    await router.handle(chat, edit("!stop c1"))
    assert calls.requests == []
    assert "someone else's message" in chat.sent[-1].markdown


async def test_an_edit_of_an_unknown_message_says_so_only_for_a_command(
    router: Router, chat: FakeConnector, calls: Calls
) -> None:
    """No record of the original (too old, or before the bot): a command is not run, and the
    edit says so; plain text gets nothing. An edit pointing at an edit (a malformed chain)
    is such an unknown message too."""
    await router.handle(chat, edit("thanks", of="$old"))
    assert chat.sent == []
    await router.handle(chat, edit("!stop c1", of="$old", event_id="$edit2"))
    assert calls.requests == []
    assert "there is no record of the message it edits" in chat.sent[-1].markdown
    await router.handle(chat, message("ps"))
    await router.handle(chat, edit("!ps", event_id="$edit3"))
    await router.handle(chat, edit("!status", of="$edit3", event_id="$edit4"))
    assert [r.command.name for r in calls.requests] == ["ps"]
    assert chat.sent[-1].in_reply_to == "$edit3"


async def test_an_edit_is_answered_in_its_originals_thread(
    router: Router, chat: FakeConnector, calls: Calls, ledger: Ledger
) -> None:
    """The edit arrives without a thread; its answer goes into the original's, from the ledger."""
    await ledger.chat.bind_thread("matrix", ROOM, "c1", "$t1")
    await router.handle(chat, message("hello", thread_id="$elsewhere"))
    await router.handle(chat, edit("!ps"))
    assert chat.sent[-1].thread_id == "$elsewhere"
    await router.handle(chat, message("!ps", event_id="$ev2", thread_id="$t1"))
    await router.handle(chat, edit("!status", of="$ev2", event_id="$edit2"))
    assert (chat.sent[-1].thread_id, chat.sent[-1].in_reply_to) == ("$t1", "$ev2")


async def test_an_edit_of_a_message_already_sent_to_an_agent_is_not_applied(
    router: Router, chat: FakeConnector, calls: Calls, ledger: Ledger
) -> None:
    """A plain message in an agent's thread went to the agent: its edit is not sent again."""
    await ledger.chat.bind_thread("matrix", ROOM, "c1", "$t1")
    await router.handle(chat, message("run the tests", thread_id="$t1"))
    await router.handle(chat, edit("run the linter"))
    assert [r.arg("TEXT") for r in calls.requests] == ["run the tests"]
    assert chat.sent[-1].thread_id == "$t1"
    assert "already went to the agent" in chat.sent[-1].markdown
