"""Tests for the `budget` commands: their arguments (bot.commands.handlers.spend.budget_args), their
answers (bot.render.spend.budgets), and the handlers through the router with a fake BudgetBook —
who may run them, what reaches the book, and that nothing is applied on a bad argument."""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from bot.acl import Acl, Grant, Role
from bot.commands.errors import CommandError
from bot.commands.handlers.spend.budget_args import parse_limit, parse_moment, parse_scope
from bot.commands.handlers.spend.budgets import BudgetHandlers
from bot.commands.handlers.spend.specs import BUDGET
from bot.commands.parsing.grammar import Grammar
from bot.commands.routing.request import Request
from bot.commands.routing.router import Router
from bot.commands.specs import COMMANDS
from bot.render.spend import budgets as render_budgets
from fleet.budgets.model import BudgetError, BudgetStatus, PaceStatus, Source
from fleet.budgets.wording import doubled
from fleet.ledger import Ledger
from fleet.ledger.records.budgets import (
    Budget,
    Burst,
    Confidence,
    Cutoff,
    Scope,
    Step,
    WindowKind,
    WindowSpec,
)
from tests.unit.chat_fakes import OPERATOR, T0, VIEWER, FakeConnector, message

BERLIN = ZoneInfo("Europe/Berlin")  # T0, 12:00 UTC, is 13:00 CET
ADMIN = "@ada:example.org"
GLOBAL = Budget(
    Scope("global"),
    WindowSpec(WindowKind.ROLLING, timedelta(days=7)),
    limit_tokens=50_000_000,
    account="anthropic",
    ladder={"claude": ("opus", "sonnet")},
    tolerance=0.2,
)
_EVENTS = itertools.count()


# --- Arguments ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "tokens"),
    [("5M", 5_000_000), ("500k", 500_000), ("1.5m", 1_500_000), ("1200000", 1_200_000),
     ("1_200_000", 1_200_000), ("1,200,000", 1_200_000), ("2G", 2_000_000_000)],
)  # fmt: skip
def test_limits_in_tokens_accept_suffixes_and_separators(text: str, tokens: int) -> None:
    """LIMIT reads k, M and G suffixes (any case), underscores and commas."""
    assert parse_limit(text, usd=False) == (tokens, None)


@pytest.mark.parametrize(
    ("text", "usd", "message"),
    [
        ("5X", False, "LIMIT '5X' is not a number of tokens: write e.g. 5M, 500k or 1200000 "
                      "(or add --usd for dollars)"),
        ("0", False, "LIMIT must be more than 0 tokens, got '0'"),
        ("1.5", False, "LIMIT '1.5' is not a whole number of tokens"),
        ("lots", True, "LIMIT 'lots' is not a number of dollars: write e.g. 25"),
        ("nan", True, "LIMIT 'nan' is not a number of dollars: write e.g. 25"),
        ("$0", True, "LIMIT must be more than $0, got '$0'"),
    ],
)  # fmt: skip
def test_bad_limits_say_what_to_write(text: str, usd: bool, message: str) -> None:
    """A limit that is not a positive amount is refused with an example."""
    with pytest.raises(CommandError) as caught:
        parse_limit(text, usd=usd)
    assert str(caught.value) == message


def test_limits_in_dollars_accept_a_dollar_sign() -> None:
    """With --usd, LIMIT is dollars, with or without `$`."""
    assert parse_limit("$12.50", usd=True) == (None, 12.5)
    assert parse_limit("25", usd=True) == (None, 25.0)


def test_scopes_are_parsed_or_refused() -> None:
    """SCOPE is global, group:NAME or agent:NAME."""
    assert parse_scope("group:backend") == Scope("group", "backend")
    with pytest.raises(CommandError, match=r"^SCOPE 'team:x' is not a scope: write global, "):
        parse_scope("team:x")


