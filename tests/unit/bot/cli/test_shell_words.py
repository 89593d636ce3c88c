"""How ``fleetwarden VERB …`` reads its command line: which words go to the orchestrator,
how each argv word reaches the chat grammar whole, and what is printed to a terminal."""

from __future__ import annotations

import pytest

from bot.cli.verbs import shell
from bot.cli.verbs import words as shell_words
from bot.commands.parsing.grammar import Grammar
from bot.commands.specs import COMMANDS


@pytest.mark.parametrize(
    ("words", "taken"),
    [
        (["ps"], True),
        (["--config", "x.yaml", "spawn", "coder"], True),
        (["--config=x.yaml", "stop", "coder", "--json"], True),
        (["tasks"], True),
        (["tasks", "--mission", "m", "--state", "open"], True),
        (["tasks", "--markdown"], False),
        (["tasks", "--json"], False),
        (["tasks", "--csv", "--mission", "m"], False),
        (["tasks", "--out=docs", "--markdown"], False),
        (["tasks", "--markdwon"], False),  # a typo of a register flag: argparse says which
        (["tasks", "--mission=m", "--config", "c.yaml"], True),
        (["status", "--json"], False),
        (["run"], False),
        ([], False),
    ],
)
def test_chat_verbs_go_to_the_orchestrator_and_the_register_stays(
    words: list[str], taken: bool
) -> None:
    """The chat verbs are the orchestrator's; ``tasks`` with a register flag keeps its
    documented forms."""
    assert shell_words.takes(words) is taken


@pytest.mark.parametrize(
    "text",
    ["fix the tests", "it's done", 'say "hi"', "back\\slash", "tab\there", "a'b\"c", "-x"],
)
def test_each_argv_word_reaches_the_grammar_whole(text: str) -> None:
    """An argument with spaces or quotes is one value in the chat grammar, unchanged."""
    line = " ".join(shell._quoted(word) for word in ["spawn", "coder", "--prompt", text])
    command = Grammar(COMMANDS, prefix="!").parse(line, addressed=True)
    assert command is not None and command.flags["prompt"] == text


def test_a_value_starting_with_dashes_goes_joined_to_its_flag() -> None:
    """``--prompt=--x`` (one argv word) gives the flag a value that starts with dashes."""
    line = " ".join(shell._quoted(word) for word in ["spawn", "coder", "--prompt=--x y"])
    command = Grammar(COMMANDS, prefix="!").parse(line, addressed=True)
    assert command is not None and command.flags["prompt"] == "--x y"


def test_options_come_out_and_words_after_a_double_dash_stay() -> None:
    """``--json``, ``--config`` and ``--help`` are the shell's; after ``--`` every word is
    the command's."""
    config, as_json, wants_help, rest = shell._options(
        ["--config", "c.yaml", "send", "coder", "--json", "--", "--json", "--help"]
    )
    assert (str(config), as_json, wants_help) == ("c.yaml", True, False)
    assert rest == ["send", "coder", "--json", "--help"]


def test_agent_text_reaches_a_terminal_shown_never_obeyed() -> None:
    """Escape sequences and other control characters in an answer are printed as escapes."""
    shown = shell._plain("**coder** says \x1b[2J\x1b]0;owned\x07 done\u202e")
    assert "\x1b" not in shown and "\x07" not in shown and "\u202e" not in shown
    assert "\\x1b[2J" in shown and "coder says" in shown
