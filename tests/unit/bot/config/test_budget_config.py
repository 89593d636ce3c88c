"""Tests for fleet.budgets.schema through bot.config's loader (the `timezone`, `groups`,
`budgets` and `pacing` sections) and for the checks fleet.budgets.model shares with the
`budget set` command."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from bot.config import Config, ConfigError, ConfigProblem, Offered, parse_config
from fleet.budgets.model import Groups, contradictions, ladder_problem, parse_window
from fleet.ledger.records.budgets import Budget, Confidence, Cutoff, Scope, WindowKind, WindowSpec
from scheduler.config import PacingSettings
from tests.unit.chat_fakes import T0

FILE = "fleetwarden.yaml"
RUNTIMES = ("stub", "claude", "codex")


def parse(text: str, now: datetime = T0) -> Config:
    return parse_config(text, FILE, base_dir=Path("/srv/fw"), offered=Offered(RUNTIMES), now=now)


def problems_of(text: str, now: datetime = T0) -> list[ConfigProblem]:
    with pytest.raises(ConfigError) as caught:
        parse(text, now)
    return list(caught.value.problems)


def only_problem(text: str, now: datetime = T0) -> ConfigProblem:
    problems = problems_of(text, now)
    assert len(problems) == 1, problems
    return problems[0]


def budgets_yaml(*entries: str) -> str:
    return "budgets:\n" + "".join(entries)


GLOBAL_7D = "  - scope: global\n    limit_tokens: 50000000\n    window: 7d\n"


# --- Valid sections ---------------------------------------------------------------------------


def test_without_the_sections_there_are_no_budgets_utc_and_default_pacing() -> None:
    """No timezone, groups, budgets or pacing: UTC, no groups, no budgets, a 60 s tick and
    the report at 09:00."""
    config = parse("log_level: info\n")
    assert config.timezone == ZoneInfo("UTC")
    assert config.groups == Groups()
    assert config.budgets == {}
    assert config.pacing == PacingSettings(tick_seconds=60.0, report_cron="0 9 * * *")
    assert Config.default(Path("/srv/fw")).budgets == {}


def test_full_sections_become_budgets_groups_and_settings() -> None:
    """Every key of every section reaches the Config as budget_model types, keyed by scope."""
    config = parse(
        "timezone: Europe/Berlin\n"
        "groups:\n"
        "  backend:\n"
        "    agents: [coder-1, coder-2]\n"
        "  api:\n"
        "    parent: backend\n"
        "    agents: [api-1]\n"
        "budgets:\n"
        "  - scope: global\n"
        "    limit_tokens: 50_000_000\n"
        "    limit_usd: 400\n"
        "    window: 7d\n"
        "    account: anthropic\n"
        "    confidence: provider\n"
        "    reset_at: 2025-03-03T09:00\n"
        "    ladder:\n"
        "      claude: [opus, sonnet, haiku]\n"
        "      codex: [gpt-5, gpt-5-mini]\n"
        "    tolerance: 0.2\n"
        "  - scope: group:api\n"
        "    limit_usd: 20.5\n"
        "    window: Daily\n"
        "  - scope: agent:coder-1\n"
        "    limit_tokens: 1000000\n"
        "    window: fixed\n"
        "    reset_at: 2025-04-01\n"
        "  - scope: agent:coder-2\n"
        "    limit_tokens: 2000000\n"
        "    window: 1d12h\n"
        "pacing:\n"
        "  tick_seconds: 30\n"
        '  report_cron: "30 8 * * mon-fri"\n'
    )
    assert config.timezone == ZoneInfo("Europe/Berlin")
    assert config.groups == Groups(
        parents={"backend": None, "api": "backend"},
        members={"coder-1": "backend", "coder-2": "backend", "api-1": "api"},
    )
    assert config.pacing == PacingSettings(tick_seconds=30.0, report_cron="30 8 * * mon-fri")
    assert list(config.budgets) == ["global", "group:api", "agent:coder-1", "agent:coder-2"]
    assert config.budgets["global"] == Budget(
        scope=Scope("global"),
        # Written without an offset: 09:00 in Berlin is 08:00 UTC.
        window=WindowSpec(
            WindowKind.ROLLING,
            length=timedelta(days=7),
            reset_at=datetime(2025, 3, 3, 8, 0, tzinfo=UTC),
            confidence=Confidence.PROVIDER,
        ),
        limit_tokens=50_000_000,
        limit_usd=400.0,
        account="anthropic",
        ladder={"claude": ("opus", "sonnet", "haiku"), "codex": ("gpt-5", "gpt-5-mini")},
        tolerance=0.2,
        source="config",
    )
    assert config.budgets["group:api"] == Budget(
        Scope("group", "api"), WindowSpec(WindowKind.DAILY), limit_usd=20.5
    )
    # A date alone is its midnight in the configured timezone.
    assert config.budgets["agent:coder-1"].window == WindowSpec(
        WindowKind.FIXED, reset_at=datetime(2025, 3, 31, 22, 0, tzinfo=UTC)
    )
    assert config.budgets["agent:coder-2"].window.length == timedelta(hours=36)


def test_a_reset_at_with_an_offset_keeps_it() -> None:
    """A reset_at written with an offset is that moment whatever the timezone."""
    config = parse(
        "timezone: America/New_York\n"
        + budgets_yaml(
            "  - scope: global\n    limit_tokens: 5\n    window: fixed\n",
            "    reset_at: 2025-03-05T10:00:00+02:00\n",
        )
    )
    assert config.budgets["global"].window.reset_at == datetime(2025, 3, 5, 8, tzinfo=UTC)


# --- Bad input: exact messages ----------------------------------------------------------------


def test_unknown_timezone_suggests_the_closest() -> None:
    """A misspelt IANA name is refused with the name it probably meant."""
    assert only_problem("timezone: Europe/Pari\n") == ConfigProblem(
        FILE,
        1,
        "timezone",
        "unknown timezone 'Europe/Pari' — did you mean 'Europe/Paris'? Write an IANA name, "
        "e.g. UTC, Europe/Berlin or America/New_York",
    )


def test_two_budgets_for_one_scope_name_both_lines() -> None:
    """A scope given two budgets is reported on the second, naming the first's line."""
    problem = only_problem(
        budgets_yaml(
            GLOBAL_7D, "  - scope: group:x\n    limit_usd: 1\n    window: daily\n"
        ).replace("group:x", "global")
    )
    assert problem == ConfigProblem(
        FILE,
        5,
        "budgets[1].scope",
        "duplicate budget scope 'global': budgets[0].scope on line 2 already has it; give "
        "each scope one budget (the most specific scope governs an agent)",
    )


