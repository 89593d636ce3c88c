"""Tests for bot.render.fleet: fleet facts in, markdown out."""

from __future__ import annotations

import re
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from bot.render import fleet as render
from fleet.budgets.model import Transition
from fleet.events import EventKind, FleetEvent
from fleet.ledger import UsageTotal
from fleet.ledger.records.budgets import Step
from fleet.metering.counting.events import Tokens
from fleet.model import AgentState
from fleet.names import AgentName
from fleet.supervisor.fleet import AgentStatus

NOW = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)


def status(name: str = "coder-1", **changes: object) -> AgentStatus:
    fields: dict[str, object] = {
        "name": AgentName(name),
        "runtime": "stub",
        "backend": "subprocess",
        "model": None,
        "state": AgentState.RUNNING,
        "reason": "pid 4242",
        "pid": 4242,
        "started_at": NOW - timedelta(minutes=3, seconds=5),
        "ended_at": None,
        "exit_code": None,
        "last_activity": NOW - timedelta(seconds=42),
    }
    fields.update(changes)
    return AgentStatus(**fields)  # type: ignore[arg-type]


def table_rows(markdown: str) -> list[list[str]]:
    """The body cells of the first GFM table in ``markdown``."""
    lines = [line for line in markdown.splitlines() if line.startswith("|")]
    return [[cell.strip() for cell in line.strip("|").split("|")] for line in lines[2:]]


@pytest.mark.parametrize(
    ("seconds", "expected"),
    [
        (0, "0s"),
        (59, "59s"),
        (59.9, "59s"),
        (60, "1m00s"),
        (185, "3m05s"),
        (3599, "59m59s"),
        (3600, "1h00m"),
        (2 * 3600 + 7 * 60 + 30, "2h07m"),
        (86399, "23h59m"),
        (86400, "1d00h"),
        (3 * 86400 + 4 * 3600 + 59, "3d04h"),
        (-5, "0s"),
    ],
)
def test_duration_boundaries(seconds: float, expected: str) -> None:
    """Durations show the two largest units, switching unit exactly at 60 s, 1 h and 1 d."""
    assert render.duration(seconds) == expected


def test_ago_of_none_is_a_dash() -> None:
    """An unknown time shows as a dash rather than a duration."""
    assert render.ago(None, NOW) == "–"
    assert render.ago(NOW - timedelta(seconds=90), NOW) == "1m30s ago"


def test_ps_of_no_agents_says_how_to_start_one() -> None:
    """An empty fleet renders a sentence pointing at spawn, not an empty table."""
    text = render.ps([], NOW)
    assert "No agents yet" in text
    assert "spawn" in text
    assert "|" not in text


def test_ps_shows_a_live_agent_with_pid_uptime_and_activity() -> None:
    """A running agent's row has runtime/model, state, pid, uptime, heartbeat age, activity."""
    text = render.ps(
        [
            status(
                model="opus",
                last_heartbeat=NOW - timedelta(seconds=7),
                tokens_today=12345,
                egress_refused=3,
            )
        ],
        NOW,
    )
    assert text.splitlines()[0] == (
        "| name | runtime | state | pid | uptime | heartbeat | last activity | tokens today "
        "| cost today | egress refused |"
    )
    assert table_rows(text) == [
        [
            "coder-1",
            "stub / opus",
            "running",
            "4242",
            "3m05s",
            "7s ago",
            "42s ago",
            "12.3k",
            "–",
            "3",
        ],
    ]


def test_ps_reports_drift_without_touching_it() -> None:
    """Sessions on our tmux server that no agent accounts for are listed as drift."""
    text = render.ps([status()], NOW, drift=["stray"])
    assert "Drift: stray" in text and "left running" in text


def test_ps_shows_an_ended_agent_with_its_exit_code_and_no_pid() -> None:
    """An ended agent's state carries its exit code; pid and uptime are dashes."""
    ended = status(
        "docs",
        state=AgentState.FAILED,
        pid=None,
        ended_at=NOW - timedelta(minutes=1),
        exit_code=3,
        last_activity=None,
    )
    assert table_rows(render.ps([ended], NOW)) == [
        ["docs", "stub", "failed (3)", "–", "–", "–", "–", "–", "–", "–"],
    ]


def test_ps_counts_live_agents_in_its_summary() -> None:
    """The summary line counts running agents out of all agents."""
    ended = status("docs", state=AgentState.STOPPED, pid=None, exit_code=0)
    text = render.ps([status(), ended], NOW)
    assert len(table_rows(text)) == 2
    assert text.endswith("1 of 2 agents running")
    assert render.ps([status()], NOW).endswith("1 of 1 agent running")


def test_ps_ended_agent_without_exit_code_shows_bare_state() -> None:
    """An ended agent whose exit status is unknown shows its state without parentheses."""
    ended = status(state=AgentState.FAILED, pid=None, exit_code=None)
    assert table_rows(render.ps([ended], NOW))[0][2] == "failed"


def test_table_escapes_pipes_and_newlines_in_cells() -> None:
    """A pipe or newline inside a cell cannot break the table's structure."""
    text = render.table(["a", "b"], [["x|y", "two\nlines"]])
    assert text.splitlines()[2] == "| x\\|y | two lines |"


