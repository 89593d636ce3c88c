"""Tests for what `diff NAME FILE` says when it shows nothing: a FILE the branch does not
change (or that does not exist) is said to be no file of the change, naming a few that are
and `--stat`; a branch that changes nothing says so — through the real router and ledger."""

from __future__ import annotations

from bot.render.work.changes import empty_diff
from fleet.ledger import Ledger
from fleet.repos.facts import Change, FileStat
from tests.unit.bot.commands.test_repo_commands import FakeDesk, a_line, a_router, say
from tests.unit.chat_fakes import FakeConnector


def _change(*paths: str, more: int = 0) -> Change:
    files = tuple(FileStat(path, 1, 0) for path in paths)
    return Change("app", "coder", "fw/coder/1", "main", "a" * 40, "b" * 40, "c" * 40, 0,
                  files=files, more_files=more)  # fmt: skip


async def test_a_file_the_branch_does_not_change_is_said_so(
    ledger: Ledger, chat: FakeConnector
) -> None:
    """`diff coder src/upload.py` where the branch changes src/app.py only: not among its
    files, src/app.py named, `--stat` offered; never "changes nothing"."""
    desk = FakeDesk(a_line())
    answer = await say(a_router(ledger, desk), chat, "!diff coder src/upload.py")
    assert answer.startswith("src/upload.py is not among the files **coder**'s branch changes")
    assert "it changes src/app.py." in answer and "`diff coder --stat`" in answer
    assert "changes nothing" not in answer


def test_the_words_for_an_empty_diff() -> None:
    """A few files named and the rest counted; a file that may be among many, or a branch
    with no file, says nothing changed; no FILE, the branch changes nothing."""
    many = _change(*(f"f{n}.py" for n in range(7)))
    said = empty_diff("coder", "nope.py", many)
    assert "it changes f0.py, f1.py, f2.py, f3.py, f4.py and 2 more." in said
    listed_past = empty_diff("coder", "f99.py", _change("a.py", more=40))
    assert listed_past == "**coder**'s branch in f99.py changes nothing against its base."
    assert empty_diff("coder", "a.py", _change()) == (
        "**coder**'s branch changes no file against its base yet."
    )
    assert empty_diff("coder", None, None) == "**coder**'s branch changes nothing against its base."
    hostile = empty_diff("coder", "x.py", _change("**bold**.py"))
    assert "**bold**" not in hostile
