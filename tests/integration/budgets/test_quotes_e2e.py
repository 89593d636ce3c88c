"""Quotes end to end: the real ``fleetwarden run`` with its console, stub agents asking a
model through the real metering proxy, and the strict fake provider. A launch's quote is
kept on its run and is the same before and after the run spends; ``spawn --quote-under``
refuses a launch whose quote is over it, saying the quote and how to go ahead, and starts
one under it; and ten launches at once under a budget their quotes fit three of: three
start, seven wait in the queue, and one starts when a run ends; a run still going holds
again after Fleetwarden restarts."""

from __future__ import annotations

import os
import signal
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.fakes.provider.background import fake_provider_thread
from tests.fakes.provider.server import FAKE_KEY, FakeProvider, Turn
from tests.integration.budgets.priced import MODEL, PRICED_HEAD, USAGE, priced_bot
from tests.integration.console_bot import ConsoleBot, clean_env, stub_processes_in, wait_until

pytestmark = pytest.mark.integration

WORKERS = [f"w{n}" for n in range(10)]
CONFIG = (
    PRICED_HEAD
    + """\
budgets:
  - scope: global
    limit_usd: 3.50
    window: 1d
agents:
  - name: costed
    runtime: stub
    model: {model}
    secret_env: [ANTHROPIC_API_KEY]
  - name: fresh
    runtime: stub
    model: {model}
    secret_env: [ANTHROPIC_API_KEY]
"""
)
WORKER = """\
  - name: {name}
    runtime: stub
    model: {model}
    secret_env: [ANTHROPIC_API_KEY]
    run_budget: {{max_usd: 1.00}}
"""
QUOTE_COLUMNS = "run_id, basis, median_usd, p90_usd, hold_usd, quoted_at"


def rows(state: Path, sql: str, *params: object) -> list[tuple[object, ...]]:
    ledger = sqlite3.connect(state / "ledger.db")
    try:
        return ledger.execute(sql, params).fetchall()
    finally:
        ledger.close()


def usage_of(state: Path, agent: str) -> int:
    return len(rows(state, "SELECT id FROM usage WHERE agent = ?", agent))


Rig = tuple[ConsoleBot, FakeProvider, Path]


@pytest.fixture
def quotes_e2e_rig(tmp_path: Path) -> Iterator[Rig]:
    """The fake provider and a running ``fleetwarden run``; both stopped however it ends."""
    workers = "".join(WORKER.format(name=name, model=MODEL) for name in WORKERS)
    with priced_bot(tmp_path, CONFIG, ("costed", "fresh", *WORKERS), workers) as (bot, fake):
        yield bot, fake, tmp_path / "state"


def one_run(bot: ConsoleBot, fake: FakeProvider, state: Path, spawn: str, said: str) -> str:
    """``spawn`` answered with ``said``; one request; stopped once its usage is recorded.
    What the spawn answered."""
    bot.command(spawn, said)
    answer = bot.output_since_command
    bot.command("send costed ask 1", r"answer 1/1: spent", timeout=30)
    served = len(fake.requests)
    assert wait_until(lambda: usage_of(state, "costed") == served)
    bot.command("stop costed", r"Stopped costed")
    return answer


def test_a_quote_is_kept_on_its_run_and_unchanged_by_it(quotes_e2e_rig: Rig) -> None:
    """The first run is quoted from nothing (nothing held); the second from the first, its
    quote kept on it before it spends and the same after it spent twice as much."""
    bot, fake, state = quotes_e2e_rig
    answer = one_run(bot, fake, state, "spawn costed", r"no history yet")
    assert "Held: nothing is held against its budgets: no history and no cap." in answer
    [first] = rows(state, "SELECT id FROM runs WHERE agent = 'costed'")
    [(first_run, basis, *_)] = rows(state, f"SELECT {QUOTE_COLUMNS} FROM run_quotes")
    assert (first_run, basis) == (first[0], "")

    bot.command("spawn costed", r"from 1 past run\b")
    said = bot.output_since_command
    assert "Held against its budgets until it ends: $0.21 and 30,000 tokens (its p90)." in said
    [second] = rows(state, "SELECT max(id) FROM runs WHERE agent = 'costed'")
    before = rows(state, f"SELECT {QUOTE_COLUMNS} FROM run_quotes WHERE run_id = ?", second[0])
    assert [row[1:5] for row in before] == [(str(first[0]), 0.21, 0.21, 0.21)]
    bot.command("send costed ask 2", r"answer 2/2: spent", timeout=30)
    assert wait_until(lambda: usage_of(state, "costed") == 3)
    bot.command("stop costed", r"Stopped costed")
    after = rows(state, f"SELECT {QUOTE_COLUMNS} FROM run_quotes WHERE run_id = ?", second[0])
    assert after == before
    # `runs` shows each run with what it was quoted.
    bot.command("runs costed", r"The last 2 runs of costed")
    out = bot.output_since_command
    assert "Quote: p90 $0.21 (median $0.21), 30,000 tokens (median 30,000), from 1 past run" in out
    assert "Quote: no earlier run on stub (claude-sonnet-4-5) to reckon from." in out


