"""Approvals answered at the console of the real ``fleetwarden run`` process: ``pending``,
``approve ID``, ``deny ID REASON``, the first answer winning, and a request closed when its
agent ends. The requests are opened in the shared ledger, as a CLI's ask is recorded."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest

from fleet.approvals.service import Approvals
from fleet.ledger import Ledger
from fleet.ledger.records.approvals import ApprovalRequest, ApprovalState, Ask, Decision
from fleet.timing.clock import SystemClock
from tests.integration.console_bot import ConsoleBot, wait_until

pytestmark = pytest.mark.integration


@pytest.fixture
def console_bot(tmp_path: Path) -> Iterator[ConsoleBot]:
    running = ConsoleBot(tmp_path)
    try:
        yield running
    finally:
        if running.proc.poll() is None:
            running.send("stop c1 --force")
            running.close()


def ledger_of(bot: ConsoleBot) -> Path:
    return bot.cwd / ".fleetwarden" / "ledger.db"


async def _ask(db: Path, native: str, subject: str) -> ApprovalRequest:
    ledger = await Ledger.open(db, SystemClock())
    try:
        [run] = await ledger.runs.open_runs()
        return await Approvals(ledger.approvals, SystemClock()).open(
            agent=run.agent,
            run_id=run.id,
            channel="test-cli",
            ask=Ask(native, "Bash", subject),
            wait_seconds=600,
            max_open=5,
            starter=None,
        )
    finally:
        await ledger.close()


async def _read(db: Path, request_id: str) -> ApprovalRequest:
    ledger = await Ledger.open(db, SystemClock())
    try:
        return await Approvals(ledger.approvals, SystemClock()).get(request_id)
    finally:
        await ledger.close()


def ask(bot: ConsoleBot, native: str, subject: str) -> ApprovalRequest:
    return asyncio.run(_ask(ledger_of(bot), native, subject))


def read(bot: ConsoleBot, request_id: str) -> ApprovalRequest:
    return asyncio.run(_read(ledger_of(bot), request_id))


def test_pending_approve_and_deny_at_the_console(console_bot: ConsoleBot) -> None:
    """`pending` lists open requests and the console's ways to answer (no prefix, no
    reaction); `approve ID` allows, `deny ID REASON` denies with the reason; a second answer
    is told who answered; unknown ids are refused."""
    console_bot.command("spawn c1 --prompt wait", r"Agent c1 started \(stub\)")
    first = ask(console_bot, "n1", "rm -rf build")
    second = ask(console_bot, "n2", "git push --force")
    console_bot.command("pending", rf"{first.id}.*c1.*Bash.*rm -rf build")
    console_bot.expect(rf"{second.id}.*c1.*Bash.*git push --force")
    said = console_bot.expect(r"2 open\. (.*)")
    assert said.group(1).strip() == "Answer with approve ID [always] or deny ID [REASON]."

    console_bot.command(f"approve {first.id}", rf"{first.id} allowed once")
    allowed = read(console_bot, first.id)
    assert allowed.state is ApprovalState.ALLOWED and allowed.decision is Decision.ALLOW
    assert allowed.how == "command" and allowed.answered_by == "console on console"

    console_bot.command(f"deny {second.id} use a branch", rf"{second.id} denied")
    denied = read(console_bot, second.id)
    assert denied.state is ApprovalState.DENIED and denied.reason == "use a branch"

    console_bot.command(f"approve {second.id}", r"already answered by console on console at \d\d:")
    console_bot.command("approve zzzz", r"no approval request 'zzzz'")
    console_bot.command("pending", r"No approval requests are open")


def test_a_request_closes_when_its_agent_ends(console_bot: ConsoleBot) -> None:
    """The agent's run ends: its open request is closed, and an answer is told so."""
    console_bot.command("spawn c1 --prompt wait", r"Agent c1 started \(stub\)")
    request = ask(console_bot, "n1", "rm -rf build")
    console_bot.command("stop c1", r"Stopped c1")
    assert wait_until(
        lambda: read(console_bot, request.id).state is ApprovalState.CLOSED, timeout=20
    )
    console_bot.command(f"approve {request.id}", r"that request is closed \(c1\b.*ended")


def test_the_stub_asks_for_a_tool_and_is_answered_with_no_key(console_bot: ConsoleBot) -> None:
    """`tool ls -la` sent to a stub asks through the approval door (no key, no real CLI):
    the request shows the command; `approve ID` lets it, and the stub prints the answer;
    a denial's reason reaches it too."""
    console_bot.command("spawn c1 --runtime stub", r"Agent c1 started")
    console_bot.command("send c1 tool ls -la", r"Approval\W+([a-z2-9]{4})\W")
    first = console_bot.expect(r"Approval\W+([a-z2-9]{4})\W").group(1)
    console_bot.expect(r"ls -la")
    console_bot.command(f"approve {first}", rf"{first} allowed once")
    console_bot.expect(
        r"tool 1: ls -la — allowed: allowed by console.*\(the stub runs nothing\)", 30
    )
    console_bot.send("send c1 tool rm -rf build")
    second = console_bot.expect(r"Approval\W+([a-z2-9]{4})\W.*\n(?:.*\n)*?.*rm -rf build").group(1)
    console_bot.command(f"deny {second} not today", rf"{second} denied")
    console_bot.expect(r"tool 2: rm -rf build — denied: .*not today", timeout=30)