@pytest.mark.parametrize(
    ("text", "moment"),
    [
        ("18:00", datetime(2025, 3, 1, 17, 0, tzinfo=UTC)),  # later today in Berlin
        ("13:00", datetime(2025, 3, 2, 12, 0, tzinfo=UTC)),  # now, so tomorrow
        ("9:30", datetime(2025, 3, 2, 8, 30, tzinfo=UTC)),  # passed: tomorrow
        ("2h", T0 + timedelta(hours=2)),
        ("1d12h", T0 + timedelta(hours=36)),
        ("2025-03-05T09:00", datetime(2025, 3, 5, 8, 0, tzinfo=UTC)),  # in Berlin
        ("2025-03-05T09:00+00:00", datetime(2025, 3, 5, 9, 0, tzinfo=UTC)),
        ("2025-03-05", datetime(2025, 3, 4, 23, 0, tzinfo=UTC)),  # midnight in Berlin
    ],
)
def test_moments_are_clock_times_iso_or_durations(text: str, moment: datetime) -> None:
    """HH:MM is the next such time in the timezone; ISO without offset is in it; a
    duration counts from now."""
    assert parse_moment(text, now=T0, tz=BERLIN, flag="--until") == moment


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("25:00", "--until '25:00' is not a time of day: write HH:MM, an ISO date and time "
                  "(2025-04-01T09:00) or a duration (2h)"),
        ("soon", "--until 'soon' is not a moment: write HH:MM, an ISO date and time "
                 "(2025-04-01T09:00) or a duration (2h)"),
        ("0h", "--until: '0h' is a window of zero: a window must last at least a minute"),
        ("2025-03-01T12:59", "--until 2025-03-01 12:59 CET is in the past: give a time still "
                             "ahead"),
    ],
)  # fmt: skip
def test_bad_moments_are_refused(text: str, message: str) -> None:
    """An impossible clock time, a non-moment, a zero duration and the past are refused."""
    with pytest.raises(CommandError) as caught:
        parse_moment(text, now=T0, tz=BERLIN, flag="--until")
    assert str(caught.value) == message


# --- Rendering ----------------------------------------------------------------------------------


def status(budget: Budget, used: float, limit: float, **changes: object) -> BudgetStatus:
    made = BudgetStatus(
        budget=budget,
        start=T0 - timedelta(days=2),
        end=T0 + timedelta(days=5),
        now=T0,
        unit="tokens",
        used=used,
        limit=limit,
        pace_ratio=1.4,
        target_rate=0.0,
        projected_end_use=used * 3.5,
        projected_exhaustion=None,
        status=PaceStatus.OVER,
        source=Source.PROVIDER,
    )
    return replace(made, **changes)  # type: ignore[arg-type]


CODER = Budget(
    Scope("agent", "coder-1"),
    WindowSpec(WindowKind.ROLLING, timedelta(hours=5)),
    limit_tokens=1_000_000,
    source="command",
)
API = Budget(Scope("group", "api"), WindowSpec(WindowKind.DAILY), limit_usd=20.0)
BURST = Burst(Scope("agent", "coder-1"), T0 + timedelta(hours=3), "@ada:example.org on matrix",
              "release day", T0)  # fmt: skip
STATUSES = [
    status(
        GLOBAL,
        20_000_000,
        50_000_000,
        step=Step.DOWNGRADE,
        level=1,
        reset_confidence=Confidence.PROVIDER,
    ),
    status(
        CODER,
        150_000,
        1_000_000,
        end=T0 + timedelta(hours=4),
        pace_ratio=0.75,
        status=PaceStatus.UNDER,
        source=Source.METERING,
        reset_confidence=Confidence.ESTIMATED,
        burst=BURST,
    ),
    status(
        API,
        20.0,
        20.0,
        end=T0 + timedelta(hours=11),
        unit="usd",
        pace_ratio=float("nan"),
        status=PaceStatus.EXHAUSTED,
        source=Source.ESTIMATED,
        reset_confidence=Confidence.USER,
        step=Step.REFUSE,
    ),
    status(
        replace(API, scope=Scope("group", "web")),
        3.0,
        20.0,
        end=T0 + timedelta(hours=11),
        unit="usd",
        status=PaceStatus.ON,
        source=Source.ESTIMATED,
        reset_confidence=Confidence.UNKNOWN,
        step=Step.QUEUE,
        queued_until=T0 + timedelta(minutes=15),
        burst=replace(BURST, until=T0 - timedelta(minutes=1)),  # expired: not shown
    ),
]
TABLE = """\
| scope | window | used / limit | pace | status | step | source |
|---|---|---|---|---|---|---|
| `global` | 1w, resets 2025-03-06 13:00 CET (provider) | 20M / 50M (40%) | 1.40× | over | downgrade 1 | provider |
| `agent:coder-1` \\* | 5h, resets 17:00 CET (estimated) | 150k / 1M (15%) | 0.75× | under (burst) | – | metering |
| `group:api` | daily, resets 2025-03-02 00:00 CET (set by you) | $20.00 / $20.00 (100%) | – | exhausted | refuse until 2025-03-02 00:00 CET | estimated |
| `group:web` | daily, resets 2025-03-02 00:00 CET (unknown) | $3.00 / $20.00 (15%) | 1.40× | on | queue until 13:15 CET | estimated |

**Bursts**
- `agent:coder-1` until 16:00 CET, granted by @ada:example.org on matrix — release day

\\* set with `budget set`: it replaces the config's budget of that scope."""  # noqa: E501