def test_a_window_of_zero_is_refused() -> None:
    """`0h` (or any duration adding up to nothing) is not a window."""
    problem = only_problem(budgets_yaml("  - scope: global\n    limit_tokens: 5\n    window: 0h\n"))
    assert problem == ConfigProblem(
        FILE,
        4,
        "budgets[0].window",
        "'0h' is a window of zero: a window must last at least a minute",
    )


def test_a_window_that_is_no_window_lists_what_is_allowed() -> None:
    """An unknown window word names every form a window may take."""
    problem = only_problem(
        budgets_yaml("  - scope: global\n    limit_tokens: 5\n    window: fortnightly\n")
    )
    assert problem.message == (
        "'fortnightly' is not a window: write a duration (90m, 5h, 7d, 1d12h), daily, weekly, "
        "monthly or fixed"
    )


def test_a_reset_in_the_past_is_refused_against_the_load_time() -> None:
    """reset_at must be ahead of the time the file is loaded (here T0, 12:00 UTC)."""
    text = budgets_yaml(
        "  - scope: global\n    limit_tokens: 5\n    window: fixed\n",
        "    reset_at: 2025-03-01T11:59\n",
    )
    assert only_problem(text) == ConfigProblem(
        FILE,
        5,
        "budgets[0].reset_at",
        "2025-03-01 11:59 UTC is in the past (it is now 2025-03-01 12:00 UTC); give a time "
        "still ahead",
    )
    assert parse(text, now=T0 - timedelta(hours=1)).budgets["global"].window.reset_at


