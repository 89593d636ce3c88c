"""Tests for approvals in chat (bot.approvals): a request shown once per agent thread as an
alert, answered by reaction, reply or command by those who may, first answer winning, and
its message edited when it ends. The ledger and the approvals service are real; the CLI is
a deliverer that records what it would be told."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

import pytest

from bot.acl import Acl, Grant, Role
from bot.approvals.feed import ApprovalFeed
from bot.chat.notifier import Notifier
from bot.chat.ordering import Ordering
from bot.commands.handlers.approvals.answers import ApprovalDesk
from bot.commands.handlers.approvals.desk import ApprovalCommands
from bot.commands.parsing.grammar import Grammar
from bot.commands.routing.router import Router
from bot.commands.specs import COMMANDS
from connectors.base import EventId, InboundMessage, RoomId, ThreadId, UserId
from fleet.approvals.service import Approvals
from fleet.events import EventKind, FleetEvent
from fleet.ledger import Ledger
from fleet.ledger.records.approvals import ApprovalRequest, ApprovalState, Ask, AskKind, Decision
from fleet.model import AgentState, PermissionMode
from fleet.names import AgentName
from fleet.timing.clock import ManualClock
from tests.unit.chat_fakes import (
    OPERATOR,
    STRANGER,
    VIEWER,
    Calls,
    HomeConnector,
    ThreadedConnector,
    message,
)

ROOM = "!ops:example.org"
THREAD = "$root-c1"
CHANNEL = "test-cli"
STARTER = "@sam:example.org"  # started c1; a viewer otherwise


@dataclass
class Levers:
    """The fleet's live-session levers, recording each call."""

    calls: list[tuple[str, ...]] = field(default_factory=list)

    async def interrupt(self, name: str, *, by: str = "operator") -> str:
        self.calls.append(("interrupt", name, by))
        return f"{name}: its turn is interrupted"

    async def set_permissions(
        self, name: str, mode: PermissionMode, *, by: str = "operator"
    ) -> str:
        self.calls.append(("permissions", name, mode.value, by))
        return f"{name} now asks as {mode.value}, from its next turn"


@dataclass
class World:
    approvals: Approvals
    chat: ThreadedConnector
    router: Router
    told: list[ApprovalRequest]  # what the CLI was told
    runs: list[tuple[str, int]]  # the open runs
    levers: Levers
    ledger: Ledger
    clock: ManualClock
    feed: ApprovalFeed

    async def ask(
        self, native: str = "n1", *, kind: AskKind = AskKind.PERMISSION, **kw: object
    ) -> ApprovalRequest:
        ask = Ask(
            native,
            str(kw.get("tool", "Bash")),
            str(kw.get("subject", "rm -rf build")),
            kind=kind,
            pattern="Bash(rm *)",
        )
        return await self.approvals.open(
            agent="c1",
            run_id=7,
            channel=CHANNEL,
            ask=ask,
            wait_seconds=1800,
            max_open=int(kw.get("max_open", 5)),  # type: ignore[call-overload]
            starter=f"{STARTER} on matrix",
            rules=tuple(kw.get("rules", ())),  # type: ignore[arg-type]
        )

    async def say(self, text: str, sender: str = OPERATOR, thread: str | None = THREAD) -> str:
        before = len(self.chat.sent)
        await self.router.handle(
            self.chat,
            message(text, sender=sender, room=ROOM, thread_id=thread, event_id=f"$m{before}"),
        )
        return "\n".join(m.markdown for m in self.chat.sent[before:])

    async def react(self, key: str, on: str, sender: str = OPERATOR) -> str:
        before = len(self.chat.sent)
        msg = InboundMessage(
            connector="matrix",
            sender=sender,
            text=key,
            room=ROOM,  # type: ignore[arg-type]
            timestamp=self.clock.now(),
            event_id=EventId(f"$r{len(self.chat.sent)}{key}{sender}"),
            thread_id=ThreadId(THREAD),
            reacts_to=EventId(on),
        )
        await self.router.handle(self.chat, msg)
        return "\n".join(m.markdown for m in self.chat.sent[before:])

    async def post_of(self, request: ApprovalRequest) -> str:
        posts = await self.approvals.posts(request.id)
        assert len(posts) == 1
        return posts[0].event_id


