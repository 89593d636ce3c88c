"""What the commits Fleetwarden makes on a base say: a squash (or merge) commit's subject
names the work — the pull request's title, else the run's prompt, else the branch's one
commit — and its body lists the agent's own commit subjects (``* subject`` each, as a
forge's squash does), says who merged what, and ends with the trailers.

Every subject, title and prompt here is the agent's or a requester's text: each becomes one
printable line, cut, and the list's lines start with ``* ``, so nothing in them can end the
message early, start a paragraph of trailers, or pass for one. A reference in them to an
issue or pull request other than the run's own (``Closes #12``, ``Fixes acme/other#3``, an
issue's address), found by the git door's own rules (:mod:`fleet.repos.hook.commits`), is
made plain (``Closes 12``): a commit landed on a base never links, nor closes, another
issue.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final

from fleet.repos.hook.commits import unreferenced
from fleet.repos.hook.policy import Issue

TITLE_MOST: Final = 72
"""Characters of a commit's subject line (git's and the forges' convention)."""
SUBJECT_MOST: Final = 200
"""Characters of one listed commit subject."""
SUBJECTS_LISTED: Final = 50
"""Commit subjects listed in a body; the rest are counted."""


def one_line(text: str, most: int) -> str:
    """The first line of ``text`` with anything in it, control characters as spaces and
    spaces folded, cut to ``most`` characters (``…`` at the cut)."""
    for raw in text.splitlines():
        line = " ".join("".join(c if c.isprintable() else " " for c in raw).split())
        if line:
            return line if len(line) <= most else line[: most - 1].rstrip() + "…"
    return ""


def plain_line(text: str, most: int, own: Sequence[Issue] = ()) -> str:
    """:func:`one_line` of ``text`` with every reference but to ``own`` (the run's issue and
    pull request) made plain."""
    return unreferenced(one_line(text, most), own)


def work_title(
    *,
    pull_title: str | None,
    prompt: str | None,
    subjects: Sequence[str],
    branch: str,
    own: Sequence[Issue] = (),
) -> str:
    """The subject of the commit that lands ``branch``: the pull request's title, the run's
    prompt (its first line), the branch's one commit's subject, or the branch's name —
    naming no issue or pull request but ``own``."""
    for text in (pull_title, prompt):
        title = plain_line(text or "", TITLE_MOST, own)
        if title:
            return title
    theirs = [s for s in subjects if one_line(s, TITLE_MOST)]
    if len(theirs) == 1:
        return plain_line(theirs[0], TITLE_MOST, own)
    return plain_line(f"Land {branch}", TITLE_MOST, own)


def land_message(
    title: str,
    subjects: Sequence[str],
    *,
    more: int = 0,
    footer: str = "",
    trailers: Sequence[str] = (),
    own: Sequence[Issue] = (),
) -> bytes:
    """The message of a squash or merge commit: ``title``; the branch's commit
    ``subjects`` in order, ``* subject`` each (``more`` of them left out, counted);
    ``footer`` (who merged what); then the trailers, one a line. No line of the title,
    the subjects or the footer names an issue or pull request but ``own``."""
    paragraphs = [plain_line(title, TITLE_MOST, own) or "Land a branch"]
    listed = [f"* {plain_line(s, SUBJECT_MOST, own) or '(no subject)'}" for s in subjects]
    if more > 0:
        listed.append(f"* … and {more} more commit{'' if more == 1 else 's'}")
    if listed:
        paragraphs.append("\n".join(listed))
    said = plain_line(footer, 300, own)
    if said:
        paragraphs.append(said)
    lines = [t.strip() for t in trailers if t.strip() and t.strip().isprintable()]
    if lines:
        paragraphs.append("\n".join(lines))
    return ("\n\n".join(paragraphs) + "\n").encode("utf-8")
