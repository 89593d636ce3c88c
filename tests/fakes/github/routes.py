"""The fake GitHub's operations: each a function from the call (:class:`Ctx`) to the
answer (:class:`Out`), holding GitHub's own rules — what it refuses with 404 or 422, and
in which words. :data:`tests.fakes.github.api.ROUTES` says which path each serves and who
may call it.

Authentication, reach, rate limits and the description's check happen before these run
(:mod:`tests.fakes.github.api`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Final

from tests.fakes.github import shapes
from tests.fakes.github.auth import Credentials, Grant, Refused
from tests.fakes.github.records import Account, CheckRun, Issue, Pull, Repo
from tests.fakes.github.state import GitHubState

MAX_BODY: Final = 65536  # GitHub's longest issue, comment or pull request body


@dataclass
class Ctx:
    """One call: who made it, its path parameters, query and JSON body."""

    state: GitHubState
    credentials: Credentials
    api: str
    grant: Grant
    params: Mapping[str, str]
    query: Mapping[str, str]
    body: Any
    repo: Repo | None
    now: datetime

    @property
    def the_repo(self) -> Repo:
        if self.repo is None:
            raise Refused(404, "Not Found")
        return self.repo

    def item(self, key: str) -> Issue:
        found = self.the_repo.issues.get(int(self.params[key]))
        if found is None:
            raise Refused(404, "Not Found")
        return found

    def pull(self) -> Issue:
        found = self.item("pull_number")
        if found.pull is None:
            raise Refused(404, "Not Found")
        return found


@dataclass
class Out:
    """An answer; ``judged`` False for a failure a test asked for (its status is
    GitHub's to send, not the description's to list)."""

    status: int
    data: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    judged: bool = True


def invalid(resource: str, field_name: str, code: str = "invalid", message: str = "") -> Refused:
    """GitHub's 422 ``Validation Failed`` naming one field."""
    detail: dict[str, str] = {"resource": resource, "field": field_name, "code": code}
    if message:
        detail["message"] = message
    return Refused(422, "Validation Failed", errors=[detail])


def custom(resource: str, message: str) -> Refused:
    return Refused(
        422,
        "Validation Failed",
        errors=[{"resource": resource, "code": "custom", "message": message}],
    )


def _text(ctx: Ctx, key: str, resource: str, *, required: bool) -> str | None:
    value = ctx.body.get(key) if isinstance(ctx.body, dict) else None
    if value is None:
        if required:
            raise invalid(resource, key, "missing_field")
        return None
    if len(value) > MAX_BODY:
        raise invalid(
            resource, key, "custom", f"{key} is too long (maximum is {MAX_BODY} characters)"
        )
    return str(value)


