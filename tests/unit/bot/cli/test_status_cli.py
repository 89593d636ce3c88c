"""``fleetwarden status`` says in one line why it cannot read the fleet: the dashboard off,
no token yet, nobody listening; and prints the fleet as a table, problems first."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from bot.cli.status.command import EXIT_CONFIG, StatusError, fetch, fleet_text
from bot.config import Config
from bot.config.reading.load import parse_config


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_status_needs_the_dashboard_a_token_and_a_running_orchestrator(tmp_path: Path) -> None:
    """Each missing piece is named, with what to do."""
    off = parse_config("", "f.yaml", base_dir=tmp_path, source=tmp_path / "f.yaml")
    with pytest.raises(StatusError, match=r"the dashboard is off in .*f\.yaml") as refused:
        fetch(off, {}, "fleet", None)
    assert refused.value.code == EXIT_CONFIG
    assert "dashboard: {}" in str(refused.value)
    port = closed_port()
    on = parse_config(
        f"state_dir: ./state\ndashboard: {{listen: 127.0.0.1:{port}}}\n",
        "f.yaml",
        base_dir=tmp_path,
    )
    with pytest.raises(StatusError, match="has not run with its dashboard on here yet"):
        fetch(on, {}, "fleet", None)
    (tmp_path / "state").mkdir()
    (tmp_path / "state" / "dashboard-status-token").write_text("t" * 43 + "\n")
    with pytest.raises(StatusError, match=r"cannot reach the dashboard at \S+/dashboard\.sock"):
        fetch(on, {}, "fleet", None)
    with pytest.raises(StatusError, match="needs the agent's name"):
        fetch(on, {}, "agent", None)


def test_status_without_a_config_says_none_was_read_and_how_to_pass_it(tmp_path: Path) -> None:
    """The embedded default (no --config, no FLEETWARDEN_CONFIG): not "the dashboard is
    off", but that no config was read, and --config and the variable."""
    with pytest.raises(StatusError) as refused:
        fetch(Config.default(tmp_path), {}, "fleet", None)
    said = str(refused.value)
    assert refused.value.code == EXIT_CONFIG
    assert said.startswith("no config file was read")
    assert "--config PATH" in said and "FLEETWARDEN_CONFIG" in said
    assert "dashboard is off" not in said


def test_the_fleet_table_lists_every_agent_with_its_problems() -> None:
    """The table's columns, and a problem said in full."""
    text = fleet_text(
        {
            "totals": {"agents": 2, "with_problems": 1, "tokens_today": 10, "cost_today_usd": 1.5},
            "agents": [
                {
                    "name": "coder-2",
                    "host": "box",
                    "state": "unknown",
                    "heartbeat_age_seconds": None,
                    "model": None,
                    "tokens_today": 0,
                    "cost_today_usd": 0.0,
                    "problems": ["host box down: unreachable"],
                },
                {
                    "name": "coder-1",
                    "host": "local",
                    "state": "running",
                    "heartbeat_age_seconds": 2.4,
                    "model": "m",
                    "tokens_today": 10,
                    "cost_today_usd": 1.5,
                    "problems": [],
                },
            ],
        }
    )
    lines = text.splitlines()
    assert lines[0] == "2 agents, 1 with problems; 10 tokens and $1.50 today"
    heads = ["agent", "host", "state", "beat", "model", "tokens", "cost", "problems"]
    assert lines[2].split() == heads  # the console's plain table, after a blank line
    assert lines[4].split()[:3] == ["coder-2", "box", "unknown"]
    assert lines[4].endswith("host box down: unreachable")
    assert lines[5].split()[3] == "2s"
