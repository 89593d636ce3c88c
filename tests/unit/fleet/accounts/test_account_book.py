"""The account book: a new run goes to the account with the most room, a request gets its
account's credential, an account the provider refuses or reports spent is left for the
next of the pool — with one notice per change — and all of it outlives a restart."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from fleet.accounts.book import AccountBook
from fleet.accounts.inject import Credential
from fleet.accounts.model import Account, AccountError, AccountKind, AccountSet
from fleet.accounts.quota import QuotaStatus, QuotaWindow
from fleet.accounts.routing import even_line, room
from fleet.accounts.state import Health
from fleet.ledger import Ledger
from fleet.supervisor.admission.request import LaunchRequest
from fleet.timing.clock import ManualClock
from tests.fakes.doubles.job_context import RecordingBoard
from tests.fakes.doubles.launches import real_fleet
from tests.fakes.doubles.stores import fleet_stores

T0 = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
MAX = Account("claude-max", "anthropic", AccountKind.CLAUDE_SUBSCRIPTION, "MAX_TOKEN")
TEAM = Account("claude-team", "anthropic", AccountKind.CLAUDE_SUBSCRIPTION, "TEAM_TOKEN")
ACCOUNTS = AccountSet(
    {"claude-max": MAX, "claude-team": TEAM}, {"claude": ("claude-max", "claude-team")}
)
ENV = {"MAX_TOKEN": "max-secret-token", "TEAM_TOKEN": "team-secret-token"}


def window(account: str, used: float, *, left: timedelta, status: str = "allowed") -> QuotaWindow:
    """A 5-hour window of ``account``, ``used`` of it, resetting ``left`` from T0."""
    return QuotaWindow(
        account=account,
        window="5h",
        used=used,
        resets_at=T0 + left,
        status=QuotaStatus(status),
        observed_at=T0,
        source="anthropic-unified",
        length=timedelta(hours=5),
    )


def book(tmp_path: Path, clock: ManualClock, **kwargs: object) -> AccountBook:
    return AccountBook(
        ACCOUNTS,
        environ=ENV,
        state_dir=tmp_path,
        clock=clock,
        **kwargs,  # type: ignore[arg-type]
    )


def test_room_is_the_margin_under_the_even_line() -> None:
    """Half-way through a window, 30 % used leaves 20 % of room; no windows, all of it."""
    half = window("a", 0.3, left=timedelta(hours=2.5))
    assert even_line(half, T0) == pytest.approx(0.5)
    assert room([half], T0) == pytest.approx(0.2)
    assert room([], T0) == 1.0
    rejected = window("a", 0.1, left=timedelta(hours=1), status="rejected")
    assert room([half, rejected], T0) < 0


async def test_a_new_run_goes_to_the_emptier_account(tmp_path: Path) -> None:
    """The pool's account with the larger margin below its line wins."""
    accounts = book(tmp_path, ManualClock(T0))
    accounts.observe(
        [
            window("claude-max", 0.6, left=timedelta(hours=2.5)),  # 10 % over the line
            window("claude-team", 0.2, left=timedelta(hours=2.5)),  # 30 % under it
        ]
    )
    chosen = accounts.assign("c1", "claude", "claude")
    assert chosen["anthropic"].name == "claude-team"
    assert accounts.agents_on("claude-team") == ["c1"]
    credential = accounts.resolve("c1", "anthropic")
    assert isinstance(credential, Credential) and credential.secret == "team-secret-token"


async def test_a_rejected_account_is_left_before_the_next_request(tmp_path: Path) -> None:
    """The provider says the window is spent: the agent moves, once, with one notice."""
    board = RecordingBoard()
    accounts = book(tmp_path, ManualClock(T0), notices=board)
    accounts.assign("c1", "claude", "claude")
    assert accounts.account_of("c1", "anthropic") == "claude-max"
    spent = window("claude-max", 1.0, left=timedelta(hours=1), status="rejected")
    accounts.observe([spent])
    accounts.observe([spent])  # said again: no second notice
    credential = accounts.resolve("c1", "anthropic")
    assert isinstance(credential, Credential) and credential.account.name == "claude-team"
    assert accounts.account_of("c1", "anthropic") == "claude-team"
    await asyncio.sleep(0)
    texts = [n.markdown for n in board.posted]
    assert sum("cannot be used" in t for t in texts) == 1, texts
    assert sum("moved from account" in t for t in texts) == 1, texts
    assert all("secret-token" not in t for t in texts)


async def test_with_nowhere_to_go_the_request_is_refused_in_words(tmp_path: Path) -> None:
    """Both accounts refused: the proxy gets a reason, not a credential."""
    accounts = book(tmp_path, ManualClock(T0))
    accounts.assign("c1", "claude", "claude")
    accounts.refused("claude-max", 401)
    accounts.refused("claude-team", 401)
    why = accounts.resolve("c1", "anthropic")
    assert isinstance(why, str) and "refused its credential" in why
    with pytest.raises(AccountError, match="no usable anthropic account"):
        accounts.assign("c2", "claude", "claude")


