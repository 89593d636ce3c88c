"""Who gave or took an issue's labels and assignees, read from the forge's own record of
the changes (:meth:`~fleet.forge.model.ForgeApi.issue_changes`).

What an issue carries now says nothing of who gave it: a label a triager added to a
maintainer's issue looks the same as one the maintainer added. So the poller, and forge
work for a Gitea delivery read from how the issue now is (``confirm``), take the actor of
a label or an assignment from these changes, and make no event of one the changes do
not account for.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Final

from fleet.forge.model import ChangeKind, EventKind, ForgeEvent, IssueChange, same_login
from fleet.forge.schema import ForgeEntry

LABEL_CHANGES: Final[tuple[ChangeKind, ...]] = ("labeled", "unlabeled")
ASSIGN_CHANGES: Final[tuple[ChangeKind, ...]] = ("assigned", "unassigned")
BATCH: Final = timedelta(seconds=5)
"""Changes one person made this close together are one act: Gitea sends one delivery for
labels changed together, a change per label in its record."""

_KINDS: Final[dict[ChangeKind, EventKind]] = {
    "labeled": EventKind.LABELED,
    "unlabeled": EventKind.UNLABELED,
    "assigned": EventKind.ASSIGNED,
    "unassigned": EventKind.UNASSIGNED,
}


def newest(
    changes: Sequence[IssueChange], kinds: Iterable[ChangeKind], name: str
) -> IssueChange | None:
    """The newest of ``changes`` (oldest first) of one of ``kinds`` to ``name``: a label
    by its exact name, an assignee by login."""
    wanted = frozenset(kinds)
    by_login = not wanted.isdisjoint(ASSIGN_CHANGES)
    for change in reversed(changes):
        if change.kind not in wanted:
            continue
        if same_login(change.name, name) if by_login else change.name == name:
            return change
    return None


def _relevant(change: IssueChange, entry: ForgeEntry) -> bool:
    """Whether ``change`` moves a forge run: a trigger label, or the bot's assignment."""
    if change.kind in LABEL_CHANGES:
        return entry.agent_of_label(change.name) is not None
    return same_login(change.name, entry.login)


def confirmed(
    event: ForgeEvent,
    changes: Sequence[IssueChange],
    entry: ForgeEntry,
    *,
    not_before: datetime,
) -> ForgeEvent | None:
    """``event``, read from how the issue now is, as the change it stands for.

    That is the newest of the changes its actor made of its sort (labels, or assignees)
    — with those the actor made in the same few seconds (:data:`BATCH`) — that moves a
    forge run: a trigger label given or taken, the bot assigned or unassigned. None when
    the actor made no such change since ``not_before``: then the delivery was about
    another change (a writer adding ``bug`` beside a trigger label someone else gave,
    unassigning someone other than the bot), or about nothing the forge recorded."""
    sort = (
        LABEL_CHANGES if event.kind in (EventKind.LABELED, EventKind.UNLABELED) else ASSIGN_CHANGES
    )
    mine = [
        change
        for change in changes
        if change.kind in sort and same_login(change.actor, event.actor) and change.at >= not_before
    ]
    if not mine:
        return None
    start = mine[-1].at - BATCH
    for change in reversed(mine):
        if change.at < start:
            break
        if not _relevant(change, entry):
            continue
        labels = change.kind in LABEL_CHANGES
        return replace(
            event,
            kind=_KINDS[change.kind],
            actor=change.actor,
            label=change.name if labels else None,
            assignee=None if labels else entry.login,
            confirm=False,
        )
    return None
