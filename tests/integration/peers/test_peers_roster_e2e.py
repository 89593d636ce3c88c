"""The peer roster at launch, through the real ``fleetwarden run`` (sandboxed as agents are
by default): a stub `coder` with a prompt, whose log shows its comms block before its
prompt and whose HOME holds `.fleetwarden/PEERS.md`; a `reader` (the `command` runtime, no
prompt) that prints its own PEERS.md when asked — read as the agent, in its sandbox — and
sees it written again when its peer `coder` ends; `roster` shows the roles and peers."""

from __future__ import annotations

import os
import shutil
import signal
import sys
from pathlib import Path

import pytest

from tests.integration.console_bot import (
    ConsoleBot,
    clean_env,
    processes_where,
    stub_processes_in,
    wait_until,
)

pytestmark = pytest.mark.integration

ROOT = Path(__file__).parents[3]
SCRIPT = "reader.py"
READER = """\
import os, sys

path = os.path.join(os.environ["HOME"], ".fleetwarden", "PEERS.md")
print("reader: up", flush=True)
for line in sys.stdin:
    if line.strip() == "peers":
        try:
            with open(path, encoding="utf-8") as file:
                for row in file.read().splitlines():
                    print("reader: " + row, flush=True)
        except OSError as exc:
            print("reader: cannot read:", exc, flush=True)
        print("reader: end", flush=True)
    elif line.strip() == "exit":
        break
"""
CONFIG = """\
state_dir: ./state
connectors:
  console: {{}}
defaults:
  stop_grace_seconds: 1
  sandbox: {sandbox}
agents:
  - name: coder
    runtime: stub
    prompt: count to 2
    role: writes the payments service
    talks_to: [reader, tester]
  - name: reader
    runtime: command
    argv: [{python}, -I, {script}]
    workdir: ./reader-work
    role: reads its peers file
    talks_to: [coder]
  - name: tester
    runtime: stub
"""
HEADER = "[fleetwarden] You are agent {} on host local."


def test_agents_are_told_their_peers_at_launch_and_when_a_peer_ends(tmp_path: Path) -> None:
    (tmp_path / "reader-work").mkdir()
    (tmp_path / "reader-work" / SCRIPT).write_text(READER)
    config = tmp_path / "fleetwarden.yaml"
    sandbox = "bwrap" if shutil.which("bwrap") else "none"
    config.write_text(CONFIG.format(sandbox=sandbox, python=sys.executable, script=SCRIPT))
    agents = tmp_path / "state" / "agents"
    coder_file = agents / "coder" / "home" / ".fleetwarden" / "PEERS.md"
    reader_file = agents / "reader" / "home" / ".fleetwarden" / "PEERS.md"
    coder_log, reader_log = agents / "coder" / "output.log", agents / "reader" / "output.log"

    def lines(path: Path) -> list[str]:
        return path.read_text(encoding="utf-8").splitlines() if path.exists() else []

    def reads(count: int) -> list[str]:
        """What the reader printed of its file, up to its ``count``-th read."""
        assert wait_until(lambda: lines(reader_log).count("reader: end") >= count, 20), (
            reader_log.read_text()
        )
        said = [
            row for row in lines(reader_log) if row.startswith("reader: ") and row != "reader: up"
        ]
        ends = [i for i, row in enumerate(said) if row == "reader: end"]
        start = ends[count - 2] + 1 if count > 1 else 0
        return said[start : ends[count - 1]]

    bot = ConsoleBot(tmp_path, "--config", str(config), env=clean_env(PYTHONPATH=str(ROOT)))
    try:
        bot.command("spawn coder", r"Agent coder started")
        assert wait_until(lambda: "stub: done" in lines(coder_log), 20), coder_log.read_text()
        told = coder_log.read_text(encoding="utf-8").split("stub: working on: ", 1)[1]
        assert told.startswith(HEADER.format("coder") + "\n")
        assert told.index("Your peers (the agents you may message):") < told.index("count to 2")
        assert "stub: 2" in lines(coder_log)  # its own prompt, read after the block
        written = lines(coder_file)
        assert written[0] == HEADER.format("coder")
        assert "- reader on host local (command) — not running: reads its peers file" in written
        assert "- tester on host local (stub) — not running" in written
        assert "To answer, flip the frame's names: the sender in its header is whom you " in (
            coder_file.read_text()
        )

        bot.command("spawn reader", r"Agent reader started")
        # coder's file is written again now that its peer is live, and stays its user's.
        live = "- reader on host local (command) — live: reads its peers file"
        assert wait_until(lambda: live in lines(coder_file), 10), coder_file.read_text()
        home = coder_file.parents[1]
        assert coder_file.stat().st_uid == home.stat().st_uid

        bot.send("send reader peers")
        first = reads(1)
        assert first[0] == "reader: " + HEADER.format("reader")
        assert "reader: - coder on host local (stub) — live: writes the payments service" in first
        assert "reader: cannot read" not in "\n".join(first)

        bot.command("stop coder", r"Stopped coder")
        gone = "- coder on host local (stub) — not running: writes the payments service"
        assert wait_until(lambda: gone in lines(reader_file), 10), reader_file.read_text()
        bot.send("send reader peers")
        assert "reader: " + gone in reads(2)  # read by the agent itself, in its sandbox

        # The table's own header and the row's end: reader's relayed output, which may
        # still arrive now, says "reads its peers file" too.
        bot.command("roster", r"autostart[^\n]*talks to")
        bot.expect(r"reader, tester")
        assert "writes the payments service" in bot.output_since_command
        bot.command("stop reader", r"Stopped reader")
        assert bot.close() == 0, bot.stderr
    finally:
        if bot.proc.poll() is None:
            bot.kill()
        for pid in [
            *stub_processes_in(agents / "coder" / "work"),
            *processes_where(
                lambda cwd, cmdline: cwd.startswith(str(tmp_path)) and SCRIPT.encode() in cmdline
            ),
        ]:
            os.kill(pid, signal.SIGKILL)  # agents outlive Fleetwarden by design
    assert "Traceback" not in bot.stdout + bot.stderr