async def test_a_rejection_ends_when_the_window_resets(tmp_path: Path) -> None:
    """`rejected` holds until the reset the provider named."""
    clock = ManualClock(T0)
    accounts = book(tmp_path, clock)
    accounts.observe([window("claude-max", 1.0, left=timedelta(minutes=30), status="rejected")])
    assert not accounts.usable("claude-max")
    clock.advance(31 * 60)
    assert accounts.usable("claude-max")


async def test_an_unset_variable_is_not_a_credential(tmp_path: Path) -> None:
    """An account whose variable is missing is passed over, and said so."""
    accounts = AccountBook(
        ACCOUNTS, environ={"TEAM_TOKEN": "t" * 20}, state_dir=tmp_path, clock=ManualClock(T0)
    )
    assert accounts.assign("c1", "claude", "claude")["anthropic"].name == "claude-team"
    with pytest.raises(AccountError, match="account claude-max: MAX_TOKEN is not set"):
        accounts.assign("c2", "claude", "claude-max")
    assert accounts.resolve("c2", "anthropic") is None  # never another, unassigned account


async def test_assignments_marks_and_windows_outlive_a_restart(tmp_path: Path) -> None:
    """What the book learned is in the ledger and read back at start."""
    clock = ManualClock(T0)
    ledger = await Ledger.open(tmp_path / "ledger.db", clock)
    try:
        first = book(tmp_path, clock, ledger=ledger.accounts)
        await first.start()
        first.assign("c1", "claude", "claude")
        first.observe([window("claude-team", 0.25, left=timedelta(hours=4))])
        first.observe([window("claude-team", 1.0, left=timedelta(hours=1), status="rejected")])
        first.refused("claude-max", 401)
        await first.stop()
        again = book(tmp_path, clock, ledger=ledger.accounts)
        await again.start()
        try:
            assert again.account_of("c1", "anthropic") == "claude-max"
            mark = again.mark_of("claude-team")
            assert mark is not None and mark.health is Health.REJECTED
            # A refused token is fixed by setting the variable and restarting: lifted.
            assert again.mark_of("claude-max") is None
            assert [w.used for w in again.windows_of("claude-team")] == [1.0]
            # The pool it asked for came back too: a move stays within it.
            again.refused("claude-max", 401)
            assert (
                again.resolve("c1", "anthropic")
                == "account claude-max cannot be used: "
                + (again.why_not("claude-max").split("cannot be used: ", 1)[1])
            )
        finally:
            await again.stop()
    finally:
        await ledger.close()


async def test_a_spawn_with_no_usable_account_says_why(tmp_path: Path) -> None:
    """Claude with every account of its pool refused: the launch fails naming the accounts
    and why, and no process is started."""
    from fleet.backends.process import SubprocessBackend
    from fleet.errors import LaunchFailed
    from fleet.model import AgentSpec
    from fleet.names import AgentName
    from fleet.runs.launch.launch_kit import LaunchKit, RunSpend
    from fleet.runtimes import default_registry
    from fleet.supervisor.fleet import FleetSettings

    clock = ManualClock(T0)
    ledger = await Ledger.open(tmp_path / "ledger.db", clock)
    accounts = book(tmp_path, clock)
    accounts.refused("claude-max", 401)
    accounts.refused("claude-team", 401)
    name = AgentName("c1")
    fleet = real_fleet(
        stores=fleet_stores(ledger),
        clock=clock,
        kit=LaunchKit(
            runtimes=default_registry(),
            backends={"subprocess": SubprocessBackend()},
            settings=FleetSettings(state_dir=tmp_path),
            environ={},
            spend=RunSpend(accounts=accounts),
        ),
        roster={name: AgentSpec(name, "claude", prompt="hi", account="claude")},
    )
    await fleet.start()
    try:
        with pytest.raises(LaunchFailed, match="c1 cannot start: no usable anthropic account"):
            await fleet.spawn(LaunchRequest("c1"))
        record = await ledger.agents.get_agent(name)
        assert record is None or not record.state.is_live
    finally:
        await fleet.stop()
        await ledger.close()


async def test_a_window_repeated_by_every_answer_is_written_once_a_minute(
    tmp_path: Path,
) -> None:
    """The same figures again are not news; a change is, and so is a minute gone by, so
    the ledger's copy never goes stale under steady traffic."""
    clock = ManualClock(T0)
    accounts = book(tmp_path, clock)

    def seen(used: float, seconds: float) -> QuotaWindow:
        w = window("claude-max", used, left=timedelta(hours=2))
        return QuotaWindow(
            w.account, w.window, w.used, w.resets_at, w.status,
            T0 + timedelta(seconds=seconds), w.source, w.length,
        )  # fmt: skip

    written = []
    for used, at in ((0.3, 0), (0.3, 20), (0.3, 40), (0.31, 50), (0.31, 80), (0.31, 111)):
        accounts.observe([seen(used, at)])
        written.append(bool(accounts.kept.windows))
        accounts.kept.windows.clear()
    assert written == [True, False, False, True, False, True]
