"""What the fake Gitea server holds: users, orgs and their teams, repositories with their
branches, files, collaborators, labels, issues, comments, pull requests and reviews — and
who may read or write what, computed as Gitea does for the cases the fake serves.

Issues and pull requests share one sequence of numbers per repository, as on Gitea; a
pull request is an issue with :class:`PullInfo`. Times are whole seconds in UTC, from the
clock the server is given.
"""

from __future__ import annotations

import hashlib
import itertools
from collections.abc import Callable, MutableMapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Final, Literal

Access = Literal["none", "read", "write", "admin", "owner"]
ACCESS_ORDER: Final[tuple[Access, ...]] = ("none", "read", "write", "admin", "owner")
REVIEW_STATES: Final = frozenset(
    {"APPROVED", "REQUEST_CHANGES", "COMMENT", "PENDING", "REQUEST_REVIEW"}
)
_REVIEW_ALIASES: Final = {
    "approve": "APPROVED",
    "approved": "APPROVED",
    "request_changes": "REQUEST_CHANGES",
    "changes_requested": "REQUEST_CHANGES",
    "comment": "COMMENT",
    "commented": "COMMENT",
}


def fake_sha(*parts: str) -> str:
    """A stable 40-hex object id made from ``parts``."""
    return hashlib.sha1("\0".join(parts).encode()).hexdigest()


def review_state(state: str) -> str:
    """Gitea's review state for ``state`` (its own word, or a GitHub-style alias)."""
    word = _REVIEW_ALIASES.get(state.lower(), state.upper())
    if word not in REVIEW_STATES:
        raise ValueError(f"{state!r} is no review state")
    return word


@dataclass
class User:
    """A user or an organization (Gitea keeps both as users)."""

    id: int
    login: str
    created: datetime
    is_admin: bool = False
    is_org: bool = False
    full_name: str = ""
    email: str = ""  # their own address ("": the no-reply placeholder only)
    keep_email_private: bool = True  # Gitea's "hide my email address"


@dataclass
class Team:
    """A team of an org; ``all_repos``: its ``permission`` reaches every repository."""

    id: int
    org: str
    name: str
    permission: Access = "write"
    members: set[str] = field(default_factory=set)
    description: str = ""
    all_repos: bool = True


@dataclass
class Org:
    """An organization's people: owners are members too."""

    login: str
    owners: set[str] = field(default_factory=set)
    members: set[str] = field(default_factory=set)
    teams: list[Team] = field(default_factory=list)


@dataclass
class Label:
    id: int
    name: str
    color: str = "e11d21"
    description: str = ""


@dataclass
class Comment:
    id: int
    number: int  # the issue's
    author: str
    body: str
    created: datetime
    updated: datetime


@dataclass
class Change:
    """A label or an assignee given or taken: an entry of the issue's timeline of type
    ``label`` or ``assignees`` (Gitea keeps them among the comments, numbered with them)."""

    id: int
    kind: Literal["label", "assignees"]
    name: str  # the label's name, or the assignee's login
    removed: bool
    author: str
    created: datetime


@dataclass
class Review:
    id: int
    author: str
    state: str  # APPROVED, REQUEST_CHANGES, COMMENT, PENDING, REQUEST_REVIEW
    body: str
    submitted: datetime
    commit_id: str
    dismissed: bool = False


@dataclass
class PullInfo:
    """What makes an issue a pull request: from ``head`` into ``base``."""

    id: int
    head: str
    base: str
    head_sha: str
    merge_base: str
    merged: bool = False
    merged_at: datetime | None = None
    merged_by: str | None = None
    reviews: list[Review] = field(default_factory=list)


@dataclass
class Issue:
    id: int
    number: int
    title: str
    body: str
    author: str
    created: datetime
    updated: datetime
    labels: list[str] = field(default_factory=list)
    assignees: list[str] = field(default_factory=list)
    state: Literal["open", "closed"] = "open"
    closed_at: datetime | None = None
    locked: bool = False
    comments: list[Comment] = field(default_factory=list)
    pull: PullInfo | None = None
    changes: list[Change] = field(default_factory=list)

    @property
    def head(self) -> str | None:
        return self.pull.head if self.pull else None


