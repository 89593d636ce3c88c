"""The emergency levers end to end: the real ``fleetwarden run`` on its console, three
sandboxed stub agents. ``freeze all`` names them and waits; ``yes`` pauses every process
(frozen in its control group, or stopped: state T), which the watchdog leaves alone;
``resume all`` continues them; a ``yes`` after the deadline does nothing; ``stop all`` +
``yes`` stops them all and nothing restarts them; the audit trail has each step."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from tests.integration.console_bot import ConsoleBot, pid_alive, stub_processes_in, wait_until
from tests.integration.paused import pauses

pytestmark = pytest.mark.integration

AGENTS = ("alpha", "beta", "gamma")
CONFIG = """\
state_dir: ./state
connectors:
  console: {}
defaults:
  stop_grace_seconds: 20
  heartbeat_timeout_seconds: 2.0
  watchdog_interval_seconds: 5.0
agents:
  - name: alpha
    runtime: stub
    env: {FLEETWARDEN_HEARTBEAT_INTERVAL: "0.5"}
    restart: always
  - name: beta
    runtime: stub
    env: {FLEETWARDEN_HEARTBEAT_INTERVAL: "0.5"}
    restart: on-failure
  - name: gamma
    runtime: stub
    env: {FLEETWARDEN_HEARTBEAT_INTERVAL: "0.5"}
"""


def ledger_rows(state: Path, sql: str) -> list[tuple[object, ...]]:
    ledger = sqlite3.connect(state / "ledger.db", timeout=10)
    try:
        with ledger:
            return ledger.execute(sql).fetchall()
    finally:
        ledger.close()


def test_freeze_all_resume_all_and_stop_all_on_confirmation(tmp_path: Path) -> None:
    """The levers act on every agent only after the admin's `yes`, never on a late one."""
    state = tmp_path / "state"
    config = tmp_path / "fleetwarden.yaml"
    config.write_text(CONFIG)
    bot = ConsoleBot(tmp_path, "--config", str(config))
    try:
        pids: list[int] = []
        for name in AGENTS:
            bot.command(f'spawn {name} --prompt "count to 2"', rf"Agent {name} started")
            work = state / "agents" / name / "work"
            assert wait_until(lambda work=work: bool(stub_processes_in(work)), timeout=20)
            pids += stub_processes_in(work)
        runs = "SELECT agent, count(*) FROM runs GROUP BY agent ORDER BY agent"
        assert ledger_rows(state, runs) == [(name, 1) for name in AGENTS]

        # freeze all asks, naming them, and does nothing until `yes`.
        bot.command("freeze all", r"Reply yes here within 60 s")
        assert "would pause 3 agents now: alpha, beta, gamma." in bot.output_since_command
        assert True not in pauses(pids)
        bot.command("yes", r"Froze 3 agents: alpha, beta, gamma\.")
        assert wait_until(lambda: pauses(pids) == {True}, timeout=10)
        frozen = ledger_rows(state, "SELECT agent, frozen_by, budget FROM freezes ORDER BY agent")
        assert frozen == [(name, "console", "") for name in AGENTS]
        bot.command("ps", r"gamma")
        assert bot.output_since_command.count("frozen: by console: no reason given") == 3
        # Frozen is silent: the watchdog (5 s sweep, 2 s heartbeat timeout) restarts none.
        assert not wait_until(
            lambda: ledger_rows(state, runs) != [(name, 1) for name in AGENTS], timeout=7
        )
        assert pauses(pids) == {True}

        # resume all continues every one, and says whose freeze it lifted.
        bot.command("resume all", r"Resumed 3 agents")
        assert "It had been frozen by console" in bot.output_since_command
        assert wait_until(lambda: True not in pauses(pids), timeout=10)
        assert ledger_rows(state, "SELECT count(*) FROM freezes") == [(0,)]

        # A `yes` after the deadline does nothing (the question's time moved 2 min back).
        bot.command("freeze all", r"Reply yes here within 60 s")
        ledger_rows(
            state,
            "UPDATE confirmations SET asked_at = asked_at - 120, expires_at = expires_at - 120",
        )
        bot.command("yes", r"too late: freeze all waited 60 s for your reply")
        assert "nothing was done" in bot.output_since_command
        assert not wait_until(lambda: True in pauses(pids), timeout=1)
        assert ledger_rows(state, "SELECT count(*) FROM freezes") == [(0,)]

        # One agent frozen by hand, with a reason.
        gamma = stub_processes_in(state / "agents" / "gamma" / "work")
        bot.command('freeze gamma --reason "odd pushes"', r"Froze gamma")
        assert wait_until(lambda: pauses(gamma) == {True}, timeout=10)
        bot.command("ps", r"gamma")
        assert "frozen: by console: odd pushes" in bot.output_since_command

        # A frozen agent cannot heed SIGTERM: `stop` kills it at once, not after the 20 s
        # grace (thawing it, or the kill would wait), and its freeze ends with its run.
        bot.command("stop gamma", r"Stopped gamma", timeout=10)
        assert wait_until(lambda: not any(pid_alive(pid) for pid in gamma), timeout=10)
        assert ledger_rows(state, "SELECT count(*) FROM freezes") == [(0,)]

        # stop all asks, then stops every agent; the watchdog restarts none of them.
        bot.command("stop all", r"Reply yes here within 60 s")
        assert "would stop 2 agents now: alpha, beta." in bot.output_since_command
        bot.command("yes", r"Stopped 2 agents: alpha, beta\.", timeout=15)
        assert wait_until(lambda: not any(pid_alive(pid) for pid in pids), timeout=10)
        agents = "SELECT name, state, desired_state FROM agents ORDER BY name"
        assert ledger_rows(state, agents) == [(name, "stopped", "stopped") for name in AGENTS]
        assert ledger_rows(state, "SELECT count(*) FROM freezes") == [(0,)]
        assert not wait_until(
            lambda: ledger_rows(state, runs) != [(name, 1) for name in AGENTS], timeout=7
        )

        audit = ledger_rows(
            state, "SELECT text, command, outcome, detail, source FROM audit ORDER BY id"
        )
        levers = [row for row in audit if row[1] in ("freeze", "resume", "stop")]
        assert [(text, command, outcome) for text, command, outcome, _, _ in levers] == [
            ("freeze all", "freeze", "ok"),
            ("yes", "freeze", "ok"),
            ("resume all", "resume", "ok"),
            ("freeze all", "freeze", "ok"),
            ("yes", "freeze", "error"),
            ('freeze gamma --reason "odd pushes"', "freeze", "ok"),
            ("stop gamma", "stop", "ok"),
            ("stop all", "stop", "ok"),
            ("yes", "stop", "ok"),
        ]
        details = [detail for _, _, _, detail, _ in levers]
        assert details[1] == "froze alpha, beta, gamma"
        assert details[2] == "resumed alpha, beta, gamma"
        assert details[5] == "froze gamma"
        assert details[8] == "stopped alpha, beta"
        sources = [source for _, _, _, _, source in levers]
        assert sources[0] == "typed" and str(sources[1]).startswith("confirmation:")
        assert str(sources[4]).startswith("confirmation:") and sources[4] != sources[1]
        assert bot.close() == 0
    finally:
        if bot.proc.poll() is None:
            bot.kill()
