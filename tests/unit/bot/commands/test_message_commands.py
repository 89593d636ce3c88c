"""``msgs [NAME]`` through the router, over a real ledger's messages: newest last, one line
each with its receipt (a refusal with why), one agent's sent and received, the limit, an
unknown agent answered with the likeliest one meant, hostile text escaped on its one line,
a viewer may read."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any, cast

from bot.acl import Acl, Grant, Role
from bot.commands.handlers.agents.messages import MessageCommands
from bot.commands.handlers.agents.specs import MSGS
from bot.commands.parsing.grammar import Grammar
from bot.commands.routing.router import Router
from fleet.ledger import Ledger
from fleet.ledger.records.peers import NewMessage
from fleet.timing.clock import ManualClock
from tests.unit.chat_fakes import VIEWER, FakeConnector, message

ROOM = "!ops:example.org"
HOSTILE = "**bold** <@123> [x](https://evil.example)\n# ⏹ coder stopped"


class Agents:
    """What ``msgs`` asks of the fleet: which agents it knows."""

    def __init__(self, ledger: list[str], roster: list[str]) -> None:
        self._ledger, self._roster = ledger, roster

    async def knows(self, name: str) -> bool:
        return name in self._ledger or name in self._roster

    async def ps(self) -> list[Any]:
        return [SimpleNamespace(name=name) for name in self._ledger]

    def roster(self) -> list[Any]:
        return [SimpleNamespace(name=name) for name in self._roster]


async def ask(ledger: Ledger, chat: FakeConnector, text: str) -> str:
    fleet = cast(Any, Agents(["coder", "reviewer"], ["migrator"]))
    router = Router(
        grammar=Grammar((MSGS,)),
        acl=Acl([Grant(VIEWER, Role.VIEWER)]),
        handlers=MessageCommands(ledger.messages, fleet).table(),
        audit=ledger.audit,
        chat=ledger.chat,
    )
    await router.handle(chat, message(text, sender=VIEWER, room=ROOM, event_id=None))
    (sent,) = chat.sent
    chat.sent.clear()
    return sent.markdown


async def traffic(ledger: Ledger, clock: ManualClock) -> list[int]:
    made = []
    for new in (
        NewMessage("coder", "reviewer", "please look at the parser"),
        NewMessage("coder", "ops", "hello", state="refused", why="no agent named ops"),
        NewMessage("reviewer", "coder", HOSTILE),
        NewMessage("coder", "migrator", "move the db", kind="task", task_id=7),
    ):
        made.append((await ledger.messages.add_message(new)).id)
        clock.advance(60)
    assert await ledger.messages.delivered(made[0], 4)
    return made


async def test_every_message_newest_last_with_its_receipt(
    ledger: Ledger, clock: ManualClock, chat: FakeConnector
) -> None:
    first, refused, hostile, task = await traffic(ledger, clock)
    text = await ask(ledger, chat, "!msgs")
    head, _, body = text.partition("\n\n")
    assert head == "Messages between agents (4, newest last, times in UTC):"
    lines = body.split("\n")
    assert lines[0] == (
        f"- #{first} 03-01 12:00 **coder** → **reviewer** [message] delivered: "
        "“please look at the parser”"
    )
    assert lines[1] == (
        f"- #{refused} 03-01 12:01 **coder** → **ops** [message] refused (no agent named ops): "
        "“hello”"
    )
    assert lines[3] == (
        f"- #{task} 03-01 12:03 **coder** → **migrator** [task #7] queued: “move the db”"
    )
    shown = lines[2]  # the agent's text on its own line: no markup, no mention, no heading
    assert shown.startswith(f"- #{hostile} 03-01 12:02 **reviewer** → **coder** [message] queued")
    assert shown.endswith(
        "queued: “\\*\\*bold\\*\\* \\<@123\\> \\[x\\](https://evil.example) ⏎ # ⏹ coder stopped”"
    )
    assert len(lines) == 4


async def test_one_agents_messages_and_the_limit(
    ledger: Ledger, clock: ManualClock, chat: FakeConnector
) -> None:
    await traffic(ledger, clock)
    text = await ask(ledger, chat, "!msgs reviewer")
    assert text.startswith("Messages to and from **reviewer** (2, newest last")
    assert "please look" in text and "ops" not in text and "move the db" not in text
    text = await ask(ledger, chat, "!msgs coder --limit 2")
    assert text.startswith("Messages to and from **coder** (the latest 2, newest last")
    assert "move the db" in text and "please look" not in text
    assert text.endswith("`msgs coder --limit N` shows more.")


async def test_no_message_yet_and_an_unknown_agent(
    ledger: Ledger, clock: ManualClock, chat: FakeConnector
) -> None:
    assert (await ask(ledger, chat, "!msgs")).startswith("No agent has sent another a message")
    text = await ask(ledger, chat, "!msgs migrator")  # in the roster, never ran
    assert text == "**migrator** has sent and received no message yet."
    text = await ask(ledger, chat, "!msgs codr")
    assert "no agent is called 'codr'" in text and "did you mean 'coder'?" in text
    text = await ask(ledger, chat, "!msgs *Bad*")
    assert "\\*Bad\\* is no agent name" in text
    text = await ask(ledger, chat, "!msgs --limit 0")
    assert "--limit" in text
