"""A cap on one run's spend, end to end: the real ``fleetwarden run`` with its console, a
stub agent asking a model through the real metering proxy, and the fake provider. A run
spawned with ``--max-tokens`` (or ``--max-usd``, priced) is served until what it spent
reaches the cap — one request past it at most — then refused, and its thread is told
once; ``spawn`` answers with what a run usually costs: "no history yet", then the median
and p90 of the finished runs and their share of the budget's allowance today."""

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

CONFIG = (
    PRICED_HEAD
    + """\
budgets:
  - scope: agent:costed
    limit_tokens: 7000000
    window: 7d
agents:
  - name: capped
    runtime: stub
    model: {model}
    secret_env: [ANTHROPIC_API_KEY]
  - name: costed
    runtime: stub
    model: {model}
    secret_env: [ANTHROPIC_API_KEY]
  - name: stopper
    runtime: stub
    model: {model}
    secret_env: [ANTHROPIC_API_KEY]
    run_budget: {{max_tokens: 50000, cutoff: stop}}
  - name: freezer
    runtime: stub
    model: {model}
    secret_env: [ANTHROPIC_API_KEY]
    run_budget: {{max_tokens: 50000, cutoff: freeze}}
  - name: unpriced
    runtime: stub
    model: claude-haiku-4-5
    secret_env: [ANTHROPIC_API_KEY]
"""
)
TOLD = "run capped at"


def usage_rows(state: Path, agent: str) -> list[tuple[object, ...]]:
    ledger = sqlite3.connect(state / "ledger.db")
    try:
        sql = "SELECT status, outcome, reason FROM usage WHERE agent = ? ORDER BY id"
        return ledger.execute(sql, (agent,)).fetchall()
    finally:
        ledger.close()


Rig = tuple[ConsoleBot, FakeProvider]


@pytest.fixture
def run_budget_e2e_rig(tmp_path: Path) -> Iterator[Rig]:
    """The fake provider and a running ``fleetwarden run``; both stopped however it ends."""
    agents = ("capped", "costed", "stopper", "freezer", "unpriced")
    with priced_bot(tmp_path, CONFIG, agents) as running:
        yield running


def test_a_run_past_its_token_cap_is_refused_within_one_request_and_told_once(
    run_budget_e2e_rig: Rig, tmp_path: Path
) -> None:
    """--max-tokens 50000 at 30 000 a request: two requests served, the rest refused (400,
    never forwarded), the thread told once; the next run is the roster's, uncapped."""
    bot, fake = run_budget_e2e_rig
    bot.command("spawn capped --max-tokens 50k", r"capped at 50,000 tokens")
    assert "no history yet" in bot.output_since_command
    bot.command("send capped ask 4", r"ask 4/4 failed: HTTP Error 400", timeout=30)
    assert len(fake.requests) == 2  # 60 000 tokens: one request past the cap, no more
    bot.expect(TOLD)
    assert wait_until(lambda: len(usage_rows(tmp_path / "state", "capped")) == 4, timeout=10)
    bot.command("send capped ask 1", r"ask 1/1 failed: HTTP Error 400", timeout=30)
    assert len(fake.requests) == 2
    bot.command("ps", r"capped")
    assert bot.stdout.count(f"{TOLD} 50,000 tokens: refused") == 1
    rows = usage_rows(tmp_path / "state", "capped")
    assert [row[:2] for row in rows[:2]] == [(200, "ok"), (200, "ok")]
    assert all(row[:2] == (400, "refused") for row in rows[2:])
    assert "capped at 50,000 tokens" in str(rows[2][2])
    # The cap was this run's: the next one runs as the roster says, uncapped.
    bot.command("stop capped", r"Stopped capped")
    bot.command("spawn capped", r"Usual cost of a run")
    assert "capped at" not in bot.output_since_command
    bot.command("send capped ask 1", r"answer 1/1: spent", timeout=30)
    assert len(fake.requests) == 3


def test_a_run_past_its_dollar_cap_is_refused_and_an_unpriced_model_cannot_be_capped(
    run_budget_e2e_rig: Rig, tmp_path: Path
) -> None:
    """--max-usd 0.30 at $0.21 a request: two served, then refused; --max-usd on a model
    without a price is refused before anything starts, saying how to price it."""
    bot, fake = run_budget_e2e_rig
    bot.command("spawn unpriced --max-usd 1", r"no price")
    assert "prices in the config, or set price_default" in bot.output_since_command
    bot.command("spawn capped --max-usd 0.301", r"at most two decimal places")
    bot.command("spawn capped --max-usd 0.30", r"capped at \$0\.30")
    bot.command("send capped ask 3", r"ask 3/3 failed: HTTP Error 400", timeout=30)
    assert len(fake.requests) == 2
    bot.expect(rf"{TOLD} \$0\.30: refused")
    assert not usage_rows(tmp_path / "state", "unpriced")


