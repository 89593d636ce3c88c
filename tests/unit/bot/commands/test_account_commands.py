"""The `accounts` answer: each provider window of each account — used, the even-spread
line, the reset — its status and agents, and why an account cannot be used."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from bot.commands.handlers.spend.accounts import NO_ACCOUNTS, AccountCommands, render_accounts
from bot.render.spend.report import compose
from fleet.accounts.book import AccountBook
from fleet.accounts.model import Account, AccountKind, AccountSet
from fleet.accounts.quota import QuotaStatus, QuotaWindow
from fleet.timing.clock import ManualClock
from tests.fakes.doubles.budget_book import StaticBook
from tests.unit.bot.render.test_report import BERLIN

T0 = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
MAX = Account("claude-max", "anthropic", AccountKind.CLAUDE_SUBSCRIPTION, "MAX")
CODEX = Account("codex-pro", "chatgpt", AccountKind.CHATGPT_SUBSCRIPTION)


def book(tmp_path: Path) -> AccountBook:
    accounts = AccountBook(
        AccountSet({MAX.name: MAX, CODEX.name: CODEX}),
        environ={"MAX": "secret-token-value-123"},
        state_dir=tmp_path,
        clock=ManualClock(T0),
    )
    accounts.assign("coder-1", "claude", "claude-max")
    accounts.observe(
        [
            QuotaWindow(
                "claude-max", "5h", 0.42, T0 + timedelta(hours=3), QuotaStatus.ALLOWED, T0,
                "anthropic-unified", timedelta(hours=5),
            ),
            QuotaWindow(
                "claude-max", "7d", 0.9, T0 - timedelta(hours=1), QuotaStatus.ALLOWED, T0,
                "anthropic-unified", timedelta(days=7),
            ),
        ]
    )  # fmt: skip
    return accounts


def test_windows_are_shown_with_their_even_line_and_reset(tmp_path: Path) -> None:
    """42 % used, 40 % of the way through (2 h of 5): the line, 3 h to go by the provider's
    word, the agent; a window that has reset is not shown; no secret."""
    text = render_accounts(book(tmp_path), T0)
    [row] = [line for line in text.splitlines() if "claude-max" in line]
    cells = [cell.strip() for cell in row.strip("|").split("|")]
    assert cells[3:] == ["5h", "42%", "40%", "3h00m (provider)", "allowed", "coder-1"]
    assert "7d" not in text
    assert "secret-token" not in text


def test_a_window_the_provider_gave_no_reset_for_says_unknown(tmp_path: Path) -> None:
    """An API key's token limit without a reset: its reset is unknown, not a dash."""
    accounts = book(tmp_path)
    accounts.observe(
        [QuotaWindow("codex-pro", "tokens", 0.5, None, QuotaStatus.ALLOWED, T0, "openai-api")]
    )
    text = render_accounts(accounts, T0)
    [row] = [line for line in text.splitlines() if "| tokens |" in line]
    cells = [cell.strip() for cell in row.strip("|").split("|")]
    assert cells[3:7] == ["tokens", "50%", "—", "unknown"]


def test_an_unusable_account_says_why_and_until_when(tmp_path: Path) -> None:
    """A refused credential: marked, said in a line under the table."""
    accounts = book(tmp_path)
    accounts.refused("claude-max", 401)
    text = render_accounts(accounts, T0)
    assert "**claude-max** cannot be used: the provider refused its credential (401)" in text
    assert "| unauthorized |" in text


async def test_no_accounts_says_how_to_add_one(tmp_path: Path) -> None:
    """Without accounts the command points at the accounts guide."""
    assert await AccountCommands(None).accounts(None) == NO_ACCOUNTS  # type: ignore[arg-type]


async def test_the_pacing_report_shows_the_accounts(tmp_path: Path) -> None:
    """The report carries the accounts table under its budgets."""
    accounts = AccountCommands(book(tmp_path))
    notice = await compose(StaticBook([], BERLIN, T0), None, accounts.text())
    assert "**Accounts**" in notice.markdown and "claude-max" in notice.markdown