def test_the_budget_table_shows_every_budget_its_step_source_and_bursts() -> None:
    """One row per budget (times in the configured zone, each reset with how sure it is),
    then the active bursts; budgets set by command are marked."""
    assert render_budgets.budgets(STATUSES, T0, BERLIN) == TABLE


def test_a_reset_gone_by_is_not_promised_again() -> None:
    """A fixed window whose reset_at has passed: the table says so, and that no next reset
    is known."""
    window = WindowSpec(WindowKind.FIXED, reset_at=T0 - timedelta(hours=1))
    passed = status(
        replace(CODER, window=window),
        10.0,
        1000.0,
        end=T0 - timedelta(hours=1),
        reset_confidence=Confidence.UNKNOWN,
    )
    row = render_budgets.budgets([passed], T0, BERLIN).splitlines()[2]
    assert "| fixed, reset 12:00 CET passed, next unknown |" in row


def test_no_statuses_say_there_are_no_budgets() -> None:
    """An empty book says so and how to set a budget."""
    assert render_budgets.budgets([], T0, BERLIN) == render_budgets.NO_BUDGETS


@pytest.mark.parametrize(
    ("budget", "described"),
    [
        (GLOBAL, "50M tokens per 1w"),
        (replace(API, limit_tokens=5_000_000), "5M tokens and $20.00 daily"),
        (
            replace(CODER, window=WindowSpec(WindowKind.FIXED, reset_at=T0 + timedelta(days=3))),
            "1M tokens until 2025-03-04 13:00 CET (set by you)",
        ),
        (
            replace(CODER, window=WindowSpec(WindowKind.ROLLING, timedelta(hours=5), T0)),
            "1M tokens per 5h, next reset 13:00 CET (set by you)",
        ),
        (
            replace(
                CODER,
                window=WindowSpec(WindowKind.FIXED, reset_at=T0, confidence=Confidence.PROVIDER),
            ),
            "1M tokens until 13:00 CET (provider)",
        ),
    ],
)
def test_budgets_are_described_in_a_phrase(budget: Budget, described: str) -> None:
    """Limits and window read as one phrase, times in the configured zone, a reset given
    with how sure it is."""
    assert render_budgets.describe(budget, T0, BERLIN) == described


# --- The handlers, through the router -------------------------------------------------------


@dataclass
class RecordingBook:
    """A BudgetBook that applies what it is asked, refusing scopes in ``refuse``."""

    items: list[BudgetStatus] = field(default_factory=list)
    config: list[Budget] = field(default_factory=list)
    refuse: dict[str, str] = field(default_factory=dict)
    set_calls: list[tuple[Budget, str]] = field(default_factory=list)
    bursts: list[Burst] = field(default_factory=list)
    unset_calls: list[tuple[Scope, str]] = field(default_factory=list)
    timezone: ZoneInfo = BERLIN

    def now(self) -> datetime:
        return T0

    def budgets(self) -> list[Budget]:
        return list(self.config)

    async def statuses(self) -> list[BudgetStatus]:
        return list(self.items)

    async def set_budget(self, budget: Budget, by: str) -> Budget:
        if str(budget.scope) in self.refuse:
            raise BudgetError(self.refuse[str(budget.scope)])
        self.set_calls.append((budget, by))
        return budget

    async def allow_burst(self, burst: Burst) -> Burst:
        if str(burst.scope) in self.refuse:
            raise BudgetError(self.refuse[str(burst.scope)])
        self.bursts.append(burst)
        return burst

    async def unset_budget(self, scope: Scope, by: str) -> tuple[Budget, Budget | None]:
        if str(scope) in self.refuse:
            raise BudgetError(self.refuse[str(scope)])
        set_here = [b for b, _ in self.set_calls if b.scope == scope]
        if not set_here:
            raise BudgetError(f"{scope} has no budget set in chat")
        self.unset_calls.append((scope, by))
        self.set_calls = [(b, who) for b, who in self.set_calls if b.scope != scope]
        return set_here[-1], next((b for b in self.config if b.scope == scope), None)

    async def end_burst(self, scope: Scope, by: str) -> int:
        ended = [b for b in self.bursts if b.scope == scope]
        self.bursts = [b for b in self.bursts if b.scope != scope]
        return len(ended)


