"""One liveness rule on every surface: the real ``fleetwarden run`` with its dashboard, real
agents whose last heartbeat is ten minutes old — one waiting for input (tmux), one
``command`` program that only prints, one quiet within a long ``heartbeat_timeout`` — and
one that really stalls. Chat ``ps``, ``/api/fleet`` (through ``fleetwarden status``), the
fleet page in Chromium and ``/metrics`` all say what the watchdog says: the first three are
healthy, the last is stalled."""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from bot.app.assembly import tmux_socket_name
from tests.integration.console_bot import (
    FLEETWARDEN,
    ConsoleBot,
    clean_env,
    processes_where,
    wait_until,
)
from tests.integration.dashboard_rig import LINK, browser, need_chromium, sign_in
from tests.postgres_server import free_port

pytestmark = pytest.mark.integration

BEAT = """\
import json, os, sys, time, urllib.request
def beat(state):
    request = urllib.request.Request(
        os.environ["FLEETWARDEN_HEARTBEAT_URL"],
        data=json.dumps({"state": state}).encode(),
        headers={"X-Fleetwarden-Token": os.environ["FLEETWARDEN_HEARTBEAT_TOKEN"],
                 "Content-Type": "application/json"},
        method="POST",
    )
    urllib.request.build_opener(urllib.request.ProxyHandler({})).open(request, timeout=10).close()
"""
WAITS = (
    BEAT
    + """\
beat("waiting")
print("waiting for input", flush=True)
for line in sys.stdin:
    print("got", line.strip(), flush=True)
"""
)
PRINTS = (
    BEAT
    + """\
beat("working")
while True:
    print("still printing", flush=True)
    time.sleep(0.5)
"""
)
QUIET = (
    BEAT
    + """\
beat("working")
print("thinking quietly", flush=True)
while True:
    time.sleep(60)
"""
)
HEALTHY = {"idle": "idle", "printer": "running", "patient": "running"}
CONFIG = """\
state_dir: ./state
connectors:
  console: {{user_id: alice}}
operators:
  - {{id: alice, role: admin, connector: console}}
defaults:
  stop_grace_seconds: 1
  watchdog_interval_seconds: 5
dashboard:
  listen: 127.0.0.1:{port}
agents:
{agents}"""


def _agent(name: str, code: str, root: Path, extra: str = "") -> str:
    argv = json.dumps([sys.executable, "-I", "-c", code, str(root)])
    return (
        f"  - name: {name}\n    runtime: command\n    argv: {argv}\n"
        f"    workdir: ./work-{name}\n    restart: never\n{extra}"
    )


@dataclass
class Fleet:
    root: Path
    bot: ConsoleBot
    config: Path

    @property
    def ledger(self) -> Path:
        return self.root / "state" / "ledger.db"

    def beaten(self, *names: str) -> bool:
        with contextlib.closing(sqlite3.connect(self.ledger, timeout=10)) as db:
            rows = db.execute("SELECT DISTINCT agent FROM heartbeats").fetchall()
        return set(names) <= {row[0] for row in rows}

    def age_heartbeats(self, seconds: float) -> None:
        """Every heartbeat so far, made ``seconds`` older (as if the agents had beaten then)."""
        with contextlib.closing(sqlite3.connect(self.ledger, timeout=10)) as db:
            db.execute("UPDATE heartbeats SET at = at - ?", (seconds,))
            db.commit()

    def status(self, *args: str) -> str:
        done = subprocess.run(
            [str(FLEETWARDEN), "status", *args, "--config", str(self.config)],
            cwd=self.root,
            env=self.bot.env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert done.returncode == 0, done.stderr
        return done.stdout


@pytest.fixture
def everywhere_fleet(tmp_path: Path) -> Iterator[Fleet]:
    need_chromium()
    agents = (
        _agent("idle", WAITS, tmp_path, "    backend: tmux\n")
        + _agent("printer", PRINTS, tmp_path)
        + _agent("patient", QUIET, tmp_path, "    heartbeat_timeout: 3600\n")
        + _agent("staller", QUIET, tmp_path, "    heartbeat_timeout: 2\n")
    )
    for name in (*HEALTHY, "staller"):
        (tmp_path / f"work-{name}").mkdir()
    config = tmp_path / "fleetwarden.yaml"
    config.write_text(CONFIG.format(port=free_port(), agents=agents))
    bot = ConsoleBot(tmp_path, "--config", str(config), env=clean_env())
    try:
        yield Fleet(tmp_path, bot, config)
    finally:
        if bot.proc.poll() is None:
            bot.kill()
        marker = str(tmp_path).encode()
        for pid in processes_where(lambda cwd, cmdline: marker in cmdline):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)  # agents outlive Fleetwarden by design
        subprocess.run(
            ["tmux", "-L", tmux_socket_name(tmp_path / "state"), "kill-server"],
            capture_output=True,
            timeout=10,
        )