@pytest.fixture
async def approvals_answers_world(ledger: Ledger, clock: ManualClock) -> World:
    approvals = Approvals(ledger.approvals, clock)
    told: list[ApprovalRequest] = []

    async def deliver(request: ApprovalRequest) -> None:
        told.append(request)

    await approvals.register(CHANNEL, deliver)
    chat = ThreadedConnector()
    chat.add_thread(ROOM, THREAD)
    await ledger.chat.bind_thread("matrix", ROOM, "c1", ThreadId(THREAD))
    runs = [("c1", 7)]

    async def open_runs() -> list[tuple[str, int]]:
        return list(runs)

    acl = Acl(
        [Grant(OPERATOR, Role.OPERATOR), Grant(VIEWER, Role.VIEWER), Grant(STARTER, Role.VIEWER)]
    )
    desk = ApprovalDesk(approvals, acl, ledger.chat, ledger.audit, open_runs)
    feed = ApprovalFeed(
        approvals,
        ledger.chat,
        ledger.audit,
        lambda: [chat],
        Notifier(ledger.chat, lambda: [chat]),
        prefix_for=lambda _: "!",
    )
    approvals.subscribe(feed.on_approval)
    levers = Levers()
    handlers = {**Calls().table(), **ApprovalCommands(approvals, desk, clock, levers, "!").table()}
    router = Router(
        grammar=Grammar(COMMANDS),
        acl=acl,
        handlers=handlers,
        audit=ledger.audit,
        chat=ledger.chat,
        approvals=desk,
    )
    return World(approvals, chat, router, told, runs, levers, ledger, clock, feed)


async def test_a_request_is_one_alert_in_the_agents_thread_mentioning_its_starter(
    approvals_answers_world: World, ledger: Ledger
) -> None:
    """One message in the agent's thread: an alert naming the starter, recorded, audited."""
    request = await approvals_answers_world.ask()
    [shown] = approvals_answers_world.chat.sent
    assert shown.room == ROOM and shown.thread_id == THREAD
    assert shown.alert and shown.mentions == (STARTER,)
    assert f"`{request.id}`" in shown.markdown and "rm -rf build" in shown.markdown
    assert await approvals_answers_world.post_of(request) == "$sent-1"
    audit = await ledger.audit.audit_entries()
    assert audit[0].command == "approval" and request.id in (audit[0].detail or "")


async def test_without_a_thread_the_home_room_gets_it_alerting_the_on_call(
    ledger: Ledger, clock: ManualClock
) -> None:
    """No thread for the agent: the home room; no starter known: the on-call are woken."""
    approvals = Approvals(ledger.approvals, clock)
    home = HomeConnector("console", "console")
    feed = ApprovalFeed(
        approvals,
        ledger.chat,
        ledger.audit,
        lambda: [home],
        Notifier(ledger.chat, lambda: [home]),
        prefix_for=lambda _: "",
    )
    approvals.subscribe(feed.on_approval)
    await approvals.open(
        agent="c1",
        run_id=1,
        channel="x",
        ask=Ask("n", "Bash", "ls"),
        wait_seconds=60,
        max_open=5,
        starter=None,
    )
    [shown] = home.sent
    assert shown.room == "console" and shown.thread_id is None
    assert shown.alert and shown.mentions == ()
    assert "approve" in shown.markdown and "React" not in shown.markdown  # no reactions here


async def test_an_operators_reaction_answers_and_the_message_says_who(
    approvals_answers_world: World,
) -> None:
    """✅ from an operator: the CLI is told allow, the message is edited, the audit has it."""
    request = await approvals_answers_world.ask()
    said = await approvals_answers_world.react("✅️", await approvals_answers_world.post_of(request))
    assert said == ""  # the edit says it; no extra message
    [told] = approvals_answers_world.told
    assert told.id == request.id and told.decision is Decision.ALLOW and told.how == "reaction"
    [(room, event, text)] = approvals_answers_world.chat.edited
    assert (room, event) == (ROOM, "$sent-1")
    assert f"✅ Allowed once by {OPERATOR} on matrix (reaction)" in text
    audit = await approvals_answers_world.ledger.audit.audit_entries()
    assert audit[0].command == "approve" and audit[0].source.startswith("reaction:")


