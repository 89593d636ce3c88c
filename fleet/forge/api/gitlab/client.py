"""The GitLab client: :class:`GitLabApi`, Fleetwarden's :class:`ForgeApi` over GitLab's
REST API under ``/api/v4`` (gitlab.com or self-managed), with a personal, project or group
access token sent as ``Authorization: Bearer …`` (GitLab takes its tokens so too).

Where GitLab's calls differ from GitHub's they are bridged here: a project is named by
its URL-encoded path (``group%2Fsub%2Fapp``); issues and merge requests are numbered
apart, so a comment's call says which one it is on (``pull``); comments are notes, GitLab's
own (system) notes left out; a draft is a title prefix (``Draft: ``); GitLab Free has no
review objects — a review is a note, an approval is GitLab's approval, and the reviews
read back are the approvals; asking changes of one's own merge request is refused here,
as the protocol says, for GitLab has no call to refuse it; check runs are commit
statuses named ``fleetwarden``; who assigned an issue is read from its system notes, who
labelled it from its resource label events. Listings are paged by ``per_page`` and
followed by ``X-Next-Page`` (:class:`~fleet.forge.api.client.Rest`, which every client
speaks through). Answers are read by :mod:`fleet.forge.api.gitlab.read`: a value
of the wrong shape is a :class:`ForgeApiError`, never a crash, and the token is in no
message.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import datetime
from typing import Any, Final
from urllib.parse import quote

from fleet.forge.api.client import file_of, token_rest, utc_stamp
from fleet.forge.api.fields import Malformed, field_int, field_str
from fleet.forge.api.gitlab.people import GitLabPeople
from fleet.forge.api.gitlab.read import (
    DRAFT_PREFIX,
    approvals_of,
    assignee_changes_of,
    comment_of,
    is_draft_title,
    is_hidden,
    is_system,
    issue_of,
    label_change_of,
    pull_of,
    same_project,
    without_draft,
)
from fleet.forge.api.rest import SessionMaker
from fleet.forge.api.title_drafts import TitleDrafts
from fleet.forge.model import (
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
from fleet.timing.clock import Clock

log = logging.getLogger(__name__)

MAX_CHANGES: Final = 100
STATUS_NAME: Final = "fleetwarden"
_STATES: Final[Mapping[str, str]] = {  # a check run's conclusion as a commit status
    "success": "success",
    "failure": "failed",
    "cancelled": "canceled",
    "neutral": "skipped",
}


def seg(text: str) -> str:
    """One path segment, quoted whole (GitLab wants ``/`` in an id or a branch encoded)."""
    return quote(text, safe="")


class GitLabApi:
    """A GitLab's API at ``api_url`` (``https://gitlab.example.com/api/v4``), as the user
    whose access token ``token`` is. ``name`` is how messages call the forge; who is who
    is asked of :class:`GitLabPeople`."""

    kind: ForgeKind = "gitlab"

    def __init__(
        self,
        api_url: str,
        token: str,
        *,
        name: str = "GitLab",
        session: SessionMaker | None = None,
        clock: Clock | None = None,
    ) -> None:
        self._rest = token_rest(name, api_url, f"Bearer {token}", session=session, clock=clock)
        self._name = name
        self._token = token
        self._web = self._rest.http.api_url.removesuffix("/api/v4")
        self._default_branches: dict[str, str] = {}
        self._drafts = TitleDrafts(name, DRAFT_PREFIX, "draft", "!", is_draft_title, without_draft)
        self._people = GitLabPeople(self._rest)

    def __repr__(self) -> str:
        return f"GitLabApi({self._rest.http.api_url!r})"

    async def close(self) -> None:
        await self._rest.close()

    async def git_token(self, repo: Slug) -> str:
        return self._token

    # -- who is who: asked of GitLabPeople ---------------------------------------------

    async def whoami(self) -> str:
        return await self._people.whoami()

    async def token_scopes(self) -> tuple[str, ...]:
        """The scopes of the client's own token (``api``, ``write_repository``, …)."""
        return await self._people.token_scopes()

    async def user(self, login: str) -> tuple[int, str] | None:
        """The id and username of the user named ``login`` (None: no such user)."""
        return await self._people.user(login)

    async def access_level(self, repo: Slug, login: str) -> int:
        """``login``'s access level on ``repo`` (0: no member, or no such user)."""
        return await self._people.access_level(repo, login)

    async def permission(self, repo: Slug, login: str) -> Permission:
        return await self._people.permission(repo, login)

    async def in_org(self, org: str, login: str) -> bool:
        return await self._people.in_org(org, login)

    async def in_team(self, org: str, team: str, login: str) -> bool:
        return await self._people.in_team(org, team, login)

    async def commit_address(self, repo: Slug, login: str) -> str | None:
        return await self._people.commit_address(repo, login)

    @staticmethod
    def _project(repo: Slug) -> str:
        return f"/projects/{seg(str(repo))}"

    def _page_url(self, repo: Slug, number: int, pull: bool) -> str:
        kind = "merge_requests" if pull else "issues"
        return f"{self._web}/{repo}/-/{kind}/{number}"

    def _noteable(self, repo: Slug, number: int, pull: bool) -> str:
        kind = "merge_requests" if pull else "issues"
        return f"{self._project(repo)}/{kind}/{number}"

    # -- issues and comments ----------------------------------------------------------

    async def issue(self, repo: Slug, number: int) -> ForgeIssue:
        path = f"{self._project(repo)}/issues/{number}"
        data = (await self._rest.call("GET", path)).data
        if is_hidden(data):  # members only: its words could reach a public post
            raise ForgeApiError(f"{self._name}: #{number} is confidential, and is not read", 403)
        return self._rest.read(f"GET {path}", issue_of, data)

    async def open_issues(self, repo: Slug, *, since: datetime | None = None) -> list[ForgeIssue]:
        # GitLab lists merge requests apart: only issues here (its runs come by webhook).
        path = f"{self._project(repo)}/issues"
        params: dict[str, str | int] = {"state": "opened"}
        if since is not None:
            params["updated_after"] = utc_stamp(since)
        items = await self._rest.listing(path, params)
        return [self._rest.read(f"GET {path}", issue_of, item) for item in items]

    async def _notes(self, repo: Slug, number: int, pull: bool) -> tuple[str, list[Any]]:
        path = f"{self._noteable(repo, number, pull)}/notes"
        items = await self._rest.listing(path, {"sort": "asc", "order_by": "created_at"})
        return path, items

    async def comments(self, repo: Slug, number: int, *, pull: bool = False) -> list[ForgeComment]:
        path, items = await self._notes(repo, number, pull)
        page = self._page_url(repo, number, pull)
        return [
            self._rest.read(f"GET {path}", lambda d: comment_of(d, page), item)
            for item in items
            if not is_system(item) and not is_hidden(item)
        ]

    async def comment(
        self, repo: Slug, number: int, body: str, *, pull: bool = False
    ) -> ForgeComment:
        path = f"{self._noteable(repo, number, pull)}/notes"
        page = self._page_url(repo, number, pull)
        return await self._rest.send(
            "POST", path, {"body": body}, lambda d: comment_of(d, page), expect=(201,)
        )

    async def edit_comment(
        self, repo: Slug, comment_id: int, body: str, *, number: int, pull: bool = False
    ) -> None:
        path = f"{self._noteable(repo, number, pull)}/notes/{comment_id}"
        await self._rest.call("PUT", path, body={"body": body})

    async def issue_changes(self, repo: Slug, number: int) -> list[IssueChange]:
        # Labels: GitLab's resource label events. Assignees: its system notes, the only
        # record of who assigned whom on every tier.
        events = f"{self._project(repo)}/issues/{number}/resource_label_events"
        items = await self._rest.listing(events)
        labels = [self._rest.read(f"GET {events}", label_change_of, item) for item in items]
        path, notes = await self._notes(repo, number, False)
        found = [change for change in labels if change is not None]
        for note in notes:
            found.extend(self._rest.read(f"GET {path}", assignee_changes_of, note))
        found.sort(key=lambda change: change.at)
        return found[-MAX_CHANGES:]

    # -- merge requests ---------------------------------------------------------------

    async def pull(self, repo: Slug, number: int) -> ForgePull:
        return await self._rest.got(f"{self._project(repo)}/merge_requests/{number}", pull_of)

    async def find_pull(self, repo: Slug, head: str) -> ForgePull | None:
        path = f"{self._project(repo)}/merge_requests"
        items = await self._rest.listing(path, {"state": "opened", "source_branch": head})
        for item in items:
            pull = self._rest.read(f"GET {path}", pull_of, item)
            if pull.head == head and same_project(item, None):
                return pull
        return None

    async def open_pull(
        self, repo: Slug, *, head: str, base: str, title: str, body: str, draft: bool
    ) -> ForgePull:
        path = f"{self._project(repo)}/merge_requests"
        title = self._drafts.opened(title, draft)
        payload = {"source_branch": head, "target_branch": base, "title": title,
                   "description": body}  # fmt: skip
        return await self._rest.send("POST", path, payload, pull_of, expect=(201,))

    async def edit_pull(
        self, repo: Slug, number: int, *, title: str | None = None, body: str | None = None
    ) -> None:
        payload: dict[str, str] = {}
        if title is not None:
            payload["title"] = await self._drafts.kept(title, lambda: self.pull(repo, number))
        if body is not None:
            payload["description"] = body
        if payload:
            await self._rest.call(
                "PUT", f"{self._project(repo)}/merge_requests/{number}", body=payload
            )

    async def request_review(self, repo: Slug, number: int, reviewers: list[str]) -> None:
        if not reviewers:
            return
        path = f"{self._project(repo)}/merge_requests/{number}"
        data = (await self._rest.call("GET", path)).data
        held = data.get("reviewers") if isinstance(data, Mapping) else None
        ids = [
            r["id"] for r in held or [] if isinstance(r, Mapping) and isinstance(r.get("id"), int)
        ]
        for login in reviewers:
            found = await self.user(login)
            if found is None:
                raise ForgeApiError(
                    f"{self._name} knows no user {login!r} to ask for a review", 422
                )
            if found[0] not in ids:
                ids.append(found[0])
        await self._rest.call("PUT", path, body={"reviewer_ids": ids})

    async def reviews(self, repo: Slug, number: int) -> list[ForgeReview]:
        # GitLab Free keeps no review objects: what it holds of a review is its approval.
        return await self._rest.got(
            f"{self._project(repo)}/merge_requests/{number}/approvals", approvals_of
        )

    async def review(
        self, repo: Slug, number: int, body: str, *, event: ReviewEvent = "COMMENT"
    ) -> str:
        pull = await self.pull(repo, number)
        if event != "COMMENT" and same_login(pull.author, await self.whoami()):
            what = "approve" if event == "APPROVE" else "ask changes of"
            raise ForgeApiError(
                f"{self._name} refused to {what} !{number}: 422 one may not review one's "
                "own pull request (merge request) so",
                422,
            )
        if event == "APPROVE":
            approve = f"{self._project(repo)}/merge_requests/{number}/approve"
            try:
                await self._rest.call("POST", approve, body={"sha": pull.head_sha}, expect=(201,))
            except ForgeApiError as exc:
                if exc.status != 401:
                    raise
                raise ForgeApiError(
                    f"{self._name} refused to approve !{number}: 422 not an eligible "
                    "approver (approved already, or no right to approve it)",
                    422,
                ) from None
        posted = await self.comment(repo, number, body, pull=True)
        return posted.url

    async def ready_for_review(self, repo: Slug, number: int) -> None:
        pull = await self.pull(repo, number)
        await self._drafts.lift(pull, lambda title: self._retitle(repo, number, title))

    async def to_draft(self, repo: Slug, number: int) -> None:
        pull = await self.pull(repo, number)
        await self._drafts.lower(pull, lambda title: self._retitle(repo, number, title))

    async def _retitle(self, repo: Slug, number: int, title: str) -> ForgePull:
        path = f"{self._project(repo)}/merge_requests/{number}"
        return await self._rest.send("PUT", path, {"title": title}, pull_of)

    async def merge_pull(
        self, repo: Slug, number: int, *, sha: str, squash: bool = False
    ) -> ForgePull:
        """Merge merge request ``number`` if its head is still ``sha`` (GitLab's guard:
        409 when the head moved, a :class:`ForgeApiError` saying so)."""
        path = f"{self._project(repo)}/merge_requests/{number}/merge"
        try:
            answer = await self._rest.call("PUT", path, body={"sha": sha, "squash": squash})
        except ForgeApiError as exc:
            if exc.status != 409:
                raise
            raise ForgeApiError(
                f"{self._name} did not merge !{number}: its head moved past {sha[:12]} "
                "since it was read (409)",
                409,
            ) from None
        return self._rest.read(f"PUT {path}", pull_of, answer.data)

    async def delete_branch(self, repo: Slug, branch: str) -> None:
        path = f"{self._project(repo)}/repository/branches/{seg(branch)}"
        if not await self._rest.delete(path):
            log.info("%s: branch of %s to delete was already gone", self._name, repo)

    async def check_run(self, repo: Slug, run: CheckRun, check_id: int | None = None) -> int | None:
        # A commit status: GitLab keeps one per commit and name, moved on by each post.
        state = {"queued": "pending", "in_progress": "running"}.get(run.status)
        state = state or _STATES.get(run.conclusion or "success", "success")
        path = f"{self._project(repo)}/statuses/{seg(run.head_sha)}"
        payload = {"state": state, "name": STATUS_NAME, "description": run.title[:255]}
        return await self._rest.send(
            "POST", path, payload, lambda d: field_int(d, "id"), expect=(200, 201)
        )

    # -- files ------------------------------------------------------------------------

    async def _default_branch(self, repo: Slug) -> str:
        key = str(repo).lower()
        if key not in self._default_branches:
            self._default_branches[key] = await self._rest.got(
                self._project(repo), lambda d: field_str(d, "default_branch")
            )
        return self._default_branches[key]

    async def file(self, repo: Slug, path: str, ref: str | None = None) -> ForgeFile:
        call = f"{self._project(repo)}/repository/files/{seg(path.lstrip('/'))}"
        ref = ref or await self._default_branch(repo)
        content, sha = await self._rest.got(call, _base64, params={"ref": ref})
        return file_of(self._name, f"GET {call}", path, content, sha, 200)


def _base64(data: Any) -> tuple[str, str]:
    """A file's base64 content and blob id."""
    if not isinstance(data, Mapping) or field_str(data, "encoding") != "base64":
        raise Malformed("encoding")
    return field_str(data, "content"), field_str(data, "blob_id")


__all__ = ["GitLabApi", "seg"]
