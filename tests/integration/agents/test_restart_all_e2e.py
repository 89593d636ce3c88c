"""``restart all`` end to end: the real ``fleetwarden run`` on its console, two stub agents
idle (their prompt done, waiting for input) and a ``command`` agent kept busy (running, as
the fleet's state says). ``restart all`` names them and waits for ``yes``; then it restarts
the idle ones one at a time — the second stopped only once the first was back — skips the
busy one, saying so, and lists both; ``restart all --force`` restarts the busy one too;
``--only idle`` restarts only the idle ones; the audit has each step. The restarts go on
beside the room: ``ps`` is answered meanwhile. A frozen agent is left alone and named, even
with ``--force``."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.integration.agents.test_levers_e2e import ledger_rows
from tests.integration.console_bot import ConsoleBot, wait_until

pytestmark = pytest.mark.integration

CONFIG = """\
state_dir: ./state
connectors:
  console: {}
defaults:
  stop_grace_seconds: 5
  heartbeat_timeout_seconds: 30
  watchdog_interval_seconds: 5
agents:
  - name: alpha
    runtime: stub
    prompt: count to 2
    env: {FLEETWARDEN_HEARTBEAT_INTERVAL: "0.2"}
  - name: beta
    runtime: stub
    prompt: count to 2
    env: {FLEETWARDEN_HEARTBEAT_INTERVAL: "0.2"}
  - name: busy
    runtime: command
    argv: [sh, -c, "trap '' TERM; while :; do echo working; sleep 0.2; done"]
