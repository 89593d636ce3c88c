"""A strict fake of GitHub's REST API on 127.0.0.1, held to GitHub's own description.

Every request it takes and every answer it gives is judged by GitHub's official OpenAPI
description (:mod:`tests.fakes.github.openapi_check`); whatever breaks it is recorded in
:attr:`FakeGitHub.violations` (a test asserts it empty), and a request that breaks it is
answered 422 as GitHub answers an invalid request. A path the fake does not serve is a
violation too, answered 404. Beside the REST API it serves GitHub's GraphQL endpoint
(``POST /graphql``) for exactly one mutation, a draft marked ready for review
(:mod:`tests.fakes.github.reviews`), with the same credentials.

It is as strict as GitHub about who calls: ``Authorization: Bearer|token <credential>``
with a PAT it was given (:meth:`FakeGitHub.add_pat`; :data:`DEFAULT_PAT` as
:data:`BOT_LOGIN` unless told otherwise), a GitHub App's JWT checked with the App's
public key (:meth:`FakeGitHub.enable_app`), or an installation token it minted (for the
repositories and permissions asked, for an hour). None → 401 "Requires authentication";
a wrong or expired one → 401 "Bad credentials"; a repository the credential does not
reach → 404 "Not Found"; a missing permission → 403; no ``User-Agent`` → 403. Every
answer carries ``X-RateLimit-*`` and ``X-GitHub-Request-Id`` headers;
:meth:`FakeGitHub.exhaust_rate_limit` and :meth:`FakeGitHub.slow_down` make it refuse
as GitHub's primary and secondary limits do; :meth:`FakeGitHub.refuse_route` refuses one
operation (opening pull requests, say) as a token without its permission is refused.

Use it as ``async with FakeGitHub() as fake`` in a test's loop, or from a synchronous
test (the real bot process against it) with :func:`github_thread`. Seed and inspect it
with the helpers of :class:`~tests.fakes.github.state.GitHubState`.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import threading
import uuid
from collections.abc import Awaitable, Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Final, Literal

from aiohttp import web
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from fleet.timing.clock import Clock
from tests.fakes.github import reviews, shapes
from tests.fakes.github import routes as ops
from tests.fakes.github.auth import Credentials, Grant, RateBook, Refused
from tests.fakes.github.openapi_check import Call, Description, github_description, reply
from tests.fakes.github.records import Repo
from tests.fakes.github.routes import Ctx, Out
from tests.fakes.github.state import GitHubState
from tests.fakes.loopback import LoopbackServer

DEFAULT_PAT: Final = "ghp_FakeFleetwardenPat0123456789abcdefABCD"
BOT_LOGIN: Final = "fleetwarden-bot"
_USER_AGENT_REQUIRED: Final = (
    "Request forbidden by administrative rules. Please make sure your request has a "
    "User-Agent header (https://docs.github.com/rest/using-the-rest-api/"
    "getting-started-with-the-rest-api#user-agent)"
)
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


Access = Literal["app", "repo", "org", "check", "user", "public"]


@dataclass(frozen=True)
class Route:
    """One operation: its method, aiohttp path, the description's template, who may call
    it (``app``: the App's JWT; ``repo``/``org``: a token reaching it; ``check``: an
    installation token only; ``user``: a PAT only; ``public``: any token) and the
    permission it needs."""

    method: str
    path: str
    handler: Callable[[Ctx], Out]
    access: Access
    need: tuple[str, str] | None

    @property
    def template(self) -> str:
        return self.path.replace(":.+}", "}")


_R: Final = "/repos/{owner}/{repo}"
_ISSUES, _PULLS = "issues", "pull_requests"
ROUTES: Final = (
    Route("GET", f"{_R}/issues", ops.list_issues, "repo", (_ISSUES, "read")),
    Route("GET", f"{_R}/issues/{{issue_number}}", ops.get_issue, "repo", (_ISSUES, "read")),
    Route(
        "GET",
        f"{_R}/issues/{{issue_number}}/comments",
        ops.list_comments,
        "repo",
        (_ISSUES, "read"),
    ),
    Route(
        "GET", f"{_R}/issues/{{issue_number}}/events", ops.list_events, "repo", (_ISSUES, "read")
    ),
    Route(
        "POST",
        f"{_R}/issues/{{issue_number}}/comments",
        ops.post_comment,
        "repo",
        (_ISSUES, "write"),
    ),
    Route(
        "PATCH",
        f"{_R}/issues/comments/{{comment_id}}",
        ops.patch_comment,
        "repo",
        (_ISSUES, "write"),
    ),
    Route("GET", f"{_R}/pulls", ops.list_pulls, "repo", (_PULLS, "read")),
    Route("POST", f"{_R}/pulls", ops.post_pull, "repo", (_PULLS, "write")),
    Route("GET", f"{_R}/pulls/{{pull_number}}", ops.get_pull, "repo", (_PULLS, "read")),
    Route("PATCH", f"{_R}/pulls/{{pull_number}}", ops.patch_pull, "repo", (_PULLS, "write")),
    Route(
        "POST",
        f"{_R}/pulls/{{pull_number}}/requested_reviewers",
        ops.request_reviewers,
        "repo",
        (_PULLS, "write"),
    ),
    Route("GET", f"{_R}/pulls/{{pull_number}}/reviews", ops.list_reviews, "repo", (_PULLS, "read")),
    Route(
        "POST",
        f"{_R}/pulls/{{pull_number}}/reviews",
        reviews.post_review,
        "repo",
        (_PULLS, "write"),
    ),
    Route(
        "PUT",
        f"{_R}/pulls/{{pull_number}}/merge",
        reviews.merge_pull,
        "repo",
        ("contents", "write"),
    ),
    Route("GET", f"{_R}/contents/{{path:.+}}", ops.get_contents, "repo", ("contents", "read")),
    Route(
        "GET",
        f"{_R}/collaborators/{{username}}/permission",
        ops.get_permission,
        "repo",
        ("metadata", "read"),
    ),
    Route("DELETE", f"{_R}/git/refs/{{ref:.+}}", ops.delete_ref, "repo", ("contents", "write")),
    Route("POST", f"{_R}/check-runs", ops.post_check_run, "check", ("checks", "write")),
    Route(
        "PATCH", f"{_R}/check-runs/{{check_run_id}}", ops.patch_check, "check", ("checks", "write")
    ),
    Route("GET", f"{_R}/installation", ops.repo_installation, "app", None),
    Route("GET", "/orgs/{org}/installation", ops.org_installation, "app", None),
    Route("GET", "/orgs/{org}/members/{username}", ops.org_member, "org", ("members", "read")),
    Route(
        "GET",
        "/orgs/{org}/teams/{team_slug}/memberships/{username}",
        ops.team_membership,
        "org",
        ("members", "read"),
    ),
    Route("POST", "/app/installations/{installation_id}/access_tokens", ops.mint, "app", None),
    Route("GET", "/user", ops.get_user, "user", None),
    Route("GET", "/users/{username}", ops.get_named_user, "public", None),
    Route("GET", "/app", ops.get_app, "app", None),
)


@dataclass(frozen=True)
class Seen:
    """One request the fake answered: never its credential, only its kind."""

    method: str
    path: str
    status: int
    credential: str  # pat, installation, app, or none


def make_app_key() -> tuple[str, bytes]:
    """A new App key pair: the private key as PEM text (what Fleetwarden is given) and
    the public key as PEM bytes (what :meth:`FakeGitHub.enable_app` takes)."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    public = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return private, public


