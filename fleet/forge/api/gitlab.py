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
followed by ``X-Next-Page``. Answers are read by :mod:`fleet.forge.api.gitlab_read`: a value
of the wrong shape is a :class:`ForgeApiError`, never a crash, and the token is in no
message.
"""

from __future__ import annotations

import base64
import binascii
import logging
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, Final, Literal
from urllib.parse import quote

from fleet.forge.api.gitea_read import Malformed, field_int, field_str
from fleet.forge.api.gitlab_people import GitLabPeople
from fleet.forge.api.gitlab_read import (
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
from fleet.forge.api.rest import ForgeHttp, Params, SessionMaker
from fleet.forge.model import (
    ForgeApiError,
    ForgeComment,
    ForgeFile,
    ForgeIssue,
    ForgeKind,
    ForgePull,
    ForgeReview,
    IssueChange,
    ReviewEvent,
    same_login,
)
from fleet.ledger.records.forge import Slug
from fleet.timing.clock import Clock

log = logging.getLogger(__name__)

PAGE_SIZE: Final = 100  # GitLab's largest per_page
MAX_PAGES: Final = 10
MAX_FILE_BYTES: Final = 1024 * 1024
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


class GitLabApi(GitLabPeople):
    """A GitLab's API at ``api_url`` (``https://gitlab.example.com/api/v4``), as the user
    whose access token ``token`` is. ``name`` is how messages call the forge."""

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
        if not token:
            raise ValueError("a GitLab client needs an access token")
        http = ForgeHttp(name, api_url, session=session, clock=clock)
        super().__init__(http, f"Bearer {token}", name)
        self._token = token
        self._web = http.api_url.removesuffix("/api/v4")
        self._default_branches: dict[str, str] = {}

    def __repr__(self) -> str:
        return f"GitLabApi({self._http.api_url!r})"

    async def close(self) -> None:
        await self._http.close()

    async def git_token(self, repo: Slug) -> str:
        return self._token

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
        _, data, _ = await self._call("GET", path)
        if is_hidden(data):  # members only: its words could reach a public post
            raise ForgeApiError(f"{self._name}: #{number} is confidential, and is not read", 403)
        return self._read(f"GET {path}", issue_of, data)

    async def open_issues(self, repo: Slug, *, since: datetime | None = None) -> list[ForgeIssue]:
        # GitLab lists merge requests apart: only issues here (its runs come by webhook).
        path = f"{self._project(repo)}/issues"
        params: dict[str, str | int] = {"state": "opened"}
        if since is not None:
            params["updated_after"] = since.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        items = await self._listing(path, params)
        return [self._read(f"GET {path}", issue_of, item) for item in items]

    async def _notes(self, repo: Slug, number: int, pull: bool) -> tuple[str, list[Any]]:
        path = f"{self._noteable(repo, number, pull)}/notes"
        items = await self._listing(path, {"sort": "asc", "order_by": "created_at"})
        return path, items

    async def comments(self, repo: Slug, number: int, *, pull: bool = False) -> list[ForgeComment]:
        path, items = await self._notes(repo, number, pull)
        page = self._page_url(repo, number, pull)
        return [
            self._read(f"GET {path}", lambda d: comment_of(d, page), item)
            for item in items
            if not is_system(item) and not is_hidden(item)
        ]

    async def comment(
        self, repo: Slug, number: int, body: str, *, pull: bool = False
    ) -> ForgeComment:
        path = f"{self._noteable(repo, number, pull)}/notes"
        _, data, _ = await self._call("POST", path, body={"body": body}, expect=(201,))
        page = self._page_url(repo, number, pull)
        return self._read(f"POST {path}", lambda d: comment_of(d, page), data)

    async def edit_comment(
        self, repo: Slug, comment_id: int, body: str, *, number: int, pull: bool = False
    ) -> None:
        path = f"{self._noteable(repo, number, pull)}/notes/{comment_id}"
        await self._call("PUT", path, body={"body": body})

    async def issue_changes(self, repo: Slug, number: int) -> list[IssueChange]:
        # Labels: GitLab's resource label events. Assignees: its system notes, the only
        # record of who assigned whom on every tier.
        events = f"{self._project(repo)}/issues/{number}/resource_label_events"
        items = await self._listing(events)
        labels = [self._read(f"GET {events}", label_change_of, item) for item in items]
        path, notes = await self._notes(repo, number, False)
        found = [change for change in labels if change is not None]
        for note in notes:
            found.extend(self._read(f"GET {path}", assignee_changes_of, note))
        found.sort(key=lambda change: change.at)
        return found[-MAX_CHANGES:]

    # -- merge requests ---------------------------------------------------------------

    async def pull(self, repo: Slug, number: int) -> ForgePull:
        path = f"{self._project(repo)}/merge_requests/{number}"
        _, data, _ = await self._call("GET", path)
        return self._read(f"GET {path}", pull_of, data)

    async def find_pull(self, repo: Slug, head: str) -> ForgePull | None:
        path = f"{self._project(repo)}/merge_requests"
        items = await self._listing(path, {"state": "opened", "source_branch": head})
        for item in items:
            pull = self._read(f"GET {path}", pull_of, item)
            if pull.head == head and same_project(item, None):
                return pull
        return None

    async def open_pull(
        self, repo: Slug, *, head: str, base: str, title: str, body: str, draft: bool
    ) -> ForgePull:
        path = f"{self._project(repo)}/merge_requests"
        if draft and not is_draft_title(title):
            title = DRAFT_PREFIX + title
        payload = {"source_branch": head, "target_branch": base, "title": title,
                   "description": body}  # fmt: skip
        _, data, _ = await self._call("POST", path, body=payload, expect=(201,))
        return self._read(f"POST {path}", pull_of, data)

    async def edit_pull(
        self, repo: Slug, number: int, *, title: str | None = None, body: str | None = None
    ) -> None:
        path = f"{self._project(repo)}/merge_requests/{number}"
        payload: dict[str, str] = {}
        if title is not None:
            # A draft stays a draft: its marker is in the title the edit replaces.
            if not is_draft_title(title) and (await self.pull(repo, number)).draft:
                title = DRAFT_PREFIX + title
            payload["title"] = title
        if body is not None:
            payload["description"] = body
        if payload:
            await self._call("PUT", path, body=payload)

    async def request_review(self, repo: Slug, number: int, reviewers: list[str]) -> None:
        if not reviewers:
            return
        path = f"{self._project(repo)}/merge_requests/{number}"
        _, data, _ = await self._call("GET", path)
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
        await self._call("PUT", path, body={"reviewer_ids": ids})

    async def reviews(self, repo: Slug, number: int) -> list[ForgeReview]:
        # GitLab Free keeps no review objects: what it holds of a review is its approval.
        path = f"{self._project(repo)}/merge_requests/{number}/approvals"
        _, data, _ = await self._call("GET", path)
        return self._read(f"GET {path}", approvals_of, data)

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
                await self._call("POST", approve, body={"sha": pull.head_sha}, expect=(201,))
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
        if not pull.draft:
            return
        title = without_draft(pull.title)
        if not title:
            raise ForgeApiError(f"{self._name}: the title of !{number} is only its draft prefix")
        if (await self._retitle(repo, number, title)).draft:
            raise ForgeApiError(f"{self._name} still holds !{number} for a draft", 200)

    async def to_draft(self, repo: Slug, number: int) -> None:
        pull = await self.pull(repo, number)
        if pull.draft:
            return
        if not (await self._retitle(repo, number, DRAFT_PREFIX + pull.title)).draft:
            raise ForgeApiError(f"{self._name} does not hold !{number} for a draft", 200)

    async def _retitle(self, repo: Slug, number: int, title: str) -> ForgePull:
        path = f"{self._project(repo)}/merge_requests/{number}"
        _, data, _ = await self._call("PUT", path, body={"title": title})
        return self._read(f"PUT {path}", pull_of, data)

    async def merge_pull(
        self, repo: Slug, number: int, *, sha: str, squash: bool = False
    ) -> ForgePull:
        """Merge merge request ``number`` if its head is still ``sha`` (GitLab's guard:
        409 when the head moved, a :class:`ForgeApiError` saying so)."""
        path = f"{self._project(repo)}/merge_requests/{number}/merge"
        try:
            _, data, _ = await self._call("PUT", path, body={"sha": sha, "squash": squash})
        except ForgeApiError as exc:
            if exc.status != 409:
                raise
            raise ForgeApiError(
                f"{self._name} did not merge !{number}: its head moved past {sha[:12]} "
                "since it was read (409)",
                409,
            ) from None
        return self._read(f"PUT {path}", pull_of, data)

    async def delete_branch(self, repo: Slug, branch: str) -> None:
        path = f"{self._project(repo)}/repository/branches/{seg(branch)}"
        status, _, _ = await self._call("DELETE", path, expect=(204, 404))
        if status == 404:
            log.info("%s: branch of %s to delete was already gone", self._name, repo)

    async def check_run(
        self,
        repo: Slug,
        *,
        head_sha: str,
        title: str,
        summary: str,
        status: Literal["queued", "in_progress", "completed"],
        conclusion: Literal["success", "failure", "neutral", "cancelled"] | None = None,
        check_id: int | None = None,
    ) -> int | None:
        # A commit status: GitLab keeps one per commit and name, moved on by each post.
        state = {"queued": "pending", "in_progress": "running"}.get(status)
        state = state or _STATES.get(conclusion or "success", "success")
        path = f"{self._project(repo)}/statuses/{seg(head_sha)}"
        payload = {"state": state, "name": STATUS_NAME, "description": title[:255]}
        _, data, _ = await self._call("POST", path, body=payload, expect=(200, 201))
        return self._read(f"POST {path}", lambda d: field_int(d, "id"), data)

    # -- files ------------------------------------------------------------------------

    async def _default_branch(self, repo: Slug) -> str:
        key = str(repo).lower()
        if key not in self._default_branches:
            path = self._project(repo)
            _, data, _ = await self._call("GET", path)
            self._default_branches[key] = self._read(
                f"GET {path}", lambda d: field_str(d, "default_branch"), data
            )
        return self._default_branches[key]

    async def file(self, repo: Slug, path: str, ref: str | None = None) -> ForgeFile:
        call = f"{self._project(repo)}/repository/files/{seg(path.lstrip('/'))}"
        ref = ref or await self._default_branch(repo)
        _, data, _ = await self._call("GET", call, params={"ref": ref})
        try:
            if not isinstance(data, Mapping) or field_str(data, "encoding") != "base64":
                raise Malformed("encoding")
            raw = base64.b64decode(field_str(data, "content"), validate=False)
            sha = field_str(data, "blob_id")
        except Malformed as exc:
            raise self._shape(f"GET {call}", exc) from None
        except (binascii.Error, ValueError):
            raise ForgeApiError(f"{self._name} answered GET {call} with bad base64", 200) from None
        truncated = len(raw) > MAX_FILE_BYTES
        text = raw[:MAX_FILE_BYTES].decode("utf-8", errors="replace")
        return ForgeFile(path=path, text=text, sha=sha, truncated=truncated)

    async def _listing(self, path: str, params: Params | None = None) -> list[Any]:
        """Every item of a paged listing (at most :data:`MAX_PAGES` pages), following
        GitLab's ``X-Next-Page`` (to a short page where it is not sent)."""
        items: list[Any] = []
        page = 1
        for _ in range(MAX_PAGES):
            query = {**(params or {}), "per_page": PAGE_SIZE, "page": page}
            _, data, headers = await self._call("GET", path, params=query)
            if not isinstance(data, list):
                raise ForgeApiError(f"{self._name} answered GET {path} with no list", 200)
            items.extend(data)
            following = headers.get("X-Next-Page")
            if following is None:
                if len(data) < PAGE_SIZE:
                    break
                page += 1
            elif following.strip().isdigit() and int(following) > page:
                page = int(following)
            else:
                break
        return items


__all__ = ["GitLabApi", "seg"]