@pytest.fixture
def budget_commands_book() -> RecordingBook:
    return RecordingBook(items=list(STATUSES), config=[GLOBAL])


def router_for(ledger: Ledger, book: RecordingBook | None) -> Router:
    commands = BudgetHandlers(book)
    table = commands.table()
    acl = Acl(
        [Grant(ADMIN, Role.ADMIN), Grant(OPERATOR, Role.OPERATOR), Grant(VIEWER, Role.VIEWER)]
    )
    return Router(
        grammar=Grammar([BUDGET]), acl=acl, handlers=table, audit=ledger.audit, chat=ledger.chat
    )


async def say(router: Router, text: str, sender: str = ADMIN) -> str:
    chat = FakeConnector()
    await router.handle(chat, message(text, sender=sender, event_id=f"$ev{next(_EVENTS)}"))
    [sent] = chat.sent
    return sent.markdown


async def test_anyone_listed_sees_the_budgets(
    ledger: Ledger, budget_commands_book: RecordingBook
) -> None:
    """`budget` is read-only: a viewer gets the table, and the audit says ok."""
    assert await say(router_for(ledger, budget_commands_book), "!budget", sender=VIEWER) == TABLE
    [entry] = await ledger.audit.audit_entries()
    assert (entry.command, entry.outcome, entry.sender) == ("budget", "ok", VIEWER)


async def test_without_a_book_budget_says_none_are_configured(ledger: Ledger) -> None:
    """No BudgetBook: `budget` answers that no budgets are configured; changes are errors."""
    router = router_for(ledger, None)
    assert await say(router, "!budget") == render_budgets.NO_BUDGETS
    assert await say(router, "!budget set global 5M --window 7d") == (
        "no budgets configured: pacing is not running here, so nothing was changed"
    )


async def test_an_admin_sets_a_budget_that_keeps_the_configs_ladder(
    ledger: Ledger, budget_commands_book: RecordingBook
) -> None:
    """`budget set` sends the book a command budget with the new limit and window, and the
    replaced budget's account, ladder and tolerance; the answer says what it replaced."""
    reply = await say(router_for(ledger, budget_commands_book), "!budget set global 5M --window 5h")
    assert budget_commands_book.set_calls == [
        (
            replace(
                GLOBAL,
                window=WindowSpec(WindowKind.ROLLING, timedelta(hours=5)),
                limit_tokens=5_000_000,
                source="command",
            ),
            f"{ADMIN} on matrix",
        )
    ]
    assert reply == (
        "Budget for `global` set: 5M tokens per 5h. It replaces the config's budget of "
        "50M tokens per 1w."
    )


async def test_budget_set_takes_the_cutoff_ask(
    ledger: Ledger, budget_commands_book: RecordingBook
) -> None:
    """`--cutoff ask` sets what happens at the limit; a word it does not know is refused."""
    router = router_for(ledger, budget_commands_book)
    await say(router, "!budget set global 5M --window 5h --cutoff ask")
    assert budget_commands_book.set_calls[-1][0].cutoff is Cutoff.ASK
    said = await say(router, "!budget set global 5M --window 5h --cutoff pray")
    assert "refuse" in said and "ask" in said and len(budget_commands_book.set_calls) == 1