class FakeGitHub(LoopbackServer, GitHubState):
    """The fake GitHub. ``check=False`` skips the description's judgement (never in a
    test of Fleetwarden's client: only where speed matters more than strictness)."""

    def __init__(
        self,
        *,
        pat: str | None = DEFAULT_PAT,
        login: str = BOT_LOGIN,
        clock: Clock | None = None,
        check: bool = True,
    ) -> None:
        LoopbackServer.__init__(self)
        GitHubState.__init__(self, clock)
        self.credentials = Credentials()
        self.rates = RateBook()
        self.violations: list[str] = []
        self.requests: list[Seen] = []
        self._failures: list[tuple[int, str]] = []
        self._refused_routes: dict[tuple[str, str], tuple[int, str]] = {}
        self._description: Description | None = github_description().description if check else None
        if pat:
            self.add_pat(pat, login)

    # -- credentials and limits ---------------------------------------------------

    def add_pat(
        self,
        token: str,
        login: str = BOT_LOGIN,
        *,
        repos: Iterable[str] | None = None,
        write: bool = True,
    ) -> None:
        """Accept ``token`` as ``login``'s PAT, reaching ``repos`` (None: all)."""
        with self.lock:
            self.accounts.get(login)
            self.credentials.add_pat(token, login, repos=repos, write=write)

    def enable_app(self, app_id: int, public_key_pem: bytes, *, slug: str = "fleetwarden") -> None:
        """Act as GitHub for App ``app_id``: JWTs are checked with ``public_key_pem``."""
        with self.lock:
            self.credentials.enable_app(app_id, public_key_pem, slug)
            self.accounts.get(f"{slug}[bot]", "Bot")

    def install_app(
        self,
        owner: str,
        *,
        repos: Iterable[str] | None = None,
        permissions: Mapping[str, str] | None = None,
    ) -> int:
        """Install the App on ``owner``'s ``repos`` (names; None: all); its id."""
        with self.lock:
            found = self.credentials.install(self.next_id(), owner, repos, permissions)
            return found.id

    def minted_tokens(self) -> list[str]:
        """The installation tokens the fake minted (to look for them where none may be)."""
        with self.lock:
            return list(self.credentials.minted)

    def expire_tokens(self) -> None:
        """Every minted installation token expires now."""
        with self.lock:
            now = self.clock.now()
            for token, grant in self.credentials.minted.items():
                self.credentials.minted[token] = dataclasses.replace(grant, expires_at=now)

    def revoke(self, token: str) -> None:
        with self.lock:
            self.credentials.revoke(token)

    def fail_next(self, status: int = 502, message: str = "Server Error") -> None:
        """The next authenticated call is refused with ``status`` and ``message``."""
        with self.lock:
            self._failures.append((status, message))

    def refuse_route(
        self, method: str, template: str, status: int = 403, message: str = "Forbidden"
    ) -> None:
        """Every authenticated call of the operation ``method`` ``template`` (as
        :data:`ROUTES` spell it: ``"/repos/{owner}/{repo}/pulls"``) is refused with
        ``status`` and GitHub's ``message`` until :meth:`allow_route`."""
        if not any(r.method == method and r.template == template for r in ROUTES):
            raise ValueError(f"the fake serves no {method} {template}")
        with self.lock:
            self._refused_routes[(method, template)] = (status, message)

    def allow_route(self, method: str, template: str) -> None:
        """The operation :meth:`refuse_route` refused is served again."""
        with self.lock:
            self._refused_routes.pop((method, template), None)

    def exhaust_rate_limit(self, exhausted: bool = True) -> None:
        """Every credential has (or no longer has) no calls left this hour."""
        with self.lock:
            self.rates.exhausted = exhausted

    def slow_down(self, retry_after: int = 60) -> None:
        """The next call meets GitHub's secondary limit: 403 with ``Retry-After``."""
        with self.lock:
            self.rates.slow_down = retry_after

    # -- serving ------------------------------------------------------------------

    @property
    def api_url(self) -> str:
        """The API root to configure a client with (``http://127.0.0.1:PORT``)."""
        return self.base_url

    def routes(self, app: web.Application) -> None:
        for route in ROUTES:
            app.router.add_route(route.method, route.path, self._handler(route))
        app.router.add_route("POST", "/graphql", self._graphql)
        app.router.add_route("*", "/{tail:.*}", self._unserved)

    async def _graphql(self, request: web.Request) -> web.StreamResponse:
        """GitHub's GraphQL endpoint, for the one mutation :mod:`github_reviews` takes."""
        raw = await request.read()
        asked = (request.headers.get("Authorization"), raw, self.clock.now())
        with self.lock:
            for repo in self.repos.values():
                repo.sync_heads()
            status, data, credential = reviews.graphql(self, self.credentials, asked, self._note)
        self.requests.append(Seen(request.method, request.path, status, credential))
        return web.Response(
            status=status,
            body=json.dumps(data).encode(),
            headers=self._base_headers(),
            content_type="application/json",
        )

    def _note(self, violation: str) -> None:
        self.violations.append(violation)

    def _handler(self, route: Route) -> Handler:
        async def handle(request: web.Request) -> web.StreamResponse:
            return await self._serve(route, request)

        return handle

    async def _unserved(self, request: web.Request) -> web.StreamResponse:
        self.violations.append(f"{request.method} {request.path}: not served by the fake")
        self.requests.append(Seen(request.method, request.path, 404, "none"))
        body = json.dumps(shapes.error(404, "Not Found")).encode()
        return web.Response(
            status=404, body=body, headers=self._base_headers(), content_type="application/json"
        )

    def _base_headers(self) -> dict[str, str]:
        return {
            "X-GitHub-Request-Id": uuid.uuid4().hex[:20].upper(),
            "X-GitHub-Api-Version-Selected": "2022-11-28",
            "X-GitHub-Media-Type": "github.v3; format=json",
        }

    async def _serve(self, route: Route, request: web.Request) -> web.StreamResponse:
        raw = await request.read()
        call = Call(
            method=request.method,
            path=request.path,
            path_pattern=route.template,
            path_params=dict(request.match_info),
            query=list(request.query.items()),
            headers=dict(request.headers),
            body=raw or None,
            content_type=request.content_type,
        )
        problems = self._description.request_errors(call) if self._description else []
        what = f"{request.method} {request.path}"
        self.violations.extend(f"{what}: request: {problem}" for problem in problems)
        with self.lock:
            out, credential = self._answer(route, request, raw, problems)
        headers = {**self._base_headers(), **out.headers}
        body = b"" if out.data is None else json.dumps(out.data).encode()
        if self._description is not None and out.judged:
            answer = reply(out.status, body, headers, "application/json")
            for problem in self._description.response_errors(call, answer):
                self.violations.append(f"{what}: answer {out.status}: {problem}")
        self.requests.append(Seen(request.method, request.path, out.status, credential))
        if not body:
            return web.Response(status=out.status, headers=headers)
        return web.Response(
            status=out.status, body=body, headers=headers, content_type="application/json"
        )

    def _answer(
        self, route: Route, request: web.Request, raw: bytes, problems: list[str]
    ) -> tuple[Out, str]:
        now = self.clock.now()
        limits: dict[str, str] = {}
        credential = "none"
        try:
            if not request.headers.get("User-Agent"):
                raise Refused(403, _USER_AGENT_REQUIRED)
            try:
                grant = self.credentials.authenticate(request.headers.get("Authorization"), now)
            except Refused:
                limits = self.rates.spend("unauthenticated", now)
                raise
            credential = grant.kind
            limits = self.rates.spend(grant.bucket, now)
            if self.rates.slow_down is not None:
                wait, self.rates.slow_down = self.rates.slow_down, None
                message = (
                    "You have exceeded a secondary rate limit. Please wait a few minutes "
                    "before you try again."
                )
                limits["Retry-After"] = str(wait)
                raise Refused(403, message)
            if self.rates.exhausted:
                raise Refused(403, f"API rate limit exceeded for {grant.bucket.replace(':', ' ')}.")
            repo = self._reach(route, grant, request.match_info)
            if repo is not None:
                repo.sync_heads()  # what was pushed since is the head every call sees
            if problems:
                raise Refused(422, f"Invalid request.\n\n{problems[0]}")
            body = _json(raw)
            refused = self._refused_routes.get((route.method, route.template))
            if refused is not None or self._failures:
                status, message = refused or self._failures.pop(0)
                out = Out(status, shapes.error(status, message), judged=False)
                out.headers.update(limits)
                return out, credential
            ctx = Ctx(
                self,
                self.credentials,
                self.api_url,
                grant,
                request.match_info,
                request.query,
                body,
                repo,
                now,
            )
            out = route.handler(ctx)
        except Refused as refused:
            out = Out(
                refused.status, shapes.error(refused.status, refused.message, **refused.extra)
            )
        out.headers.update(limits)
        return out, credential

    def _reach(self, route: Route, grant: Grant, params: Mapping[str, str]) -> Repo | None:
        """The repository the call is about, once ``grant`` may make it at all."""
        if route.access == "app":
            if grant.kind != "app":
                raise Refused(401, "A JSON web token could not be decoded")
            return None
        if grant.kind == "app":
            raise Refused(401, "Bad credentials")
        if route.access == "user":
            if grant.kind != "pat":
                raise Refused(403, grant.refusal)
            return None
        if route.access == "public":
            return None
        repo = None
        if "owner" in params:
            repo = self.repos.get((params["owner"].casefold(), params["repo"].casefold()))
            if repo is None or not grant.reaches(repo.owner, repo.name):
                raise Refused(404, "Not Found")
        elif (
            grant.kind == "installation"
            and (grant.owner or "").casefold() != params["org"].casefold()
        ):
            raise Refused(404, "Not Found")
        if route.access == "check" and grant.kind != "installation":
            raise Refused(403, "You must authenticate via a GitHub App.")
        if route.need is not None and not grant.may(*route.need):
            raise Refused(403, grant.refusal)
        return repo


def _json(raw: bytes) -> Any:
    if not raw:
        return None
    try:
        return json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        raise Refused(400, "Problems parsing JSON") from None


@contextmanager
def github_thread(**kwargs: Any) -> Iterator[FakeGitHub]:
    """A started :class:`FakeGitHub` (``kwargs`` as its constructor takes) served from a
    daemon thread, for a test that runs the real bot process; stopped on exit. Its
    helpers may be called from the test's thread meanwhile."""
    fake = FakeGitHub(**kwargs)
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, name="fake-github", daemon=True)
    thread.start()
    try:
        asyncio.run_coroutine_threadsafe(fake.start(), loop).result(timeout=10)
        yield fake
    finally:
        asyncio.run_coroutine_threadsafe(fake.stop(), loop).result(timeout=10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=10)
        loop.close()