def test_a_rolling_windows_past_reset_only_anchors_it() -> None:
    """A rolling window's reset_at anchors its repetition: once past, the file still loads."""
    text = budgets_yaml(
        "  - scope: global\n    limit_tokens: 5\n    window: 5h\n",
        "    reset_at: 2025-03-01T11:59\n",
    )
    window = parse(text, now=T0).budgets["global"].window
    assert window.kind is WindowKind.ROLLING and window.reset_at is not None


def test_a_ladder_naming_a_model_twice_is_refused() -> None:
    """Each model appears once on a runtime's ladder."""
    problem = only_problem(
        budgets_yaml(
            "  - scope: global\n    limit_tokens: 5\n    window: 5h\n",
            "    ladder:\n      claude: [opus, sonnet, opus]\n",
        )
    )
    assert problem == ConfigProblem(
        FILE,
        6,
        "budgets[0].ladder.claude",
        "model 'opus' is named twice; list each model once, most capable first",
    )


def test_a_ladder_for_an_unknown_runtime_is_refused() -> None:
    """A ladder's runtime is checked against the installed runtimes, with a suggestion."""
    problem = only_problem(
        budgets_yaml(
            "  - scope: global\n    limit_tokens: 5\n    window: 5h\n",
            "    ladder:\n      claud: [opus]\n",
        )
    )
    assert (problem.line, problem.key_path) == (5, "budgets[0].ladder")
    assert problem.message == (
        "unknown runtime 'claud' — did you mean 'claude'? allowed: claude, codex, stub"
    )


def test_a_group_scope_must_name_a_group() -> None:
    """`group:NAME` needs NAME under groups; the known groups are listed."""
    problem = only_problem(
        "groups:\n  backend: {agents: [coder-1]}\n"
        + budgets_yaml("  - scope: group:frontend\n    limit_tokens: 5\n    window: 5h\n")
    )
    assert problem == ConfigProblem(
        FILE, 4, "budgets[0].scope", "unknown group 'frontend'; known groups: backend"
    )


def test_a_scope_that_is_no_scope_says_how_to_write_one() -> None:
    """A scope is global, group:NAME or agent:NAME."""
    problem = only_problem(budgets_yaml("  - scope: team:x\n    limit_tokens: 5\n    window: 5h\n"))
    assert problem == ConfigProblem(
        FILE,
        2,
        "budgets[0].scope",
        "'team:x' is not a scope: write global, group:NAME, agent:NAME, host:NAME, account:NAME or "
        "provider:NAME",
    )


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        (
            "  - scope: global\n    window: 5h\n",
            "a budget needs limit_tokens, limit_usd or both",
        ),
        (
            "  - scope: global\n    limit_tokens: 5\n    window: fixed\n",
            "a fixed window needs reset_at: when it ends, e.g. 2025-04-01T00:00",
        ),
        (
            "  - scope: global\n    limit_tokens: 5\n    window: weekly\n"
            "    reset_at: 2025-04-01\n",
            "a weekly window resets at midnight in `timezone`, so it takes no reset_at: "
            "leave reset_at out, or use window: fixed",
        ),
    ],
    ids=["no limit", "fixed without reset", "calendar with reset"],
)
def test_contradictory_entries_are_refused_at_the_entry(entry: str, message: str) -> None:
    """An entry whose keys contradict each other is reported on the entry's first line."""
    assert only_problem(budgets_yaml(entry)) == ConfigProblem(FILE, 2, "budgets[0]", message)