async def test_a_viewers_reaction_changes_nothing_and_is_told_once(
    approvals_answers_world: World,
) -> None:
    """A viewer's ✅ and a stranger's: ignored, each said once; the request stays open."""
    request = await approvals_answers_world.ask()
    post = await approvals_answers_world.post_of(request)
    first = await approvals_answers_world.react("✅", post, sender=VIEWER)
    assert "is not an answer" in first and "a viewer" in first
    assert await approvals_answers_world.react("🔁", post, sender=VIEWER) == ""  # said once only
    assert "not an operator" in await approvals_answers_world.react("✅", post, sender=STRANGER)
    assert await approvals_answers_world.react("❌", post, sender=STRANGER) == ""
    assert (await approvals_answers_world.approvals.get(request.id)).state is ApprovalState.OPEN
    assert approvals_answers_world.told == [] and approvals_answers_world.chat.edited == []


async def test_a_reaction_seen_again_answers_once_and_is_audited_once(
    approvals_answers_world: World,
) -> None:
    """The same reaction handled twice (read again after a restart): the CLI is told once and
    the audit has it once; a viewer's seen twice is said once and audited once."""
    request = await approvals_answers_world.ask()
    post = await approvals_answers_world.post_of(request)

    def reaction(event_id: str, sender: str) -> InboundMessage:
        return InboundMessage(
            connector="matrix",
            sender=sender,
            text="✅",
            room=RoomId(ROOM),
            timestamp=approvals_answers_world.clock.now(),
            event_id=EventId(event_id),
            thread_id=ThreadId(THREAD),
            reacts_to=EventId(post),
        )

    for _ in range(2):
        await approvals_answers_world.router.handle(
            approvals_answers_world.chat, reaction("$by-viewer", VIEWER)
        )
    refusals = [m for m in approvals_answers_world.chat.sent if "is not an answer" in m.markdown]
    assert len(refusals) == 1
    for _ in range(2):
        await approvals_answers_world.router.handle(
            approvals_answers_world.chat, reaction("$by-operator", OPERATOR)
        )
    assert [told.id for told in approvals_answers_world.told] == [request.id]
    audit = await approvals_answers_world.ledger.audit.audit_entries()
    reactions = [entry for entry in audit if entry.source.startswith("reaction:")]
    assert sorted((entry.sender, entry.outcome) for entry in reactions) == [
        (OPERATOR, "ok"),
        (VIEWER, "denied"),
    ]


async def test_a_reaction_on_anything_else_is_ignored_silently(
    approvals_answers_world: World,
) -> None:
    """A reaction on a message that is no request, or that is no answer: no word, no audit."""
    request = await approvals_answers_world.ask()
    audited = len(await approvals_answers_world.ledger.audit.audit_entries())
    assert await approvals_answers_world.react("✅", "$some-other-message") == ""
    assert (
        await approvals_answers_world.react("👀", await approvals_answers_world.post_of(request))
        == ""
    )
    assert len(await approvals_answers_world.ledger.audit.audit_entries()) == audited
    assert approvals_answers_world.told == []


async def test_the_starter_may_answer_though_a_viewer(approvals_answers_world: World) -> None:
    """Whoever started the agent answers its requests, whatever their role."""
    request = await approvals_answers_world.ask()
    said = await approvals_answers_world.say(
        f"!deny {request.id} not today", sender=STARTER, thread=None
    )
    assert "denied" in said
    assert (
        approvals_answers_world.told[0].reason == "not today"
        and approvals_answers_world.told[0].how == "command"
    )


async def test_the_first_answer_wins_and_a_later_one_is_told_who(
    approvals_answers_world: World,
) -> None:
    """approve then deny: the deny is refused with who answered and when."""
    request = await approvals_answers_world.ask()
    assert "allowed once" in await approvals_answers_world.say(f"!approve {request.id}")
    later = await approvals_answers_world.say(f"!deny {request.id}")
    assert f"already answered by {OPERATOR} on matrix at 12:00:00 UTC" in later
    assert len(approvals_answers_world.told) == 1
    assert (
        await approvals_answers_world.react("❌", await approvals_answers_world.post_of(request))
        == ""
    )  # ended: silent