async def test_a_new_scope_in_dollars_with_a_fixed_reset(
    ledger: Ledger, budget_commands_book: RecordingBook
) -> None:
    """--usd makes LIMIT dollars; --reset-at and --confidence shape the window."""
    reply = await say(
        router_for(ledger, budget_commands_book),
        "!budget set agent:coder-1 $12.50 --usd --window fixed --reset-at 18:00 "
        "--confidence estimated",
    )
    [(budget, _)] = budget_commands_book.set_calls
    assert budget == Budget(
        Scope("agent", "coder-1"),
        WindowSpec(
            WindowKind.FIXED,
            reset_at=datetime(2025, 3, 1, 17, tzinfo=UTC),
            confidence=Confidence.ESTIMATED,
        ),
        limit_usd=12.5,
        source="command",
    )
    assert reply == "Budget for `agent:coder-1` set: $12.50 until 18:00 CET (estimated)."


@pytest.mark.parametrize(
    ("text", "answer"),
    [
        ("!budget set global 5M", "budget set: --window is required: a duration (5h, 7d), "
                                  "daily, weekly, monthly, or fixed with --reset-at"),
        ("!budget set global 5M --window 0h",
         "budget set: '0h' is a window of zero: a window must last at least a minute"),
        ("!budget set global 5M --window fixed",
         "budget set: a fixed window needs reset_at: when it ends, e.g. 2025-04-01T00:00"),
        ("!budget set global 5M --window daily --reset-at 2h",
         "budget set: a daily window resets at midnight in the configured timezone, so it "
         "takes no reset_at: leave reset_at out, or use window fixed"),
        ("!budget set global 5M --window 7d --reset-at 2025-02-01T00:00",
         "--reset-at 2025-02-01 00:00 CET is in the past: give a time still ahead"),
        ("!budget set global lots --window 7d",
         "LIMIT 'lots' is not a number of tokens: write e.g. 5M, 500k or 1200000 (or add "
         "--usd for dollars)"),
        ("!budget set everyone 5M --window 7d",
         "SCOPE 'everyone' is not a scope: write global, group:NAME, agent:NAME, host:NAME, "
         "account:NAME or provider:NAME"),
        ("!budget set group:nope 5M --window 7d",
         "budget set: unknown group 'nope'; known groups: backend; nothing changed"),
    ],
)  # fmt: skip
async def test_a_bad_budget_is_refused_and_nothing_is_applied(
    ledger: Ledger, budget_commands_book: RecordingBook, text: str, answer: str
) -> None:
    """Each bad argument, or a contradiction the book finds, is one clear error; the book is
    not changed and the audit records an error."""
    budget_commands_book.refuse["group:nope"] = "unknown group 'nope'; known groups: backend"
    assert await say(router_for(ledger, budget_commands_book), text) == answer
    assert budget_commands_book.set_calls == []
    [entry] = await ledger.audit.audit_entries()
    assert (entry.command, entry.outcome, entry.detail) == ("budget set", "error", answer)


async def test_an_admin_grants_a_burst_and_it_is_audited(
    ledger: Ledger, budget_commands_book: RecordingBook
) -> None:
    """`budget allow-burst` hands the book the grant (who, until, why) and the audit keeps
    the command as typed."""
    text = '!budget allow-burst group:backend --until 2h --reason "release day"'
    reply = await say(router_for(ledger, budget_commands_book), text)
    burst = Burst(
        Scope("group", "backend"),
        T0 + timedelta(hours=2),
        granted_by=f"{ADMIN} on matrix",
        reason="release day",
        granted_at=T0,
    )
    assert budget_commands_book.bursts == [burst]
    assert reply == (
        "Burst granted: `group:backend` may spend past its pace until 15:00 CET (for "
        f"2h00m), granted by {ADMIN} on matrix. Reason: release day. Its hard limit still holds."
    )
    [entry] = await ledger.audit.audit_entries()
    assert (entry.command, entry.outcome, entry.sender, entry.text) == (
        "budget allow-burst",
        "ok",
        ADMIN,
        text,
    )


@pytest.mark.parametrize(
    ("text", "answer"),
    [
        ("!budget allow-burst global", "budget allow-burst: --until is required: HH:MM, an "
                                       "ISO date and time, or a duration such as 2h"),
        ("!budget allow-burst global --until yesterday",
         "--until 'yesterday' is not a moment: write HH:MM, an ISO date and time "
         "(2025-04-01T09:00) or a duration (2h)"),
        ("!budget allow-burst agent:gone --until 2h",
         "budget allow-burst: no budget governs agent:gone; nothing changed"),
    ],
)  # fmt: skip
async def test_a_bad_burst_is_refused(
    ledger: Ledger, budget_commands_book: RecordingBook, text: str, answer: str
) -> None:
    """A missing or bad --until, or a grant the book refuses, changes nothing."""
    budget_commands_book.refuse["agent:gone"] = "no budget governs agent:gone"
    assert await say(router_for(ledger, budget_commands_book), text) == answer
    assert budget_commands_book.bursts == []