def test_quote_under_refuses_over_it_saying_how_to_go_ahead_and_starts_under_it(
    quotes_e2e_rig: Rig,
) -> None:
    bot, fake, state = quotes_e2e_rig
    one_run(bot, fake, state, "spawn costed", r"no history yet")
    bot.command("spawn costed --quote-under two", r"not an amount of dollars")
    bot.command("spawn costed --quote-under -1", r"must be more than \$0")
    bot.command("spawn costed --quote-under 0.10", r"not started")
    assert (
        "costed's quote: p90 $0.21 (median $0.21, from 1 past run on stub "
        f"({MODEL})) is over --quote-under $0.10: spawn costed --quote-under 0.25 to start "
        "it at this quote"
    ) in bot.output_since_command
    assert len(rows(state, "SELECT id FROM runs WHERE agent = 'costed'")) == 1
    bot.command("spawn costed --quote-under $0.25", r"from 1 past run\b")
    assert len(rows(state, "SELECT id FROM runs WHERE agent = 'costed'")) == 2
    # No history in dollars: refused with the fix, and the fix starts it.
    bot.command("spawn fresh --quote-under 1", r"cap the run instead")
    assert "fresh has no quote in dollars (no earlier run on stub" in bot.output_since_command
    bot.command("spawn fresh --max-usd 1.00 --quote-under 1.00", r"capped at \$1\.00")
    assert "(its cap)" in bot.output_since_command


def test_ten_launches_under_a_budget_their_quotes_fit_three_of(quotes_e2e_rig: Rig) -> None:
    """Each worker's cap ($1.00) is its quote; global has $3.50: three start, seven wait
    in the queue saying why; stopping one starts the oldest waiting."""
    bot, _, state = quotes_e2e_rig
    for name in WORKERS:
        bot.send(f"spawn {name}")
    bot.expect(r"(?s)(Not started now.*){7}", timeout=60)
    waiting = [entry[0] for entry in rows(state, "SELECT agent FROM spawn_queue ORDER BY id")]
    running = rows(state, "SELECT DISTINCT agent FROM runs WHERE ended_at IS NULL")
    assert (len(waiting), len(running)) == (7, 3)
    assert "$3.00 held by 3 runs + $1.00 quoted > $3.50: waits for a run to end" in bot.stdout
    bot.command("budget", r"global")
    assert "+ $3.00 held by 3 runs" in bot.output_since_command
    stopped = str(running[0][0])
    bot.command(f"stop {stopped}", rf"Stopped {stopped}")
    assert wait_until(lambda: len(rows(state, "SELECT id FROM spawn_queue")) == 6, timeout=30)
    started = rows(state, "SELECT DISTINCT agent FROM runs WHERE ended_at IS NULL")
    assert waiting[0] in {str(row[0]) for row in started} and len(started) == 3


def test_a_run_still_going_holds_again_after_a_restart_of_fleetwarden(tmp_path: Path) -> None:
    """A capped run left running by one ``fleetwarden run`` holds its quote again under
    the next, which reads it from the ledger; its end lets it go."""
    with fake_provider_thread(default=Turn(text="spent", usage=USAGE)) as fake:
        config = tmp_path / "fleetwarden.yaml"
        workers = WORKER.format(name="w0", model=MODEL)
        config.write_text(CONFIG.format(upstream=fake.base_url, model=MODEL) + workers)
        env = clean_env(ANTHROPIC_API_KEY=FAKE_KEY)
        bots = [ConsoleBot(tmp_path, "--config", str(config), env=env)]
        try:
            bots[0].command("spawn w0", r"Held against its budgets until it ends: \$1\.00")
            bots[0].command("budget", r"\+ \$1\.00 held by 1 run /")
            assert bots[0].close() == 0  # the agent runs on
            bots.append(ConsoleBot(tmp_path, "--config", str(config), env=env))
            second = bots[1]
            second.command("budget", r"\+ \$1\.00 held by 1 run /")
            second.command("stop w0", r"Stopped w0")
            second.command("budget", r"global")
            assert "held by" not in second.output_since_command
            assert second.close() == 0
        finally:
            for pid in stub_processes_in(tmp_path / "state" / "agents" / "w0" / "work"):
                os.kill(pid, signal.SIGKILL)
            for bot in bots:
                if bot.proc.poll() is None:
                    bot.kill()