@pytest.mark.parametrize(
    ("entry", "path", "message"),
    [
        ("limit_tokens: 0", "limit_tokens", "must be greater than 0, found an integer (0)"),
        ("limit_tokens: 1.5", "limit_tokens", "expected a whole number, found a number (1.5)"),
        ("limit_usd: -2.5", "limit_usd", "must be greater than 0, found a number (-2.5)"),
        ("limit_usd: .inf", "limit_usd", "must be a finite number of dollars"),
        ("tolerance: 1.5", "tolerance", "must be at most 1, found a number (1.5)"),
        (
            "confidence: sure",
            "confidence",
            "unknown confidence 'sure'; allowed: provider, user, estimated, unknown",
        ),
        (
            "account: googel",
            "account",
            "unknown account 'googel'; allowed: anthropic, openai",
        ),
        (
            "reset_at: next tuesday",
            "reset_at",
            "'next tuesday' is not a date and time: write ISO 8601, e.g. 2025-04-01T09:00 "
            "(in `timezone`) or 2025-04-01T09:00:00+02:00",
        ),
    ],
)
def test_bad_values_say_what_is_allowed(entry: str, path: str, message: str) -> None:
    """Each key's bad value is reported at its line with what it may be."""
    text = budgets_yaml(f"  - scope: global\n    window: 5h\n    limit_tokens: 5\n    {entry}\n")
    if entry.startswith("limit_tokens"):
        text = budgets_yaml(f"  - scope: global\n    window: 5h\n    {entry}\n")
    problems = problems_of(text)
    assert [(p.key_path, p.message) for p in problems][:1] == [(f"budgets[0].{path}", message)]


def test_group_problems_are_each_reported_where_they_are() -> None:
    """An unknown parent, a cycle of parents and an agent in two groups, each on its line."""
    problems = problems_of(
        "groups:\n"
        "  backend:\n"
        "    parent: fronend\n"
        "    agents: [coder-1]\n"
        "  frontend:\n"
        "    parent: web\n"
        "  web:\n"
        "    parent: frontend\n"
        "    agents: [coder-2, coder-1]\n"
    )
    assert problems == [
        ConfigProblem(
            FILE,
            3,
            "groups.backend.parent",
            "unknown parent group 'fronend' — did you mean 'frontend'? known groups: backend, "
            "frontend, web",
        ),
        ConfigProblem(
            FILE,
            6,
            "groups.frontend.parent",
            "groups form a cycle (frontend → web → frontend): a group cannot be its own ancestor",
        ),
        ConfigProblem(
            FILE,
            9,
            "groups.web.agents[1]",
            "agent 'coder-1' is already in group 'backend' (groups.backend.agents[0] on line 4); "
            "an agent belongs to one group — nest the groups instead",
        ),
    ]


def test_group_names_and_members_are_checked() -> None:
    """Group names fit a scope; members are agent names."""
    problems = problems_of("groups:\n  Back End: {}\n  ok:\n    agents: [Coder_1]\n")
    assert [(p.line, p.key_path, p.message) for p in problems] == [
        (
            2,
            "groups.Back End",
            "group name 'Back End' must be 1-63 lower case letters, digits, '.', '_' or '-', "
            "starting with a letter or digit",
        ),
        (
            4,
            "groups.ok.agents",
            "invalid agent name 'Coder_1': must match [a-z][a-z0-9-]{0,31}",
        ),
    ]


@pytest.mark.parametrize(
    ("pacing", "path", "message"),
    [
        ("tick_seconds: 0", "pacing.tick_seconds", "must be at least 1, found an integer (0)"),
        (
            'report_cron: "0 9 * *"',
            "pacing.report_cron",
            "'0 9 * *' is not a crontab line (a cron expression has 5 fields (minute hour "
            "day-of-month month day-of-week), this one has 4): write five fields, minute "
            'hour day-of-month month day-of-week, e.g. "0 9 * * *" for 09:00 every day',
        ),
        ("max_hold_seconds: 5", "pacing.max_hold_seconds", None),
    ],
)
def test_pacing_settings_are_checked(pacing: str, path: str, message: str | None) -> None:
    """The tick is bounded, the report's cron must parse, and there are only the two keys."""
    problem = only_problem(f"pacing:\n  {pacing}\n")
    assert (problem.line, problem.key_path) == (2, path)
    if message is not None:
        assert problem.message == message
    else:
        assert problem.message.startswith("unknown key 'max_hold_seconds'")


# --- The shared checks ------------------------------------------------------------------------