@pytest.mark.parametrize("sender", [OPERATOR, VIEWER])
@pytest.mark.parametrize(
    "text",
    [
        "!budget set global 5M --window 7d",
        "!budget allow-burst global --until 2h",
        "!budget unset global",
        "!budget remove global",
        "!budget end-burst global",
    ],
)
async def test_only_an_admin_may_change_budgets(
    ledger: Ledger, budget_commands_book: RecordingBook, sender: str, text: str
) -> None:
    """Operators and viewers are refused `budget set`, `allow-burst` and their ways back;
    the audit says denied and the book is untouched."""
    reply = await say(router_for(ledger, budget_commands_book), text, sender=sender)
    assert "needs the admin role" in reply
    assert (budget_commands_book.set_calls, budget_commands_book.bursts) == ([], [])
    [entry] = await ledger.audit.audit_entries()
    assert entry.outcome == "denied"


async def test_the_fleet_handlers_route_the_budget_commands_to_their_book(
    ledger: Ledger, budget_commands_book: RecordingBook, tmp_path: Path
) -> None:
    """BudgetHandlers(book) binds `budget`, `budget set` and `budget allow-burst` to it."""
    table = BudgetHandlers(budget_commands_book).table()
    command = Grammar(COMMANDS).parse("!budget allow-burst global --until 2h")
    assert command is not None
    await table["budget allow-burst"](Request(message("!x", sender=ADMIN), Role.ADMIN, command))
    assert [burst.scope for burst in budget_commands_book.bursts] == [Scope("global")]
    assert {"budget", "budget set"} <= set(table)


# --- The ways back, and what a budget set does at once -------------------------------------


@pytest.mark.parametrize("verb", ["unset", "remove"])
async def test_an_admin_unsets_a_budget_set_in_chat_and_it_is_audited(
    ledger: Ledger, budget_commands_book: RecordingBook, verb: str
) -> None:
    """`budget unset SCOPE` (and `budget remove`, as people type it) takes back a `budget
    set`: the book is asked, the answer says what is in force now, the audit has it."""
    router = router_for(ledger, budget_commands_book)
    await say(router, "!budget set global 1 --usd --window 1d --cutoff ask")
    reply = await say(router, f"!budget {verb} global")
    assert budget_commands_book.unset_calls == [(Scope("global"), f"{ADMIN} on matrix")]
    assert reply == (
        "Budget for `global` unset (it was $1.00 per 1d). The config's budget is back: "
        "50M tokens per 1w."
    )
    entries = await ledger.audit.audit_entries()
    assert (f"budget {verb}", "ok") in [(e.command, e.outcome) for e in entries]


async def test_unset_of_a_scope_with_no_config_budget_says_none_is_left(
    ledger: Ledger, budget_commands_book: RecordingBook
) -> None:
    """A scope only chat gave a budget is left with none, and the answer says so."""
    router = router_for(ledger, budget_commands_book)
    await say(router, "!budget set agent:coder-1 5M --window 5h")
    assert await say(router, "!budget unset agent:coder-1") == (
        "Budget for `agent:coder-1` unset (it was 5M tokens per 5h). `agent:coder-1` has no "
        "budget of its own now."
    )


async def test_an_unset_the_book_refuses_changes_nothing(
    ledger: Ledger, budget_commands_book: RecordingBook
) -> None:
    """What the book refuses (nothing set in chat there) is said, and nothing changes."""
    reply = await say(router_for(ledger, budget_commands_book), "!budget unset global")
    assert reply == "budget unset: global has no budget set in chat; nothing changed"
    assert budget_commands_book.unset_calls == []


