"""What the fake GitLab server holds: users, groups (with subgroups) and their members,
projects with their branches, files, members, issues, merge requests, notes, label events,
approvals and commit statuses — and who may do what, by GitLab's access levels.

Issues and merge requests are numbered apart (issue #3 and merge request !3 may both be),
as on GitLab; notes, label events and everything else share one id sequence. A project's
access level for a user is the highest of their own membership and their membership of
the groups above it (GitLab's ``members/all``). Times are whole milliseconds in UTC, from
the clock the server is given.
"""

from __future__ import annotations

import hashlib
import itertools
import re
from collections.abc import Callable, MutableMapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Final, Literal

GUEST: Final = 10
REPORTER: Final = 20
DEVELOPER: Final = 30
MAINTAINER: Final = 40
OWNER: Final = 50
# GitLab's MergeRequest draft title prefixes, matched without regard to case.
DRAFT: Final = re.compile(r"\A\s*(\[draft\]|\(draft\)|draft:|draft\s-)\s*", re.IGNORECASE)


def fake_sha(*parts: str) -> str:
    """A stable 40-hex object id made from ``parts``."""
    return hashlib.sha1("\0".join(parts).encode()).hexdigest()


@dataclass
class User:
    id: int
    username: str
    name: str
    created: datetime
    bot: bool = False


@dataclass
class Group:
    id: int
    full_path: str
    members: dict[str, int] = field(default_factory=dict)  # lowercased username → level

    @property
    def parent(self) -> str | None:
        head, _, _ = self.full_path.rpartition("/")
        return head or None


@dataclass
class Note:
    id: int
    body: str
    author: str
    created: datetime
    updated: datetime
    system: bool
    noteable_type: Literal["Issue", "MergeRequest"]
    noteable_id: int
    noteable_iid: int
    internal: bool = False  # shown to project members only


@dataclass
class LabelEvent:
    id: int
    user: str
    created: datetime
    action: Literal["add", "remove"]
    label: str
    label_id: int
    resource_id: int


@dataclass
class Issue:
    id: int
    iid: int
    title: str
    description: str
    author: str
    created: datetime
    updated: datetime
    labels: list[str] = field(default_factory=list)
    assignees: list[str] = field(default_factory=list)
    state: Literal["opened", "closed"] = "opened"
    closed_at: datetime | None = None
    notes: list[Note] = field(default_factory=list)
    label_events: list[LabelEvent] = field(default_factory=list)
    confidential: bool = False  # shown to project members only


@dataclass
class MergeRequest:
    id: int
    iid: int
    title: str
    description: str
    author: str
    source_branch: str
    target_branch: str
    sha: str
    created: datetime
    updated: datetime
    state: Literal["opened", "closed", "merged"] = "opened"
    merged_by: str | None = None
    merged_at: datetime | None = None
    closed_at: datetime | None = None
    reviewers: list[str] = field(default_factory=list)
    approvals: list[tuple[str, datetime]] = field(default_factory=list)
    notes: list[Note] = field(default_factory=list)

    @property
    def draft(self) -> bool:
        return DRAFT.match(self.title) is not None


@dataclass
class Status:
    id: int
    sha: str
    name: str
    state: str
    description: str
    author: str
    created: datetime


@dataclass
class Project:
    id: int
    namespace: str  # the group's (or user's) full path
    path: str
    created: datetime
    default_branch: str = "main"
    visibility: Literal["private", "internal", "public"] = "private"
    members: dict[str, int] = field(default_factory=dict)  # lowercased username → level
    branches: MutableMapping[str, str] = field(default_factory=dict)  # name → sha
    files: MutableMapping[str, MutableMapping[str, bytes]] = field(default_factory=dict)
    labels: dict[str, int] = field(default_factory=dict)  # name → id
    issues: dict[int, Issue] = field(default_factory=dict)
    mrs: dict[int, MergeRequest] = field(default_factory=dict)
    statuses: list[Status] = field(default_factory=list)
    linked: bool = False

    @property
    def full_path(self) -> str:
        return f"{self.namespace}/{self.path}"