async def test_unknown_ids_and_ended_agents_are_refused(approvals_answers_world: World) -> None:
    """An unknown id is refused; an answer for an ended agent closes its request."""
    assert "no approval request 'zzzz'" in await approvals_answers_world.say("!approve zzzz")
    request = await approvals_answers_world.ask()
    approvals_answers_world.runs.clear()  # c1's run ended
    assert "that request is closed (c1 ended)" in await approvals_answers_world.say(
        f"!approve {request.id}"
    )
    assert (await approvals_answers_world.approvals.get(request.id)).state is ApprovalState.CLOSED
    assert "⏹ Closed" in approvals_answers_world.chat.edited[-1][2]
    assert approvals_answers_world.told == []  # nobody to tell


async def test_a_reply_in_the_thread_answers_with_its_reason(
    approvals_answers_world: World,
) -> None:
    """`no, use staging` in c1's thread denies its request, the reason reaching the CLI."""
    request = await approvals_answers_world.ask()
    said = await approvals_answers_world.say("no, use staging")
    assert "denied" in said
    [told] = approvals_answers_world.told
    assert told.id == request.id and told.reason == "use staging" and told.how == "reply"


async def test_a_reply_with_several_open_names_them(approvals_answers_world: World) -> None:
    """`yes` with two requests open answers neither and says how to pick."""
    one, two = await approvals_answers_world.ask("n1"), await approvals_answers_world.ask("n2")
    said = await approvals_answers_world.say("yes")
    assert one.id in said and two.id in said and "!approve ID" in said
    assert approvals_answers_world.told == []


async def test_a_reply_with_several_open_shows_their_tools_as_hostile_text(
    approvals_answers_world: World,
) -> None:
    """The tools named when a reply answers none of several open requests are the agent's
    text: one line, escaped, hidden characters revealed (no mention, no markup, no bidi)."""
    hostile = "mcp__x__y *@room*\n[link](https://evil.example)\u202e"
    await approvals_answers_world.ask("n1", tool=hostile)
    await approvals_answers_world.ask("n2", tool=hostile)
    said = await approvals_answers_world.say("yes")
    assert "*@room*" not in said and "[link](" not in said and "\u202e" not in said
    assert "\\*@room\\*" in said and "U+000A" in said and "U+202E" in said


async def test_always_teaches_the_agent_its_pattern(approvals_answers_world: World) -> None:
    """`always` allows, and the next ask matching the pattern passes by itself, with a notice."""
    await approvals_answers_world.ask("n1")
    assert "no longer asks" in await approvals_answers_world.say("always")
    sent = len(approvals_answers_world.chat.sent)
    again = await approvals_answers_world.ask("n2", subject="rm -rf dist")
    assert again.state is ApprovalState.ALLOWED and again.how == "rule"
    [notice] = approvals_answers_world.chat.sent[sent:]
    assert not notice.alert and "\n" not in notice.markdown and "may use" in notice.markdown


async def test_a_question_is_answered_by_the_reply_text(approvals_answers_world: World) -> None:
    """A question: the reply's text is the answer the CLI gets."""
    question = await approvals_answers_world.ask(
        "q1", kind=AskKind.QUESTION, tool="AskUserQuestion", subject="Which database?"
    )
    assert "❓" in approvals_answers_world.chat.sent[0].markdown
    await approvals_answers_world.say("the staging one")
    [told] = approvals_answers_world.told
    assert told.id == question.id and told.reason == "the staging one"
    assert "💬 Answered by" in approvals_answers_world.chat.edited[0][2]
    other = await approvals_answers_world.ask("q2", kind=AskKind.QUESTION, subject="And the port?")
    assert "no question" in await approvals_answers_world.say(
        f"!answer {(await approvals_answers_world.ask('n9')).id} 5432"
    )
    assert "answered" in await approvals_answers_world.say(f"!answer {other.id} 5432", thread=None)
    assert (
        approvals_answers_world.told[-1].id == other.id
        and approvals_answers_world.told[-1].reason == "5432"
    )


async def test_the_cap_denies_at_once_with_one_notice(approvals_answers_world: World) -> None:
    """Past max_open the rest are denied at once; of them only the first is told."""
    await approvals_answers_world.ask("n1", max_open=1)
    sent = len(approvals_answers_world.chat.sent)
    for native in ("n2", "n3", "n4"):
        denied = await approvals_answers_world.ask(native, max_open=1)
        assert denied.state is ApprovalState.DENIED and denied.how == "policy"
    [notice] = approvals_answers_world.chat.sent[sent:]
    assert "was denied" in notice.markdown and not notice.alert
    assert [r.how for r in approvals_answers_world.told] == ["policy"] * 3