async def test_an_admin_ends_a_burst(ledger: Ledger, budget_commands_book: RecordingBook) -> None:
    """`budget end-burst SCOPE` ends the bursts on it; with none, it says so."""
    router = router_for(ledger, budget_commands_book)
    await say(router, "!budget allow-burst global --until 2h")
    assert await say(router, "!budget end-burst global") == (
        "Ended the burst on `global`: its agents are paced again from now."
    )
    assert budget_commands_book.bursts == []
    assert await say(router, "!budget end-burst global") == (
        "budget end-burst: no burst runs on global: `budget` lists the bursts; nothing changed"
    )


@dataclass
class PacedBook(RecordingBook):
    """A book whose budget, once set, stands as ``after`` says (a tick has run)."""

    after: dict[str, object] = field(default_factory=dict)

    async def statuses(self) -> list[BudgetStatus]:
        return [status(b, 1_270.0, 1_000.0, **self.after) for b, _ in self.set_calls]


async def test_a_budget_set_over_pace_says_so_and_what_it_does_to_launches(
    ledger: Ledger,
) -> None:
    """A budget that is over pace the moment it is set says so in the answer: its
    requests held until when, new launches waiting in the queue, how to start one now,
    and the way back."""
    budget_commands_book = PacedBook(
        config=[GLOBAL],
        after={"pace_ratio": 1.27, "step": Step.QUEUE, "queued_until": T0 + timedelta(hours=2)},
    )
    reply = await say(
        router_for(ledger, budget_commands_book), "!budget set global 1 --usd --window 1d"
    )
    assert reply == (
        "Budget for `global` set: $1.00 per 1d. It replaces the config's budget of 50M "
        "tokens per 1w.\n\n"
        "`global` is over pace at once (1.27× the even spread): its agents' requests are "
        "held until 15:00 CET, and new launches wait in the queue until then (`queue` lists "
        "them; `spawn NAME --urgent` within a burst (`budget allow-burst global --until 2h`) "
        "starts one now). `budget unset global` undoes it (back to the config's budget, or "
        "none)."
    )


async def test_a_budget_set_at_its_limit_says_launches_are_refused(ledger: Ledger) -> None:
    """A budget at its limit the moment it is set says requests are held (it asks) and
    launches refused until the reset."""
    budget_commands_book = PacedBook(
        config=[GLOBAL],
        after={"status": PaceStatus.EXHAUSTED, "step": Step.REFUSE},
    )
    reply = await say(
        router_for(ledger, budget_commands_book), "!budget set global 1000 --window 1d --cutoff ask"
    )
    assert reply.endswith(
        "`global` is at its limit at once (1.3k of 1k used): its agents' requests are held "
        "while its operators are asked to raise it, and new launches are refused until "
        "2025-03-06 13:00 CET (reset). `budget unset global` undoes it (back to the config's "
        "budget, or none)."
    )


async def test_a_budget_set_on_pace_says_nothing_more(ledger: Ledger) -> None:
    """A budget on pace once set gets the plain answer."""
    budget_commands_book = PacedBook(
        config=[GLOBAL], after={"status": PaceStatus.ON, "pace_ratio": 0.9}
    )
    reply = await say(router_for(ledger, budget_commands_book), "!budget set global 5M --window 1d")
    assert reply == (
        "Budget for `global` set: 5M tokens per 1d. It replaces the config's budget of 50M "
        "tokens per 1w."
    )


@pytest.mark.parametrize(
    "budget",
    [
        GLOBAL,
        API,
        replace(CODER, window=WindowSpec(WindowKind.FIXED, reset_at=T0 + timedelta(days=3))),
    ],
    ids=["tokens-rolling", "dollars-daily", "fixed"],
)
async def test_the_budget_set_a_refused_launch_suggests_works_as_typed(
    ledger: Ledger, budget: Budget
) -> None:
    """The `budget set` a launch refused at the limit names, typed as given, is taken and
    doubles the limit in the same window."""
    budget_commands_book = RecordingBook(config=[budget])
    reply = await say(router_for(ledger, budget_commands_book), "!" + doubled(budget))
    assert reply.startswith(f"Budget for `{budget.scope}` set:")
    [(applied, _)] = budget_commands_book.set_calls
    assert applied.window.kind is budget.window.kind
    assert applied.window.length == budget.window.length
    assert applied.window.reset_at == budget.window.reset_at
    if budget.limit_tokens is not None:
        assert applied.limit_tokens == 2 * budget.limit_tokens
    else:
        assert applied.limit_usd == 2 * (budget.limit_usd or 0.0)
