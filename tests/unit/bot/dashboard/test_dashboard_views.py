"""The dashboard's views over a real ledger and Fleet: approvals link to the chat messages
that showed them (the connector's own links), with who answered and how long each waited;
what agents or people wrote passes the redactor; an unknown agent is a 404."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from bot.dashboard.pages.pages import Pages
from bot.dashboard.pages.views import UnknownPage, Views
from connectors.base import Connector
from fleet.accounts.book import AccountBook
from fleet.accounts.model import Account, AccountKind, AccountSet
from fleet.accounts.quota import QuotaStatus, QuotaWindow
from fleet.approvals.service import Approvals
from fleet.ledger import Ledger
from fleet.ledger.records.approvals import ApprovalPost, Ask, Decision
from fleet.ledger.records.forge import NewForgeRun, Slug
from fleet.timing.clock import ManualClock
from tests.unit.bot.dashboard.views_rig import views_over
from tests.unit.chat_fakes import HomeConnector, ThreadedConnector


def views(
    ledger: Ledger,
    clock: ManualClock,
    tmp_path: Path,
    chat: Connector,
    accounts: AccountBook | None = None,
) -> Views:
    return views_over(
        ledger, clock, tmp_path, accounts=accounts, forges=True,
        connector_named=lambda name: chat if name == chat.name else None,
        redact=lambda text: text.replace("s3cret", "[redacted]"),
    )  # fmt: skip


async def test_approvals_link_to_their_chat_messages_and_say_who_answered(
    ledger: Ledger, clock: ManualClock, tmp_path: Path
) -> None:
    """Open ones first; the answered one with its answerer, decision and wait; a subject
    with a secret redacted; the link is the connector's."""
    approvals = Approvals(ledger.approvals, clock)
    first = await approvals.open(
        agent="coder",
        run_id=7,
        channel="test",
        ask=Ask("a", "Bash", "echo s3cret"),
        wait_seconds=600.0,
        max_open=3,
        starter=None,
    )
    await approvals.record_post(ApprovalPost(first.id, "matrix", "!r:x", "$t", "$e"))
    clock.advance(30)
    await approvals.answer(first.id, by="ann", decision=Decision.ALLOW, how="reaction")
    second = await approvals.open(
        agent="coder",
        run_id=7,
        channel="test",
        ask=Ask("b", "Write", "notes.md"),
        wait_seconds=600.0,
        max_open=3,
        starter=None,
    )
    clock.advance(5)
    chat = ThreadedConnector("matrix")
    page = await views(ledger, clock, tmp_path, chat).approvals()
    open_one, answered = page["approvals"]
    assert (open_one["id"], open_one["open"], open_one["waited_seconds"]) == (second.id, True, 5.0)
    assert answered["id"] == first.id and answered["answered_by"] == "ann"
    assert answered["decision"] == "allow" and answered["waited_seconds"] == 30.0
    assert answered["subject"] == "echo [redacted]"
    assert answered["chat_links"] == [chat.message_link("!r:x", "$e", "$t")]  # type: ignore[arg-type]
    assert answered["chat_links"][0].startswith("http")


async def test_a_runs_ask_at_its_cap_is_marked_apart_from_an_agents_ask(
    ledger: Ledger, clock: ManualClock, tmp_path: Path
) -> None:
    """Only an ask on Fleetwarden's own spend channel is `spend`; an agent's ask with the
    same tool and words is not."""
    approvals = Approvals(ledger.approvals, clock)
    ask = Ask("cap:1", "spend", "coder reached its $2.00 cap")
    for channel in ("spend", "hook"):
        await approvals.open(
            agent="coder", run_id=7, channel=channel, ask=ask, wait_seconds=600.0,
            max_open=3, starter=None, ruled=channel == "hook",
        )  # fmt: skip
        clock.advance(1)
    page = await views(ledger, clock, tmp_path, HomeConnector("matrix", None)).approvals()
    assert [(r["spend"], r["subject"]) for r in page["approvals"]] == [
        (True, "coder reached its $2.00 cap"),
        (False, "coder reached its $2.00 cap"),
    ]


async def test_an_unknown_agent_is_not_a_page(
    ledger: Ledger, clock: ManualClock, tmp_path: Path
) -> None:
    """No agent of that name: UnknownPage (a 404), never an empty page."""
    with pytest.raises(UnknownPage):
        await views(ledger, clock, tmp_path, HomeConnector("matrix", None)).agent("ghost")


async def test_forge_runs_show_their_links_and_no_markup_or_secret_of_their_titles(
    ledger: Ledger, clock: ManualClock, tmp_path: Path
) -> None:
    """A live forge run on the fleet page and in /api/fleet: the issue's title (hostile
    text) redacted and never markup; an address that is no plain web address not a link."""
    added = await ledger.forge.add_forge_run(NewForgeRun(
        forge="gh", repo="app", slug=Slug("acme", "app"), issue=12,
        title="<script>alert(1)</script> s3cret", agent="coder", branch="fw/coder/issue-12",
        requester="ann", issue_url="javascript:alert(1)",
    ))  # fmt: skip
    assert added is not None
    key = added.id
    await ledger.forge.update_forge_run(
        key, pull=18, pull_url="https://github.com/acme/app/pull/18"
    )
    data = await views(ledger, clock, tmp_path, HomeConnector("matrix", None)).fleet()
    [row] = data["forge_runs"]
    assert row["issue_url"] is None and row["pull_url"].endswith("/pull/18")
    assert "s3cret" not in row["title"] and "[redacted]" in row["title"]
    html = Pages().fragment("fleet", data)
    assert "<script>" not in html and "javascript:" not in html
    assert 'href="https://github.com/acme/app/pull/18" rel="noopener noreferrer"' in html


async def test_an_accounts_resets_say_they_are_the_providers_or_unknown(
    ledger: Ledger, clock: ManualClock, tmp_path: Path
) -> None:
    """/api/accounts and its page: a window's reset is the provider's word; a limit the
    provider gave no reset for says unknown."""
    now = clock.now()
    key = Account("api-key", "anthropic", AccountKind.API_KEY, "KEY")
    book = AccountBook(
        AccountSet({key.name: key}), environ={"KEY": "k"}, state_dir=tmp_path, clock=clock
    )
    book.observe(
        [
            QuotaWindow("api-key", "requests", 0.2, now + timedelta(minutes=1),
                        QuotaStatus.ALLOWED, now, "anthropic-api"),
            QuotaWindow("api-key", "tokens", 0.5, None, QuotaStatus.ALLOWED, now,
                        "anthropic-api"),
        ]
    )  # fmt: skip
    data = await views(ledger, clock, tmp_path, HomeConnector("matrix", None), book).accounts()
    [account] = data["accounts"]
    sure = {
        w["window"]: (w["resets_at"] is not None, w["reset_confidence"]) for w in account["windows"]
    }
    assert sure == {"requests": (True, "provider"), "tokens": (False, "unknown")}
    html = Pages().fragment("accounts", data)
    assert '<span class="note">(provider)</span>' in html
    assert "<td>unknown</td>" in html
