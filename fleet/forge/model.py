"""What Fleetwarden knows of a forge (GitHub, Gitea or Forgejo), in its own words: issues,
comments, pull requests, reviews and files as plain values, the events that move a forge
run, and :class:`ForgeApi`, the one shape both forges' clients have.

Everything here that a person or an agent wrote on the forge (titles, bodies, logins,
branch names, file contents) is hostile text: shown only through the renderers that escape
it, never to a shell.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import datetime
from typing import Literal, Protocol

from fleet.errors import FleetwardenError
from fleet.ledger.records.forge import Slug

ForgeKind = Literal["github", "gitea", "gitlab"]
Permission = Literal["admin", "write", "read", "none"]
ReviewEvent = Literal["COMMENT", "APPROVE", "REQUEST_CHANGES"]
"""What a review says, in GitHub's words: a comment, an approval, changes asked for."""


class ForgeApiError(FleetwardenError):
    """A forge's API answered with an error, or could not be reached. ``status`` is the
    HTTP status (0: no answer); the message names the call and what the forge said, never
    a token."""

    def __init__(self, message: str, status: int = 0) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True, slots=True)
class ForgeComment:
    """A comment on an issue or a pull request's conversation."""

    id: int
    author: str
    body: str
    created_at: datetime
    url: str


@dataclass(frozen=True, slots=True)
class ForgeIssue:
    """An issue (``is_pull``: a pull request seen through the issues API)."""

    number: int
    title: str
    body: str
    author: str
    labels: tuple[str, ...]
    assignees: tuple[str, ...]
    state: Literal["open", "closed"]
    url: str
    updated_at: datetime
    is_pull: bool = False


@dataclass(frozen=True, slots=True)
class ForgePull:
    """A pull request: from branch ``head`` (at ``head_sha``) into ``base``. ``node_id``
    is GitHub's global id of it (what its GraphQL API names it by; empty on Gitea)."""

    number: int
    title: str
    body: str
    author: str
    head: str
    base: str
    head_sha: str
    state: Literal["open", "closed"]
    merged: bool
    draft: bool
    url: str
    updated_at: datetime
    node_id: str = ""


@dataclass(frozen=True, slots=True)
class ForgeReview:
    """A review of a pull request; ``state`` in the forge's words, lowercased
    (``changes_requested``, ``commented``, ``approved``, …)."""

    id: int
    author: str
    state: str
    body: str
    submitted_at: datetime


ChangeKind = Literal["labeled", "unlabeled", "assigned", "unassigned"]


@dataclass(frozen=True, slots=True)
class IssueChange:
    """One label or assignee given to or taken from an issue, by ``actor`` at ``at``:
    ``name`` is the label's name or the assignee's login."""

    kind: ChangeKind
    name: str
    actor: str
    at: datetime


@dataclass(frozen=True, slots=True)
class ForgeFile:
    """A file of the repository at ``ref``, as text (``truncated`` past the cap)."""

    path: str
    text: str
    sha: str
    truncated: bool = False


CheckStatus = Literal["queued", "in_progress", "completed"]
CheckConclusion = Literal["success", "failure", "neutral", "cancelled"]


@dataclass(frozen=True, slots=True)
class CheckRun:
    """A check run as posted on a commit: ``head_sha`` it is on, its ``title`` and
    ``summary``, its ``status`` and, once completed, its ``conclusion``."""

    head_sha: str
    title: str
    summary: str
    status: CheckStatus
    conclusion: CheckConclusion | None = None