@dataclass
class Repo:
    id: int
    owner: str
    name: str
    created: datetime
    default_branch: str = "main"
    private: bool = True
    branches: MutableMapping[str, str] = field(default_factory=dict)  # name → head sha
    protected: set[str] = field(default_factory=set)
    # branch → path → bytes
    files: MutableMapping[str, MutableMapping[str, bytes]] = field(default_factory=dict)
    collaborators: dict[str, Access] = field(default_factory=dict)
    labels: dict[str, Label] = field(default_factory=dict)
    issues: dict[int, Issue] = field(default_factory=dict)

    linked: bool = False  # branches and files read from a real git repository

    @property
    def full_name(self) -> str:
        return f"{self.owner}/{self.name}"


class World:
    """Everything the fake holds, and the rules of who may do what."""

    def __init__(self, clock: Callable[[], datetime]) -> None:
        self._clock = clock
        self._ids = itertools.count(1)
        self.users: dict[str, User] = {}  # by lowercased login
        self.orgs: dict[str, Org] = {}
        self.repos: dict[str, Repo] = {}  # by lowercased full name
        self.comments: dict[int, tuple[Repo, Issue, Comment]] = {}

    def now(self) -> datetime:
        return self._clock().astimezone(UTC).replace(microsecond=0)

    def next_id(self) -> int:
        return next(self._ids)

    # -- lookups (Gitea's names are case-insensitive) ----------------------------------

    def user(self, login: str) -> User | None:
        return self.users.get(login.lower())

    def org(self, login: str) -> Org | None:
        return self.orgs.get(login.lower())

    def repo(self, full_name: str) -> Repo:
        found = self.repos.get(full_name.lower())
        if found is None:
            raise KeyError(f"no repository {full_name!r} in the fake")
        return found

    def issue(self, full_name: str, number: int) -> Issue:
        found = self.repo(full_name).issues.get(number)
        if found is None:
            raise KeyError(f"no issue #{number} in {full_name!r}")
        return found

    def team(self, team_id: int) -> Team | None:
        teams = (team for org in self.orgs.values() for team in org.teams)
        return next((team for team in teams if team.id == team_id), None)

    # -- seeding ----------------------------------------------------------------------

    def add_user(self, login: str, *, is_admin: bool = False, is_org: bool = False) -> User:
        existing = self.user(login)
        if existing is not None:
            existing.is_admin = existing.is_admin or is_admin
            existing.is_org = existing.is_org or is_org
            return existing
        user = User(self.next_id(), login, self.now(), is_admin=is_admin, is_org=is_org)
        self.users[login.lower()] = user
        return user

    def label(self, repo: Repo, name: str) -> Label:
        if name not in repo.labels:
            repo.labels[name] = Label(self.next_id(), name)
        return repo.labels[name]

    def touch(self, issue: Issue) -> None:
        issue.updated = self.now()

    # -- permissions ------------------------------------------------------------------

    def access(self, repo: Repo, login: str) -> Access:
        """What ``login`` may do on ``repo``: Gitea's access mode, as a word."""
        user = self.user(login)
        if user is None:
            return "none"
        levels: list[Access] = ["none"]
        org = self.org(repo.owner)
        if repo.owner.lower() == login.lower():
            levels.append("owner")
        if org is not None:
            if login.lower() in {o.lower() for o in org.owners}:
                levels.append("owner")
            for team in org.teams:
                if team.all_repos and login.lower() in {m.lower() for m in team.members}:
                    levels.append(team.permission)
        if user.is_admin:
            levels.append("admin")
        levels.append(repo.collaborators.get(login.lower(), "none"))
        if not repo.private:
            levels.append("read")
        return max(levels, key=ACCESS_ORDER.index)

    def can_read(self, repo: Repo, login: str) -> bool:
        return self.access(repo, login) != "none"

    def can_write(self, repo: Repo, login: str) -> bool:
        return ACCESS_ORDER.index(self.access(repo, login)) >= ACCESS_ORDER.index("write")

    def is_repo_admin(self, repo: Repo, login: str) -> bool:
        return self.access(repo, login) in ("admin", "owner")

    def is_org_member(self, org: Org, login: str) -> bool:
        return login.lower() in {m.lower() for m in org.members | org.owners}

    def is_org_owner(self, org: Org, login: str) -> bool:
        return login.lower() in {o.lower() for o in org.owners}

    # -- changes ----------------------------------------------------------------------

    def new_issue(
        self,
        repo: Repo,
        *,
        title: str,
        body: str,
        author: str,
        labels: list[str] | None = None,
        assignees: list[str] | None = None,
        pull: PullInfo | None = None,
    ) -> Issue:
        self.add_user(author)
        for login in assignees or []:
            self.add_user(login)
        for name in labels or []:
            self.label(repo, name)
        number = max(repo.issues, default=0) + 1
        now = self.now()
        issue = Issue(self.next_id(), number, title, body, author, now, now, pull=pull)
        repo.issues[number] = issue
        for name in labels or []:  # given by the author, as Gitea records them
            self.change_label(repo, issue, name, author, removed=False)
        for login in assignees or []:
            self.change_assignee(issue, login, author, removed=False)
        return issue

    def _changed(self, issue: Issue, change: Change) -> None:
        issue.changes.append(change)
        issue.updated = change.created  # Gitea updates the issue with each such comment

    def change_label(self, repo: Repo, issue: Issue, name: str, by: str, *, removed: bool) -> None:
        """Label ``name`` given to (or taken from) ``issue`` by ``by``, if that changes it."""
        if (name in issue.labels) != removed:
            return
        self.add_user(by)
        self.label(repo, name)
        if removed:
            issue.labels.remove(name)
        else:
            issue.labels.append(name)
        self._changed(issue, Change(self.next_id(), "label", name, removed, by, self.now()))

    def change_assignee(self, issue: Issue, login: str, by: str, *, removed: bool) -> None:
        """``login`` assigned to (or unassigned from) ``issue`` by ``by``, if that changes it."""
        if (login in issue.assignees) != removed:
            return
        self.add_user(by)
        self.add_user(login)
        if removed:
            issue.assignees.remove(login)
        else:
            issue.assignees.append(login)
        self._changed(issue, Change(self.next_id(), "assignees", login, removed, by, self.now()))

    def new_comment(self, repo: Repo, issue: Issue, author: str, body: str) -> Comment:
        self.add_user(author)
        now = self.now()
        comment = Comment(self.next_id(), issue.number, author, body, now, now)
        issue.comments.append(comment)
        self.comments[comment.id] = (repo, issue, comment)
        issue.updated = now
        return comment

    def new_review(self, issue: Issue, author: str, state: str, body: str) -> Review:
        if issue.pull is None:
            raise ValueError(f"#{issue.number} is not a pull request")
        self.add_user(author)
        review = Review(
            self.next_id(), author, review_state(state), body, self.now(), issue.pull.head_sha
        )
        issue.pull.reviews.append(review)
        issue.updated = review.submitted
        return review

    def sync_heads(self, repo: Repo) -> None:
        """Move each open pull request's head to its branch's tip, as Gitea does on a push
        (only for a repository linked to git, whose branches move outside the fake)."""
        if not repo.linked:
            return
        tips = dict(repo.branches)
        for issue in repo.issues.values():
            if issue.pull is not None and issue.state == "open" and issue.pull.head in tips:
                issue.pull.head_sha = tips[issue.pull.head]

    def close(self, issue: Issue) -> None:
        now = self.now()
        issue.state = "closed"
        issue.closed_at = now
        issue.updated = now

    def merge(self, issue: Issue, by: str) -> None:
        if issue.pull is None:
            raise ValueError(f"#{issue.number} is not a pull request")
        if issue.pull.merged or issue.state == "closed":
            raise ValueError(f"#{issue.number} is not open")
        self.add_user(by)
        self.close(issue)
        issue.pull.merged = True
        issue.pull.merged_at = issue.closed_at
        issue.pull.merged_by = by

    def delete_branch(self, repo: Repo, branch: str, by: str) -> None:
        """Delete ``branch``; Gitea then closes the open pull requests from it."""
        del repo.branches[branch]
        repo.files.pop(branch, None)
        for issue in repo.issues.values():
            if issue.pull and issue.pull.head == branch and issue.state == "open":
                self.close(issue)
