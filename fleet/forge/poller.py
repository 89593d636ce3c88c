"""The poller: the same events as the webhooks, read through a forge's API, for a forge
that cannot reach Fleetwarden.

Each round asks every repository for its open issues and pull requests updated since the
cursor (on the first round: since the forge's ``max_event_age_seconds`` ago — anything
older would be stale as a webhook), and turns what it finds into events:

- an issue carrying a trigger label: LABELED, ``poll:{slug}#{n}:label:{label}``;
- an issue assigned to the bot (when assignment triggers): ASSIGNED, ``poll:…:assign``;
- a comment made since the cursor: COMMENT, ``poll:{slug}#{n}:comment:{id}``.

The issues and pull requests Fleetwarden has a live run on (``watched``) are asked each
round, open or not:

- a pull request closed: PULL_CLOSED (``merged`` says how), ``poll:…:closed``; a review
  of it: REVIEW, ``poll:{slug}#{n}:review:{id}``;
- an issue closed: CLOSED, ``poll:…:closed``; one no longer carrying any trigger label:
  UNLABELED with ``label`` None, and one no longer assigned to the bot: UNASSIGNED from
  the bot — both ``poll:…:unlabel|unassign:{updated_at}``, for whichever run they concern.

A delivery id is made of what the event is, never of when it was polled, so the same
event found twice has the same id and the ledger's record of deliveries stops a second
run. What the API does not say, the poller cannot: who added a label or an assignee (the
event's ``actor`` is the issue's author then), an issue's opening (no OPENED: a mention
in an issue's body is not seen), and a label removed and given again (the same id as the
first time: no second run).

The cursor is the latest ``updated_at`` the forge reported (the forge's clock, not ours),
kept per repository by the injected ``get_cursor``/``set_cursor`` pair as ISO-8601 text,
and moved only when every call for the repository succeeded.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime, timedelta

from fleet.clock import Clock
from fleet.forge.model import (
    EventKind,
    ForgeApi,
    ForgeApiError,
    ForgeEvent,
    ForgeIssue,
    ForgePull,
    Slug,
)
from fleet.forge.schema import ForgeEntry

log = logging.getLogger(__name__)

GetCursor = Callable[[str, Slug], Awaitable[str | None]]
"""Where polling ``(forge, repository)`` got to (ISO-8601), None before the first round."""

SetCursor = Callable[[str, Slug, str], Awaitable[None]]

Watched = Callable[[], Awaitable[Sequence[tuple[Slug, int]]]]
"""The issues and pull requests of this forge that Fleetwarden has a live run on."""


async def _nothing_watched() -> Sequence[tuple[Slug, int]]:
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
            numbers = sorted({n for s, n in watched if s == slug})
            try:
                events.extend(await self._poll_repo(slug, numbers))
            except ForgeApiError as exc:
                log.warning("forge %s: polling %s failed: %s", self.forge, slug, exc)
        events.sort(key=lambda e: e.at)
        return events

    async def _poll_repo(self, slug: Slug, watched: Sequence[int]) -> list[ForgeEvent]:
        stored = await self._get_cursor(self.forge, slug)
        since = _parse_cursor(stored)
        if since is None:
            age = timedelta(seconds=self._entry.max_event_age_seconds)
            since = self._clock.now() - age
        issues = await self._api.open_issues(slug, since=since)
        events: list[ForgeEvent] = []
        for issue in issues:
            events.extend(self._state_events(slug, issue))
            if issue.updated_at >= since:
                events.extend(await self._comments(slug, issue, since))
        for number in watched:
            events.extend(await self._watched_events(slug, number, since))
        newest = max((issue.updated_at for issue in issues), default=None)
        if newest is not None and newest > since:
            await self._set_cursor(self.forge, slug, newest.isoformat())
        elif stored is None:
            await self._set_cursor(self.forge, slug, since.isoformat())
        return events

    def _event(
        self,
        slug: Slug,
        key: str,
        kind: EventKind,
        name: str,
        number: int,
        *,
        is_pull: bool,
        actor: str,
        at: datetime,
        body: str = "",
        label: str | None = None,
        assignee: str | None = None,
        review_state: str | None = None,
        merged: bool = False,
        head: str | None = None,
        comment_id: int | None = None,
    ) -> ForgeEvent:
        return ForgeEvent(
            forge=self.forge,
            delivery=f"poll:{slug}#{number}:{key}",
            kind=kind,
            name=name,
            repo=slug,
            number=number,
            is_pull=is_pull,
            actor=actor,
            at=at,
            body=body,
            label=label,
            assignee=assignee,
            review_state=review_state,
            merged=merged,
            head=head,
            comment_id=comment_id,
        )

    def _state_events(self, slug: Slug, issue: ForgeIssue) -> list[ForgeEvent]:
        """LABELED and ASSIGNED for what an open issue carries now."""
        if issue.is_pull:
            return []
        found: list[ForgeEvent] = []
        for label in issue.labels:
            if self._entry.agent_of_label(label) is None:
                continue
            found.append(
                self._event(
                    slug,
                    f"label:{label}",
                    EventKind.LABELED,
                    "issues",
                    issue.number,
                    is_pull=False,
                    actor=issue.author,
                    at=issue.updated_at,
                    label=label,
                )
            )
        login = self._entry.login
        if self._entry.trigger.assign and login in issue.assignees:
            found.append(
                self._event(
                    slug,
                    "assign",
                    EventKind.ASSIGNED,
                    "issues",
                    issue.number,
                    is_pull=False,
                    actor=issue.author,
                    at=issue.updated_at,
                    assignee=login,
                )
            )
        return found

    async def _comments(self, slug: Slug, issue: ForgeIssue, since: datetime) -> list[ForgeEvent]:
        comments = await self._api.comments(slug, issue.number)
        return [
            self._event(
                slug,
                f"comment:{comment.id}",
                EventKind.COMMENT,
                "issue_comment",
                issue.number,
                is_pull=issue.is_pull,
                actor=comment.author,
                at=comment.created_at,
                body=comment.body,
                comment_id=comment.id,
            )
            for comment in comments
            if comment.created_at >= since  # the same second again: ids dedupe it
        ]

    async def _watched_events(self, slug: Slug, number: int, since: datetime) -> list[ForgeEvent]:
        issue = await self._api.issue(slug, number)
        if issue.is_pull:
            pull = await self._api.pull(slug, number)
            return [*await self._reviews(slug, pull, since), *self._pull_closed(slug, pull)]
        return self._issue_gone(slug, issue)

    async def _reviews(self, slug: Slug, pull: ForgePull, since: datetime) -> list[ForgeEvent]:
        reviews = await self._api.reviews(slug, pull.number)
        return [
            self._event(
                slug,
                f"review:{review.id}",
                EventKind.REVIEW,
                "pull_request_review",
                pull.number,
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
        event = self._event(
            slug,
            "closed",
            EventKind.PULL_CLOSED,
            "pull_request",
            pull.number,
            is_pull=True,
            actor=pull.author,
            at=pull.updated_at,
            merged=pull.merged,
            head=pull.head,
        )
        return [event]

    def _issue_gone(self, slug: Slug, issue: ForgeIssue) -> list[ForgeEvent]:
        """CLOSED, UNLABELED and UNASSIGNED for a watched issue that lost what started
        its run (the run's own trigger decides which of them concern it)."""
        n, actor, at = issue.number, issue.author, issue.updated_at
        if issue.state == "closed":
            closed = EventKind.CLOSED
            return [
                self._event(slug, "closed", closed, "issues", n, is_pull=False, actor=actor, at=at)
            ]
        found: list[ForgeEvent] = []
        stamp = at.isoformat()
        if not any(self._entry.agent_of_label(label) for label in issue.labels):
            key, kind = f"unlabel:{stamp}", EventKind.UNLABELED
            found.append(
                self._event(slug, key, kind, "issues", n, is_pull=False, actor=actor, at=at)
            )
        login = self._entry.login
        if login not in issue.assignees:
            key, kind = f"unassign:{stamp}", EventKind.UNASSIGNED
            found.append(
                self._event(
                    slug, key, kind, "issues", n, is_pull=False, actor=actor, at=at, assignee=login
                )
            )
        return found


def _parse_cursor(text: str | None) -> datetime | None:
    if not text:
        return None
    try:
        found = datetime.fromisoformat(text)
    except ValueError:
        return None
    return found if found.tzinfo else None
