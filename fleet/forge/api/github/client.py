"""GitHub's REST API as Fleetwarden uses it: :class:`GitHubApi`, the
:class:`~fleet.forge.model.ForgeApi` of a GitHub (github.com or a GitHub Enterprise
Server's ``/api/v3``).

It speaks with a token (a PAT) or as a GitHub App (:mod:`fleet.forge.api.github.app_token`): then
each call on a repository carries an installation token narrowed to that repository, and
membership questions one narrowed to reading an org's members. Check runs exist only for
Apps: with a PAT :meth:`GitHubApi.check_run` does nothing and returns None. A draft pull
request is marked ready for review through GitHub's GraphQL API
(:mod:`fleet.forge.api.github.graphql`), with the same credential as the REST calls.

Answers are read by :mod:`fleet.forge.api.github.read`: an answer of the wrong shape is a
:class:`~fleet.forge.model.ForgeApiError`, never a KeyError.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from datetime import datetime
from typing import Any, Final
from urllib.parse import quote

from fleet.forge.api.client import Rest, Scope, file_of, utc_stamp
from fleet.forge.api.github.app_token import AppKey, AppTokens
from fleet.forge.api.github.graphql import READY_FOR_REVIEW, TO_DRAFT, graphql_root, ready_of
from fleet.forge.api.github.read import Shape, change_of, comment_of, issue_of, pull_of, review_of
from fleet.forge.api.rest import TIMEOUT_SECONDS, ForgeHttp, SessionMaker
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
from fleet.timing.clock import Clock, SystemClock

log = logging.getLogger(__name__)

API_VERSION: Final = "2022-11-28"
MAX_SUMMARY_CHARS: Final = 65535  # GitHub's cap on a check run's output summary
_LAST_PAGE: Final = re.compile(r'[?&]page=(\d+)[^>]*>;\s*rel="last"')
_PERMISSIONS: Final[Mapping[str, Permission]] = {
    "admin": "admin",
    "maintain": "write",
    "write": "write",
    "triage": "read",
    "read": "read",
}


def _q(text: str, safe: str = "") -> str:
    return quote(text, safe=safe)


def _repo_path(repo: Slug) -> str:
    return f"/repos/{_q(repo.owner)}/{_q(repo.name)}"


class GitHubApi:
    """The :class:`~fleet.forge.model.ForgeApi` of one GitHub, with a token
    (``credential`` a string) or as an App (an :class:`AppKey`). ``session`` makes the
    aiohttp session to use; without one the client keeps its own."""

    kind: ForgeKind = "github"

    def __init__(
        self,
        api_url: str,
        credential: str | AppKey,
        *,
        session: SessionMaker | None = None,
        clock: Clock | None = None,
        timeout: float = TIMEOUT_SECONDS,
    ) -> None:
        http = ForgeHttp(
            "GitHub",
            api_url,
            session=session,
            timeout=timeout,
            clock=clock,
            headers={"Accept": "application/vnd.github+json", "X-GitHub-Api-Version": API_VERSION},
        )
        self._clock = clock or SystemClock()
        self._graphql = graphql_root(api_url)
        self._app: AppTokens | None = None
        self._token = ""
        if isinstance(credential, AppKey):
            self._app = AppTokens(http, credential, self._clock)
        elif credential:
            self._token = credential
        else:
            raise ForgeApiError("no GitHub token: the token's variable is empty")
        self._rest = Rest(http, _Signer(self._token, self._app))

    def __repr__(self) -> str:
        mode = "app" if self._app is not None else "token"
        return f"GitHubApi({self._rest.http.api_url!r}, {mode})"

    async def issue(self, repo: Slug, number: int) -> ForgeIssue:
        path = f"{_repo_path(repo)}/issues/{number}"
        return issue_of((await self._rest.call("GET", path, scope=repo)).data, f"GET {path}")

    async def comments(self, repo: Slug, number: int, *, pull: bool = False) -> list[ForgeComment]:
        path = f"{_repo_path(repo)}/issues/{number}/comments"
        return [
            comment_of(item, f"GET {path}") for item in await self._rest.listing(path, scope=repo)
        ]

    async def comment(
        self, repo: Slug, number: int, body: str, *, pull: bool = False
    ) -> ForgeComment:
        path = f"{_repo_path(repo)}/issues/{number}/comments"
        answer = await self._rest.call("POST", path, scope=repo, body={"body": body}, expect=(201,))
        return comment_of(answer.data, f"POST {path}")

    async def edit_comment(
        self, repo: Slug, comment_id: int, body: str, *, number: int = 0, pull: bool = False
    ) -> None:
        path = f"{_repo_path(repo)}/issues/comments/{comment_id}"
        await self._rest.call("PATCH", path, scope=repo, body={"body": body})

    async def pull(self, repo: Slug, number: int) -> ForgePull:
        path = f"{_repo_path(repo)}/pulls/{number}"
        return pull_of((await self._rest.call("GET", path, scope=repo)).data, f"GET {path}")

    async def find_pull(self, repo: Slug, head: str) -> ForgePull | None:
        path = f"{_repo_path(repo)}/pulls"
        params: dict[str, str | int] = {
            "head": f"{repo.owner}:{head}",
            "state": "open",
            "per_page": 100,
        }
        for item in await self._rest.whole(path, params, scope=repo):
            found = pull_of(item, f"GET {path}")
            head_repo = Shape(item, f"GET {path}").sub("head").data.get("repo")
            full_name = head_repo.get("full_name") if isinstance(head_repo, dict) else None
            same = isinstance(full_name, str) and full_name.casefold() == str(repo).casefold()
            if found.head == head and same:
                return found
        return None

    async def open_pull(
        self, repo: Slug, *, head: str, base: str, title: str, body: str, draft: bool
    ) -> ForgePull:
        path = f"{_repo_path(repo)}/pulls"
        wanted = {"title": title, "head": head, "base": base, "body": body, "draft": draft}
        answer = await self._rest.call("POST", path, scope=repo, body=wanted, expect=(201,))
        return pull_of(answer.data, f"POST {path}")

    async def edit_pull(
        self, repo: Slug, number: int, *, title: str | None = None, body: str | None = None
    ) -> None:
        changes: dict[str, str] = {}
        if title is not None:
            changes["title"] = title
        if body is not None:
            changes["body"] = body
        if changes:
            await self._rest.call(
                "PATCH", f"{_repo_path(repo)}/pulls/{number}", scope=repo, body=changes
            )

    async def request_review(self, repo: Slug, number: int, reviewers: list[str]) -> None:
        if reviewers:
            path = f"{_repo_path(repo)}/pulls/{number}/requested_reviewers"
            await self._rest.call(
                "POST", path, scope=repo, body={"reviewers": reviewers}, expect=(201,)
            )

    async def reviews(self, repo: Slug, number: int) -> list[ForgeReview]:
        path = f"{_repo_path(repo)}/pulls/{number}/reviews"
        found = (
            review_of(item, f"GET {path}") for item in await self._rest.listing(path, scope=repo)
        )
        return [review for review in found if review is not None]

    async def review(
        self, repo: Slug, number: int, body: str, *, event: ReviewEvent = "COMMENT"
    ) -> str:
        path = f"{_repo_path(repo)}/pulls/{number}/reviews"
        answer = await self._rest.call(
            "POST", path, scope=repo, body={"body": body, "event": event}
        )
        return Shape(answer.data, f"POST {path}").string("html_url")

    async def ready_for_review(self, repo: Slug, number: int) -> None:
        # GitHub's REST API cannot lift the draft flag: its GraphQL API can, by node id.
        pull = await self.pull(repo, number)
        if not pull.draft:
            return
        if not pull.node_id:
            raise ForgeApiError(f"GitHub named no node id of pull request #{number} of {repo}")
        what = f"POST /graphql (markPullRequestReadyForReview of #{number})"
        query = {"query": READY_FOR_REVIEW, "variables": {"id": pull.node_id}}
        answer = await self._rest.call(
            "POST", "/graphql", scope=repo, body=query, root=self._graphql
        )
        if not ready_of(answer, what, self._clock.now()):
            raise ForgeApiError(f"GitHub answered {what}: still a draft", answer.status)

    async def to_draft(self, repo: Slug, number: int) -> None:
        # A draft is merged by no one: GraphQL's convertPullRequestToDraft, by node id.
        pull = await self.pull(repo, number)
        if pull.draft:
            return
        if not pull.node_id:
            raise ForgeApiError(f"GitHub named no node id of pull request #{number} of {repo}")
        what = f"POST /graphql (convertPullRequestToDraft of #{number})"
        query = {"query": TO_DRAFT, "variables": {"id": pull.node_id}}
        answer = await self._rest.call(
            "POST", "/graphql", scope=repo, body=query, root=self._graphql
        )
        if ready_of(answer, what, self._clock.now(), "convertPullRequestToDraft"):
            raise ForgeApiError(f"GitHub answered {what}: still not a draft", answer.status)

    async def file(self, repo: Slug, path: str, ref: str | None = None) -> ForgeFile:
        call = f"{_repo_path(repo)}/contents/{_q(path.lstrip('/'), safe='/')}"
        answer = await self._rest.call(
            "GET", call, scope=repo, params={"ref": ref} if ref else None
        )
        if isinstance(answer.data, list):
            raise ForgeApiError(f"{path} is a directory on {repo}, not a file", 404)
        shape = Shape(answer.data, f"GET {call}")
        if shape.string("type") != "file":
            raise ForgeApiError(f"{path} is a {shape.string('type')} on {repo}, not a file", 404)
        if shape.data.get("encoding") != "base64":  # "none": GitHub gives no content past 1 MB
            return ForgeFile(path=path, text="", sha=shape.string("sha"), truncated=True)
        content, sha = shape.string("content"), shape.string("sha")
        return file_of("GitHub", f"GET {call}", path, content, sha, answer.status)

    async def permission(self, repo: Slug, login: str) -> Permission:
        path = f"{_repo_path(repo)}/collaborators/{_q(login)}/permission"
        answer = await self._rest.call("GET", path, scope=repo, expect=(200, 404))
        if answer.status == 404:
            return "none"
        return _PERMISSIONS.get(Shape(answer.data, f"GET {path}").string("permission"), "none")

    async def commit_address(self, repo: Slug, login: str) -> str | None:
        path = f"/users/{_q(login)}"
        answer = await self._rest.call("GET", path, scope=repo, expect=(200, 404))
        if answer.status == 404:
            return None
        shape = Shape(answer.data, f"GET {path}")
        return f"{shape.number('id')}+{shape.string('login')}@users.noreply.github.com"

    async def in_org(self, org: str, login: str) -> bool:
        path = f"/orgs/{_q(org)}/members/{_q(login)}"
        answer = await self._rest.call("GET", path, scope=org, expect=(204, 302, 404))
        return answer.status == 204

    async def in_team(self, org: str, team: str, login: str) -> bool:
        path = f"/orgs/{_q(org)}/teams/{_q(team)}/memberships/{_q(login)}"
        answer = await self._rest.call("GET", path, scope=org, expect=(200, 404))
        return (
            answer.status == 200 and Shape(answer.data, f"GET {path}").string("state") == "active"
        )

    async def delete_branch(self, repo: Slug, branch: str) -> None:
        path = f"{_repo_path(repo)}/git/refs/heads/{_q(branch, safe='/')}"
        answer = await self._rest.call("DELETE", path, scope=repo, expect=(204, 422))
        if answer.status == 422:
            said = answer.data.get("message") if isinstance(answer.data, dict) else None
            if said != "Reference does not exist":
                raise ForgeApiError(f"GitHub refused DELETE {path}: 422 {said}", 422)
            log.debug("branch already gone on %s", repo)

    async def open_issues(self, repo: Slug, *, since: datetime | None = None) -> list[ForgeIssue]:
        path = f"{_repo_path(repo)}/issues"
        params: dict[str, str | int] = {"state": "open", "sort": "updated", "direction": "asc"}
        if since is not None:
            params["since"] = utc_stamp(since)
        return [
            issue_of(item, f"GET {path}")
            for item in await self._rest.listing(path, params, scope=repo)
        ]

    async def issue_changes(self, repo: Slug, number: int) -> list[IssueChange]:
        # GitHub lists an issue's events oldest first: its last two pages are the newest.
        path = f"{_repo_path(repo)}/issues/{number}/events"
        first = await self._rest.call("GET", path, scope=repo, params={"per_page": 100})
        found = _LAST_PAGE.search(first.headers.get("Link", ""))
        last = int(found.group(1)) if found else 1
        pages = [first.data] if last <= 2 else []
        for page in range(max(last - 1, 2), last + 1):  # none when one page says all
            answer = await self._rest.call(
                "GET", path, scope=repo, params={"per_page": 100, "page": page}
            )
            pages.append(answer.data)
        changes: list[IssueChange] = []
        for data in pages:
            if not isinstance(data, list):
                raise ForgeApiError(f"GitHub answered GET {path} with no list")
            changes.extend(c for item in data if (c := change_of(item, f"GET {path}")))
        return changes

    async def check_run(self, repo: Slug, run: CheckRun, check_id: int | None = None) -> int | None:
        if self._app is None:
            return None  # GitHub takes check runs from Apps only
        body: dict[str, Any] = {
            "name": run.title,
            "status": run.status,
            "output": {"title": run.title, "summary": run.summary[:MAX_SUMMARY_CHARS]},
        }
        if run.conclusion is not None:
            body["conclusion"] = run.conclusion
        if check_id is None:
            path = f"{_repo_path(repo)}/check-runs"
            answer = await self._rest.call(
                "POST", path, scope=repo, body={**body, "head_sha": run.head_sha}, expect=(201,)
            )
        else:
            path = f"{_repo_path(repo)}/check-runs/{check_id}"
            answer = await self._rest.call("PATCH", path, scope=repo, body=body)
        return Shape(answer.data, f"{path}").number("id")

    async def whoami(self) -> str:
        if self._app is None:
            answer = await self._rest.call("GET", "/user")
            return Shape(answer.data, "GET /user").string("login")
        answer = await self._rest.http.call("GET", "/app", auth=f"Bearer {self._app.jwt()}")
        return Shape(answer.data, "GET /app").string("slug") + "[bot]"

    async def git_token(self, repo: Slug) -> str:
        if self._app is None:
            return self._token
        return await self._app.token(repo)

    async def close(self) -> None:
        await self._rest.close()


class _Signer:
    """How GitHub's calls are signed: with the token, or as the App, by an installation
    token narrowed to the call's repository (or to reading its org's members), forgotten
    when GitHub answers 401."""

    def __init__(self, token: str, app: AppTokens | None) -> None:
        self._token = token
        self._app = app

    async def header(self, scope: Scope) -> str:
        if self._app is None:
            return f"Bearer {self._token}"
        if isinstance(scope, Slug):
            return f"Bearer {await self._app.token(scope)}"
        if scope is None:
            raise ForgeApiError("a GitHub App's call names its repository or org")
        return f"Bearer {await self._app.org_token(scope)}"

    def refused(self, scope: Scope) -> None:
        if self._app is not None and scope is not None:
            self._app.forget(scope)