def test_parse_window_reads_every_form() -> None:
    """Durations are rolling windows; calendar words and fixed are their kinds, in any case."""
    reset = datetime(2025, 4, 1, tzinfo=UTC)
    assert parse_window("90m") == WindowSpec(WindowKind.ROLLING, timedelta(minutes=90))
    assert parse_window("1d12h", reset_at=reset) == WindowSpec(
        WindowKind.ROLLING, timedelta(hours=36), reset
    )
    assert parse_window("Weekly") == WindowSpec(WindowKind.WEEKLY)
    assert parse_window("fixed", reset_at=reset, confidence=Confidence.ESTIMATED) == WindowSpec(
        WindowKind.FIXED, reset_at=reset, confidence=Confidence.ESTIMATED
    )


@pytest.mark.parametrize(
    ("text", "reset", "message"),
    [
        ("0m", False, "'0m' is a window of zero: a window must last at least a minute"),
        ("5hours", False, "'5hours' is not a window: write a duration (90m, 5h, 7d, 1d12h), "),
        ("fixed", False, "a fixed window needs reset_at"),
        ("monthly", True, "a monthly window resets at midnight in the configured timezone"),
    ],
)
def test_parse_window_refuses_with_what_is_allowed(text: str, reset: bool, message: str) -> None:
    """A window of zero, an unknown word, fixed without reset, calendar with one: ValueError."""
    reset_at = datetime(2025, 4, 1, tzinfo=UTC) if reset else None
    with pytest.raises(ValueError) as caught:
        parse_window(text, reset_at=reset_at)
    assert str(caught.value).startswith(message)


def test_ladder_problem_finds_repeats_and_empty_ladders() -> None:
    """A ladder is at least one model, each once."""
    assert ladder_problem(("opus", "sonnet")) is None
    assert ladder_problem(()) == "a ladder needs at least one model"
    assert ladder_problem(("a", "b", "b")) == (
        "model 'b' is named twice; list each model once, most capable first"
    )


def test_contradictions_name_the_field_at_fault() -> None:
    """A Budget built by hand (as `budget set` does) is checked against groups and now."""
    budget = Budget(
        Scope("group", "nope"),
        WindowSpec(WindowKind.FIXED, reset_at=T0 - timedelta(minutes=1)),
        ladder={"claude": ("a", "a")},
        tolerance=2.0,
    )
    found = contradictions(budget, Groups(parents={"backend": None}), T0)
    assert found == [
        ("scope", "unknown group 'nope'; known groups: backend"),
        ("limit_tokens", "give limit_tokens, limit_usd or both"),
        ("tolerance", "must be between 0 and 1, found 2.0"),
        (
            "reset_at",
            "2025-03-01 11:59 UTC is in the past (it is now 2025-03-01 12:00 UTC); give a "
            "time still ahead",
        ),
        ("ladder.claude", "model 'a' is named twice; list each model once, most capable first"),
    ]
    fine = Budget(Scope("global"), WindowSpec(WindowKind.DAILY), limit_tokens=5)
    assert contradictions(fine, Groups(), T0) == []


def test_budgets_with_metering_off_are_refused_not_silently_unenforced() -> None:
    """No silent gaps: with the proxy off nothing could bind a budget."""
    problem = only_problem(
        "metering:\n  enabled: false\n"
        "budgets:\n  - scope: global\n    window: 5h\n    limit_tokens: 100\n"
    )
    assert "no budget could be enforced" in problem.message
    assert "turn metering on, or remove the budgets" in problem.message


def test_a_budget_says_what_happens_when_it_runs_out() -> None:
    """`cutoff` is refuse (default), freeze or stop; anything else names the choices."""
    base = "budgets:\n  - scope: global\n    window: 5h\n    limit_tokens: 100\n"
    assert parse(base).budgets["global"].cutoff is Cutoff.REFUSE
    assert parse(base + "    cutoff: freeze\n").budgets["global"].cutoff is Cutoff.FREEZE
    problem = only_problem(base + "    cutoff: pause\n")
    assert "unknown cutoff 'pause'; allowed: refuse, freeze, stop" in problem.message
