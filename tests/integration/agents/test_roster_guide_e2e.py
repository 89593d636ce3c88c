"""The command agents of docs/operations.md's "Growing the roster from chat", taken from the
guide and typed as written into the real ``fleetwarden run``: each one spawned finishes, and
shows the output the guide says it shows."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

from tests.integration.console_bot import ROSTER_HEAD, ConsoleBot, clean_env

pytestmark = pytest.mark.integration

GUIDE = Path(__file__).resolve().parents[3] / "docs" / "operations.md"
_FENCE = re.compile(
    r"^```(?P<lang>\w*)\n(?P<body>.*?)^```\n(?P<after>.*?)(?=^```|^## |\Z)", re.M | re.S
)


def section() -> str:
    """The guide's "Growing the roster from chat", up to the next heading."""
    text = GUIDE.read_text()
    start = text.index("## Growing the roster from chat")
    return text[start : text.index("\n## ", start + 1) + 1]


def test_the_guides_command_agents_run_as_written(tmp_path: Path) -> None:
    """Every `spawn` block of the section, after its shell steps, finishes its agent and
    shows the `> OUTPUT` its paragraph quotes."""
    blocks = list(_FENCE.finditer(section()))
    spawns = [b for b in blocks if b["lang"] == "text" and "\nspawn " in "\n" + b["body"]]
    assert len(spawns) >= 2, "the guide no longer shows a command agent spawned"
    config = tmp_path / "fleetwarden.yaml"
    config.write_text(ROSTER_HEAD.format().removesuffix("agents:\n") + "agents: roster.yaml\n")
    (tmp_path / "roster.yaml").write_text("# Our agents.\n- name: coder\n  runtime: stub\n")
    for block in blocks:  # the steps a reader takes in roster-demo before chat (bot/bot.py)
        if block["lang"] == "sh" and "run.sh" not in block["body"]:
            subprocess.run(["sh", "-c", block["body"]], cwd=tmp_path, check=True, timeout=30)
    bot = ConsoleBot(tmp_path, "--config", str(config), env=clean_env())
    with bot:
        for block in spawns:
            shown = re.findall(r"`> ([^`]+)`", block["after"])
            assert shown, f"the guide says nothing of what {block['body']!r} shows"
            for line in block["body"].splitlines():
                if line.startswith("spawn "):
                    name = line.split()[1]
                    ended = bot.command(line, rf"(✅ {name} finished|❌ {name} failed)[^\n]*")
                    assert ended[1].startswith("✅"), bot.output_since_command
                    for output in shown:
                        assert f"> {output}" in bot.output_since_command
                else:
                    bot.command(line, r"Roster file updated\. ")
        assert bot.close() == 0
