"""A run that pauses at its cap and asks (``cutoff: ask``), end to end: the real
``fleetwarden run`` with its console, a stub agent asking a model through the real metering
proxy, and the fake provider. At its cap the run is frozen and its thread asked once;
``raise NAME +AMOUNT`` lifts the cap and thaws it, and it spends past the old cap; nobody
answering applies the fallback; a restart of Fleetwarden keeps the ask open and
answerable."""

from __future__ import annotations

import os
import signal
import sqlite3
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
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
agents:
  - name: coder
    runtime: stub
    model: {model}
    secret_env: [ANTHROPIC_API_KEY]
    run_budget: {{max_usd: 0.30, cutoff: ask, ask_within: 30m}}
  - name: hasty
    runtime: stub
    model: {model}
    secret_env: [ANTHROPIC_API_KEY]
    run_budget: {{max_tokens: 50000, cutoff: ask, ask_within: 1, then: stop}}
"""
)
ASKED = r"💸 Spend (\w+) — {agent} reached its {cap} cap"
AGENTS = ("coder", "hasty")

Rig = tuple[ConsoleBot, FakeProvider]


def spend_asks(state: Path) -> list[tuple[object, ...]]:
    """Fleetwarden's record of each ask: agent, unit, cap, offer, fallback, outcome, amount."""
    ledger = sqlite3.connect(state / "ledger.db")
    try:
        sql = (
            "SELECT agent, unit, cap, offer, fallback, outcome, amount FROM spend_asks"
            " ORDER BY asked_at"
        )
        return ledger.execute(sql).fetchall()
    finally:
        ledger.close()


def served(state: Path, agent: str) -> int:
    ledger = sqlite3.connect(state / "ledger.db")
    try:
        sql = "SELECT COUNT(*) FROM usage WHERE agent = ? AND outcome = 'ok'"
        return int(ledger.execute(sql, (agent,)).fetchone()[0])
    finally:
        ledger.close()


def kill_agents(tmp_path: Path) -> None:
    for agent in AGENTS:
        for pid in stub_processes_in(tmp_path / "state" / "agents" / agent / "work"):
            os.kill(pid, signal.SIGKILL)


@pytest.fixture
def run_cap_ask_e2e_rig(tmp_path: Path) -> Iterator[Rig]:
    """The fake provider and a running ``fleetwarden run``; both stopped however it ends."""
    with priced_bot(tmp_path, CONFIG, AGENTS) as running:
        yield running


def test_a_run_at_its_cap_is_paused_asked_once_and_raised_by_a_word(
    run_cap_ask_e2e_rig: Rig, tmp_path: Path
) -> None:
    """$0.30 cap at $0.21 a request: two served, the third held — never refused; the run
    is frozen and asked once ("raise coder +$0.30 or stop coder"); `raise coder +$2` lifts
    the cap to $2.30 and thaws it: the held request is served as if its answer had been
    slow, the agent goes on past the old cap, and the ask says who raised it."""
    bot, fake = run_cap_ask_e2e_rig
    state = tmp_path / "state"
    bot.command("spawn coder", r"capped at \$0\.30")
    bot.send("send coder ask 3")
    asked = bot.expect(ASKED.format(agent="coder", cap=r"\$0\.30"), timeout=30)
    bot.expect(r"raise coder \+\$0\.30 or stop coder")
    bot.command("ps", r"frozen: paused at its cap, asking")
    bot.command("runs coder", r"Its run is frozen now: paused at its cap, asking")
    assert len(fake.requests) == 2
    bot.command("pending", asked.group(1))
    bot.command("raise coder +$2", r"Raised coder's cap by \$2\.00 .* to \$2\.30: it goes on")
    bot.expect(r"✅ Raised by .* \(raised by \$2\.00\): it goes on")
    bot.expect(r"answer 3/3: spent", timeout=30)  # the held request, served after all
    assert len(fake.requests) == 3
    bot.command("ps", r"coder\s+stub / \S+\s+running")
    bot.command("send coder ask 2", r"answer 2/2: spent", timeout=30)
    assert len(fake.requests) == 5  # $1.05: past the old cap, under the new one
    assert wait_until(lambda: served(state, "coder") == 5, timeout=10)
    assert spend_asks(state) == [("coder", "usd", 0.3, 0.3, "freeze", "raised", 2.0)]
    assert bot.stdout.count("raise coder +$0.30 or stop coder") == 1  # asked once
    bot.command("raise coder +50k", r"not in tokens: raise it in dollars")
    bot.command("stop coder", r"Stopped coder")


def test_an_unanswered_ask_applies_its_fallback(run_cap_ask_e2e_rig: Rig, tmp_path: Path) -> None:
    """`then: stop` and one second to answer: nobody does, the run is stopped and the ask
    says so; `raise` then finds no capped run."""
    bot, fake = run_cap_ask_e2e_rig
    bot.command("spawn hasty", r"capped at 50,000 tokens")
    bot.send("send hasty ask 3")
    bot.expect(ASKED.format(agent="hasty", cap="50,000 tokens"), timeout=30)
    bot.expect(r"⌛ Nobody answered by .*: it was stopped", timeout=40)
    assert wait_until(lambda: "stopped" in ps(bot, "hasty"), timeout=20)
    assert spend_asks(tmp_path / "state") == [
        ("hasty", "tokens", 50000.0, 50000.0, "stop", "stopped", None)
    ]
    bot.command("raise hasty", r"hasty has no capped run going")
    assert len(fake.requests) == 2


