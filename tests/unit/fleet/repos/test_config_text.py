"""A fresh repository's settings written in one go (:func:`fleet.repos.git.add_config`) read
back by real git exactly as ``git config --add`` of each would leave them — quotes,
backslashes, comment characters, spaces at the ends, a subsection with dots and slashes,
several values of one key — and a value git's text cannot hold as it is (a newline) left
to git."""

from __future__ import annotations

from pathlib import Path

import pytest

from fleet.repos import git as g

HOSTILE = [
    ("fleetwarden.name", 'Ann "the \\ builder" Lee'),
    ("fleetwarden.email", "ann@example.org ; # not a comment"),
    ("fleetwarden.coauthor", "  two spaces before, one after "),
    ("fleetwarden.coauthor", "Zoë <zoe@example.org>"),
    ("branch.fw/ann/issue-1.2.merge", "refs/heads/fw/ann/issue-1.2"),
    ("remote.origin.fetch", "+refs/heads/main:refs/remotes/origin/main"),
    ("push.default", "upstream"),
]


async def listed(repo: Path) -> list[str]:
    ran = await g.git(repo, ["config", "--local", "--null", "--list"])
    return [item for item in ran.text.split("\0") if item]


async def by_git(root: Path, name: str, settings: list[tuple[str, str]]) -> list[str]:
    repo = root / name
    await g.git(None, ["init", "-q", "--bare", str(repo)])
    for key, value in settings:
        await g.git(repo, ["config", "--add", key, value])
    return await listed(repo)


async def in_one_go(root: Path, name: str, settings: list[tuple[str, str]]) -> list[str]:
    repo = root / name
    await g.git(None, ["init", "-q", "--bare", str(repo)])
    await g.add_config(repo / "config", settings)
    return await listed(repo)


async def test_values_read_back_as_git_config_add_writes_them(tmp_path: Path) -> None:
    assert g.config_text(HOSTILE) is not None
    assert await in_one_go(tmp_path, "text", HOSTILE) == await by_git(tmp_path, "git", HOSTILE)
    got = await g.git(tmp_path / "text", ["config", "--get", "fleetwarden.name"])
    assert got.text == 'Ann "the \\ builder" Lee\n'


@pytest.mark.parametrize("bad", ["two\nlines", "a\ttab", "nul\x00", "bell\x07"])
async def test_a_control_character_is_left_to_git(tmp_path: Path, bad: str) -> None:
    settings = [("fleetwarden.name", "Ann"), ("fleetwarden.issue", bad)]
    assert g.config_text(settings) is None
    if "\x00" in bad:  # git itself takes no NUL in an argument
        return
    assert await in_one_go(tmp_path, "text", settings) == await by_git(tmp_path, "git", settings)
