"""A message read once the app's stop began: an answer to an agent's open request still runs
(a reaction, a reply in its thread, `approve`); any other command is answered that it was
not run, audited, and claimed, so it does not run when its event is read again after a
start; strangers and plain chat get no answer, as always. A command the stop cancels while
it runs is settled and audited as cancelled."""

from __future__ import annotations

import asyncio

import pytest

from bot.commands.routing.execution import CANCELLED, STOPPING
from bot.commands.routing.router import Router
from connectors.base import EventId, InboundMessage, RoomId, ThreadId
from fleet.ledger import Ledger
from fleet.ledger.records.approvals import AskKind, Decision
from tests.unit.bot.commands.test_approvals_answers import (  # noqa: F401  (a fixture)
    ROOM,
    THREAD,
    World,
    approvals_answers_world,
)
from tests.unit.chat_fakes import OPERATOR, STRANGER, Calls, FakeConnector, message


async def _said(world: World, msg: InboundMessage, *, stopping: bool = True) -> str:
    before = len(world.chat.sent)
    await world.router.handle(world.chat, msg, stopping=stopping)
    return "\n".join(m.markdown for m in world.chat.sent[before:])


def _typed(text: str, event: str, **kw: object) -> InboundMessage:
    return message(text, room=ROOM, event_id=event, **kw)  # type: ignore[arg-type]


async def test_a_command_read_while_stopping_is_not_run_and_not_run_later(
    approvals_answers_world: World,  # noqa: F811
) -> None:
    """`!stop c1` typed as the stop begins: answered not run, audited as refused; read again
    after a start (the same event), it is not run either, so sending it again runs it once."""
    world = approvals_answers_world
    said = await _said(world, _typed("!stop c1", "$late"))
    assert said == STOPPING
    [entry] = await world.ledger.audit.audit_entries()
    assert (entry.command, entry.outcome, entry.detail) == ("stop", "denied", STOPPING)
    again = await _said(world, _typed("!stop c1", "$late"), stopping=False)
    assert again == ""
    assert len(await world.ledger.audit.audit_entries()) == 1


async def test_a_command_in_an_agents_thread_and_an_addressed_one_are_refused_too(
    approvals_answers_world: World,  # noqa: F811
) -> None:
    """A plain line in an agent's thread (it would be sent to the agent) and a mention are
    commands too: each is answered not run; plain talk in the room is not answered."""
    world = approvals_answers_world
    assert await _said(world, _typed("look at the tests", "$t1", thread_id=THREAD)) == STOPPING
    assert await _said(world, _typed("ps", "$t2", addressed=True)) == STOPPING
    assert await _said(world, _typed("lunch, anyone?", "$t3")) == ""


async def test_a_stranger_is_not_answered_while_stopping(
    approvals_answers_world: World,  # noqa: F811
) -> None:
    world = approvals_answers_world
    assert await _said(world, _typed("!ps", "$s1", sender=STRANGER, addressed=True)) == ""
    assert await world.ledger.audit.audit_entries() == []


async def test_answers_to_an_agents_requests_still_run_while_stopping(
    approvals_answers_world: World,  # noqa: F811
) -> None:
    """The agent waits on them and they start nothing: a reaction, a reply in its thread and
    `approve ID` each answer a request while the app stops."""
    world = approvals_answers_world
    first = await world.ask("n1")
    reaction = InboundMessage(
        connector="matrix",
        sender=OPERATOR,  # type: ignore[arg-type]
        text="✅️",
        room=ROOM,  # type: ignore[arg-type]
        timestamp=world.clock.now(),
        event_id=EventId("$react"),
        thread_id=ThreadId(THREAD),
        reacts_to=EventId(await world.post_of(first)),
    )
    await _said(world, reaction)
    second = await world.ask("n2")
    assert "denied" in await _said(world, _typed("no, use staging", "$r2", thread_id=THREAD))
    third = await world.ask("n3")
    assert STOPPING not in await _said(world, _typed(f"!approve {third.id}", "$r3"))
    told = {r.id: r.decision for r in world.told}
    assert told == {first.id: Decision.ALLOW, second.id: Decision.DENY, third.id: Decision.ALLOW}


async def test_an_answer_to_an_agents_question_still_runs_while_stopping(
    approvals_answers_world: World,  # noqa: F811
) -> None:
    """`answer ID TEXT` is an answer too: the agent gets it while the app stops."""
    world = approvals_answers_world
    question = await world.ask("q1", kind=AskKind.QUESTION, subject="Which database?")
    said = await _said(world, _typed(f"!answer {question.id} the staging one", "$a1"))
    assert STOPPING not in said
    [told] = world.told
    assert (told.id, told.reason) == (question.id, "the staging one")


async def test_a_command_the_stop_cancels_is_settled_and_audited_as_cancelled(
    router: Router, chat: FakeConnector, calls: Calls, ledger: Ledger
) -> None:
    """The stop gave up waiting for a command in flight: its message is not left `pending`
    (read again after a start, it is not run again), and the audit says it was cancelled."""
    began = asyncio.Event()

    async def forever(_req: object) -> str:
        began.set()
        await asyncio.Event().wait()
        return "never"

    calls.behaviour["ps"] = forever
    handling = asyncio.create_task(router.handle(chat, message("!ps", event_id="$slow")))
    await began.wait()
    handling.cancel()
    with pytest.raises(asyncio.CancelledError):
        await handling
    answer = await ledger.chat.chat_answer("matrix", EventId("$slow"))
    assert answer is not None and (answer.state, answer.outcome) == ("ran", "error")
    [entry] = await ledger.audit.audit_entries()
    assert (entry.command, entry.outcome, entry.detail) == ("ps", "error", CANCELLED)


class StuckReading(FakeConnector):
    """A connector whose read receipt never goes through (a chat service gone quiet)."""

    def __init__(self) -> None:
        super().__init__()
        self.reading = asyncio.Event()

    async def mark_read(
        self, room: RoomId, event_id: EventId, thread: ThreadId | None = None
    ) -> None:
        self.reading.set()
        await asyncio.Event().wait()


async def test_a_message_cancelled_before_its_command_ran_is_settled_refused(
    router: Router, calls: Calls, ledger: Ledger
) -> None:
    """Cancelled while its read receipt was sent (claimed, not yet run): settled refused
    and audited as cancelled, so it is neither left `pending` nor run when read again."""
    chat = StuckReading()
    handling = asyncio.create_task(router.handle(chat, message("!ps", event_id="$stuck")))
    await chat.reading.wait()
    handling.cancel()
    with pytest.raises(asyncio.CancelledError):
        await handling
    answer = await ledger.chat.chat_answer("matrix", EventId("$stuck"))
    assert answer is not None and (answer.state, answer.outcome) == ("refused", "error")
    [entry] = await ledger.audit.audit_entries()
    assert (entry.command, entry.outcome, entry.detail) == ("ps", "error", CANCELLED)
    assert calls.requests == []