async def test_a_timeout_and_a_run_ending_edit_the_message(approvals_answers_world: World) -> None:
    """Past its deadline a request times out; a run that ends closes the rest."""
    first = await approvals_answers_world.ask("n1")
    approvals_answers_world.clock.advance(1801)
    second = await approvals_answers_world.ask("n2")
    assert [r.id for r in await approvals_answers_world.approvals.expire()] == [first.id]
    assert "⌛ Timed out" in approvals_answers_world.chat.edited[0][2]
    ended = FleetEvent(AgentName("c1"), EventKind.ENDED, AgentState.EXITED, "", False, run_id=7)
    await approvals_answers_world.feed.on_fleet_event(ended)
    assert (await approvals_answers_world.approvals.get(second.id)).state is ApprovalState.CLOSED
    assert (
        "⏹ Closed" in approvals_answers_world.chat.edited[1][2]
        and "c1 ended" in approvals_answers_world.chat.edited[1][2]
    )


async def test_pending_lists_the_open_requests(approvals_answers_world: World) -> None:
    """`pending` lists each open request with its id, agent and tool; viewers may read it."""
    request = await approvals_answers_world.ask()
    said = await approvals_answers_world.say("!pending", sender=VIEWER, thread=None)
    assert request.id in said and "c1" in said and "Bash" in said


async def test_interrupt_and_permissions_call_the_fleets_levers(
    approvals_answers_world: World,
) -> None:
    """`interrupt` and `permissions` reach the live-session levers; viewers may not."""
    assert "c1: its turn is interrupted" in await approvals_answers_world.say(
        "!interrupt c1", thread=None
    )
    said = await approvals_answers_world.say("!permissions c1 ask", thread=None)
    assert "c1 now asks as ask" in said
    assert approvals_answers_world.levers.calls == [
        ("interrupt", "c1", f"{OPERATOR} on matrix"),
        ("permissions", "c1", "ask", f"{OPERATOR} on matrix"),
    ]
    assert "needs the operator role" in await approvals_answers_world.say(
        "!interrupt c1", sender=VIEWER
    )
    assert "MODE" in await approvals_answers_world.say("!permissions c1 sometimes", thread=None)


async def test_after_a_restart_a_reaction_still_answers_and_the_message_is_edited(
    approvals_answers_world: World, ledger: Ledger, clock: ManualClock
) -> None:
    """A new app over the same ledger (a restart) finds the request by its message."""
    request = await approvals_answers_world.ask()
    post = await approvals_answers_world.post_of(request)
    approvals = Approvals(ledger.approvals, clock)  # everything in memory is new; the ledger is not
    told: list[ApprovalRequest] = []

    async def deliver(answered: ApprovalRequest) -> None:
        told.append(answered)

    await approvals.register(CHANNEL, deliver)
    chat = ThreadedConnector()
    chat.stored.update(approvals_answers_world.chat.stored)  # the chat service kept its messages
    feed = ApprovalFeed(
        approvals,
        ledger.chat,
        ledger.audit,
        lambda: [chat],
        Notifier(ledger.chat, lambda: [chat]),
        prefix_for=str,
    )
    approvals.subscribe(feed.on_approval)
    acl = Acl([Grant(OPERATOR, Role.OPERATOR)])

    async def open_runs() -> list[tuple[str, int]]:
        return [("c1", 7)]

    desk = ApprovalDesk(approvals, acl, ledger.chat, ledger.audit, open_runs)
    router = Router(
        grammar=Grammar(COMMANDS),
        acl=acl,
        handlers=Calls().table(),
        audit=ledger.audit,
        chat=ledger.chat,
        approvals=desk,
    )
    reaction = InboundMessage(
        connector="matrix",
        sender=UserId(OPERATOR),
        text="🔁",
        room=RoomId(ROOM),
        timestamp=clock.now(),
        event_id=EventId("$after-restart"),
        thread_id=ThreadId(THREAD),
        reacts_to=EventId(post),
    )
    await router.handle(chat, reaction)
    assert [(r.id, r.decision) for r in told] == [(request.id, Decision.ALWAYS)]
    assert chat.edited[0][1] == post and "🔁 Allowed always" in chat.edited[0][2]


