"""The specs of `spawn`'s repository flags: their words and help, without their handler."""

from __future__ import annotations

from typing import Final

from bot.commands.parsing.grammar import FlagSpec

REPO_FLAGS: Final = (
    FlagSpec(
        "repo",
        "str",
        "Work on this repository of the config's `repos:`: each run gets a checkout and a "
        "branch of its own, which is its workdir.",
        "REPO",
    ),
    FlagSpec(
        "base",
        "str",
        "With a repository: the branch a new branch is cut from (default: the "
        "repository's default branch).",
        "REF",
    ),
    FlagSpec(
        "fresh",
        "bool",
        "With a repository: cut a new branch, instead of going on with its live one (which "
        "stays: the verbs name it by its branch). Not while the agent runs.",
    ),
)
"""``spawn``'s repository flags (:data:`bot.commands.specs.SPAWN` lists them)."""