def _page(ctx: Ctx, items: list[Any], path: str) -> Out:
    """One page of ``items`` (``per_page``, at most 100; ``page``), with GitHub's Link."""
    size = min(int(ctx.query.get("per_page", "30")), 100)
    page = max(int(ctx.query.get("page", "1")), 1)
    last = max(1, -(-len(items) // size))
    links = []
    base = f"{ctx.api}{path}?per_page={size}&page="
    if page < last:
        links += [f'<{base}{page + 1}>; rel="next"', f'<{base}{last}>; rel="last"']
    if page > 1:
        links += [f'<{base}1>; rel="first"', f'<{base}{page - 1}>; rel="prev"']
    headers = {"Link": ", ".join(links)} if links else {}
    return Out(200, items[(page - 1) * size : page * size], headers)


def _since(ctx: Ctx) -> datetime | None:
    text = ctx.query.get("since")
    return None if text is None else datetime.fromisoformat(text)


def list_issues(ctx: Ctx) -> Out:
    repo = ctx.the_repo
    state, since = ctx.query.get("state", "open"), _since(ctx)
    wanted = [name for name in ctx.query.get("labels", "").split(",") if name]
    found = [
        item
        for item in repo.issues.values()
        if state in ("all", item.state)
        and (since is None or item.updated_at >= since)
        and all(name in item.labels for name in wanted)
    ]
    key = ctx.query.get("sort", "created")
    found.sort(key=lambda i: i.updated_at if key == "updated" else i.created_at)
    if ctx.query.get("direction", "desc") == "desc":
        found.reverse()
    shaped = [shapes.issue(repo, item, ctx.state.accounts, ctx.api) for item in found]
    return _page(ctx, shaped, f"/repos/{repo.slug}/issues")


def get_issue(ctx: Ctx) -> Out:
    return Out(
        200, shapes.issue(ctx.the_repo, ctx.item("issue_number"), ctx.state.accounts, ctx.api)
    )


def list_comments(ctx: Ctx) -> Out:
    item, since = ctx.item("issue_number"), _since(ctx)
    found = [c for c in item.comments if since is None or c.updated_at >= since]
    shaped = [shapes.comment(ctx.the_repo, c, ctx.state.accounts, ctx.api) for c in found]
    return _page(ctx, shaped, f"/repos/{ctx.the_repo.slug}/issues/{item.number}/comments")


def list_events(ctx: Ctx) -> Out:
    repo, item = ctx.the_repo, ctx.item("issue_number")
    shaped = [shapes.issue_event(repo, e, ctx.state.accounts, ctx.api) for e in item.events]
    return _page(ctx, shaped, f"/repos/{repo.slug}/issues/{item.number}/events")


def post_comment(ctx: Ctx) -> Out:
    item = ctx.item("issue_number")
    body = _text(ctx, "body", "IssueComment", required=True) or ""
    if not body.strip():
        raise invalid("IssueComment", "body", "missing_field")
    ctx.state.add_comment(ctx.the_repo.slug, item.number, body, author=ctx.grant.login)
    shaped = shapes.comment(ctx.the_repo, item.comments[-1], ctx.state.accounts, ctx.api)
    return Out(201, shaped, {"Location": shaped["url"]})


def patch_comment(ctx: Ctx) -> Out:
    wanted = int(ctx.params["comment_id"])
    for item in ctx.the_repo.issues.values():
        for found in item.comments:
            if found.id == wanted:
                body = _text(ctx, "body", "IssueComment", required=True) or ""
                found.body, found.updated_at = body, ctx.now
                return Out(200, shapes.comment(ctx.the_repo, found, ctx.state.accounts, ctx.api))
    raise Refused(404, "Not Found")


def list_pulls(ctx: Ctx) -> Out:
    repo = ctx.the_repo
    state = ctx.query.get("state", "open")
    head, base = ctx.query.get("head"), ctx.query.get("base")
    found = []
    for item in sorted(repo.issues.values(), key=lambda i: -i.number):
        pull = item.pull
        if pull is None or state not in ("all", item.state):
            continue
        if head is not None and head.casefold() != f"{repo.owner}:{pull.head}".casefold():
            continue
        if base is None or base == pull.base:
            found.append(shapes.pull(repo, item, ctx.state.accounts, ctx.api))
    return _page(ctx, found, f"/repos/{repo.slug}/pulls")


def get_pull(ctx: Ctx) -> Out:
    return Out(200, shapes.pull(ctx.the_repo, ctx.pull(), ctx.state.accounts, ctx.api))


def post_pull(ctx: Ctx) -> Out:
    repo = ctx.the_repo
    title = _text(ctx, "title", "PullRequest", required=True) or ""
    body = _text(ctx, "body", "PullRequest", required=False)
    head_name = str(ctx.body.get("head", ""))
    owner, _, branch = head_name.rpartition(":")
    if owner and owner.casefold() != repo.owner.casefold():
        raise invalid("PullRequest", "head")
    base = str(ctx.body.get("base", ""))
    head_sha, base_sha = repo.branch_sha(branch), repo.branch_sha(base)
    if head_sha is None:
        raise invalid("PullRequest", "head")
    if base_sha is None:
        raise invalid("PullRequest", "base")
    if not title.strip():
        raise invalid("PullRequest", "title", "missing_field")
    for item in repo.issues.values():
        if (
            item.pull
            and item.state == "open"
            and (item.pull.head, item.pull.base) == (branch, base)
        ):
            raise custom("PullRequest", f"A pull request already exists for {repo.owner}:{branch}.")
    if head_sha == base_sha:
        raise custom("PullRequest", f"No commits between {base} and {branch}")
    number = ctx.state.add_issue(repo.slug, title, body, author=ctx.grant.login)
    made = repo.issues[number]
    made.pull = Pull(
        ctx.state.next_id(), branch, base, head_sha, base_sha, bool(ctx.body.get("draft"))
    )
    shaped = shapes.pull(repo, made, ctx.state.accounts, ctx.api)
    return Out(201, shaped, {"Location": shaped["url"]})


def patch_pull(ctx: Ctx) -> Out:
    item = ctx.pull()
    title = _text(ctx, "title", "PullRequest", required=False)
    body = _text(ctx, "body", "PullRequest", required=False)
    if title is not None:
        if not title.strip():
            raise invalid("PullRequest", "title", "missing_field")
        item.title = title
    if body is not None:
        item.body = body
    state = ctx.body.get("state") if isinstance(ctx.body, dict) else None
    if state in ("open", "closed") and item.pull and item.pull.merged_at is None:
        item.state, item.closed_at = state, ctx.now if state == "closed" else None
    ctx.state.touch(item)
    return Out(200, shapes.pull(ctx.the_repo, item, ctx.state.accounts, ctx.api))


def request_reviewers(ctx: Ctx) -> Out:
    repo, item = ctx.the_repo, ctx.pull()
    assert item.pull is not None
    wanted = [str(who) for who in (ctx.body or {}).get("reviewers", [])]
    if any(who.casefold() == item.author.casefold() for who in wanted):
        raise custom("PullRequest", "Review cannot be requested from pull request author.")
    if any(repo.permission_of(who) is None for who in wanted):
        raise custom(
            "PullRequest",
            "Reviews may only be requested from collaborators. One or more of the users or "
            f"teams you specified is not a collaborator of the {repo.slug} repository.",
        )
    for who in wanted:
        if who not in item.pull.requested:
            item.pull.requested.append(who)
    return Out(201, shapes.pull(repo, item, ctx.state.accounts, ctx.api))


def list_reviews(ctx: Ctx) -> Out:
    repo, item = ctx.the_repo, ctx.pull()
    assert item.pull is not None
    # A pending review is seen by its author only, as on GitHub.
    seen = [r for r in item.pull.reviews if r.state != "PENDING" or r.author == ctx.grant.login]
    shaped = [shapes.review(repo, item.number, r, ctx.state.accounts, ctx.api) for r in seen]
    return _page(ctx, shaped, f"/repos/{repo.slug}/pulls/{item.number}/reviews")


def get_contents(ctx: Ctx) -> Out:
    repo = ctx.the_repo
    asked = ctx.query.get("ref")
    ref = repo.resolve(asked)
    if ref is None:
        raise Refused(404, f"No commit found for the ref {asked}")
    path = ctx.params["path"].strip("/")
    found = repo.read(path, ref)
    if found is None:
        raise Refused(404, "Not Found")
    if isinstance(found, bytes):
        return Out(200, shapes.content_file(repo, path, ref, found, ctx.api))
    return Out(200, shapes.content_directory(repo, path, ref, found, ctx.api))


_LEGACY: Final = {
    "admin": "admin",
    "maintain": "write",
    "write": "write",
    "triage": "read",
    "read": "read",
}


def get_permission(ctx: Ctx) -> Out:
    repo, login = ctx.the_repo, ctx.params["username"]
    known = ctx.state.accounts.find(login)
    if known is None:
        raise Refused(404, "Not Found")
    level = repo.permission_of(login)
    role = level or ("none" if repo.private else "read")
    collaborator = {**shapes.user(known, ctx.api), "role_name": role}
    return Out(
        200, {"permission": _LEGACY.get(role, "none"), "role_name": role, "user": collaborator}
    )


def org_member(ctx: Ctx) -> Out:
    members = ctx.state.org_members.get(ctx.params["org"].casefold(), set())
    if ctx.params["username"].casefold() not in members:
        raise Refused(404, "Not Found")
    return Out(204)


def team_membership(ctx: Ctx) -> Out:
    org, team, login = ctx.params["org"], ctx.params["team_slug"], ctx.params["username"]
    state = ctx.state.teams.get((org.casefold(), team.casefold()), {}).get(login.casefold())
    if state is None:
        raise Refused(404, "Not Found")
    url = f"{ctx.api}/organizations/1/team/1/memberships/{login}"
    return Out(200, {"url": url, "role": "member", "state": state})


def delete_ref(ctx: Ctx) -> Out:
    repo, ref = ctx.the_repo, ctx.params["ref"]
    branch = ref.removeprefix("heads/")
    if ref == branch:
        raise Refused(422, "Reference does not exist")
    if branch == repo.default_branch:
        raise Refused(422, "Cannot delete the default branch")
    if not repo.delete_branch(branch):
        raise Refused(422, "Reference does not exist")
    return Out(204)


def _app_shape(ctx: Ctx) -> dict[str, Any]:
    owner = ctx.state.accounts.get(ctx.the_repo.owner)
    return shapes.app(
        ctx.credentials.app_id or 0, ctx.credentials.app_slug, owner, ctx.api, ctx.now
    )


def _apply_check(ctx: Ctx, run: CheckRun) -> None:
    body = ctx.body if isinstance(ctx.body, dict) else {}
    run.name = str(body.get("name", run.name))
    conclusion = body.get("conclusion")
    status = "completed" if conclusion else str(body.get("status", run.status))
    if status == "completed" and not (conclusion or run.conclusion):
        raise invalid("CheckRun", "conclusion", "missing_field")
    output = body.get("output")
    if isinstance(output, dict):
        run.title, run.summary = output.get("title"), output.get("summary")
    run.status, run.conclusion = status, conclusion or run.conclusion
    if status == "in_progress" and run.started_at is None:
        run.started_at = ctx.now
    if status == "completed":
        run.completed_at = ctx.now


def post_check_run(ctx: Ctx) -> Out:
    repo = ctx.the_repo
    head_sha = str(ctx.body.get("head_sha", ""))
    if not repo.has_commit(head_sha):
        raise Refused(422, f"No commit found for SHA: {head_sha}")
    run = CheckRun(ctx.state.next_id(), head_sha, "", "queued", None, None, None, ctx.now, None)
    _apply_check(ctx, run)
    repo.check_runs[run.id] = run
    return Out(201, shapes.check_run(repo, run, _app_shape(ctx), ctx.api))


def patch_check(ctx: Ctx) -> Out:
    repo = ctx.the_repo
    run = repo.check_runs.get(int(ctx.params["check_run_id"]))
    if run is None:
        raise Refused(404, "Not Found")
    _apply_check(ctx, run)
    return Out(200, shapes.check_run(repo, run, _app_shape(ctx), ctx.api))


def _installation(ctx: Ctx, owner: str, name: str | None) -> Out:
    found = ctx.credentials.installation_of(owner, name)
    if found is None or ctx.credentials.app_id is None:
        raise Refused(404, "Not Found")
    account = ctx.state.accounts.get(found.owner)
    shape = shapes.installation(found, account, ctx.credentials.app_id, ctx.api, ctx.now)
    return Out(200, {**shape, "app_slug": ctx.credentials.app_slug})


def repo_installation(ctx: Ctx) -> Out:
    return _installation(ctx, ctx.params["owner"], ctx.params["repo"])


def org_installation(ctx: Ctx) -> Out:
    return _installation(ctx, ctx.params["org"], None)


def get_user(ctx: Ctx) -> Out:
    """The PAT's own account, as GitHub shows it to a token without the ``user`` scope:
    the public profile."""
    return Out(200, _public_profile(ctx, ctx.state.accounts.get(ctx.grant.login)))


def get_named_user(ctx: Ctx) -> Out:
    """Any account the fake has seen, by login (its public profile); 404 for another."""
    known = ctx.state.accounts.find(ctx.params["username"])
    if known is None:
        raise Refused(404, "Not Found")
    return Out(200, _public_profile(ctx, known))


def _public_profile(ctx: Ctx, account: Account) -> shapes.Json:
    profile = shapes.user(account, ctx.api)
    empty = dict.fromkeys(("name", "company", "blog", "location", "email", "hireable", "bio"))
    stamp = shapes.stamp(ctx.now)
    counts = dict.fromkeys(("public_repos", "public_gists", "followers", "following"), 0)
    return {**profile, **empty, **counts, "created_at": stamp, "updated_at": stamp}


def get_app(ctx: Ctx) -> Out:
    """The App the JWT speaks as (its owner: the account named after it)."""
    slug = ctx.credentials.app_slug
    owner = ctx.state.accounts.get(slug, "Organization")
    return Out(200, shapes.app(ctx.credentials.app_id or 0, slug, owner, ctx.api, ctx.now))


def mint(ctx: Ctx) -> Out:
    grant = ctx.credentials.mint(int(ctx.params["installation_id"]), ctx.body or {}, ctx.now)
    token = ctx.credentials.issue_token(grant)
    return Out(
        201,
        {
            "token": token,
            "expires_at": shapes.stamp(grant.expires_at),
            "permissions": dict(grant.permissions),
            "repository_selection": "all" if grant.repos is None else "selected",
        },
    )