async def test_a_request_asked_while_its_spawn_is_answered_waits_for_the_answer(
    ledger: Ledger, clock: ManualClock
) -> None:
    """An ask during the spawn's answer is shown after it, where its thread then is."""
    approvals = Approvals(ledger.approvals, clock)
    chat = ThreadedConnector()
    chat.add_thread(ROOM, THREAD)
    ordering = Ordering()
    feed = ApprovalFeed(
        approvals,
        ledger.chat,
        ledger.audit,
        lambda: [chat],
        Notifier(ledger.chat, lambda: [chat], ordering),
        prefix_for=str,
        ordering=ordering,
    )
    approvals.subscribe(feed.on_approval)
    async with ordering.answering(("c1",)):  # the spawn of c1 is being answered
        await approvals.open(
            agent="c1",
            run_id=7,
            channel="x",
            ask=Ask("n", "Bash", "rm x"),
            wait_seconds=60,
            max_open=5,
            starter=None,
        )
        assert chat.sent == []
        await ledger.chat.bind_thread("matrix", ROOM, "c1", ThreadId(THREAD))  # its answer's thread
    await ordering.drain()
    [shown] = chat.sent
    assert shown.thread_id == THREAD and "rm x" in shown.markdown


async def test_learned_rules_are_listed_and_forgotten_from_chat(
    approvals_answers_world: World,
) -> None:
    """`permissions NAME rules` lists who taught what; `forget RULE` and `forget all` end them."""
    request = await approvals_answers_world.ask()
    await approvals_answers_world.say(f"!approve {request.id} always", thread=None)
    said = await approvals_answers_world.say("!permissions c1 rules", thread=None)
    assert "`Bash(rm *)`" in said and f"taught by {OPERATOR} on matrix" in said
    assert "no learned rule" in await approvals_answers_world.say(
        "!permissions c1 forget Bash(ls)", thread=None
    )
    said = await approvals_answers_world.say("!permissions c1 forget Bash(rm *)", thread=None)
    assert "forgot `Bash(rm *)`" in said
    assert "has learned no rules" in await approvals_answers_world.say(
        "!permissions c1 rules", thread=None
    )
    again = await approvals_answers_world.ask("n2")
    assert again.state is ApprovalState.OPEN  # asked again, not passed by the old rule
    await approvals_answers_world.say(f"!approve {again.id} always", thread=None)
    assert "forgot 1 learned rule." in await approvals_answers_world.say(
        "!permissions c1 forget all", thread=None
    )
    assert "say which rule" in await approvals_answers_world.say(
        "!permissions c1 forget", thread=None
    )
    assert "needs the operator role" in await approvals_answers_world.say(
        "!permissions c1 rules", sender=VIEWER
    )


async def test_a_flood_past_the_cap_pings_once_and_says_so_once(
    approvals_answers_world: World,
) -> None:
    """16 asks at once under a cap of 5: five alerts and one cap notice, no more."""
    asks = [approvals_answers_world.ask(f"f{n}", subject=f"echo {n}") for n in range(16)]
    await asyncio.gather(*asks)
    alerts = [m for m in approvals_answers_world.chat.sent if m.alert]
    notices = [
        m
        for m in approvals_answers_world.chat.sent
        if "already wait for the operator" in m.markdown
    ]
    assert len(alerts) == 5 and len(notices) == 1
    for n in range(10):  # asking and withdrawing in a loop adds no ping either
        await approvals_answers_world.ask(f"w{n}", subject=f"echo w{n}")
        await approvals_answers_world.approvals.withdraw(7, CHANNEL, f"w{n}", "interrupted")
    assert len([m for m in approvals_answers_world.chat.sent if m.alert]) == 5
    assert len([m for m in approvals_answers_world.chat.sent if "already wait" in m.markdown]) == 1


async def test_an_ask_at_a_cap_is_answered_by_a_yes_in_the_thread(
    approvals_answers_world: World,
) -> None:
    """A spend ask shows as 💸 in c1's thread; `yes` there allows it, on its own channel,
    and `!approve` says what that meant."""
    spent: list[ApprovalRequest] = []

    async def carry_out(request: ApprovalRequest) -> None:
        spent.append(request)

    await approvals_answers_world.approvals.register("spend", carry_out)
    ask = Ask("cap:1", "spend", "c1 reached its $2.00 cap", "`raise c1 +$2` or `stop c1`.")
    request = await approvals_answers_world.approvals.open(
        agent="c1", run_id=7, channel="spend", ask=ask, wait_seconds=1800, max_open=1,
        starter=None, ruled=False,
    )  # fmt: skip
    [shown] = [m.markdown for m in approvals_answers_world.chat.sent if request.id in m.markdown]
    assert shown.startswith(f"💸 Spend `{request.id}`") and "`!raise c1 +$2`" in shown
    await approvals_answers_world.say("yes")
    [done] = spent
    assert (done.id, done.state, done.how) == (request.id, ApprovalState.ALLOWED, "reply")


