"""What the fake GitHub holds — its records (:mod:`tests.fakes.github.records`), orgs and
teams — and the helpers a test seeds and inspects it with.

A repository may be linked to a real bare git repository (:meth:`GitHubState.link_git`):
its branches and files are then read from git.

Helpers may be called from a test's thread while the fake serves on its own: every
change and every request's work holds :attr:`GitHubState.lock`.
"""

from __future__ import annotations

import itertools
import threading
from collections.abc import Iterable
from pathlib import Path

from fleet.timing.clock import Clock, SystemClock
from tests.fakes.github.records import (
    Accounts,
    CheckRun,
    Comment,
    Issue,
    IssueEvent,
    Pull,
    Repo,
    RepoPermission,
    Review,
    ReviewState,
)


class GitHubState:
    """The fake's world. Logins and owners are matched without regard to case, as
    GitHub does."""

    def __init__(self, clock: Clock | None = None) -> None:
        self.clock = clock or SystemClock()
        self.lock = threading.RLock()
        self._ids = itertools.count(1001)
        self.accounts = Accounts(self._ids)
        self.repos: dict[tuple[str, str], Repo] = {}
        self.org_members: dict[str, set[str]] = {}
        self.teams: dict[tuple[str, str], dict[str, str]] = {}  # (org, slug) → login → state

    def next_id(self) -> int:
        return next(self._ids)

    # -- seeding ------------------------------------------------------------------

    def add_repo(
        self,
        slug: str,
        *,
        default_branch: str = "main",
        base_sha: str = "0" * 39 + "1",
        files: dict[str, str | bytes] | None = None,
        private: bool = False,
    ) -> Repo:
        """A repository ``owner/name`` with its default branch at ``base_sha`` holding
        ``files``. The owner is an org when it has members, else a user."""
        owner, _, name = slug.partition("/")
        with self.lock:
            repo = Repo(owner, name, self.next_id(), self.clock.now(), default_branch, private)
            repo.branches[default_branch] = base_sha
            repo.files[default_branch] = {
                path: data.encode() if isinstance(data, str) else data
                for path, data in (files or {}).items()
            }
            self.accounts.get(owner)
            self.repos[(owner.casefold(), name.casefold())] = repo
            return repo

    def repo(self, slug: str) -> Repo:
        owner, _, name = slug.partition("/")
        return self.repos[(owner.casefold(), name.casefold())]

    def link_git(self, slug: str, git_dir: Path) -> None:
        """Read ``slug``'s branches and files from the bare repository ``git_dir``."""
        with self.lock:
            self.repo(slug).git_dir = git_dir

    def set_branch(
        self, slug: str, branch: str, sha: str, files: dict[str, str] | None = None
    ) -> None:
        """Branch ``branch`` of ``slug`` at ``sha`` (with ``files``; else its base's)."""
        with self.lock:
            repo = self.repo(slug)
            repo.branches[branch] = sha
            base = dict(repo.files.get(repo.default_branch, {}))
            repo.files[branch] = (
                {path: text.encode() for path, text in files.items()} if files is not None else base
            )

    def add_collaborator(self, slug: str, login: str, permission: RepoPermission = "write") -> None:
        with self.lock:
            self.accounts.get(login)
            self.repo(slug).collaborators[login] = permission

    def add_org_member(self, org: str, login: str) -> None:
        with self.lock:
            self.accounts.get(org, "Organization").type = "Organization"
            self.org_members.setdefault(org.casefold(), set()).add(login.casefold())

    def add_team_member(self, org: str, team: str, login: str, state: str = "active") -> None:
        with self.lock:
            self.teams.setdefault((org.casefold(), team.casefold()), {})[login.casefold()] = state

    def add_issue(
        self,
        slug: str,
        title: str,
        body: str | None = "",
        *,
        author: str = "octocat",
        labels: Iterable[str] = (),
        assignees: Iterable[str] = (),
    ) -> int:
        """A new open issue; its number. Its ``labels`` and ``assignees`` are given by
        its author, as GitHub records them."""
        with self.lock:
            repo = self.repo(slug)
            number = len(repo.issues) + 1
            now = self.clock.now()
            made = Issue(number, self.next_id(), title, body, author, [], [], now, now)
            repo.issues[number] = made
            self.accounts.get(author)
            for name in labels:
                self.label(slug, number, name)
            for who in assignees:
                self.assign(slug, number, who)
            return number

    def add_pull(
        self,
        slug: str,
        head: str,
        *,
        title: str = "A change",
        body: str = "",
        author: str = "octocat",
        base: str | None = None,
        draft: bool = False,
    ) -> int:
        """An open pull request from existing branch ``head`` (as a person opens one); its
        number."""
        with self.lock:
            repo = self.repo(slug)
            base = base or repo.default_branch
            head_sha, base_sha = repo.branch_sha(head), repo.branch_sha(base)
            if head_sha is None or base_sha is None:
                raise ValueError(f"{slug} has no branch {head} or {base}")
            number = self.add_issue(slug, title, body, author=author)
            repo.issues[number].pull = Pull(self.next_id(), head, base, head_sha, base_sha, draft)
            return number

    def add_comment(self, slug: str, number: int, body: str, *, author: str = "octocat") -> int:
        """A comment by ``author`` on issue or pull request ``number``; its id."""
        with self.lock:
            item = self.repo(slug).issues[number]
            now = self.clock.now()
            found = Comment(self.next_id(), number, author, body, now, now)
            item.comments.append(found)
            item.updated_at = now
            self.accounts.get(author)
            return found.id

    def touch(self, item: Issue) -> None:
        item.updated_at = self.clock.now()

    def _record(self, item: Issue, event: str, name: str, by: str | None) -> None:
        """The change recorded as one of the issue's events (its author's by default)."""
        actor = by or item.author
        self.accounts.get(actor)
        item.events.append(IssueEvent(self.next_id(), event, name, actor, self.clock.now()))
        self.touch(item)

    def label(self, slug: str, number: int, name: str, *, by: str | None = None) -> None:
        """Label ``name`` given to issue ``number`` by ``by`` (its author by default)."""
        with self.lock:
            item = self.repo(slug).issues[number]
            if name not in item.labels:
                item.labels.append(name)
                self._record(item, "labeled", name, by)

    def unlabel(self, slug: str, number: int, name: str, *, by: str | None = None) -> None:
        with self.lock:
            item = self.repo(slug).issues[number]
            item.labels.remove(name)
            self._record(item, "unlabeled", name, by)

    def assign(self, slug: str, number: int, login: str, *, by: str | None = None) -> None:
        """Issue ``number`` assigned to ``login`` by ``by`` (its author by default)."""
        with self.lock:
            item = self.repo(slug).issues[number]
            self.accounts.get(login)
            if login not in item.assignees:
                item.assignees.append(login)
                self._record(item, "assigned", login, by)

    def unassign(self, slug: str, number: int, login: str, *, by: str | None = None) -> None:
        with self.lock:
            item = self.repo(slug).issues[number]
            item.assignees.remove(login)
            self._record(item, "unassigned", login, by)

    def close_issue(self, slug: str, number: int, reason: str = "completed") -> None:
        with self.lock:
            item = self.repo(slug).issues[number]
            item.state, item.state_reason, item.closed_at = "closed", reason, self.clock.now()
            self.touch(item)

    def submit_review(
        self,
        slug: str,
        number: int,
        author: str,
        state: ReviewState = "CHANGES_REQUESTED",
        body: str = "",
    ) -> int:
        """A review of pull request ``number`` on its head commit; its id."""
        with self.lock:
            item = self.repo(slug).issues[number]
            if item.pull is None:
                raise ValueError(f"#{number} is not a pull request")
            self.repo(slug).sync_heads()
            when = None if state == "PENDING" else self.clock.now()
            found = Review(self.next_id(), author, state, body, item.pull.head_sha, when)
            item.pull.reviews.append(found)
            self.accounts.get(author)
            self.touch(item)
            return found.id

    def merge_pull(self, slug: str, number: int, *, by: str = "octocat") -> None:
        """Pull request ``number`` merged (and so closed) by ``by``."""
        with self.lock:
            self.repo(slug).sync_heads()
            item = self.repo(slug).issues[number]
            if item.pull is None or item.state != "open":
                raise ValueError(f"#{number} is not an open pull request")
            now = self.clock.now()
            item.pull.merged_at, item.pull.merged_by = now, by
            item.pull.merge_commit_sha = item.pull.head_sha
            item.state, item.closed_at = "closed", now
            self.touch(item)

    def close_pull(self, slug: str, number: int) -> None:
        """Pull request ``number`` closed without merging."""
        with self.lock:
            item = self.repo(slug).issues[number]
            if item.pull is None:
                raise ValueError(f"#{number} is not a pull request")
            item.state, item.closed_at = "closed", self.clock.now()
            self.touch(item)

    # -- inspection ---------------------------------------------------------------

    def comments_on(self, slug: str, number: int, *, pull: bool = False) -> list[Comment]:
        """The comments on issue or pull request ``number`` (one numbering: ``pull`` says
        nothing more here)."""
        with self.lock:
            return list(self.repo(slug).issues[number].comments)

    def issue_of(self, slug: str, number: int) -> Issue:
        with self.lock:
            return self.repo(slug).issues[number]

    def pulls(self, slug: str) -> list[Issue]:
        """The pull requests of ``slug`` (issues with ``pull`` set), by number."""
        with self.lock:
            self.repo(slug).sync_heads()
            return [item for item in self.repo(slug).issues.values() if item.pull is not None]

    def is_draft(self, slug: str, number: int) -> bool:
        """Whether pull request ``number`` of ``slug`` is a draft."""
        with self.lock:
            pull = self.repo(slug).issues[number].pull
            return pull is not None and pull.draft

    def reviews_of(self, slug: str, number: int) -> list[tuple[str, str, str]]:
        """Each review of pull request ``number``: its author, state and body."""
        with self.lock:
            pull = self.repo(slug).issues[number].pull
            return [(r.author, r.state, r.body) for r in (pull.reviews if pull else [])]

    def check_runs(self, slug: str) -> list[CheckRun]:
        with self.lock:
            return list(self.repo(slug).check_runs.values())

    def deleted_branches(self, slug: str) -> list[str]:
        with self.lock:
            return list(self.repo(slug).deleted_branches)