def _ps_states(bot: ConsoleBot) -> dict[str, str]:
    bot.command("ps", r"\d+ of \d+ agents running")
    return dict(re.findall(r"^(\S+) +command +(\S+) ", bot.output_since_command, re.M))


def test_idle_printing_and_patient_agents_are_healthy_everywhere_a_stalled_one_is_not(
    everywhere_fleet: Fleet,
) -> None:
    """Heartbeats ten minutes old: an agent waiting for input, a program that only prints
    and one within its hour-long timeout are healthy on chat `ps`, `/api/fleet`,
    `fleetwarden status`, the fleet page and `/metrics`; one silent past its own timeout
    is stalled on each of them."""
    bot = everywhere_fleet.bot
    for name in HEALTHY:
        bot.command(f"spawn {name}", rf"Agent {name} started", timeout=30)
    assert wait_until(lambda: everywhere_fleet.beaten(*HEALTHY), timeout=30), bot.stdout[-2000:]
    assert wait_until(lambda: _ps_states(bot) == HEALTHY, 30, 0.5), bot.stdout[-3000:]
    everywhere_fleet.age_heartbeats(600)
    # Spawned after the ageing: once it is seen stalled, a sweep has judged the aged beats.
    bot.command("spawn staller", r"Agent staller started", timeout=30)
    bot.expect(r"Agent staller stalled", timeout=60)
    # On a busy machine its first beat can come after its 2 s: stalled from its start, then
    # running on that beat, then stalled for good (it says nothing more for a minute).
    stalled = {**HEALTHY, "staller": "stalled"}
    assert wait_until(lambda: _ps_states(bot) == stalled, 30, 0.5), bot.stdout[-3000:]

    api = json.loads(everywhere_fleet.status("fleet", "--json"))
    rows = {agent["name"]: agent for agent in api["agents"]}
    for name, state in HEALTHY.items():
        assert rows[name]["state"] == state and rows[name]["problems"] == [], rows[name]
        assert rows[name]["heartbeat_age_seconds"] >= 600  # old, and still no problem
    assert rows["staller"]["state"] == "stalled"
    assert [p.split(":")[0] for p in rows["staller"]["problems"]] == ["stalled"], rows["staller"]
    assert api["totals"]["with_problems"] == 1
    table = everywhere_fleet.status("fleet")
    assert "4 agents, 1 with problems" in table, table

    with browser() as chromium:
        context = chromium.new_context()
        page = context.new_page()
        sign_in(page, bot.command("dashboard", LINK.pattern).group(1))
        for name in (*HEALTHY, "staller"):
            page.wait_for_selector(f'tr[data-agent="{name}"]', timeout=5000)
        marked = page.eval_on_selector_all(
            "tr[data-agent]",
            "rows => rows.map(r => [r.dataset.agent, r.classList.contains('problem')])",
        )
        assert dict(marked) == {**dict.fromkeys(HEALTHY, False), "staller": True}
        status, text = page.evaluate(
            "fetch('/metrics').then(async r => [r.status, await r.text()])"
        )
        assert status == 200, text
        metrics: Any = text_string_to_metric_families(text)
        context.close()
    counted = {
        sample.labels["state"]: sample.value
        for family in metrics
        if family.name == "fleetwarden_agents"
        for sample in family.samples
    }
    assert counted == {"idle": 1, "running": 2, "stalled": 1}, counted