def test_code_block_uses_a_plain_fence_for_plain_content() -> None:
    """Content without backticks gets a three-backtick fence with the info string."""
    assert render.code_block(["hello"]) == "```text\nhello\n```"


@pytest.mark.parametrize("content", ["```", "````", "see ```python``` here", "``````"])
def test_code_block_fence_is_longer_than_any_backtick_run_in_the_content(content: str) -> None:
    """The fence is longer than every backtick run inside, so the content can never close it."""
    block = render.code_block(["before", content, "after"])
    lines = block.splitlines()
    fence = lines[-1]
    longest = max(len(run) for run in re.findall(r"`+", content))
    assert set(fence) == {"`"}
    assert len(fence) > longest
    assert lines[0] == fence + "text"
    assert lines[1:-1] == ["before", content, "after"]


def test_spawned_reports_the_new_process_and_its_pid() -> None:
    """A fresh spawn names the agent, runtime and the launched pid — even once the status
    no longer has one (the run ended in its first moments)."""
    assert render.spawned(status(), started=True) == "Agent **coder-1** started (stub), pid 4242."
    ended = replace(status(), pid=None)
    assert (
        render.spawned(ended, started=True, pid=77) == "Agent **coder-1** started (stub), pid 77."
    )


def test_spawned_of_an_already_running_agent_says_so_and_points_at_restart() -> None:
    """Spawning a live agent reports its state and pid and suggests restart instead."""
    text = render.spawned(status(), started=False)
    assert text == (
        "**coder-1** is already running, pid 4242 — not starting a second one. "
        "Use `restart coder-1` to relaunch it."
    )


def test_logs_with_no_output_says_so() -> None:
    """An agent that has written nothing gets a sentence, not an empty block."""
    assert render.logs("coder-1", [], 40) == "**coder-1** has written no output yet."


def test_logs_hints_at_more_only_when_the_request_was_filled() -> None:
    """The --lines hint appears when as many lines as requested came back, not fewer."""
    full = render.logs("coder-1", ["a", "b"], 2)
    short = render.logs("coder-1", ["a"], 40)
    assert "--lines N" in full
    assert full.startswith("Last 2 lines of **coder-1**")
    assert "--lines N" not in short
    assert short.startswith("Last 1 line of **coder-1**:")


def test_ps_shows_zero_tokens_for_an_agent_without_usage_today() -> None:
    """An agent that made no model request today shows 0, not a dash."""
    assert table_rows(render.ps([status(tokens_today=0)], NOW))[0][-3] == "0"


@pytest.mark.parametrize(
    ("tokens", "expected"),
    [
        (None, "–"),
        (0, "0"),
        (999, "999"),
        (1000, "1k"),
        (1049, "1k"),
        (1050, "1.1k"),
        (12345, "12.3k"),
        (999_949, "999.9k"),
        (999_950, "1M"),
        (1_234_567, "1.2M"),
        (999_950_000, "1G"),
        (4_200_000_000, "4.2G"),
    ],
)
def test_compact_token_counts(tokens: int | None, expected: str) -> None:
    """Token counts show as k, M and G with one decimal at most, switching before 1000.0."""
    assert render.compact(tokens) == expected


@pytest.mark.parametrize(
    ("usd", "expected"),
    [
        (None, "—"),
        (0.0, "$0.00"),
        (0.0059, "$0.0059"),
        (0.0123, "$0.01"),
        (0.135, "$0.14"),
        (0.99994, "$1.00"),
        (12.345, "$12.35"),
    ],
)
def test_money(usd: float | None, expected: str) -> None:
    """Costs are cents from a cent up, two significant digits below one (fleet.metering.units);
    unpriced is an em dash."""
    assert render.money(usd) == expected


def total(agent: str = "coder-1", **changes: object) -> UsageTotal:
    fields: dict[str, object] = {
        "agent": agent,
        "provider": "anthropic",
        "model": "claude-sonnet-4",
        "requests": 3,
        "tokens": Tokens(input=1200, output=300, cache_read=5000, cache_write=100, reasoning=50),
        "cost_usd": 0.0123,
        "unpriced": 0,
        "partial": 0,
        "unmetered": 0,
        "errors": 0,
        "refused": 0,
    }
    fields.update(changes)
    return UsageTotal(**fields)  # type: ignore[arg-type]


SINCE = datetime(2025, 3, 1, 0, 0, tzinfo=UTC)


