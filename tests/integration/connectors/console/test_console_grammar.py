"""At the real ``fleetwarden run`` console, commands as people type them: a task's flags
after its title, a multi-word ``--prompt`` refused with it quoted, and a mistyped agent
name or subcommand answered with the one meant, for the commands that lacked it."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.integration.console_bot import ROSTER_HEAD, ConsoleBot

pytestmark = pytest.mark.integration

ROSTER = ROSTER_HEAD.format() + "  - name: coder\n    runtime: stub\n"


def test_commands_are_read_as_people_type_them(tmp_path: Path) -> None:
    """`task new TITLE --agent A` makes the task for A; `spawn … --prompt count to 3` says to
    quote it; `raise`, `resume`, `usage` of `codr` and `task nwe`, `report chnages` name
    what was meant. Nothing is started."""
    (tmp_path / "fleet.yaml").write_text(ROSTER)
    with ConsoleBot(tmp_path, "--config", "fleet.yaml") as bot:
        bot.command("whoami", r"You are console on console")
        bot.command("task new Fix the login --agent coder", r"Task #1 fix-the-login made")
        bot.command("task 1", r"agent coder")
        bot.command(
            "spawn coder --prompt count to 3",
            r"spawn: unexpected argument 'to' — quote it: --prompt \"count to 3\" — usage:",
        )
        for typed in ("raise codr", "resume codr", "usage codr"):
            bot.command(typed, r"no agent is called 'codr' — did you mean 'coder'\? ps lists them")
        bot.command("task nwe", r"no task 'nwe': .* — or did you mean task new\?")
        bot.command("report chnages", r"did you mean 'report changes'\?")
        bot.command("ps", r"No agents yet")
        assert bot.quit() == 0