async def test_a_budgets_ask_is_answered_though_no_run_is_its_own(
    approvals_answers_world: World,
) -> None:
    """A budget's ask (no agent, run 0), shown where its scope is followed, is answered by
    a ✅ there; it is not closed for want of an open run."""
    await approvals_answers_world.ledger.chat.bind_thread(
        "matrix", ROOM, "budget:global", ThreadId(THREAD)
    )
    spent: list[ApprovalRequest] = []

    async def carry_out(request: ApprovalRequest) -> None:
        spent.append(request)

    await approvals_answers_world.approvals.register("spend", carry_out)
    ask = Ask("global:0", "spend", "global reached its $50.00 limit", "`raise budget global`")
    request = await approvals_answers_world.approvals.open(
        agent="budget:global", run_id=0, channel="spend", ask=ask, wait_seconds=1800,
        max_open=1, starter=None, ruled=False,
    )  # fmt: skip
    await approvals_answers_world.react("✅", await approvals_answers_world.post_of(request))
    [done] = spent
    assert (done.state, done.how) == (ApprovalState.ALLOWED, "reaction")


async def test_a_request_offers_its_answers_as_choices_each_a_reaction_it_takes(
    approvals_answers_world: World,
) -> None:
    """A permission offers Approve, Always and Deny; a click on Deny is its ❌ reaction,
    which denies it; the edit that ends it carries no choices (an edit replaces the text)."""
    request = await approvals_answers_world.ask()
    [shown] = approvals_answers_world.chat.sent
    assert [(c.label, c.answer, c.as_reply, c.style) for c in shown.choices] == [
        ("Approve", "✅", False, "primary"),
        ("Always", "🔁", False, None),
        ("Deny", "❌", False, "danger"),
    ]
    deny = shown.choices[2]
    assert (
        await approvals_answers_world.react(
            deny.answer, await approvals_answers_world.post_of(request)
        )
        == ""
    )
    [told] = approvals_answers_world.told
    assert told.decision is Decision.DENY
    [(_, _, text)] = approvals_answers_world.chat.edited
    assert f"❌ Denied by {OPERATOR}" in text and len(approvals_answers_world.chat.sent) == 1


async def test_a_question_offers_no_choices(approvals_answers_world: World) -> None:
    """A question wants words: its message offers no buttons."""
    await approvals_answers_world.ask(
        "q1", kind=AskKind.QUESTION, tool="AskUserQuestion", subject="Which db?"
    )
    assert approvals_answers_world.chat.sent[0].choices == ()


async def test_a_spend_ask_offers_raise_and_stop_and_raise_raises(
    approvals_answers_world: World,
) -> None:
    """A spend ask offers Raise (✅, primary) and Stop (❌, danger); a click on Raise is
    the ✅ that allows it."""
    spent: list[ApprovalRequest] = []

    async def carry_out(request: ApprovalRequest) -> None:
        spent.append(request)

    await approvals_answers_world.approvals.register("spend", carry_out)
    ask = Ask("cap:1", "spend", "c1 reached its $2.00 cap", "`raise c1 +$2` or `stop c1`.")
    request = await approvals_answers_world.approvals.open(
        agent="c1", run_id=7, channel="spend", ask=ask, wait_seconds=1800, max_open=1,
        starter=None, ruled=False,
    )  # fmt: skip
    [shown] = approvals_answers_world.chat.sent
    assert [(c.label, c.answer, c.style) for c in shown.choices] == [
        ("Raise", "✅", "primary"),
        ("Stop", "❌", "danger"),
    ]
    await approvals_answers_world.react(
        shown.choices[0].answer, await approvals_answers_world.post_of(request)
    )
    [done] = spent
    assert (done.id, done.state, done.how) == (request.id, ApprovalState.ALLOWED, "reaction")
