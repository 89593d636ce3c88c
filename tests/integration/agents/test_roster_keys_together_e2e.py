"""The roster from chat, whole, through the real ``fleetwarden run``: a ``command`` agent
added with its ``argv`` in one `roster add` and spawned, `runtime command argv […]` set in
one `roster set`, each refusal naming the command that works, a refusal citing no line
the file lacks, and `roster remove` of a peer naming the `roster set` that frees it."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import yaml

from tests.integration.console_bot import ROSTER_HEAD, ConsoleBot, clean_env

pytestmark = pytest.mark.integration

ROSTER = """\
# Our agents.
- name: coder   # writes the code
  runtime: stub
  talks_to: [tester]
- name: tester  # checks it
  runtime: stub
  talks_to: [coder]
"""


def started(tmp_path: Path) -> tuple[ConsoleBot, Path]:
    """A running Fleetwarden whose agents live in ``roster.yaml`` (:data:`ROSTER`)."""
    config = tmp_path / "fleetwarden.yaml"
    config.write_text(ROSTER_HEAD.format().removesuffix("agents:\n") + "agents: roster.yaml\n")
    roster = tmp_path / "roster.yaml"
    roster.write_text(ROSTER)
    return ConsoleBot(tmp_path, "--config", str(config), env=clean_env()), roster


def entry(roster: Path, name: str) -> object:
    """Agent ``name``'s entry as the file now holds it."""
    agents = yaml.safe_load(roster.read_text())
    return next(agent for agent in agents if agent["name"] == name)


def test_a_command_agent_added_from_chat_with_its_argv_runs(tmp_path: Path) -> None:
    """`roster add bot --runtime command --argv '[…]'` (JSON) writes both keys with the
    file's comments kept, and `spawn bot` runs that command line."""
    argv = ["python3", "-c", 'print("from", "chat", 6 * 7)']
    bot, roster = started(tmp_path)
    with bot:
        bot.command("help roster add", r"(?s)--argv ARGV.*roster add bot --runtime command --argv")
        bot.command(
            f"roster add bot --runtime command --argv '{json.dumps(argv)}'",
            r"Roster file updated\. .*added: bot\.",
        )
        assert roster.read_text().startswith(ROSTER)
        assert entry(roster, "bot") == {"name": "bot", "runtime": "command", "argv": argv}
        bot.command("roster", r"bot\s+command\s")
        bot.command("spawn bot", r"from chat 42")
        assert bot.close() == 0


def test_runtime_command_and_its_argv_are_one_roster_set(tmp_path: Path) -> None:
    """Each half alone is refused naming the one command that sets both, writing nothing;
    `roster set coder runtime command argv […]` sets both and the agent runs it; going
    back names `argv null` beside the runtime."""
    bot, roster = started(tmp_path)
    with bot:
        bot.command(
            "roster set coder runtime command",
            r"nothing was written: .*give its argv in the same command: "
            r"`?roster set coder runtime command argv \[python3, -m, mybot\]",
        )
        bot.command(
            'roster set coder argv [python3, -c, "print(1)"]',
            r"coder's runtime is 'stub': set both in one command: "
            r'`?roster set coder runtime command argv \[python3, -c, "print\(1\)"\]',
        )
        bot.command(
            "roster add helper --runtime command",
            r"give it with --argv in the same command: "
            r"`?roster add helper --runtime command --argv '\[python3, -m, mybot\]'",
        )
        bot.command(
            "roster set coder runtime command argy [python3]",
            r"unknown agent key 'argy': did you mean 'argv'\?",
        )
        assert roster.read_text() == ROSTER

        bot.command(
            "roster set coder runtime command argv [python3, -c, \"print('set as one', 6 * 7)\"]",
            r"Roster file updated\. .*changed: coder\.",
        )
        assert entry(roster, "coder") == {
            "name": "coder",
            "runtime": "command",
            "talks_to": ["tester"],
            "argv": ["python3", "-c", "print('set as one', 6 * 7)"],
        }
        bot.command("spawn coder", r"set as one 42")
        bot.command("ps", r"coder\s+command\s.*(exited|finished)", timeout=30)

        written = roster.read_bytes()
        bot.command(
            "roster set coder runtime stub",
            r"coder has argv, which only runtime 'command' takes: take it out in the same "
            r"command: `?roster set coder runtime stub argv null",
        )
        assert roster.read_bytes() == written
        bot.command("roster set coder runtime stub argv null", r"changed: coder\.")
        assert roster.read_text() == ROSTER
        assert bot.close() == 0


