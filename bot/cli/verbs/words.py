"""Which words ``fleetwarden`` hands to the shell (:mod:`bot.cli.verbs.shell`): a chat verb for the
running orchestrator, told apart from the command line's own commands before anything heavy
is loaded."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final

from bot.cli.parsing import past_config

VERBS: Final = (
    "spawn",
    "stop",
    "restart",
    "send",
    "ps",
    "runs",
    "task",
    "tasks",
    "mission",
    "budget",
    "approve",
    "deny",
)
"""The chat commands ``fleetwarden`` runs from a shell."""
CHAT_TASKS_OPTIONS: Final = ("--mission", "--state", "--config")
"""The options of ``fleetwarden tasks`` as chat's verb; any other (``--markdown``,
``--json``, ``--csv``, ``--out``, a typo of one, ``--help``) makes it the task register's
command."""
SHELL_OPTIONS: Final = ("--json", "--config", "--help")
"""The options the shell takes for itself, anywhere before a ``--``."""


def takes(words: Sequence[str]) -> bool:
    """Whether ``words`` (the command line after ``fleetwarden``) is a chat verb for the
    orchestrator."""
    rest = _past_options(list(words))
    if not rest or rest[0] not in VERBS:
        return False
    if rest[0] == "tasks":
        options = [w.split("=")[0] for w in options_part(rest[1:]) if w.startswith("-")]
        return all(option in CHAT_TASKS_OPTIONS for option in options)
    return True


def _past_options(words: list[str]) -> list[str]:
    """``words`` from the command word on, past the shell's own options given before it
    (``fleetwarden --json ps``, ``fleetwarden --config X spawn …``)."""
    while words:
        words = past_config(words)
        if words and words[0] == "--json":
            words = words[1:]
            continue
        return words
    return words


def options_part(words: list[str]) -> list[str]:
    """``words`` up to a ``--``: the part where options are options."""
    return words[: words.index("--")] if "--" in words else words