def test_a_roster_cap_with_cutoff_stop_stops_the_run_past_it(run_budget_e2e_rig: Rig) -> None:
    """`run_budget: {max_tokens: 50000, cutoff: stop}`: two requests served, the third
    refused, and the agent stopped by its run's cap, which its thread is told."""
    bot, fake = run_budget_e2e_rig
    bot.command("spawn stopper", r"capped at 50,000 tokens")
    bot.send("send stopper ask 3")
    bot.expect(rf"{TOLD} 50,000 tokens: stopped", timeout=30)
    bot.command("ps", r"stopper\s+stub / \S+\s+stopped")
    assert len(fake.requests) == 2


def test_a_roster_cap_with_cutoff_freeze_pauses_the_run_past_it(run_budget_e2e_rig: Rig) -> None:
    """`cutoff: freeze`: past the cap the run is paused (`ps` says why) and its thread told;
    `resume` continues it, its requests still refused."""
    bot, fake = run_budget_e2e_rig
    bot.command("spawn freezer", r"capped at 50,000 tokens")
    bot.send("send freezer ask 3")
    bot.expect(rf"{TOLD} 50,000 tokens: frozen", timeout=30)
    bot.command("ps", r"frozen: its run reached its cap")
    assert len(fake.requests) == 2
    bot.command("resume freezer", r"freezer")
    bot.command("send freezer ask 1", r"ask 1/1 failed: HTTP Error 400", timeout=30)
    assert len(fake.requests) == 2


def test_spawn_tells_what_a_run_usually_costs_after_two_finished_runs(
    run_budget_e2e_rig: Rig, tmp_path: Path
) -> None:
    """No history at first; after two finished runs of one request each: median and p90 of
    30,000 tokens ($0.21), 3% of the 1,000,000 tokens a day of a 7M-a-week budget."""
    bot, fake = run_budget_e2e_rig
    for said in (r"no history yet", r"from 1 past run\b"):
        bot.command("spawn costed", said)
        bot.command("send costed ask 1", r"answer 1/1: spent", timeout=30)
        # The proxy writes usage in batches: the run ends once its request is in the ledger.
        rows = len(fake.requests)
        assert wait_until(lambda rows=rows: len(usage_rows(tmp_path / "state", "costed")) == rows)
        bot.command("stop costed", r"Stopped costed")
    bot.command("spawn costed", r"from 2 past runs")
    out = bot.output_since_command
    assert "median 30,000 tokens ($0.21)" in out
    assert "p90 30,000 tokens ($0.21)" in out
    assert "3.0% (p90 3.0%) of agent:costed's allowance for today (1,000,000 tokens)" in out


def test_a_run_keeps_its_cap_and_its_spend_across_a_restart_of_fleetwarden(
    tmp_path: Path,
) -> None:
    """A capped run that spent past its cap under one ``fleetwarden run`` is refused under
    the next, which reattaches it and reads what it spent from the ledger."""
    with fake_provider_thread(default=Turn(text="spent", usage=USAGE)) as fake:
        config = tmp_path / "fleetwarden.yaml"
        config.write_text(CONFIG.format(upstream=fake.base_url, model=MODEL))
        env = clean_env(ANTHROPIC_API_KEY=FAKE_KEY)
        bots = [ConsoleBot(tmp_path, "--config", str(config), env=env)]
        try:
            first = bots[0]
            first.command("spawn capped --max-tokens 50k", r"capped at 50,000 tokens")
            first.command("send capped ask 2", r"answer 2/2: spent", timeout=30)
            assert first.close() == 0  # the agent runs on
            bots.append(ConsoleBot(tmp_path, "--config", str(config), env=env))
            second = bots[1]
            second.command("ps", r"capped\s+stub")
            second.command("send capped ask 1", r"ask 1/1 failed: HTTP Error 400", timeout=30)
            second.expect(f"{TOLD} 50,000 tokens: refused")
            assert len(fake.requests) == 2
            second.command("stop capped", r"Stopped capped")
            assert second.close() == 0
        finally:
            for pid in stub_processes_in(tmp_path / "state" / "agents" / "capped" / "work"):
                os.kill(pid, signal.SIGKILL)
            for bot in bots:
                if bot.proc.poll() is None:
                    bot.kill()
