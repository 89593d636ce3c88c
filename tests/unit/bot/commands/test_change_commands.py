"""``report changes`` through the router, over a real ledger of a dozen runs
(:mod:`tests.changes_rig`): the table a viewer gets, the hostile model name escaped, an
empty window saying what makes data, a bad ``--since`` named."""

from __future__ import annotations

from pathlib import Path

from bot.acl import Acl, Grant, Role
from bot.commands.handlers.spend.changes import ChangeCommands
from bot.commands.parsing.grammar import Grammar
from bot.commands.routing.router import Router
from bot.commands.specs import REPORT
from bot.render.spend.change_costs import HEADERS
from bot.text.agent_text import said
from fleet.ledger import Ledger
from fleet.timing.clock import ManualClock
from tests.changes_rig import HOSTILE, build
from tests.unit.bot.commands.test_report_commands import pacing
from tests.unit.chat_fakes import OPERATOR, VIEWER, FakeConnector, message

ROOM = "!ops:example.org"


def router(ledger: Ledger, clock: ManualClock, tmp_path: Path) -> Router:
    acl = Acl([Grant(OPERATOR, Role.OPERATOR), Grant(VIEWER, Role.VIEWER)])
    return Router(
        # Only the report command: the test stands whatever other commands are being added.
        grammar=Grammar((REPORT,)),
        acl=acl,
        handlers={
            **pacing(ledger, tmp_path, None, None).table(),
            **ChangeCommands(ledger.changes, clock).table(),
        },
        audit=ledger.audit,
        chat=ledger.chat,
    )


async def ask(ledger: Ledger, clock: ManualClock, chat: FakeConnector, text: str) -> str:
    rooted = router(ledger, clock, Path(ledger.where).parent)
    await rooted.handle(chat, message(text, sender=VIEWER, room=ROOM))
    (sent,) = chat.sent
    chat.sent.clear()
    return sent.markdown


async def test_a_viewer_gets_the_table_since_the_time_asked(
    ledger: Ledger, clock: ManualClock, chat: FakeConnector
) -> None:
    since = await build(ledger, clock)
    minutes = int((clock.now() - since).total_seconds() // 60)
    text = await ask(ledger, clock, chat, f"!report changes --since {minutes}m")
    lines = text.split("\n")
    assert (
        lines[0]
        == f"Cost per merged change in the last {minutes}m (since {since:%Y-%m-%d %H:%M} UTC):"
    )
    assert lines[2] == "| " + " | ".join(HEADERS) + " |"
    rows = [line for line in lines if line.startswith("| ") and line != lines[2]]
    assert rows[0] == (
        "| coder | claude | claude-sonnet-4-5 | 3 | 1 | 1 | 0 | 60% | $0.75 | $0.94 | "
        "$2.81 | 5,300 | 1h00m | 1 |"
    )
    assert rows[1] == (
        "| tester | codex | gpt-5-codex | 1 | 0 | 1 | 0 | 50% | $1.12 | $1.19 | $1.19 | 1,950 | "
        "20m00s | 2 |"
    )
    assert rows[3].startswith("| **all** |   |   | 4 | 1 | 2 | 1 | 57% | $0.94 | $1.09 | $4.38 |")
    hostile = rows[2]
    # The name is plain text, escaped as every chat table escapes one: no markup, no
    # formula, its pipe no column.
    cell = said(HOSTILE).replace("|", "\\|")
    assert hostile.startswith(f"| tester | codex | {cell} | 0 | 0 | 0 | 1 | – | – | – | $0.38 |")
    assert cell.startswith("\\=cmd") and "\\<b\\>\\*bold" in cell
    assert "most of its tokens" in text
    assert "1 request with tokens had no price" in text
    assert HOSTILE not in text


async def test_the_default_window_is_thirty_days(
    ledger: Ledger, clock: ManualClock, chat: FakeConnector
) -> None:
    await build(ledger, clock)
    text = await ask(ledger, clock, chat, "!report changes")
    assert text.startswith("Cost per merged change in the last 30d (since ")
    assert "| coder | claude | claude-sonnet-4-5 | 4 | 1 | 1 | 0 |" in text  # the old one too


async def test_no_change_says_what_makes_one(
    ledger: Ledger, clock: ManualClock, chat: FakeConnector
) -> None:
    text = await ask(ledger, clock, chat, "!report changes --since 7d")
    assert text.startswith("No change came to an end, or was worked on, in the last 7d")
    assert "`merge`" in text and "pull request is merged or closed" in text


async def test_a_bad_since_is_named(
    ledger: Ledger, clock: ManualClock, chat: FakeConnector
) -> None:
    text = await ask(ledger, clock, chat, "!report changes --since soon")
    assert "--since" in text and "'soon' is not a duration" in text and "7d" in text
