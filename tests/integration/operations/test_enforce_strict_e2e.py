"""`enforce: strict` through the real ``fleetwarden``: metering off, `sandbox: none` and
`egress: open` each refused by `check-config`, at `fleetwarden run`'s start and by a
`roster reload` typed at the console, naming the agent, the file and line, and the fix; a
reload that turns `enforce` off is refused (a restart changes it); `roster` and the state
it runs in say it is on."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import pytest

from bot.dashboard.pages.pages import Pages
from tests.integration.console_bot import FLEETWARDEN, ConsoleBot, clean_env
from tests.postgres_server import free_port

pytestmark = pytest.mark.integration

STARTUP = 60.0  # the whole app starts before its first answer, on a busy host

HEAD = """\
enforce: {enforce}
state_dir: ./state
connectors:
  console: {{}}
defaults:
  stop_grace_seconds: 1
"""
AGENTS = """\
agents:
  - name: coder
    runtime: stub
"""
# Each loosening as written into the file, and what its refusal must say: the line, the
# key, the agent (or every agent) and the fix.
LOOSENED = {
    "metering": (
        "metering:\n  enabled: false\n" + AGENTS,
        r"fleetwarden\.yaml:8: metering\.enabled: metering is off, which `enforce: strict` "
        r"refuses: agents coder would spend unmetered.*set `metering: \{enabled: true\}`",
    ),
    "sandbox": (
        AGENTS + "    sandbox: none\n",
        r"fleetwarden\.yaml:10: agents\[0\]\.sandbox: agent 'coder' has sandbox: none, which "
        r"`enforce: strict` refuses; set `sandbox: bwrap` for it",
    ),
    "egress": (
        AGENTS + "    egress: open\n",
        r"fleetwarden\.yaml:10: agents\[0\]\.egress: agent 'coder' has egress: open, which "
        r"`enforce: strict` refuses; set `egress: locked` for it",
    ),
}


def _write(path: Path, body: str, enforce: str = "strict") -> Path:
    path.write_text(HEAD.format(enforce=enforce) + body)
    return path


def _fleetwarden(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(FLEETWARDEN), *args],
        cwd=cwd,
        env=clean_env(),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@pytest.mark.parametrize("loosening", sorted(LOOSENED))
def test_strict_refuses_each_loosening_at_start_and_in_check_config(
    tmp_path: Path, loosening: str
) -> None:
    """A strict config with the loosening: check-config and run refuse it on its line, exit 2."""
    body, said = LOOSENED[loosening]
    _write(tmp_path / "fleetwarden.yaml", body)
    for command in ("check-config", "run"):
        done = _fleetwarden(tmp_path, command, "--config", "fleetwarden.yaml")
        assert done.returncode == 2, (command, done.stdout, done.stderr)
        assert "configuration error" in done.stderr
        assert re.search(said, done.stderr), (command, done.stderr)
    assert not (tmp_path / "state" / "ledger.db").exists()  # nothing started


def test_warn_keeps_todays_warnings(tmp_path: Path) -> None:
    """Without `enforce:` the same loosening still passes check-config with a warning."""
    body, _ = LOOSENED["sandbox"]
    config = tmp_path / "fleetwarden.yaml"
    config.write_text(HEAD.format(enforce="warn").replace("enforce: warn\n", "") + body)
    done = _fleetwarden(tmp_path, "check-config", "--config", "fleetwarden.yaml")
    assert done.returncode == 0, done.stderr
    assert "warning: " in done.stdout and "coder" in done.stdout


def test_strict_refuses_each_loosening_at_reload_and_keeps_itself(tmp_path: Path) -> None:
    """A strict fleet refuses a reload bringing each loosening, and one turning enforce off;
    `status`, its JSON and the dashboard's fleet page say enforce is strict."""
    config = tmp_path / "fleetwarden.yaml"
    dashboard = f"dashboard:\n  listen: 127.0.0.1:{free_port()}\n"
    _write(config, AGENTS + dashboard)
    with ConsoleBot(tmp_path, "--config", str(config)) as bot:
        bot.command("roster", r"coder", STARTUP)
        for loosening in sorted(LOOSENED):
            body, said = LOOSENED[loosening]
            _write(config, body + dashboard)
            bot.command("roster reload", r"the roster was not reloaded; nothing changed")
            # The console shows markdown as plain text: no backticks.
            bot.expect(said.replace("`", "").replace(r"fleetwarden\.yaml", r"\S*fleetwarden\.yaml"))
        second = "  - name: second\n    runtime: stub\n"
        _write(config, AGENTS + second + dashboard, enforce="warn")
        bot.command(
            "roster reload",
            r"the roster was not reloaded; nothing changed: enforce is strict since start and "
            r"the file now says warn: restart to change enforce",
        )
        bot.command("roster", r"coder")
        assert "second" not in bot.output_since_command
        _write(config, AGENTS + second + dashboard)
        bot.command("roster reload", r"added: second")

        text = _fleetwarden(tmp_path, "status", "--config", str(config))
        assert text.returncode == 0, text.stderr
        assert (
            "enforce: strict (no agent unmetered, unsandboxed or open to any host)" in text.stdout
        )
        answer = _fleetwarden(tmp_path, "status", "--json", "--config", str(config))
        assert answer.returncode == 0, answer.stderr
        fleet = json.loads(answer.stdout)
        assert fleet["enforce"] == "strict"
        assert "<b>enforce: strict</b>" in Pages().fragment("fleet", fleet)
        assert bot.quit() == 0
