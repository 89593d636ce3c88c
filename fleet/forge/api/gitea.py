"""The Gitea (and Forgejo) client: :class:`GiteaApi`, Fleetwarden's :class:`ForgeApi` over
Gitea's REST API under ``/api/v1``, with an access token (``Authorization: token …``).

Where Gitea's calls differ from GitHub's they are bridged here: a draft pull request is
opened with the ``WIP: `` title prefix (Gitea's own convention) and made ready for review
by taking the prefix off; a review's approval is Gitea's ``APPROVED``; listings are paged
with ``page``/``limit`` and counted by ``X-Total-Count``; a pull request is found by its
branch among the open ones; Gitea has no check runs; a user's commits are credited at
Gitea's no-reply form of the API's host (:func:`no_reply_address`), never at the address
it shows. Answers are read by :mod:`fleet.forge.api.gitea_read`: a value of the wrong shape is a
:class:`ForgeApiError`, never a crash, and the token is in no message.
"""

from __future__ import annotations

import base64
import binascii
import logging
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, Final, Literal
from urllib.parse import quote

from fleet.forge.api.gitea_read import (
    WIP_PREFIX,
    Malformed,
    change_of,
    comment_of,
    field_int,
    field_obj,
    field_str,
    head_repo_is,
    is_wip,
    issue_of,
    pull_of,
    review_of,
    without_wip,
)
from fleet.forge.api.no_reply import no_reply_address
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
    Permission,
    ReviewEvent,
)
from fleet.ledger.records.forge import Slug
from fleet.timing.clock import Clock

log = logging.getLogger(__name__)

PAGE_SIZE: Final = 50  # Gitea's default MAX_RESPONSE_ITEMS: a bigger limit is cut to it
MAX_PAGES: Final = 10
MAX_FILE_BYTES: Final = 1024 * 1024
MAX_CHANGES: Final = 100
_EVENTS: Final[Mapping[ReviewEvent, str]] = {  # Gitea's ReviewStateType
    "COMMENT": "COMMENT",
    "APPROVE": "APPROVED",
    "REQUEST_CHANGES": "REQUEST_CHANGES",
}
_PERMISSIONS: Final[Mapping[str, Permission]] = {
    "owner": "admin",
    "admin": "admin",
    "write": "write",
    "read": "read",
    "none": "none",
}


def _seg(text: str) -> str:
    """One path segment, quoted whole (a ``/`` in it stays inside it)."""
    return quote(text, safe="")


def _slashed(text: str) -> str:
    """A path that may hold ``/`` (a file path, a branch), each segment quoted."""
    return quote(text, safe="/")


