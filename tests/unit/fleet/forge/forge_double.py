"""An in-memory forge for tests of forge work: every :class:`~fleet.forge.model.ForgeApi`
call over dicts — issues, comments with their edit history, pull requests, reviews,
files, permissions, org and team members, deleted branches, check runs — each call
recorded, and any method made to fail with the forge's error."""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

from fleet.forge.model import (
    ChangeKind,
    CheckRun,
    ForgeApiError,
    ForgeComment,
    ForgeFile,
    ForgeIssue,
    ForgeKind,
    ForgePull,
    ForgeReview,
    IssueChange,
    Permission,
    ReviewEvent,
    same_login,
)
from fleet.ledger.records.forge import Slug

SLUG = Slug("acme", "app")
BOT = "fleet-bot"
WHEN = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)
HEAD_SHA = "0123456789abcdef0123456789abcdef01234567"


@dataclass
class Comment:
    """A comment kept by the fake forge, with every text it had (the first: as posted)."""

    repo: str
    number: int
    comment: ForgeComment
    history: list[str]


@dataclass
class FakeForgeApi:
    """A forge API over dicts that records every call; ``failures`` by method name."""

    kind: ForgeKind = "github"
    poster: str = BOT  # who the forge says wrote what Fleetwarden posts
    login: str = BOT  # whom the forge says the client's credential acts as
    issues: dict[tuple[str, int], ForgeIssue] = field(default_factory=dict)
    posted: dict[int, Comment] = field(default_factory=dict)
    pulls: dict[tuple[str, int], ForgePull] = field(default_factory=dict)
    review_lists: dict[tuple[str, int], list[ForgeReview]] = field(default_factory=dict)
    review_requests: dict[tuple[str, int], list[str]] = field(default_factory=dict)
    files: dict[tuple[str, str, str | None], ForgeFile] = field(default_factory=dict)
    users: set[str] = field(default_factory=set)  # accounts that own nothing here
    permissions: dict[tuple[str, str], Permission] = field(default_factory=dict)
    org_members: set[tuple[str, str]] = field(default_factory=set)
    team_members: set[tuple[str, str, str]] = field(default_factory=set)
    deleted_branches: list[tuple[str, str]] = field(default_factory=list)
    check_runs: dict[int, dict[str, Any]] = field(default_factory=dict)
    changes: dict[tuple[str, int], list[IssueChange]] = field(default_factory=dict)
    failures: dict[str, ForgeApiError] = field(default_factory=dict)
    calls: list[tuple[Any, ...]] = field(default_factory=list)
    _ids: itertools.count[int] = field(default_factory=lambda: itertools.count(9001))

    # -- seeding and looking ---------------------------------------------------------------

    def add_issue(self, number: int = 3, **changes: Any) -> ForgeIssue:
        made = ForgeIssue(
            number=number,
            title="Fix the parser",
            body="The parser drops the last line of every file.",
            author="alice",
            labels=(),
            assignees=(),
            state="open",
            url=f"https://github.com/{SLUG}/issues/{number}",
            updated_at=WHEN,
        )
        made = replace(made, **changes)
        self.issues[(str(SLUG), number)] = made
        return made

    def add_comment(self, number: int, author: str, body: str) -> ForgeComment:
        key = next(self._ids)
        made = ForgeComment(
            id=key,
            author=author,
            body=body,
            created_at=WHEN,
            url=f"https://github.com/{SLUG}/issues/{number}#issuecomment-{key}",
        )
        self.posted[key] = Comment(str(SLUG), number, made, [body])
        return made

    def change(
        self, number: int, kind: ChangeKind, name: str, actor: str, at: datetime = WHEN
    ) -> None:
        """A change of issue ``number``'s labels or assignees by ``actor``, recorded."""
        made = IssueChange(kind, name, actor, at)
        self.changes.setdefault((str(SLUG), number), []).append(made)

    def allow(self, login: str, permission: Permission = "write") -> None:
        self.permissions[(str(SLUG), login.lower())] = permission

    def comments_on(self, number: int) -> list[Comment]:
        return [c for c in self.posted.values() if c.number == number]

    def texts_on(self, number: int) -> list[str]:
        return [c.comment.body for c in self.comments_on(number)]

    def named(self, method: str) -> list[tuple[Any, ...]]:
        return [call for call in self.calls if call[0] == method]

    def writes(self) -> list[tuple[Any, ...]]:
        """Every call that changed something on the forge."""
        reads = {"issue", "comments", "pull", "find_pull", "reviews", "file", "permission"}
        reads |= {"issue_changes"}
        return [c for c in self.calls if c[0] not in reads | {"in_org", "in_team", "open_issues"}]

    def _fail(self, method: str, *args: Any) -> None:
        self.calls.append((method, *args))
        failure = self.failures.get(method)
        if failure is not None:
            raise failure

    def _missing(self, what: str) -> ForgeApiError:
        return ForgeApiError(f"GitHub refused GET {what}: 404 Not Found", 404)

    # -- the ForgeApi ----------------------------------------------------------------------

    async def issue(self, repo: Slug, number: int) -> ForgeIssue:
        self._fail("issue", str(repo), number)
        found = self.issues.get((str(repo), number))
        if found is None:
            raise self._missing(f"issues/{number}")
        return found

    async def comments(self, repo: Slug, number: int, *, pull: bool = False) -> list[ForgeComment]:
        self._fail("comments", str(repo), number)
        return [
            c.comment for c in self.posted.values() if (c.repo, c.number) == (str(repo), number)
        ]

    async def comment(
        self, repo: Slug, number: int, body: str, *, pull: bool = False
    ) -> ForgeComment:
        self._fail("comment", str(repo), number, body)
        key = next(self._ids)
        made = ForgeComment(
            id=key,
            author=self.poster,
            body=body,
            created_at=WHEN,
            url=f"https://github.com/{repo}/issues/{number}#issuecomment-{key}",
        )
        self.posted[key] = Comment(str(repo), number, made, [body])
        return made

    async def edit_comment(
        self, repo: Slug, comment_id: int, body: str, *, number: int = 0, pull: bool = False
    ) -> None:
        self._fail("edit_comment", str(repo), comment_id, body)
        kept = self.posted.get(comment_id)
        if kept is None or kept.repo != str(repo):
            raise self._missing(f"issues/comments/{comment_id}")
        kept.comment = replace(kept.comment, body=body)
        kept.history.append(body)

    async def pull(self, repo: Slug, number: int) -> ForgePull:
        self._fail("pull", str(repo), number)
        found = self.pulls.get((str(repo), number))
        if found is None:
            raise self._missing(f"pulls/{number}")
        return found

    async def find_pull(self, repo: Slug, head: str) -> ForgePull | None:
        self._fail("find_pull", str(repo), head)
        for (slug, _), pull in self.pulls.items():
            if slug == str(repo) and pull.head == head and pull.state == "open":
                return pull
        return None

    async def open_pull(
        self, repo: Slug, *, head: str, base: str, title: str, body: str, draft: bool
    ) -> ForgePull:
        self._fail("open_pull", str(repo), head, base, title, body, draft)
        taken = [n for (_, n) in [*self.issues, *self.pulls]]
        number = max(taken, default=0) + 1
        made = ForgePull(
            number=number,
            title=title,
            body=body,
            author=BOT,
            head=head,
            base=base,
            head_sha=HEAD_SHA,
            state="open",
            merged=False,
            draft=draft,
            url=f"https://github.com/{repo}/pull/{number}",
            updated_at=WHEN,
        )
        self.pulls[(str(repo), number)] = made
        return made

    async def edit_pull(
        self, repo: Slug, number: int, *, title: str | None = None, body: str | None = None
    ) -> None:
        self._fail("edit_pull", str(repo), number, title, body)
        found = await self.pull(repo, number)
        self.pulls[(str(repo), number)] = replace(
            found,
            title=found.title if title is None else title,
            body=found.body if body is None else body,
        )

    async def request_review(self, repo: Slug, number: int, reviewers: list[str]) -> None:
        self._fail("request_review", str(repo), number, tuple(reviewers))
        self.review_requests.setdefault((str(repo), number), []).extend(reviewers)

    async def reviews(self, repo: Slug, number: int) -> list[ForgeReview]:
        self._fail("reviews", str(repo), number)
        return list(self.review_lists.get((str(repo), number), []))

    async def review(
        self, repo: Slug, number: int, body: str, *, event: ReviewEvent = "COMMENT"
    ) -> str:
        self._fail("review", str(repo), number, body, event)
        found = await self.pull(repo, number)
        if event != "COMMENT" and same_login(found.author, self.poster):
            own = "approve" if event == "APPROVE" else "request changes on"
            what = f"POST repos/{repo}/pulls/{number}/reviews"
            raise ForgeApiError(
                f"GitHub refused {what}: 422 Unprocessable Entity; Review Can not {own} your "
                "own pull request",
                422,
            )
        states = {"COMMENT": "commented", "APPROVE": "approved"}
        made = ForgeReview(
            next(self._ids), self.poster, states.get(event, "changes_requested"), body, WHEN
        )
        self.review_lists.setdefault((str(repo), number), []).append(made)
        return f"https://github.com/{repo}/pull/{number}#pullrequestreview-{made.id}"

    async def ready_for_review(self, repo: Slug, number: int) -> None:
        self._fail("ready_for_review", str(repo), number)
        found = await self.pull(repo, number)
        self.pulls[(str(repo), number)] = replace(found, draft=False)

    async def file(self, repo: Slug, path: str, ref: str | None = None) -> ForgeFile:
        self._fail("file", str(repo), path, ref)
        # A branch holds the default branch's files but those changed on it.
        found = self.files.get((str(repo), path, ref)) or self.files.get((str(repo), path, None))
        if found is None:
            raise self._missing(f"contents/{path}")
        return found

    async def permission(self, repo: Slug, login: str) -> Permission:
        self._fail("permission", str(repo), login)
        return self.permissions.get((str(repo), login.lower()), "none")

    async def in_org(self, org: str, login: str) -> bool:
        self._fail("in_org", org, login)
        return (org, login.lower()) in self.org_members

    async def commit_address(self, repo: Slug, login: str) -> str | None:
        self._fail("commit_address", str(repo), login)
        if login.lower() not in self._known():
            return None  # no such user on the forge
        return f"{sum(map(ord, login))}+{login}@users.noreply.github.com"

    def _known(self) -> set[str]:
        """Every login the forge has an account of."""
        found = {self.login, self.poster, *self.users}
        found |= {who for _, who in self.permissions} | {who for _, who in self.org_members}
        found |= {who for *_, who in self.team_members}
        found |= {i.author for i in self.issues.values()} | {p.author for p in self.pulls.values()}
        found |= {c.comment.author for c in self.posted.values()}
        return {who.lower() for who in found}

    async def in_team(self, org: str, team: str, login: str) -> bool:
        self._fail("in_team", org, team, login)
        return (org, team, login.lower()) in self.team_members

    async def delete_branch(self, repo: Slug, branch: str) -> None:
        self._fail("delete_branch", str(repo), branch)
        self.deleted_branches.append((str(repo), branch))

    async def open_issues(self, repo: Slug, *, since: datetime | None = None) -> list[ForgeIssue]:
        self._fail("open_issues", str(repo), since)
        return [
            i
            for (slug, _), i in self.issues.items()
            if slug == str(repo) and i.state == "open" and (since is None or i.updated_at >= since)
        ]

    async def issue_changes(self, repo: Slug, number: int) -> list[IssueChange]:
        self._fail("issue_changes", str(repo), number)
        return list(self.changes.get((str(repo), number), []))

    async def check_run(self, repo: Slug, run: CheckRun, check_id: int | None = None) -> int | None:
        self._fail("check_run", str(repo), run.head_sha, run.status, run.conclusion, check_id)
        key = check_id if check_id is not None else next(self._ids)
        self.check_runs[key] = {
            "repo": str(repo),
            "head_sha": run.head_sha,
            "title": run.title,
            "summary": run.summary,
            "status": run.status,
            "conclusion": run.conclusion,
        }
        return key

    async def whoami(self) -> str:
        self._fail("whoami")
        return self.login

    async def git_token(self, repo: Slug) -> str:
        self._fail("git_token", str(repo))
        return "ghs_installation_token_of_the_fake"

    async def close(self) -> None:
        self.calls.append(("close",))
