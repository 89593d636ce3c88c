"""What Fleetwarden writes of its own on a run's pull request: its title, and the post of
each ``done ok``.

The title is one line naming no issue or pull request but the run's own: a squash merge
makes it the commit's subject, and a closing keyword there would close what it names (a
reference is made plain by the git door's rules, :mod:`fleet.repos.hook.commits`).

The post is the agent's summary under a line naming it — and, when the run's change shows
that none of its commits reached the branch (the git door refused its push), that, with the
door's words, so the pull request never reads as updated when nothing new came. A turn that
brought no commit and met no refusal says so too. The summary and the door's words (which
quote the agent's commits) are the agent's text: each passes ``fit`` (the publisher's:
redacted, defused) before it is posted."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Final

from fleet.repos.facts import Change
from fleet.repos.hook.commits import unreferenced
from fleet.repos.hook.policy import Issue

TITLE_CAP: Final = 200
"""Characters of a pull request's title."""
WHY_CAP: Final = 300
"""Characters of the door's refusal said on the pull request."""


def pull_title(text: str, slug: str, own: Sequence[int], issue: int) -> str:
    """The title of the pull request for ``issue`` of ``slug``: ``text`` as one line, cut,
    naming no issue or pull request but ``own`` (the run's numbers)."""
    line = " ".join(text.split())[:TITLE_CAP]
    return unreferenced(line, [Issue(slug, n) for n in own]) or f"Work on #{issue}"


def done_body(agent: str, summary: str, change: Change | None, fit: Callable[[str], str]) -> str:
    """The post of ``agent``'s ``done ok`` with ``summary``; ``change``: its run's, when the
    run has ended (None: not known, the summary alone)."""
    said = fit(summary)
    if change is None or change.arrived is not False:
        return f"**{agent} is done:**\n\n{said}"
    if change.refused:
        why = change.refused[-1]
        why = why if len(why) <= WHY_CAP else why[: WHY_CAP - 1] + "…"
        return (
            f"**{agent} is done, but the git door refused its push:** {fit(why)}. None of "
            f"this turn's commits reached the branch.\n\n{said}"
        )
    return f"**{agent} is done** (no new commits this turn):\n\n{said}"