class ForgeApi(Protocol):
    """One forge's REST API, as Fleetwarden uses it. Every call raises
    :class:`ForgeApiError` on an error answer. The credential is the client's own: no call
    takes or returns it, but :meth:`git_token`, which only the mirror's push uses."""

    kind: ForgeKind

    async def issue(self, repo: Slug, number: int) -> ForgeIssue: ...

    async def comments(self, repo: Slug, number: int, *, pull: bool = False) -> list[ForgeComment]:
        """The comments on issue ``number`` (``pull``: on pull request ``number``; on
        GitHub and Gitea the two share their numbers, on GitLab they do not)."""
        ...

    async def comment(
        self, repo: Slug, number: int, body: str, *, pull: bool = False
    ) -> ForgeComment:
        """Post ``body`` on issue ``number`` (``pull``: on pull request ``number``)."""
        ...

    async def edit_comment(
        self, repo: Slug, comment_id: int, body: str, *, number: int, pull: bool = False
    ) -> None:
        """Edit comment ``comment_id``, posted on issue ``number`` (``pull``: on pull
        request ``number``; GitLab finds a note by what it is on)."""
        ...

    async def pull(self, repo: Slug, number: int) -> ForgePull: ...

    async def find_pull(self, repo: Slug, head: str) -> ForgePull | None:
        """The open pull request from branch ``head`` of ``repo`` itself, if any."""
        ...

    async def open_pull(
        self, repo: Slug, *, head: str, base: str, title: str, body: str, draft: bool
    ) -> ForgePull: ...

    async def edit_pull(
        self, repo: Slug, number: int, *, title: str | None = None, body: str | None = None
    ) -> None: ...

    async def request_review(self, repo: Slug, number: int, reviewers: list[str]) -> None: ...

    async def reviews(self, repo: Slug, number: int) -> list[ForgeReview]: ...

    async def review(
        self, repo: Slug, number: int, body: str, *, event: ReviewEvent = "COMMENT"
    ) -> str:
        """Submit a review of pull request ``number`` saying ``body``; its address on the
        forge. Both forges refuse an approval or changes asked for by the pull request's
        own author (GitHub and Gitea: 422): that is a :class:`ForgeApiError` with the
        status, as is any other refusal."""
        ...

    async def ready_for_review(self, repo: Slug, number: int) -> None:
        """Pull request ``number`` is a draft no more (one already ready: nothing): on
        GitHub through its GraphQL API, on Gitea by its title's WIP prefix taken off."""
        ...

    async def file(self, repo: Slug, path: str, ref: str | None = None) -> ForgeFile: ...

    async def permission(self, repo: Slug, login: str) -> Permission:
        """What ``login`` may do on ``repo`` (``none`` for a stranger)."""
        ...

    async def in_org(self, org: str, login: str) -> bool: ...

    async def commit_address(self, repo: Slug, login: str) -> str | None:
        """The address git commits credit ``login`` with on this forge — GitHub's no-reply
        ``ID+LOGIN@users.noreply.github.com``, the address a Gitea shows for the user (a
        hidden one's no-reply placeholder) — or None when the forge knows no such user."""
        ...

    async def in_team(self, org: str, team: str, login: str) -> bool: ...

    async def delete_branch(self, repo: Slug, branch: str) -> None: ...

    async def open_issues(self, repo: Slug, *, since: datetime | None = None) -> list[ForgeIssue]:
        """Open issues and pull requests updated since ``since`` (all open ones: None)."""
        ...

    async def issue_changes(self, repo: Slug, number: int) -> list[IssueChange]:
        """Who gave or took the labels and assignees of issue ``number``, oldest first:
        the newest hundred or so changes (the forge's own record of them)."""
        ...

    async def check_run(self, repo: Slug, run: CheckRun, check_id: int | None = None) -> int | None:
        """Create (``check_id`` None) or update check run ``run``; its id. A forge without
        check runs (Gitea) returns None and does nothing."""
        ...

    async def whoami(self) -> str:
        """The login the client's credential acts as on the forge (an App's:
        ``slug[bot]``, the name its comments bear)."""
        ...

    async def git_token(self, repo: Slug) -> str:
        """The token git pushes to ``repo`` with over HTTPS (an App's installation token,
        minted and renewed here), for Fleetwarden's own mirror only."""
        ...

    async def close(self) -> None: ...


class EventKind(enum.Enum):
    """What happened on the forge, as far as a forge run cares."""

    LABELED = "labeled"
    UNLABELED = "unlabeled"
    ASSIGNED = "assigned"
    UNASSIGNED = "unassigned"
    OPENED = "opened"  # an issue opened (a mention in its body, a label or assignee given)
    CLOSED = "closed"  # an issue closed
    COMMENT = "comment"  # a new comment on an issue or a pull request
    REVIEW = "review"  # a pull request review submitted
    PULL_CLOSED = "pull_closed"  # a pull request closed (``merged`` says how)
    OTHER = "other"


@dataclass(frozen=True, slots=True)
class ForgeEvent:
    """One event from a forge, from a webhook delivery or the poller.

    ``delivery`` is the forge's delivery id (a redelivery has the same one) or the
    poller's own (``poll:…``, the same for the same event). ``actor`` is who did it;
    ``number`` the issue's or pull request's; ``body`` the comment's or review's text (or
    an opened issue's body); ``label`` / ``assignee`` what was added or removed;
    ``review_state`` lowercased; ``head`` a pull request's branch; ``at`` when the forge
    says it happened. ``confirm``: the event was read from how the issue now is (Gitea's
    label and assignment deliveries name no label and no assignee), so which change it
    stands for is to be asked of the forge (:meth:`ForgeApi.issue_changes`) first."""

    forge: str
    delivery: str
    kind: EventKind
    name: str  # the forge's own event name (``issues``, ``issue_comment``, …)
    repo: Slug
    number: int
    is_pull: bool
    actor: str
    at: datetime
    body: str = ""
    label: str | None = None
    assignee: str | None = None
    review_state: str | None = None
    merged: bool = False
    head: str | None = None
    comment_id: int | None = None
    confirm: bool = False


def same_login(one: str, other: str) -> bool:
    """Whether two logins name one account (forges match them without regard to case)."""
    return one.casefold() == other.casefold()