def test_usage_is_a_table_per_agent_and_model_with_a_totals_row() -> None:
    """Each agent/model row shows requests, the four token kinds, total and cost; the
    totals row sums them, cost over the priced rows only."""
    totals = [
        total(),
        total(
            provider="openai",
            model="gpt-5",
            requests=2,
            tokens=Tokens(input=10, output=20),
            cost_usd=None,
            unpriced=2,
        ),
        total("docs", requests=1, tokens=Tokens(input=1_000_000), cost_usd=3.0),
    ]
    text = render.usage(totals, window="today", since=SINCE)
    assert text.startswith("Token use today (since 2025-03-01 00:00 UTC):\n\n")
    assert (
        "| agent | model | requests | input | output | cache read | cache write | total | cost |"
        in (text)
    )
    assert table_rows(text) == [
        [
            "coder-1",
            "claude-sonnet-4 (anthropic)",
            "3",
            "1,200",
            "300",
            "5,000",
            "100",
            "6,600",
            "$0.01",
        ],
        ["coder-1", "gpt-5 (openai)", "2", "10", "20", "0", "0", "30", "—"],
        [
            "docs",
            "claude-sonnet-4 (anthropic)",
            "1",
            "1,000,000",
            "0",
            "0",
            "0",
            "1,000,000",
            "$3.00",
        ],
        ["**total**", "", "6", "1,001,210", "320", "5,000", "100", "1,006,630", "$3.01"],
    ]
    assert text.endswith("Tokens only: no price configured for gpt-5.")
    assert "Of these requests" not in text


def test_usage_with_nothing_priced_shows_dashes_for_cost() -> None:
    """When no row has a price the totals row's cost is a dash too, not $0."""
    text = render.usage([total(cost_usd=None, unpriced=3)], window="7d", since=SINCE)
    assert [row[-1] for row in table_rows(text)] == ["—", "—"]
    assert text.startswith("Token use in the last 7 days (since 2025-03-01 00:00 UTC):")


def test_usage_counts_requests_whose_tokens_are_incomplete() -> None:
    """Partial, unmetered, refused and failed requests are counted in one line, non-zero
    counts only, summed over the rows."""
    totals = [
        total(partial=2, refused=1),
        total("ghost", provider="", model="?", requests=4, tokens=Tokens(), refused=4),
    ]
    text = render.usage(totals, window="5h", since=SINCE, agent=None)
    assert (
        "Of these requests: 2 cut short (tokens as far as they went); 5 refused by the proxy."
        in text.splitlines()
    )
    assert table_rows(text)[1][:3] == ["ghost", "?", "4"]
    every = render.usage(
        [total(partial=1, unmetered=2, refused=3, errors=4)], window="5h", since=SINCE
    )
    assert every.endswith(
        "Of these requests: 1 cut short (tokens as far as they went); 2 unmetered (no usage in "
        "the answer); 3 refused by the proxy; 4 failed (provider error or unreachable)."
    )


def test_usage_of_one_agent_names_it() -> None:
    """A report for one agent says whose it is."""
    text = render.usage([total()], window="30d", since=SINCE, agent="coder-1")
    assert text.startswith(
        "Token use in the last 30 days (since 2025-03-01 00:00 UTC) by **coder-1**:"
    )


def test_usage_without_requests_says_so() -> None:
    """An empty report is a sentence: for everyone, for a known agent, for an unknown name."""
    assert render.usage([], window="today", since=SINCE) == (
        "No model requests recorded today (since 2025-03-01 00:00 UTC)."
    )
    assert render.usage([], window="5h", since=SINCE, agent="coder-1", known=True) == (
        "**coder-1** made no model requests in the last 5 hours (since 2025-03-01 00:00 UTC)."
    )
    assert render.usage([], window="today", since=SINCE, agent="nobody", known=False) == (
        "No agent is called `nobody` and no usage is recorded for that name today. "
        "`ps` lists the agents."
    )


@pytest.mark.parametrize(
    ("kind", "state", "tone"),
    [
        ("ended", AgentState.EXITED, "ok"),
        ("ended", AgentState.FAILED, "error"),
        ("stalled", AgentState.RUNNING, "warning"),
        ("restarted", AgentState.RUNNING, "warning"),
        ("gave up", AgentState.FAILED, "error"),
        ("reattached", AgentState.RUNNING, "info"),
    ],
)
def test_each_fleet_event_has_a_tone(kind: str, state: AgentState, tone: str) -> None:
    event = FleetEvent(AgentName("demo"), EventKind(kind), state, "why", by_operator=False)
    assert render.fleet_event_tone(event) == tone


@pytest.mark.parametrize(
    ("before", "after", "tone"),
    [
        (Step.NONE, Step.DOWNGRADE, "warning"),
        (Step.DOWNGRADE, Step.QUEUE, "warning"),
        (Step.QUEUE, Step.REFUSE, "error"),
        (Step.REFUSE, Step.NONE, "ok"),
        (Step.QUEUE, Step.DOWNGRADE, "ok"),
    ],
)
def test_a_step_up_the_ladder_warns_and_down_reassures(
    before: Step, after: Step, tone: str
) -> None:
    transition = Transition("global", ("demo",), before, after, "moved")
    assert transition.tone == tone


def test_ps_shows_what_an_agents_tokens_today_cost() -> None:
    """Beside its tokens today, an agent's row shows their priced cost; a dash when unpriced."""
    rows = table_rows(render.ps([status(tokens_today=42, usd_today=0.0002)], NOW))
    assert rows[0][-3:-1] == ["42", "$0.0002"]
    assert table_rows(render.ps([status(tokens_today=42)], NOW))[0][-2] == "–"