def test_a_refused_add_cites_no_line_the_file_lacks(tmp_path: Path) -> None:
    """`roster add odd --runtime stubb` is refused at the command's words, not at a line
    of the text that was never written."""
    bot, roster = started(tmp_path)
    with bot:
        bot.command(
            "roster add odd --runtime stubb",
            r"nothing was written: `?roster add odd`?: runtime: unknown runtime 'stubb' — "
            r"did you mean 'stub'\?",
        )
        lines = len(roster.read_text().splitlines())
        cited = [int(n) for n in re.findall(r"roster\.yaml:(\d+)", bot.output_since_command)]
        assert all(n <= lines for n in cited), bot.output_since_command
        assert roster.read_text() == ROSTER
        assert bot.close() == 0


def test_removing_a_peer_names_the_roster_set_that_frees_it(tmp_path: Path) -> None:
    """`roster remove tester` while coder's talks_to names it says which agent names it
    and `roster set coder talks_to null`, which then lets the removal through."""
    bot, roster = started(tmp_path)
    with bot:
        bot.command(
            "roster remove tester",
            r"'tester' is a peer of coder \(named in talks_to\): take it out of the list "
            r"first — `?roster set coder talks_to null`? — then `?roster remove tester",
        )
        assert "the other agents here: none" not in bot.output_since_command
        assert roster.read_text() == ROSTER
        bot.command("roster set coder talks_to null", r"changed: coder\.")
        bot.command("roster remove tester", r"removed: tester\.")
        assert bot.close() == 0
    assert (
        roster.read_text() == "# Our agents.\n- name: coder   # writes the code\n  runtime: stub\n"
    )


def test_a_quoted_value_of_several_words_stays_one_value(tmp_path: Path) -> None:
    """`roster set coder role "reviews model changes"` sets role to the three words, not
    role and model; YAML's own quoting (`'it''s fine'`) reads as YAML reads it."""
    bot, roster = started(tmp_path)
    with bot:
        bot.command('roster set coder role "reviews model changes"', r"changed: coder\.")
        assert entry(roster, "coder") == {
            "name": "coder",
            "runtime": "stub",
            "talks_to": ["tester"],
            "role": "reviews model changes",
        }
        bot.command("roster set coder role 'it''s fine'", r"changed: coder\.")
        assert entry(roster, "coder") == {
            "name": "coder",
            "runtime": "stub",
            "talks_to": ["tester"],
            "role": "it's fine",
        }
        assert bot.close() == 0


def test_a_command_agent_runs_a_program_of_yours_from_a_workdir_of_its_own(
    tmp_path: Path,
) -> None:
    """A command agent runs in its workdir: `--argv '[python3, -c, "print(42)"]'` alone
    prints 42, and `bot.py` is found when `--workdir` names the folder holding it."""
    bot, roster = started(tmp_path)
    (tmp_path / "bot").mkdir()
    (tmp_path / "bot" / "bot.py").write_text('print("bot.py says", 6 * 7)\n')
    with bot:
        bot.command(
            """roster add answer --runtime command --argv '[python3, -c, "print(42)"]'""",
            r"added: answer\.",
        )
        bot.command("spawn answer", r"\b42\b")
        bot.command(
            "roster add bot --runtime command --argv '[python3, -u, bot.py]' --workdir bot",
            r"added: bot\.",
        )
        assert entry(roster, "bot") == {
            "name": "bot",
            "runtime": "command",
            "workdir": "bot",
            "argv": ["python3", "-u", "bot.py"],
        }
        bot.command("spawn bot", r"bot\.py says 42")
        assert bot.close() == 0