class World:
    """Everything the fake holds, and GitLab's rules of who may do what."""

    def __init__(self, clock: Callable[[], datetime]) -> None:
        self._clock = clock
        self._ids = itertools.count(1)
        self._last: datetime | None = None
        self.users: dict[str, User] = {}  # by lowercased username
        self.groups: dict[str, Group] = {}  # by lowercased full path
        self.projects: dict[str, Project] = {}  # by lowercased full path

    def now(self) -> datetime:
        """The clock's time to the millisecond, always after the last one given: two
        changes never share a time (on GitLab they come from apart requests)."""
        when = self._clock().astimezone(UTC)
        when = when.replace(microsecond=when.microsecond // 1000 * 1000)
        if self._last is not None and when <= self._last:
            when = self._last + timedelta(milliseconds=1)
        self._last = when
        return when

    def next_id(self) -> int:
        return next(self._ids)

    # -- lookups (GitLab's paths and usernames are case-insensitive) -------------------

    def user(self, username: str) -> User | None:
        return self.users.get(username.lower())

    def user_by_id(self, user_id: int) -> User | None:
        return next((u for u in self.users.values() if u.id == user_id), None)

    def group(self, full_path: str) -> Group | None:
        return self.groups.get(full_path.lower())

    def project(self, full_path: str) -> Project:
        found = self.projects.get(full_path.lower())
        if found is None:
            raise KeyError(f"no project {full_path!r} in the fake")
        return found

    def project_by_id(self, ident: str) -> Project | None:
        """A project by its numeric id or its full path (GitLab's ``:id``)."""
        if ident.isdigit():
            return next((p for p in self.projects.values() if p.id == int(ident)), None)
        return self.projects.get(ident.lower())

    # -- seeding ----------------------------------------------------------------------

    def add_user(self, username: str, *, bot: bool = False) -> User:
        existing = self.user(username)
        if existing is not None:
            return existing
        user = User(self.next_id(), username, username.title(), self.now(), bot)
        self.users[username.lower()] = user
        return user

    def add_group(self, full_path: str) -> Group:
        existing = self.group(full_path)
        if existing is not None:
            return existing
        parent = full_path.rpartition("/")[0]
        if parent:
            self.add_group(parent)
        group = Group(self.next_id(), full_path)
        self.groups[full_path.lower()] = group
        return group

    def label_id(self, project: Project, name: str) -> int:
        return project.labels.setdefault(name, self.next_id())

    # -- access levels ----------------------------------------------------------------

    def group_level(self, group: Group, username: str) -> int:
        """``username``'s level in ``group``, through it or any group above it."""
        levels = [group.members.get(username.lower(), 0)]
        parent = group.parent
        while parent is not None:
            above = self.group(parent)
            if above is None:
                break
            levels.append(above.members.get(username.lower(), 0))
            parent = above.parent
        return max(levels)

    def level(self, project: Project, username: str) -> int:
        """``username``'s access level on ``project`` (0: no member)."""
        if self.user(username) is None:
            return 0
        levels = [project.members.get(username.lower(), 0)]
        group = self.group(project.namespace)
        if group is not None:
            levels.append(self.group_level(group, username))
        return max(levels)

    def can_see_group(self, group: Group, username: str) -> bool:
        """A private group is seen by its members (and its parents') and by the members of
        a project in it or below it (GitLab's GroupPolicy ``has_projects``)."""
        if self.group_level(group, username) >= GUEST:
            return True
        inside = group.full_path.lower() + "/"
        return any(
            p.full_path.lower().startswith(inside) and self.level(p, username) >= GUEST
            for p in self.projects.values()
        )

    def can_see(self, project: Project, username: str) -> bool:
        return project.visibility != "private" or self.level(project, username) >= GUEST

    # -- changes ----------------------------------------------------------------------

    def note(
        self, project: Project, target: Issue | MergeRequest, author: str, body: str, *,
        system: bool = False,
    ) -> Note:  # fmt: skip
        self.add_user(author)
        now = self.now()
        kind: Literal["Issue", "MergeRequest"] = (
            "Issue" if isinstance(target, Issue) else "MergeRequest"
        )
        made = Note(self.next_id(), body, author, now, now, system, kind, target.id, target.iid)
        target.notes.append(made)
        target.updated = now
        return made

    def label(self, project: Project, issue: Issue, name: str, by: str, *, removed: bool) -> None:
        """Label ``name`` given to (or taken from) ``issue`` by ``by``, if that changes it:
        GitLab records it as a resource label event, not a note."""
        if (name in issue.labels) != removed:
            return
        self.add_user(by)
        (issue.labels.remove if removed else issue.labels.append)(name)
        now = self.now()
        event = LabelEvent(
            self.next_id(), by, now, "remove" if removed else "add", name,
            self.label_id(project, name), issue.id,
        )  # fmt: skip
        issue.label_events.append(event)
        issue.updated = now

    def assign(self, project: Project, issue: Issue, logins: list[str], by: str) -> None:
        """``issue``'s assignees set to ``logins`` by ``by``: GitLab records the change as
        a system note (``SystemNotes::IssuablesService#change_issuable_assignees``)."""
        for login in logins:
            self.add_user(login)
        old = list(issue.assignees)
        added = [x for x in logins if x not in old]
        gone = [x for x in old if x not in logins]
        if not added and not gone:
            return
        issue.assignees = list(logins)
        parts = []
        if added:
            parts.append("assigned to " + to_sentence([f"@{x}" for x in added]))
        if gone:
            parts.append("unassigned " + to_sentence([f"@{x}" for x in gone]))
        self.note(project, issue, by, " and ".join(parts), system=True)

    def sync_heads(self, project: Project) -> None:
        """Move each open merge request's ``sha`` to its branch's tip (a git-linked project,
        whose branches move outside the fake)."""
        if not project.linked:
            return
        tips = dict(project.branches)
        for mr in project.mrs.values():
            if mr.state == "opened" and mr.source_branch in tips:
                mr.sha = tips[mr.source_branch]


def to_sentence(words: list[str]) -> str:
    """Rails' ``Array#to_sentence``: ``a``, ``a and b``, ``a, b, and c``."""
    if len(words) <= 2:
        return " and ".join(words)
    return ", ".join(words[:-1]) + ", and " + words[-1]