"""
AGENTS = ("alpha", "beta", "busy")
STATES = "SELECT name, state FROM agents ORDER BY name"
RUNS = "SELECT agent, count(*) FROM runs GROUP BY agent ORDER BY agent"


def _runs(state: Path, agent: str) -> list[tuple[float, float | None]]:
    sql = f"SELECT started_at, ended_at FROM runs WHERE agent = '{agent}' ORDER BY id"
    return [(float(s), None if e is None else float(e)) for s, e in ledger_rows(state, sql)]


def _settled(state: Path) -> bool:
    """alpha and beta idle, busy running."""
    return ledger_rows(state, STATES) == [("alpha", "idle"), ("beta", "idle"), ("busy", "running")]


def test_restart_all_skips_the_agent_mid_turn_and_restarts_the_others_one_at_a_time(
    tmp_path: Path,
) -> None:
    """`restart all` + `yes` restarts the idle agents one after the other (each back before
    the next stops), skips and names the one mid-turn; `--force` restarts it too;
    `--only idle` leaves it; every step is audited."""
    state = tmp_path / "state"
    config = tmp_path / "fleetwarden.yaml"
    config.write_text(CONFIG)
    with ConsoleBot(tmp_path, "--config", str(config)) as bot:
        for name in AGENTS:
            bot.command(f"spawn {name}", rf"Agent {name} started")
        assert wait_until(lambda: _settled(state), timeout=30), ledger_rows(state, STATES)

        bot.command("restart all", r"Reply yes here within 60 s")
        assert "would restart 3 agents one at a time: alpha, beta, busy" in (
            bot.output_since_command
        )
        assert ledger_rows(state, RUNS) == [(name, 1) for name in AGENTS]  # nothing yet
        bot.command("yes", r"Restarting 3 agents one at a time: alpha, beta, busy\.")
        bot.expect(r"Restarted 2 agents: alpha, beta\.", timeout=60)
        bot.expect(r"Skipped: busy \(mid-turn; --force restarts it too\)\.")
        assert ledger_rows(state, RUNS) == [("alpha", 2), ("beta", 2), ("busy", 1)]
        (_, alpha_ended), (alpha_again, _) = _runs(state, "alpha")
        (_, beta_ended), (beta_again, _) = _runs(state, "beta")
        assert alpha_ended is not None and beta_ended is not None
        assert alpha_ended <= alpha_again <= beta_ended <= beta_again  # one at a time

        assert wait_until(lambda: _settled(state), timeout=30), ledger_rows(state, STATES)
        bot.command("restart all --only idle", r"Reply yes here within 60 s")
        assert "(only those idle when their turn comes)" in bot.output_since_command
        bot.command("yes", r"Restarted 2 agents: alpha, beta\.", timeout=60)
        bot.expect(r"Skipped: busy \(running, not idle\)\.")

        assert wait_until(lambda: _settled(state), timeout=30), ledger_rows(state, STATES)
        bot.command("restart all --force", r"Reply yes here within 60 s")
        bot.command("yes", r"Restarting 3 agents one at a time")
        # busy heeds no SIGTERM: its restart waits out the stop's grace, the room does not
        bot.command("ps", r"busy")
        assert "Restarted" not in bot.output_since_command
        bot.expect(r"Restarted 3 agents: alpha, beta, busy\.", timeout=60)
        assert "Skipped" not in bot.output_since_command
        assert ledger_rows(state, RUNS) == [("alpha", 4), ("beta", 4), ("busy", 2)]

        bot.command(
            "restart alpha --force", r"--force and --only go with restart all, not restart alpha"
        )
        audit = ledger_rows(state, "SELECT text, command, outcome, detail FROM audit ORDER BY id")
        restarts = [row for row in audit if row[1] == "restart"]
        assert [(text, outcome) for text, _, outcome, _ in restarts] == [
            ("restart all", "ok"),
            ("yes", "ok"),
            ("restart all", "ok"),  # its summary, once done
            ("restart all --only idle", "ok"),
            ("yes", "ok"),
            ("restart all --only idle", "ok"),
            ("restart all --force", "ok"),
            ("yes", "ok"),
            ("restart all --force", "ok"),
            ("restart alpha --force", "error"),
        ]
        assert restarts[1][3] == "restarting alpha, beta, busy"
        assert (
            restarts[2][3]
            == "restarted alpha, beta; skipped busy (mid-turn; `--force` restarts it too)"
        )
        assert restarts[8][3] == "restarted alpha, beta, busy"
        assert bot.quit() == 0, bot.stderr


def test_restart_all_leaves_a_frozen_agent_alone_even_with_force(tmp_path: Path) -> None:
    """An agent an admin froze is named with why in the question and the answer and never
    restarted, `--force` or not: its freeze and its run stay; the others are restarted."""
    state = tmp_path / "state"
    config = tmp_path / "fleetwarden.yaml"
    config.write_text(CONFIG)
    with ConsoleBot(tmp_path, "--config", str(config)) as bot:
        for name in AGENTS:
            bot.command(f"spawn {name}", rf"Agent {name} started")
        assert wait_until(lambda: _settled(state), timeout=30), ledger_rows(state, STATES)
        bot.command('freeze alpha --reason "hold on"', r"Froze \**alpha")

        bot.command("restart all --force", r"Reply yes here within 60 s")
        asked = bot.output_since_command
        assert "would restart 2 agents one at a time: beta, busy." in asked
        assert "Left alone, frozen: alpha (frozen: by console: hold on)" in asked
        bot.command("yes", r"Restarting 2 agents one at a time: beta, busy\.")
        bot.expect(r"Left alone, frozen: alpha \(frozen: by console: hold on\)")
        bot.expect(r"Restarted 2 agents: beta, busy\.", timeout=60)
        assert ledger_rows(state, RUNS) == [("alpha", 1), ("beta", 2), ("busy", 2)]
        assert ledger_rows(state, "SELECT agent FROM freezes") == [("alpha",)]
        bot.command("resume alpha", r"alpha")
        assert bot.quit() == 0, bot.stderr


def test_stop_all_cancels_a_restart_all_under_way(tmp_path: Path) -> None:
    """`stop all` typed while `restart all` is under way (its last agent heeds no SIGTERM
    and the grace is long) says it cancels the restarts, and on `yes` cancels them and
    stops every agent; the restarts' summary is never posted, their cancel is audited."""
    state = tmp_path / "state"
    config = tmp_path / "fleetwarden.yaml"
    config.write_text(CONFIG.replace("stop_grace_seconds: 5", "stop_grace_seconds: 60"))
    with ConsoleBot(tmp_path, "--config", str(config)) as bot:
        for name in AGENTS:
            bot.command(f"spawn {name}", rf"Agent {name} started")
        assert wait_until(lambda: _settled(state), timeout=30), ledger_rows(state, STATES)
        bot.command("restart all --force", r"Reply yes here within 60 s")
        bot.command("yes", r"Restarting 3 agents one at a time")

        bot.command("stop all --force", r"Reply yes here within 60 s")
        assert "It first cancels the restart all under way." in bot.output_since_command
        bot.command("yes", r"Cancelled the restart all under way; it had restarted")
        assert re.search(r"Stopped \d agents?:", bot.output_since_command)
        assert wait_until(
            lambda: all(
                s not in ("running", "idle", "starting") for _, s in ledger_rows(state, STATES)
            ),
            timeout=30,
        ), ledger_rows(state, STATES)
        audit = ledger_rows(state, "SELECT outcome, detail FROM audit WHERE command = 'restart'")
        assert any(o == "error" and d.startswith("cancelled; restarted") for o, d in audit), audit
        assert "Restarted" not in bot.stdout
        assert bot.quit() == 0, bot.stderr
