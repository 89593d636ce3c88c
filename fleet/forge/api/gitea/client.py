"""The Gitea (and Forgejo) client: :class:`GiteaApi`, Fleetwarden's :class:`ForgeApi` over
Gitea's REST API under ``/api/v1``, with an access token (``Authorization: token …``).

Where Gitea's calls differ from GitHub's they are bridged here: a draft pull request is
opened with the ``WIP: `` title prefix (Gitea's own convention) and made ready for review
by taking the prefix off; a review's approval is Gitea's ``APPROVED``; listings are paged
with ``page``/``limit`` and counted by ``X-Total-Count``; a pull request is found by its
branch among the open ones; Gitea has no check runs; a user's commits are credited at
Gitea's no-reply form of the API's host (:func:`no_reply_address`), never at the address
it shows. Answers are read by :mod:`fleet.forge.api.gitea.read`: a value of the wrong shape is a
:class:`ForgeApiError`, never a crash, and the token is in no message.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import datetime
from typing import Any, Final
from urllib.parse import quote

from fleet.forge.api.client import Paging, file_of, token_rest, utc_stamp
from fleet.forge.api.fields import as_object, field_int, field_obj, field_str
from fleet.forge.api.gitea.read import (
    WIP_PREFIX,
    change_of,
    comment_of,
    head_repo_is,
    is_wip,
    issue_of,
    pull_of,
    review_of,
    without_wip,
)
from fleet.forge.api.no_reply import no_reply_address
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
)
from fleet.ledger.records.forge import Slug
from fleet.timing.clock import Clock

log = logging.getLogger(__name__)

PAGE_SIZE: Final = 50  # Gitea's default MAX_RESPONSE_ITEMS: a bigger limit is cut to it
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
        paging = Paging("limit", PAGE_SIZE)
        self._rest = token_rest(
            name, api_url, f"token {token}", session=session, clock=clock, paging=paging
        )
        self._token = token
        self._name = name
        self._drafts = TitleDrafts(name, WIP_PREFIX, "WIP", "#", is_wip, without_wip)

    def __repr__(self) -> str:
        return f"GiteaApi({self._rest.http.api_url!r})"

    async def close(self) -> None:
        await self._rest.close()

    async def git_token(self, repo: Slug) -> str:
        return self._token

    async def whoami(self) -> str:
        return await self._rest.got("/user", _login)

    @staticmethod
    def _repo(repo: Slug) -> str:
        return f"/repos/{_seg(repo.owner)}/{_seg(repo.name)}"

    # -- issues and comments ----------------------------------------------------------

    async def issue(self, repo: Slug, number: int) -> ForgeIssue:
        return await self._rest.got(f"{self._repo(repo)}/issues/{number}", issue_of)

    async def open_issues(self, repo: Slug, *, since: datetime | None = None) -> list[ForgeIssue]:
        path = f"{self._repo(repo)}/issues"
        params: dict[str, str | int] = {"state": "open"}
        if since is not None:
            params["since"] = utc_stamp(since)
        items = await self._rest.listing(path, params)
        return [self._rest.read(f"GET {path}", issue_of, item) for item in items]

    async def comments(self, repo: Slug, number: int, *, pull: bool = False) -> list[ForgeComment]:
        # Gitea lists an issue's comments whole: this call takes no page or limit.
        path = f"{self._repo(repo)}/issues/{number}/comments"
        items = await self._rest.whole(path)
        return [self._rest.read(f"GET {path}", comment_of, item) for item in items]

    async def issue_changes(self, repo: Slug, number: int) -> list[IssueChange]:
        # Asked without a page, Gitea lists the whole timeline, oldest first: paged, its
        # X-Total-Count is the page's own length, which says nothing of the pages after.
        path = f"{self._repo(repo)}/issues/{number}/timeline"
        items = await self._rest.whole(path)
        found = [self._rest.read(f"GET {path}", change_of, item) for item in items]
        return [change for change in found if change is not None][-MAX_CHANGES:]

    async def comment(
        self, repo: Slug, number: int, body: str, *, pull: bool = False
    ) -> ForgeComment:
        path = f"{self._repo(repo)}/issues/{number}/comments"
        return await self._rest.send("POST", path, {"body": body}, comment_of, expect=(201,))

    async def edit_comment(
        self, repo: Slug, comment_id: int, body: str, *, number: int = 0, pull: bool = False
    ) -> None:
        path = f"{self._repo(repo)}/issues/comments/{comment_id}"
        await self._rest.call("PATCH", path, body={"body": body}, expect=(200, 204))

    # -- pull requests ----------------------------------------------------------------

    async def pull(self, repo: Slug, number: int) -> ForgePull:
        return await self._rest.got(f"{self._repo(repo)}/pulls/{number}", pull_of)

    async def find_pull(self, repo: Slug, head: str) -> ForgePull | None:
        # Gitea's listing filters by no head: the open ones are read and sifted here.
        path = f"{self._repo(repo)}/pulls"
        items = await self._rest.listing(path, {"state": "open"})
        for item in items:
            if self._rest.read(f"GET {path}", _head_ref, item) != head:
                continue
            if head_repo_is(item, repo):
                return self._rest.read(f"GET {path}", pull_of, item)
        return None

    async def open_pull(
        self, repo: Slug, *, head: str, base: str, title: str, body: str, draft: bool
    ) -> ForgePull:
        path = f"{self._repo(repo)}/pulls"
        title = self._drafts.opened(title, draft)
        payload = {"head": head, "base": base, "title": title, "body": body}
        return await self._rest.send("POST", path, payload, pull_of, expect=(201,))

    async def edit_pull(
        self, repo: Slug, number: int, *, title: str | None = None, body: str | None = None
    ) -> None:
        payload: dict[str, str] = {}
        if title is not None:
            payload["title"] = await self._drafts.kept(title, lambda: self.pull(repo, number))
        if body is not None:
            payload["body"] = body
        if payload:
            path = f"{self._repo(repo)}/pulls/{number}"
            await self._rest.call("PATCH", path, body=payload, expect=(200, 201))

    async def request_review(self, repo: Slug, number: int, reviewers: list[str]) -> None:
        if reviewers:
            path = f"{self._repo(repo)}/pulls/{number}/requested_reviewers"
            body = {"reviewers": list(reviewers)}
            await self._rest.call("POST", path, body=body, expect=(201,))

    async def reviews(self, repo: Slug, number: int) -> list[ForgeReview]:
        path = f"{self._repo(repo)}/pulls/{number}/reviews"
        items = await self._rest.listing(path)
        found = [self._rest.read(f"GET {path}", review_of, item) for item in items]
        return [review for review in found if review is not None]

    async def review(
        self, repo: Slug, number: int, body: str, *, event: ReviewEvent = "COMMENT"
    ) -> str:
        path = f"{self._repo(repo)}/pulls/{number}/reviews"
        payload = {"body": body, "event": _EVENTS[event]}
        return await self._rest.send("POST", path, payload, _html_url)

    async def ready_for_review(self, repo: Slug, number: int) -> None:
        # A draft is a title with a WIP prefix: the prefix taken off, the draft is lifted.
        pull = await self.pull(repo, number)
        await self._drafts.lift(pull, lambda title: self._retitle(repo, number, title))

    async def to_draft(self, repo: Slug, number: int) -> None:
        # A draft again: the WIP prefix put back on its title (Gitea merges no WIP pull).
        pull = await self.pull(repo, number)
        await self._drafts.lower(pull, lambda title: self._retitle(repo, number, title))

    async def _retitle(self, repo: Slug, number: int, title: str) -> ForgePull:
        path = f"{self._repo(repo)}/pulls/{number}"
        body = {"title": title}
        return await self._rest.send("PATCH", path, body, pull_of, expect=(200, 201))

    async def delete_branch(self, repo: Slug, branch: str) -> None:
        path = f"{self._repo(repo)}/branches/{_slashed(branch)}"
        if not await self._rest.delete(path):
            log.info("%s: branch of %s to delete was already gone", self._name, repo)

    async def check_run(self, repo: Slug, run: CheckRun, check_id: int | None = None) -> int | None:
        return None  # Gitea has no check runs

    # -- files ------------------------------------------------------------------------

    async def file(self, repo: Slug, path: str, ref: str | None = None) -> ForgeFile:
        call = f"{self._repo(repo)}/contents/{_slashed(path.lstrip('/'))}"
        answer = await self._rest.call("GET", call, params={"ref": ref} if ref else None)
        if isinstance(answer.data, list):
            raise ForgeApiError(f"{self._name}: {path!r} is a directory, not a file", 200)
        kind, content, sha = self._rest.read(f"GET {call}", _content, answer.data)
        if kind != "file":
            raise ForgeApiError(f"{self._name}: {path!r} is not a regular file", 200)
        return file_of(self._name, f"GET {call}", path, content, sha, 200)

    # -- who may do what --------------------------------------------------------------

    async def permission(self, repo: Slug, login: str) -> Permission:
        # A 403 is not "none": it says this token may not ask (it needs admin access to
        # the repository to read another's permission), which the operator must see.
        path = f"{self._repo(repo)}/collaborators/{_seg(login)}/permission"
        answer = await self._rest.call("GET", path, expect=(200, 404))
        if answer.status == 404:
            return "none"
        word = self._rest.read(f"GET {path}", lambda d: field_str(d, "permission"), answer.data)
        return _PERMISSIONS.get(word, "none")

    async def commit_address(self, repo: Slug, login: str) -> str | None:
        # Gitea's no-reply form, never the address its API shows: to a site admin's token
        # it shows a user's own address even when they keep it private. Asked only whether
        # the user exists, and their login.
        path = f"/users/{_seg(login)}"
        answer = await self._rest.call("GET", path, expect=(200, 404))
        if answer.status == 404:
            return None
        found = self._rest.read(f"GET {path}", _login, answer.data)
        return no_reply_address(found, self._rest.http.api_url)

    async def in_org(self, org: str, login: str) -> bool:
        # 204: a member. 404: not one. 302/303: Gitea sends a token that is no member of
        # the org to the public-members list; that token cannot tell, so no.
        path = f"/orgs/{_seg(org)}/members/{_seg(login)}"
        answer = await self._rest.call("GET", path, expect=(204, 302, 303, 404))
        return answer.status == 204

    async def in_team(self, org: str, team: str, login: str) -> bool:
        # The org's teams by name (teams/search would show a non-admin token only its own
        # teams), then the team's member. Gitea answers both only to a member of the org
        # (the second one to a member of that team, or an owner): else ForgeApiError.
        path = f"/orgs/{_seg(org)}/teams"
        for item in await self._rest.listing(path):
            name, team_id = self._rest.read(f"GET {path}", _team, item)
            if name.lower() == team.lower():
                break
        else:
            return False
        member = f"/teams/{team_id}/members/{_seg(login)}"
        answer = await self._rest.call("GET", member, expect=(200, 404))
        return answer.status == 200


def _login(data: Any) -> str:
    return field_str(data if isinstance(data, Mapping) else {}, "login")


def _html_url(data: Any) -> str:
    return field_str(data if isinstance(data, Mapping) else {}, "html_url")


def _head_ref(data: Any) -> str:
    return field_str(field_obj(as_object(data, "pull request"), "head"), "ref")


def _team(data: Any) -> tuple[str, int]:
    team = as_object(data, "team")
    return field_str(team, "name"), field_int(team, "id")


def _content(data: Any) -> tuple[str, str, str]:
    """A contents answer's type, base64 content and sha."""
    found = as_object(data, "file")
    return (
        field_str(found, "type"),
        field_str(found, "content", default=""),
        field_str(found, "sha"),
    )
