"""The poller: the same events as the webhooks, read through a forge's API, for a forge
that cannot reach Fleetwarden.

Each round asks every repository for its open issues and pull requests updated since the
cursor (on the first round: since the forge's ``max_event_age_seconds`` ago — anything
older would be stale as a webhook), and turns what it finds into events:

- an issue carrying a trigger label: LABELED, ``poll:{slug}#{n}:label:{label}:{at}``;
- an issue assigned to the bot (when assignment triggers): ASSIGNED,
  ``poll:…:assign:{at}``;
- a comment made since the cursor: COMMENT, ``poll:{slug}#{n}:comment:{id}``.

Who gave a label or an assignment the issue does not say: it is read from the forge's
record of the issue's changes (:meth:`~fleet.forge.model.ForgeApi.issue_changes`) — the
newest change that gave it is the event's actor, and ``at`` that change's time. A label or
an assignment the record does not account for is no event (logged), so a triager's label
on a maintainer's issue is the triager's, never the maintainer's.

The issues and pull requests Fleetwarden has a live run on (``watched``) are asked each
round, open or not:

- a pull request closed: PULL_CLOSED (``merged`` says how), ``poll:…:closed``; a review
  of it: REVIEW, ``poll:{slug}#{n}:review:{id}``;
- an issue closed: CLOSED, ``poll:…:closed``; a trigger label it no longer carries, taken
  away since the cursor: UNLABELED with that label, ``poll:…:unlabel:{label}:{at}``; the
  bot, no longer among its assignees, unassigned since the cursor: UNASSIGNED from the
  bot, ``poll:…:unassign:{at}`` — each by whoever took it away (the record of changes
  again), for whichever run it concerns. An issue that never carried a trigger label, or
  was never assigned to the bot, lost nothing: no event.

A delivery id is made of what the event is (with the forge's time of the change it
stands for), never of when it was polled, so the same event found twice has the same id
and the ledger's record of deliveries stops a second run; a label taken away and given
again is a new change, and a new event. What the API does not say, the poller cannot:
an issue's opening (no OPENED: a mention in an issue's body is not seen), and who closed
an issue (CLOSED's ``actor`` is the issue's author).

The cursor is the latest ``updated_at`` the forge reported (the forge's clock, not ours),
kept per repository by the injected ``get_cursor``/``set_cursor`` pair as ISO-8601 text,
and moved only when every call for the repository succeeded.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime, timedelta
from typing import TypedDict

from fleet.forge.events.changes import ASSIGN_CHANGES, LABEL_CHANGES, newest
from fleet.forge.model import (
    EventKind,
    ForgeApi,
    ForgeApiError,
    ForgeEvent,
    ForgeIssue,
    ForgePull,
    IssueChange,
    same_login,
)
from fleet.forge.schema import ForgeEntry
from fleet.ledger.records.forge import Slug
from fleet.timing.clock import Clock

log = logging.getLogger(__name__)

GetCursor = Callable[[str, Slug], Awaitable[str | None]]
"""Where polling ``(forge, repository)`` got to (ISO-8601), None before the first round."""

SetCursor = Callable[[str, Slug, str], Awaitable[None]]

Watched = Callable[[], Awaitable[Sequence[tuple[Slug, int, bool]]]]
"""The issues and pull requests of this forge that Fleetwarden has a live run on: each
``(repository, number, whether it is a pull request)``."""


class _Place(TypedDict):
    """What every event the poller makes starts from: its forge, its delivery id, its
    repository and its issue's or pull request's number."""

    forge: str
    delivery: str
    repo: Slug
    number: int


async def _nothing_watched() -> Sequence[tuple[Slug, int, bool]]:
    return ()


class Poller:
    """Reads one forge's events through its API, a round at a time (:meth:`poll_once`)."""

    def __init__(
        self,
        forge: str,
        entry: ForgeEntry,
        api: ForgeApi,
        slugs: Sequence[Slug],
        *,
        get_cursor: GetCursor,
        set_cursor: SetCursor,
        clock: Clock,
        watched: Watched = _nothing_watched,
    ) -> None:
        self.forge = forge
        self._entry = entry
        self._api = api
        self._slugs = tuple(dict.fromkeys(slugs))
        self._get_cursor = get_cursor
        self._set_cursor = set_cursor
        self._clock = clock
        self._watched = watched

    async def poll_once(self) -> list[ForgeEvent]:
        """One round over every repository: the events found, oldest first. A repository
        whose forge refused a call is skipped this round (its cursor kept), and logged."""
        watched = await self._watched()
        events: list[ForgeEvent] = []
        for slug in self._slugs:
            numbers = sorted({(n, is_pull) for s, n, is_pull in watched if s == slug})
            try:
                events.extend(await self._poll_repo(slug, numbers))
            except ForgeApiError as exc:
                log.warning("forge %s: polling %s failed: %s", self.forge, slug, exc)
        events.sort(key=lambda e: e.at)
        return events

    async def _poll_repo(self, slug: Slug, watched: Sequence[tuple[int, bool]]) -> list[ForgeEvent]:
        stored = await self._get_cursor(self.forge, slug)
        since = _parse_cursor(stored)
        if since is None:
            age = timedelta(seconds=self._entry.max_event_age_seconds)
            since = self._clock.now() - age
        issues = await self._api.open_issues(slug, since=since)
        changes = _Changes(self._api, slug)
        events: list[ForgeEvent] = []
        for issue in issues:
            events.extend(await self._state_events(slug, issue, changes))
            if issue.updated_at >= since:
                events.extend(await self._comments(slug, issue, since))
        read = {issue.number: issue for issue in issues}  # not asked for again
        for number, is_pull in watched:
            if is_pull:
                pull = await self._api.pull(slug, number)
                events += [*await self._reviews(slug, pull, since), *self._pull_closed(slug, pull)]
            else:
                issue = read.get(number) or await self._api.issue(slug, number)
                events.extend(await self._issue_gone(slug, issue, since, changes))
        newest = max((issue.updated_at for issue in issues), default=None)
        if newest is not None and newest > since:
            await self._set_cursor(self.forge, slug, newest.isoformat())
        elif stored is None:
            await self._set_cursor(self.forge, slug, since.isoformat())
        return events

    def _place(self, slug: Slug, number: int, key: str) -> _Place:
        """Where an event happened, with its delivery id: what it is (``key``), never when
        it was polled."""
        return {
            "forge": self.forge,
            "delivery": f"poll:{slug}#{number}:{key}",
            "repo": slug,
            "number": number,
        }

    def _has_bot(self, issue: ForgeIssue) -> bool:
        return any(same_login(who, self._entry.login) for who in issue.assignees)

    def _changed(
        self,
        slug: Slug,
        number: int,
        key: str,
        kind: EventKind,
        change: IssueChange,
        *,
        label: str | None = None,
        assignee: str | None = None,
    ) -> ForgeEvent:
        """The event of a change the forge records: its actor and its time the change's."""
        return ForgeEvent(
            **self._place(slug, number, f"{key}:{change.at.isoformat()}"),
            kind=kind,
            name="issues",
            is_pull=False,
            actor=change.actor,
            at=change.at,
            label=label,
            assignee=assignee,
        )

    async def _state_events(
        self, slug: Slug, issue: ForgeIssue, changes: _Changes
    ) -> list[ForgeEvent]:
        """LABELED and ASSIGNED for what an open issue carries now, each by whoever gave
        it last; what the record of changes does not account for is no event."""
        if issue.is_pull:
            return []
        n, login = issue.number, self._entry.login
        found: list[ForgeEvent] = []
        for label in issue.labels:
            if self._entry.agent_of_label(label) is None:
                continue
            given = newest(await changes.of(n), LABEL_CHANGES, label)
            if given is not None and given.kind == "labeled":
                kind = EventKind.LABELED
                found.append(self._changed(slug, n, f"label:{label}", kind, given, label=label))
            else:
                log.info("forge %s: %s#%d: who gave %r is not known", self.forge, slug, n, label)
        if self._entry.trigger.assign and self._has_bot(issue):
            given = newest(await changes.of(n), ASSIGN_CHANGES, login)
            if given is not None and given.kind == "assigned":
                kind = EventKind.ASSIGNED
                found.append(self._changed(slug, n, "assign", kind, given, assignee=login))
            else:
                log.info("forge %s: %s#%d: who assigned the bot is not known", self.forge, slug, n)
        return found

    async def _comments(self, slug: Slug, issue: ForgeIssue, since: datetime) -> list[ForgeEvent]:
        comments = await self._api.comments(slug, issue.number)
        return [
            ForgeEvent(
                **self._place(slug, issue.number, f"comment:{comment.id}"),
                kind=EventKind.COMMENT,
                name="issue_comment",
                is_pull=issue.is_pull,
                actor=comment.author,
                at=comment.created_at,
                body=comment.body,
                comment_id=comment.id,
            )
            for comment in comments
            if comment.created_at >= since  # the same second again: ids dedupe it
        ]

    async def _reviews(self, slug: Slug, pull: ForgePull, since: datetime) -> list[ForgeEvent]:
        reviews = await self._api.reviews(slug, pull.number)
        return [
            ForgeEvent(
                **self._place(slug, pull.number, f"review:{review.id}"),
                kind=EventKind.REVIEW,
                name="pull_request_review",
                is_pull=True,
                actor=review.author,
                at=review.submitted_at,
                body=review.body,
                review_state=review.state,
                head=pull.head,
                comment_id=review.id,
            )
            for review in reviews
            if review.submitted_at >= since and review.state != "pending"
        ]

    def _pull_closed(self, slug: Slug, pull: ForgePull) -> list[ForgeEvent]:
        if pull.state != "closed":
            return []
        event = ForgeEvent(
            **self._place(slug, pull.number, "closed"),
            kind=EventKind.PULL_CLOSED,
            name="pull_request",
            is_pull=True,
            actor=pull.author,
            at=pull.updated_at,
            merged=pull.merged,
            head=pull.head,
        )
        return [event]

    async def _issue_gone(
        self, slug: Slug, issue: ForgeIssue, since: datetime, changes: _Changes
    ) -> list[ForgeEvent]:
        """CLOSED, UNLABELED and UNASSIGNED for a watched issue that lost what started
        its run (the run's own trigger decides which of them concern it): a trigger label
        or the bot's assignment taken away since ``since``, by whom the record says."""
        n = issue.number
        if issue.state == "closed":
            closed = ForgeEvent(
                **self._place(slug, n, "closed"),
                kind=EventKind.CLOSED,
                name="issues",
                is_pull=False,
                actor=issue.author,
                at=issue.updated_at,
            )
            return [closed]
        if issue.updated_at < since:  # every change of labels or assignees updates it
            return []
        record = await changes.of(n)
        found: list[ForgeEvent] = []
        triggers = {c.name for c in record if self._entry.agent_of_label(c.name) is not None}
        removed = {c.name for c in record if c.kind == "unlabeled" and c.at >= since}
        for label in sorted((removed & triggers) - set(issue.labels)):
            taken = newest(record, LABEL_CHANGES, label)
            if taken is not None and taken.kind == "unlabeled":
                kind = EventKind.UNLABELED
                found.append(self._changed(slug, n, f"unlabel:{label}", kind, taken, label=label))
        login = self._entry.login
        taken = None if self._has_bot(issue) else newest(record, ASSIGN_CHANGES, login)
        if taken is not None and taken.kind == "unassigned" and taken.at >= since:
            kind = EventKind.UNASSIGNED
            found.append(self._changed(slug, n, "unassign", kind, taken, assignee=login))
        return found


class _Changes:
    """The record of changes of one repository's issues, asked once a round per issue."""

    def __init__(self, api: ForgeApi, slug: Slug) -> None:
        self._api = api
        self._slug = slug
        self._known: dict[int, list[IssueChange]] = {}

    async def of(self, number: int) -> list[IssueChange]:
        if number not in self._known:
            self._known[number] = await self._api.issue_changes(self._slug, number)
        return self._known[number]


def _parse_cursor(text: str | None) -> datetime | None:
    if not text:
        return None
    try:
        found = datetime.fromisoformat(text)
    except ValueError:
        return None
    return found if found.tzinfo else None