def test_an_open_ask_outlives_a_restart_of_fleetwarden(tmp_path: Path) -> None:
    """Asked under one ``fleetwarden run``, answered under the next: `pending` still lists
    it, and `raise coder` (the offer: the cap again) thaws the run, which is served."""
    with fake_provider_thread(default=Turn(text="spent", usage=USAGE)) as fake:
        config = tmp_path / "fleetwarden.yaml"
        config.write_text(CONFIG.format(upstream=fake.base_url, model=MODEL))
        env = clean_env(ANTHROPIC_API_KEY=FAKE_KEY)
        bots = [ConsoleBot(tmp_path, "--config", str(config), env=env)]
        try:
            first = bots[0]
            first.command("spawn coder", r"capped at \$0\.30")
            first.send("send coder ask 3")
            asked = first.expect(ASKED.format(agent="coder", cap=r"\$0\.30"), timeout=30)
            assert first.close() == 0  # the agent stays, frozen
            bots.append(ConsoleBot(tmp_path, "--config", str(config), env=env))
            second = bots[1]
            second.command("pending", asked.group(1))
            second.command("ps", r"frozen: paused at its cap, asking")
            second.command("raise coder", r"cap by \$0\.30 \(`?\+\$0\.30`?\) to \$0\.60")
            second.command("send coder ask 1", r"answer 1/1: spent", timeout=30)
            assert len(fake.requests) == 3
            second.command("stop coder", r"Stopped coder")
            assert second.close() == 0
        finally:
            kill_agents(tmp_path)
            for bot in bots:
                if bot.proc.poll() is None:
                    bot.kill()
    assert spend_asks(tmp_path / "state") == [("coder", "usd", 0.3, 0.3, "freeze", "raised", 0.3)]


def ps(bot: ConsoleBot, agent: str) -> str:
    bot.command("ps", agent)
    return bot.output_since_command


BUDGET_CONFIG = """\
state_dir: ./state
connectors:
  console: {{}}
providers:
  anthropic:
    upstream: {upstream}
pacing:
  tick_seconds: 600
budgets:
  - scope: agent:spender
    limit_tokens: 50000
    window: 10h
    reset_at: {reset_at}
    cutoff: ask
agents:
  - name: spender
    runtime: stub
    secret_env: [ANTHROPIC_API_KEY]
"""


def test_a_budget_at_its_limit_asks_once_and_a_raise_continues_its_agents(
    tmp_path: Path,
) -> None:
    """`cutoff: ask` on a budget: at its limit its agent is frozen and the operators asked
    once ("raise budget agent:spender +25k"); `raise budget agent:spender +50k` raises the
    limit as `budget set` would, the agent continues and is served past the old limit."""
    state = tmp_path / "state"
    with fake_provider_thread(default=Turn(text="spent", usage=USAGE)) as fake:
        config = tmp_path / "fleetwarden.yaml"
        # Nine hours into its window: 90,000 tokens spent after the raise are under the
        # even-spread line, so the pace holds nothing back, whatever the time of day.
        reset_at = (datetime.now(UTC) + timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
        config.write_text(BUDGET_CONFIG.format(upstream=fake.base_url, reset_at=reset_at))
        bot = ConsoleBot(
            tmp_path, "--config", str(config), env=clean_env(ANTHROPIC_API_KEY=FAKE_KEY)
        )
        try:
            bot.command('spawn spender --prompt "ask 2"', r"Agent spender started")
            bot.expect(r"💸 Spend (\w+) — agent:spender reached its 50,000 tokens limit", 30)
            bot.expect(r"`?raise budget agent:spender \+25k`?, or deny this ask \(❌\) to stop")
            bot.command("ps", r"frozen: paused at agent:spender's limit, asking")
            bot.command("raise budget agent:spender +$5", r"not in dollars")
            bot.command(
                "raise budget agent:spender +50k",
                r"Raised agent:spender's limit by 50,000 tokens to 100,000 tokens",
            )
            bot.command("ps", r"spender\s+stub\s+running")
            bot.command("send spender ask 1", r"answer 1/1: spent", timeout=30)
            assert len(fake.requests) == 3  # 90 000 tokens: past the old limit
            rows = ledger_rows(state, "SELECT agent, outcome, amount FROM spend_asks")
            assert rows == [("budget:agent:spender", "raised", 50000.0)]
            set_by = ledger_rows(state, "SELECT limit_tokens, set_by FROM budgets")
            assert set_by == [(100000, "console on console")]
            assert bot.stdout.count("or deny this ask (❌) to stop its agents") == 1
            bot.command("stop spender", r"Stopped spender")
            assert bot.close() == 0
        finally:
            for pid in stub_processes_in(state / "agents" / "spender" / "work"):
                os.kill(pid, signal.SIGKILL)
            if bot.proc.poll() is None:
                bot.kill()


def ledger_rows(state: Path, sql: str) -> list[tuple[object, ...]]:
    ledger = sqlite3.connect(state / "ledger.db")
    try:
        return ledger.execute(sql).fetchall()
    finally:
        ledger.close()