class GiteaApi:
    """A Gitea or Forgejo server's API at ``api_url`` (``https://host/api/v1``), as the
    user whose access token ``token`` is. ``name`` is how messages call the forge."""

    kind: ForgeKind = "gitea"

    def __init__(
        self,
        api_url: str,
        token: str,
        *,
        name: str = "Gitea",
        session: SessionMaker | None = None,
        clock: Clock | None = None,
    ) -> None:
        if not token:
            raise ValueError("a Gitea client needs an access token")
        self._token = token
        self._auth = f"token {token}"
        self._http = ForgeHttp(name, api_url, session=session, clock=clock)
        self._name = name

    def __repr__(self) -> str:
        return f"GiteaApi({self._http.api_url!r})"

    async def close(self) -> None:
        await self._http.close()

    async def git_token(self, repo: Slug) -> str:
        return self._token

    async def whoami(self) -> str:
        _, data, _ = await self._call("GET", "/user")
        try:
            return field_str(data if isinstance(data, Mapping) else {}, "login")
        except Malformed as exc:
            raise self._shape("GET /user", exc) from None

    # -- calls ------------------------------------------------------------------------

    async def _call(
        self,
        method: str,
        path: str,
        *,
        params: Params | None = None,
        body: Mapping[str, Any] | None = None,
        expect: tuple[int, ...] = (200,),
    ) -> tuple[int, Any, Mapping[str, str]]:
        answer = await self._http.call(
            method, path, auth=self._auth, params=params, body=body, expect=expect
        )
        return answer.status, answer.data, answer.headers

    async def _listing(self, path: str, params: Params | None = None) -> list[Any]:
        """Every item of a paged listing (at most :data:`MAX_PAGES` pages)."""
        return await self._http.pages(
            path,
            auth=self._auth,
            params=params,
            size_param="limit",
            size=PAGE_SIZE,
            max_pages=MAX_PAGES,
        )

    def _shape(self, what: str, exc: Malformed) -> ForgeApiError:
        return ForgeApiError(f"{self._name} answered {what} without a valid {exc.args[0]!r}", 200)

    @staticmethod
    def _repo(repo: Slug) -> str:
        return f"/repos/{_seg(repo.owner)}/{_seg(repo.name)}"

    # -- issues and comments ----------------------------------------------------------

    async def issue(self, repo: Slug, number: int) -> ForgeIssue:
        path = f"{self._repo(repo)}/issues/{number}"
        _, data, _ = await self._call("GET", path)
        try:
            return issue_of(data)
        except Malformed as exc:
            raise self._shape(f"GET {path}", exc) from None

    async def open_issues(self, repo: Slug, *, since: datetime | None = None) -> list[ForgeIssue]:
        path = f"{self._repo(repo)}/issues"
        params: dict[str, str | int] = {"state": "open"}
        if since is not None:
            params["since"] = since.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        items = await self._listing(path, params)
        try:
            return [issue_of(item) for item in items]
        except Malformed as exc:
            raise self._shape(f"GET {path}", exc) from None

    async def comments(self, repo: Slug, number: int, *, pull: bool = False) -> list[ForgeComment]:
        # Gitea lists an issue's comments whole: this call takes no page or limit.
        path = f"{self._repo(repo)}/issues/{number}/comments"
        _, data, _ = await self._call("GET", path)
        if not isinstance(data, list):
            raise ForgeApiError(f"{self._name} answered GET {path} with no list", 200)
        try:
            return [comment_of(item) for item in data]
        except Malformed as exc:
            raise self._shape(f"GET {path}", exc) from None

    async def issue_changes(self, repo: Slug, number: int) -> list[IssueChange]:
        # Asked without a page, Gitea lists the whole timeline, oldest first: paged, its
        # X-Total-Count is the page's own length, which says nothing of the pages after.
        path = f"{self._repo(repo)}/issues/{number}/timeline"
        _, data, _ = await self._call("GET", path)
        if not isinstance(data, list):
            raise ForgeApiError(f"{self._name} answered GET {path} with no list", 200)
        try:
            found = [change for item in data if (change := change_of(item)) is not None]
        except Malformed as exc:
            raise self._shape(f"GET {path}", exc) from None
        return found[-MAX_CHANGES:]

    async def comment(
        self, repo: Slug, number: int, body: str, *, pull: bool = False
    ) -> ForgeComment:
        path = f"{self._repo(repo)}/issues/{number}/comments"
        _, data, _ = await self._call("POST", path, body={"body": body}, expect=(201,))
        try:
            return comment_of(data)
        except Malformed as exc:
            raise self._shape(f"POST {path}", exc) from None

    async def edit_comment(
        self, repo: Slug, comment_id: int, body: str, *, number: int = 0, pull: bool = False
    ) -> None:
        path = f"{self._repo(repo)}/issues/comments/{comment_id}"
        await self._call("PATCH", path, body={"body": body}, expect=(200, 204))

    # -- pull requests ----------------------------------------------------------------

    async def pull(self, repo: Slug, number: int) -> ForgePull:
        path = f"{self._repo(repo)}/pulls/{number}"
        _, data, _ = await self._call("GET", path)
        try:
            return pull_of(data)
        except Malformed as exc:
            raise self._shape(f"GET {path}", exc) from None

    async def find_pull(self, repo: Slug, head: str) -> ForgePull | None:
        # Gitea's listing filters by no head: the open ones are read and sifted here.
        path = f"{self._repo(repo)}/pulls"
        items = await self._listing(path, {"state": "open"})
        try:
            for item in items:
                if not isinstance(item, Mapping):
                    raise Malformed("pull request")
                if field_str(field_obj(item, "head"), "ref") == head and head_repo_is(item, repo):
                    return pull_of(item)
        except Malformed as exc:
            raise self._shape(f"GET {path}", exc) from None
        return None

    async def open_pull(
        self, repo: Slug, *, head: str, base: str, title: str, body: str, draft: bool
    ) -> ForgePull:
        path = f"{self._repo(repo)}/pulls"
        if draft and not is_wip(title):
            title = WIP_PREFIX + title
        payload = {"head": head, "base": base, "title": title, "body": body}
        _, data, _ = await self._call("POST", path, body=payload, expect=(201,))
        try:
            return pull_of(data)
        except Malformed as exc:
            raise self._shape(f"POST {path}", exc) from None

    async def edit_pull(
        self, repo: Slug, number: int, *, title: str | None = None, body: str | None = None
    ) -> None:
        path = f"{self._repo(repo)}/pulls/{number}"
        payload: dict[str, str] = {}
        if title is not None:
            # A draft stays a draft: its marker is in the title the edit replaces.
            if not is_wip(title) and (await self.pull(repo, number)).draft:
                title = WIP_PREFIX + title
            payload["title"] = title
        if body is not None:
            payload["body"] = body
        if payload:
            await self._call("PATCH", path, body=payload, expect=(200, 201))

    async def request_review(self, repo: Slug, number: int, reviewers: list[str]) -> None:
        if not reviewers:
            return
        path = f"{self._repo(repo)}/pulls/{number}/requested_reviewers"
        await self._call("POST", path, body={"reviewers": list(reviewers)}, expect=(201,))

    async def reviews(self, repo: Slug, number: int) -> list[ForgeReview]:
        path = f"{self._repo(repo)}/pulls/{number}/reviews"
        items = await self._listing(path)
        try:
            found = [review_of(item) for item in items]
        except Malformed as exc:
            raise self._shape(f"GET {path}", exc) from None
        return [review for review in found if review is not None]

    async def review(
        self, repo: Slug, number: int, body: str, *, event: ReviewEvent = "COMMENT"
    ) -> str:
        path = f"{self._repo(repo)}/pulls/{number}/reviews"
        payload = {"body": body, "event": _EVENTS[event]}
        _, data, _ = await self._call("POST", path, body=payload)
        try:
            return field_str(data if isinstance(data, Mapping) else {}, "html_url")
        except Malformed as exc:
            raise self._shape(f"POST {path}", exc) from None

    async def ready_for_review(self, repo: Slug, number: int) -> None:
        # A draft is a title with a WIP prefix: the prefix taken off, the draft is lifted.
        pull = await self.pull(repo, number)
        if not pull.draft:
            return
        title = without_wip(pull.title)
        if not title:
            raise ForgeApiError(f"{self._name}: the title of #{number} is only its WIP prefix")
        path = f"{self._repo(repo)}/pulls/{number}"
        _, data, _ = await self._call("PATCH", path, body={"title": title}, expect=(200, 201))
        try:
            still = pull_of(data).draft
        except Malformed as exc:
            raise self._shape(f"PATCH {path}", exc) from None
        if still:  # the server reads drafts by other prefixes (WORK_IN_PROGRESS_PREFIXES)
            raise ForgeApiError(f"{self._name} still holds #{number} for a draft", 200)

    async def to_draft(self, repo: Slug, number: int) -> None:
        # A draft again: the WIP prefix put back on its title (Gitea merges no WIP pull).
        pull = await self.pull(repo, number)
        if pull.draft:
            return
        path = f"{self._repo(repo)}/pulls/{number}"
        body = {"title": WIP_PREFIX + pull.title}
        _, data, _ = await self._call("PATCH", path, body=body, expect=(200, 201))
        try:
            held = pull_of(data).draft
        except Malformed as exc:
            raise self._shape(f"PATCH {path}", exc) from None
        if not held:
            raise ForgeApiError(f"{self._name} does not hold #{number} for a draft", 200)

    async def delete_branch(self, repo: Slug, branch: str) -> None:
        path = f"{self._repo(repo)}/branches/{_slashed(branch)}"
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
        return None

    # -- files ------------------------------------------------------------------------

    async def file(self, repo: Slug, path: str, ref: str | None = None) -> ForgeFile:
        call = f"{self._repo(repo)}/contents/{_slashed(path.lstrip('/'))}"
        _, data, _ = await self._call("GET", call, params={"ref": ref} if ref else None)
        if isinstance(data, list):
            raise ForgeApiError(f"{self._name}: {path!r} is a directory, not a file", 200)
        try:
            if field_str(data, "type") != "file":
                raise ForgeApiError(f"{self._name}: {path!r} is not a regular file", 200)
            raw = base64.b64decode(field_str(data, "content", default=""), validate=False)
            sha = field_str(data, "sha")
        except Malformed as exc:
            raise self._shape(f"GET {call}", exc) from None
        except (binascii.Error, ValueError):
            raise ForgeApiError(f"{self._name} answered GET {call} with bad base64", 200) from None
        truncated = len(raw) > MAX_FILE_BYTES
        text = raw[:MAX_FILE_BYTES].decode("utf-8", errors="replace")
        return ForgeFile(path=path, text=text, sha=sha, truncated=truncated)

    # -- who may do what --------------------------------------------------------------

    async def permission(self, repo: Slug, login: str) -> Permission:
        # A 403 is not "none": it says this token may not ask (it needs admin access to
        # the repository to read another's permission), which the operator must see.
        path = f"{self._repo(repo)}/collaborators/{_seg(login)}/permission"
        status, data, _ = await self._call("GET", path, expect=(200, 404))
        if status == 404:
            return "none"
        try:
            word = field_str(data, "permission")
        except Malformed as exc:
            raise self._shape(f"GET {path}", exc) from None
        return _PERMISSIONS.get(word, "none")

    async def commit_address(self, repo: Slug, login: str) -> str | None:
        # Gitea's no-reply form, never the address its API shows: to a site admin's token
        # it shows a user's own address even when they keep it private. Asked only whether
        # the user exists, and their login.
        path = f"/users/{_seg(login)}"
        status, data, _ = await self._call("GET", path, expect=(200, 404))
        if status == 404:
            return None
        try:
            found = field_str(data if isinstance(data, Mapping) else {}, "login")
        except Malformed as exc:
            raise self._shape(f"GET {path}", exc) from None
        return no_reply_address(found, self._http.api_url)

    async def in_org(self, org: str, login: str) -> bool:
        # 204: a member. 404: not one. 302/303: Gitea sends a token that is no member of
        # the org to the public-members list; that token cannot tell, so no.
        path = f"/orgs/{_seg(org)}/members/{_seg(login)}"
        status, _, _ = await self._call("GET", path, expect=(204, 302, 303, 404))
        return status == 204

    async def in_team(self, org: str, team: str, login: str) -> bool:
        # The org's teams by name (teams/search would show a non-admin token only its own
        # teams), then the team's member. Gitea answers both only to a member of the org
        # (the second one to a member of that team, or an owner): else ForgeApiError.
        path = f"/orgs/{_seg(org)}/teams"
        items = await self._listing(path)
        team_id: int | None = None
        try:
            for item in items:
                if not isinstance(item, Mapping):
                    raise Malformed("team")
                if field_str(item, "name").lower() == team.lower():
                    team_id = field_int(item, "id")
                    break
        except Malformed as exc:
            raise self._shape(f"GET {path}", exc) from None
        if team_id is None:
            return False
        member = f"/teams/{team_id}/members/{_seg(login)}"
        status, _, _ = await self._call("GET", member, expect=(200, 404))
        return status == 200
