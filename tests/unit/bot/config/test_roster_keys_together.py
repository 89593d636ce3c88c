"""Keys that only go together set in one roster edit (bot/config/roster/pairs.py,
coherence.py) and a refusal's place named where the file has it (located.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.config.checks.problems import ConfigProblem
from bot.config.roster.edit import (
    AGENT_KEYS,
    AddAgent,
    RemoveAgent,
    RosterEditError,
    SetKey,
    SetKeys,
    edit_text,
)
from bot.config.roster.located import relocated
from bot.config.roster.pairs import PairsError, key_values

ROSTER = """\
# Our agents.
- name: coder   # writes the code
  runtime: stub
  talks_to: [tester]
- name: tester
  runtime: stub
  talks_to: [coder, lead]
- name: lead
  runtime: stub
  talks_to: [tester]
- name: bot
  runtime: command
  argv: [python3, bot.py]
"""


@pytest.mark.parametrize(
    ("text", "pairs"),
    [
        ("gpt-5", (("model", "gpt-5"),)),
        ("reviews the PRs", (("model", "reviews the PRs"),)),
        ("[Read, Edit]", (("model", "[Read, Edit]"),)),
        ("it's fine", (("model", "it's fine"),)),
        (
            'command argv [python3, -c, "print(1)"]',
            (("model", "command"), ("argv", '[python3, -c, "print(1)"]')),
        ),
        (
            '"two words" role "a b" allow [Read]',
            (("model", '"two words"'), ("role", '"a b"'), ("allow", "[Read]")),
        ),
        ("{A: '1'} autostart true", (("model", "{A: '1'}"), ("autostart", "true"))),
    ],
)
def test_the_words_of_roster_set_are_one_value_or_key_value_pairs(
    text: str, pairs: tuple[tuple[str, str], ...]
) -> None:
    """Pairs when every second item is a key; otherwise the whole text is one value."""
    assert key_values("model", text, AGENT_KEYS) == pairs


@pytest.mark.parametrize(
    ("text", "said"),
    [
        ("command argy [x]", "unknown agent key 'argy': did you mean 'argv'?"),
        ("command runtime stub", "runtime is given twice"),
        ("command argv [python3, x", "a quote or bracket is left open"),
    ],
)
def test_pairs_typed_wrong_are_refused_with_the_fix(text: str, said: str) -> None:
    """A misspelt key, a key given twice or a bracket left open among pairs is refused."""
    with pytest.raises(PairsError, match=said):
        key_values("runtime", text, AGENT_KEYS)


def test_runtime_command_and_its_argv_are_set_as_one_edit() -> None:
    """`roster set coder runtime command argv [...]` writes both keys."""
    pairs = (("runtime", "command"), ("argv", "[python3, -u, bot.py]"))
    made = edit_text(ROSTER, SetKeys("coder", pairs), under_agents=False)
    assert made.startswith(
        "# Our agents.\n- name: coder   # writes the code\n  runtime: command\n"
        "  talks_to: [tester]\n  argv: [python3, -u, bot.py]\n- name: tester\n"
    )


def test_roster_add_takes_argv_as_yaml_or_json() -> None:
    """`roster add NAME --runtime command --argv '[…]'`: the list lands as a flow list."""
    edit = AddAgent("new", {"runtime": "command"}, {"argv": '["python3", "-u", "bot.py"]'})
    made = edit_text(ROSTER, edit, under_agents=False)
    assert made.endswith("- name: new\n  runtime: command\n  argv: [python3, -u, bot.py]\n")


@pytest.mark.parametrize(
    ("edit", "said"),
    [
        (
            SetKey("coder", "runtime", "command"),
            "give its argv in the same command: `roster set coder runtime command argv [",
        ),
        (
            SetKey("coder", "argv", "[python3, x.py]"),
            "coder's runtime is 'stub': set both in one command: "
            "`roster set coder runtime command argv [python3, x.py]`",
        ),
        (
            SetKey("bot", "runtime", "stub"),
            "bot has argv, which only runtime 'command' takes: take it out in the same "
            "command: `roster set bot runtime stub argv null`",
        ),
        (SetKey("bot", "argv", "null"), "`roster set bot runtime R argv null`"),
        (SetKey("bot", "argv", "python3"), "argv is the command line as a list"),
        (SetKey("bot", "argv", "[head, -n, 5]"), "quote a number or true/false"),
        (SetKey("bot", "argv", "['', x]"), "argv[0], the program to run, is empty"),
        (
            AddAgent("new", {"runtime": "command"}),
            "give it with --argv in the same command: "
            "`roster add new --runtime command --argv '[python3, -m, mybot]'`",
        ),
        (
            AddAgent("new", {"runtime": "stub"}, {"argv": "[a]"}),
            "--argv is only for runtime 'command', and new's runtime is 'stub'",
        ),
        (
            RemoveAgent("coder"),
            "'coder' is a peer of tester (named in talks_to): take it out of the list first "
            "— `roster set tester talks_to [lead]` — then `roster remove coder`",
        ),
        (
            RemoveAgent("tester"),
            "'tester' is a peer of coder and lead (named in talks_to): take it out of their "
            "lists first — `roster set coder talks_to null`; `roster set lead talks_to null`",
        ),
    ],
)
def test_keys_left_at_odds_are_refused_naming_the_command_that_works(
    edit: AddAgent | SetKey | RemoveAgent, said: str
) -> None:
    """Each refusal of an edit that leaves runtime and argv at odds, or a peer naming an
    agent removed, names the one command that does it."""
    with pytest.raises(RosterEditError) as refused:
        edit_text(ROSTER, edit, under_agents=False)
    assert said in str(refused.value)


def test_a_problem_is_cited_at_a_line_the_file_has_or_at_the_command() -> None:
    """A problem on a line the edit kept names that line in the file as it is; one on a
    line the edit wrote names the command instead."""
    target = Path("/srv/roster.yaml")
    old = "- name: a\n  runtime: stub\n"
    new = "- name: z\n  runtime: stub\n- name: a\n  runtime: stub\n- name: b\n  runtime: stbu\n"
    kept = ConfigProblem(str(target), 4, "agents[1].runtime", "x")
    assert relocated(kept, target, old, new, "roster add b") == kept._replace(line=2)
    written = ConfigProblem(str(target), 6, "agents[2].runtime", "unknown runtime 'stbu'")
    said = relocated(written, target, old, new, "roster add b")
    assert str(said) == "`roster add b`: runtime: unknown runtime 'stbu'"
    other = ConfigProblem("/srv/fleetwarden.yaml", 9, "state_dir", "y")
    assert relocated(other, target, old, new, "roster add b") == other
