"""The operations the fake Gitea server serves, one function each (by Gitea's
``operationId``), answering as Gitea's ``routers/api/v1`` handlers do: the same checks in
the same order, the same statuses and messages.

Each takes a :class:`Call` (who asks, the parameters, the parsed body, the repository the
path names, already found and readable by the caller) and returns a :class:`Reply`, or
raises :class:`Refused` for an error answer. A described parameter the fake does not
implement is noted as a violation rather than silently ignored.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Final

from tests.fakes.gitea import entities as js
from tests.fakes.gitea.state import Change, Comment, Issue, PullInfo, Repo, World, fake_sha

DEFAULT_PAGE: Final = 30  # Gitea's [api] DEFAULT_PAGING_NUM
MAX_PAGE: Final = 50  # Gitea's [api] MAX_RESPONSE_ITEMS


@dataclass
class Reply:
    status: int
    data: Any = None
    headers: dict[str, str] = field(default_factory=dict)


class Refused(Exception):
    """An error answer: ``status`` with ``data`` (None: an empty body)."""

    def __init__(self, status: int, data: Any = None) -> None:
        super().__init__(status)
        self.status = status
        self.data = data


@dataclass
class Call:
    world: World
    site: str
    doer: str
    params: Mapping[str, str]
    query: Mapping[str, str]
    body: Any
    repo: Repo | None
    note: Callable[[str], None]  # records a violation
    path: str = ""

    def the_repo(self) -> Repo:
        if self.repo is None:
            raise RuntimeError("this operation has no repository")
        return self.repo

    def number(self, name: str = "index") -> int:
        return int(self.params[name])

    def unsupported(self, *names: str) -> None:
        for name in names:
            given = self.query.get(name) if name in self.query else None
            if given is None and isinstance(self.body, dict):
                given = self.body.get(name)
            if given not in (None, "", [], False):
                self.note(f"the fake does not implement {name!r} ({self.path})")

    def refuse(self, status: int, message: str) -> Refused:
        return Refused(status, js.error(self.site, message))

    def missing(self, message: str | None = None, errors: list[str] | None = None) -> Refused:
        return Refused(404, js.not_found(self.site, message, errors))


def _when(text: str | None) -> datetime | None:
    return None if not text else datetime.fromisoformat(text)


def _page(call: Call, items: Sequence[Any]) -> Reply:
    page = max(1, int(call.query.get("page") or 1))
    size = int(call.query.get("limit") or 0)
    size = DEFAULT_PAGE if size <= 0 else min(size, MAX_PAGE)
    total = len(items)
    pages = max(1, -(-total // size))
    links = []
    base = f"{call.site}/api/v1{call.path}?limit={size}&page="
    if page < pages:
        links += [f'<{base}{page + 1}>; rel="next"', f'<{base}{pages}>; rel="last"']
    if page > 1:
        links += [f'<{base}1>; rel="first"', f'<{base}{page - 1}>; rel="prev"']
    headers = {"X-Total-Count": str(total)}
    if links:
        headers["Link"] = ",".join(links)
    return Reply(200, list(items[(page - 1) * size : page * size]), headers)


def _issue(call: Call) -> Issue:
    found = call.the_repo().issues.get(call.number())
    if found is None:
        raise call.missing()
    return found


def _pull(call: Call) -> tuple[Issue, PullInfo]:
    found = _issue(call)
    if found.pull is None:
        raise call.missing()
    return found, found.pull


def _required(call: Call, *fields: str) -> dict[str, Any]:
    """Gitea's binding of a body: each ``binding:"Required"`` field non-empty."""
    body = call.body if isinstance(call.body, dict) else {}
    for name in fields:
        if not body.get(name):
            raise call.refuse(422, f"[{name.capitalize()}]: Required")
    return body


def _since(call: Call) -> tuple[datetime | None, datetime | None]:
    return _when(call.query.get("since")), _when(call.query.get("before"))


# -- issues and comments ----------------------------------------------------------------


def issue_list_issues(call: Call) -> Reply:
    call.unsupported("labels", "q", "milestones", "created_by", "assigned_by", "mentioned_by")
    repo = call.the_repo()
    state = call.query.get("state") or "open"
    kind = call.query.get("type")
    since, before = _since(call)
    found = [
        i
        for i in repo.issues.values()
        if (state == "all" or i.state == state)
        and (kind is None or (kind == "pulls") == (i.pull is not None))
        and (since is None or i.updated >= since)
        and (before is None or i.updated <= before)
    ]
    found.sort(key=lambda i: (i.created, i.id), reverse=True)
    return _page(call, [js.issue(call.world, repo, i, call.site) for i in found])


def issue_get_issue(call: Call) -> Reply:
    return Reply(200, js.issue(call.world, call.the_repo(), _issue(call), call.site))


def issue_get_comments(call: Call) -> Reply:
    repo, issue = call.the_repo(), _issue(call)
    since, before = _since(call)
    found = [
        c
        for c in issue.comments
        if (since is None or c.updated >= since) and (before is None or c.updated <= before)
    ]
    data = [js.comment(call.world, repo, issue, c, call.site) for c in found]
    return Reply(200, data, {"X-Total-Count": str(len(data))})


def issue_get_comments_and_timeline(call: Call) -> Reply:
    # Without a page, Gitea lists it whole; paged, its X-Total-Count is the page's length.
    repo, issue = call.the_repo(), _issue(call)
    since, before = _since(call)
    entries: list[Comment | Change] = [*issue.comments, *issue.changes]
    entries.sort(key=lambda e: (e.created, e.id))
    stamps = [(e, e.updated if isinstance(e, Comment) else e.created) for e in entries]
    found = [e for e, t in stamps if (since is None or t >= since) and (not before or t <= before)]
    data = [js.timeline_entry(call.world, repo, issue, e, call.site) for e in found]
    if call.query.get("page"):
        data = _page(call, data).data
    return Reply(200, data, {"X-Total-Count": str(len(data))})


def issue_create_comment(call: Call) -> Reply:
    body = _required(call, "body")
    repo, issue = call.the_repo(), _issue(call)
    if issue.locked and not call.world.can_write(repo, call.doer):
        raise call.refuse(403, "Unable to comment on a locked issue.")
    comment = call.world.new_comment(repo, issue, call.doer, str(body["body"]))
    return Reply(201, js.comment(call.world, repo, issue, comment, call.site))


def issue_edit_comment(call: Call) -> Reply:
    repo, comment_id = call.the_repo(), call.number("id")
    found = call.world.comments.get(comment_id)
    if found is None:
        raise call.missing(errors=[f"comment does not exist [id: {comment_id}]"])
    where, issue, comment = found
    if where is not repo:
        raise Refused(404)
    if comment.author.lower() != call.doer.lower() and not call.world.can_write(repo, call.doer):
        raise Refused(403)
    body = _required(call, "body")
    comment.body = str(body["body"])
    comment.updated = call.world.now()
    return Reply(200, js.comment(call.world, repo, issue, comment, call.site))


# -- pull requests ----------------------------------------------------------------------


def repo_list_pull_requests(call: Call) -> Reply:
    call.unsupported("sort", "milestone", "labels")
    repo = call.the_repo()
    state = call.query.get("state") or "all"
    found = [
        i
        for i in repo.issues.values()
        if i.pull is not None and (state == "all" or i.state == state)
    ]
    found.sort(key=lambda i: (i.created, i.id), reverse=True)
    return _page(call, [js.pull(call.world, repo, i, call.site, call.doer) for i in found])


def repo_get_pull_request(call: Call) -> Reply:
    issue, _ = _pull(call)
    return Reply(200, js.pull(call.world, call.the_repo(), issue, call.site, call.doer))


def repo_create_pull_request(call: Call) -> Reply:
    body = _required(call, "head", "base", "title")
    call.unsupported("assignee", "assignees", "labels", "milestone", "due_date")
    repo, world = call.the_repo(), call.world
    head, base = str(body["head"]), str(body["base"])
    if head == base:
        raise call.refuse(
            422, "Invalid PullRequest: There are no changes between the head and the base"
        )
    owner, sep, branch = head.rpartition(":")
    if sep and owner.lower() != repo.owner.lower():
        # Another owner's fork: the fake holds no forks.
        raise call.missing("GetForkedRepo")
    if base not in repo.branches:
        raise call.missing("IsBranchExist")
    if branch not in repo.branches:
        raise call.missing()
    for other in repo.issues.values():
        p = other.pull
        if p and p.head == branch and p.base == base and not p.merged and other.state == "open":
            raise call.refuse(
                409,
                f"pull request already exists for these targets [id: {p.id}, issue_id: "
                f"{other.number}, head_repo_id: {repo.id}, base_repo_id: {repo.id}, "
                f"head_branch: {branch}, base_branch: {base}]",
            )
    info = PullInfo(world.next_id(), branch, base, repo.branches[branch], repo.branches[base])
    issue = world.new_issue(
        repo, title=str(body["title"]), body=str(body.get("body") or ""), author=call.doer
    )
    issue.pull = info
    return Reply(201, js.pull(world, repo, issue, call.site, call.doer))


def repo_edit_pull_request(call: Call) -> Reply:
    call.unsupported(
        "assignee",
        "assignees",
        "labels",
        "milestone",
        "due_date",
        "unset_due_date",
        "allow_maintainer_edit",
    )
    repo, world = call.the_repo(), call.world
    issue, pull = _pull(call)
    body = call.body if isinstance(call.body, dict) else {}
    if issue.author.lower() != call.doer.lower() and not world.can_write(repo, call.doer):
        raise Refused(403)
    if body.get("title"):
        issue.title = str(body["title"])
    if body.get("body"):
        issue.body = str(body["body"])
    if body.get("state") is not None:
        if pull.merged:
            raise call.refuse(
                412, "cannot change state of this pull request, it was already merged"
            )
        if body["state"] == "closed" and issue.state == "open":
            world.close(issue)
        elif body["state"] == "open":
            issue.state, issue.closed_at = "open", None
    base = body.get("base")
    if base and not pull.merged and base != pull.base:
        if base not in repo.branches:
            raise call.refuse(404, f"new base '{base}' not exist")
        pull.base = str(base)
    world.touch(issue)
    return Reply(201, js.pull(world, repo, issue, call.site, call.doer))


def repo_create_pull_review_requests(call: Call) -> Reply:
    call.unsupported("team_reviewers")
    repo, world = call.the_repo(), call.world
    issue, pull = _pull(call)
    body = call.body if isinstance(call.body, dict) else {}
    reviewers = []
    for login in [str(login) for login in body.get("reviewers") or []]:
        reviewer = world.user(login)
        if reviewer is None:
            raise call.missing(f"User '{login}' not exist")
        tail = f"[user_id: {reviewer.id}, repo_id: {repo.id}]"
        if not world.can_read(repo, login):
            raise call.refuse(422, f"Reviewer can't read {tail}")
        if issue.author.lower() != call.doer.lower() and not world.can_write(repo, call.doer):
            raise call.refuse(422, f"Doer can't choose reviewer {tail}")
        if reviewer.login.lower() == issue.author.lower():
            raise call.refuse(422, f"poster of pr can't be reviewer {tail}")
        reviewers.append(reviewer.login)
    made = []
    for login in reviewers:
        asked = {r.author.lower() for r in pull.reviews if r.state == "REQUEST_REVIEW"}
        if login.lower() not in asked:
            made.append(world.new_review(issue, login, "REQUEST_REVIEW", ""))
    return Reply(201, [js.review(world, repo, issue, r, call.site) for r in made])


def repo_list_pull_reviews(call: Call) -> Reply:
    repo, world = call.the_repo(), call.world
    issue, pull = _pull(call)
    doer = world.user(call.doer)
    shown = [
        r
        for r in pull.reviews
        if r.state != "PENDING"
        or (doer is not None and (doer.is_admin or r.author.lower() == doer.login.lower()))
    ]
    return _page(call, [js.review(world, repo, issue, r, call.site) for r in shown])


def repo_delete_branch(call: Call) -> Reply:
    repo, world, branch = call.the_repo(), call.world, call.params["branch"]
    if not world.can_write(repo, call.doer):
        raise call.refuse(403, "user should have a permission to write to a repo")
    if not repo.branches:
        raise call.refuse(404, "Git Repository is empty.")
    if branch == repo.default_branch:
        raise call.refuse(403, "can not delete default branch")
    if branch in repo.protected:
        raise call.refuse(403, "branch protected")
    if branch not in repo.branches:
        raise call.missing(errors=[f"branch does not exist [name: {branch}]"])
    world.delete_branch(repo, branch, call.doer)
    return Reply(204)


# -- files ------------------------------------------------------------------------------


def repo_get_contents(call: Call) -> Reply:
    repo = call.the_repo()
    ref = call.query.get("ref") or repo.default_branch
    by_sha = {sha: name for name, sha in repo.branches.items()}
    branch = ref if ref in repo.branches else by_sha.get(ref)
    path = call.params["filepath"].strip("/")
    if branch is None:
        raise call.missing("GetContentsOrList", [f"no commit found for the ref [ref: {ref}]"])
    files = repo.files.get(branch, {})
    if path in files:
        data = files[path]
        sha = fake_sha(branch, path, data.hex())
        return Reply(200, js.contents(repo, branch, path, data, sha, call.site))
    prefix = path + "/"
    children: dict[str, bytes | None] = {}
    for name, data in files.items():
        if name.startswith(prefix):
            head, sep, _ = name[len(prefix) :].partition("/")
            children[prefix + head] = None if sep else data
    if not children:
        raise call.missing("GetContentsOrList", [f"object does not exist [id: , rel_path: {path}]"])
    entries = [
        js.contents(repo, branch, name, data, fake_sha(branch, name), call.site)
        for name, data in sorted(children.items())
    ]
    for entry in entries:  # a listing carries no file's content
        entry["content"] = entry["encoding"] = None
    return Reply(200, entries)


# -- who may do what --------------------------------------------------------------------


def repo_get_repo_permissions(call: Call) -> Reply:
    repo, world, login = call.the_repo(), call.world, call.params["collaborator"]
    doer = world.user(call.doer)
    asks_self = login.lower() == call.doer.lower()
    if not (doer and doer.is_admin) and not asks_self and not world.is_repo_admin(repo, call.doer):
        raise call.refuse(
            403,
            "Only admins can query all permissions, repo admins can query all repo "
            "permissions, collaborators can query only their own",
        )
    user = world.user(login)
    if user is None:
        raise call.refuse(404, f"user does not exist [uid: 0, name: {login}, keyid: 0]")
    access = world.access(repo, user.login)
    return Reply(200, js.permission(world, user.login, access, call.site))


def org_is_member(call: Call) -> Reply:
    world = call.world
    org, user = world.org(call.params["org"]), world.user(call.params["username"])
    if org is None or user is None:
        raise call.missing()
    doer = world.user(call.doer)
    if world.is_org_member(org, call.doer) or (doer is not None and doer.is_admin):
        if world.is_org_member(org, user.login):
            return Reply(204)
        raise call.missing()
    if user.login.lower() == call.doer.lower():
        raise call.missing()
    location = f"/api/v1/orgs/{org.login}/public_members/{user.login}"
    return Reply(303, None, {"Location": location})


def org_list_teams(call: Call) -> Reply:
    world = call.world
    org = world.org(call.params["org"])
    if org is None:
        raise call.missing()
    doer = world.user(call.doer)
    if not world.is_org_member(org, call.doer) and not (doer and doer.is_admin):
        raise call.refuse(403, "Must be an organization member")
    return _page(call, [js.team(world, t, call.site) for t in org.teams])


def org_list_team_member(call: Call) -> Reply:
    world = call.world
    team = world.team(call.number("id"))
    if team is None:
        raise call.missing()
    org = world.org(team.org)
    doer = world.user(call.doer)
    members = {m.lower() for m in team.members}
    privileged = (doer is not None and doer.is_admin) or (
        org is not None and world.is_org_owner(org, call.doer)
    )
    if not privileged and call.doer.lower() not in members:
        if org is not None and world.is_org_member(org, call.doer):
            raise call.refuse(403, "Must be a team member")
        raise call.missing()
    user = world.user(call.params["username"])
    if user is None or user.login.lower() not in members:
        raise call.missing()
    return Reply(200, js.user_of(user, call.site))


def user_get_current(call: Call) -> Reply:
    return Reply(200, js.user(call.world, call.doer, call.site))


def user_get(call: Call) -> Reply:
    """A user by login, their address as Gitea shows it to the caller (their own to a site
    admin, even when they keep it private); 404 for a login no one has."""
    user = call.world.user(call.params["username"])
    if user is None:
        raise call.missing()
    return Reply(200, js.user_of(user, call.site, call.world.user(call.doer)))


OPERATIONS: Final[Mapping[str, Callable[[Call], Reply]]] = {
    "issueListIssues": issue_list_issues,
    "issueGetIssue": issue_get_issue,
    "issueGetComments": issue_get_comments,
    "issueGetCommentsAndTimeline": issue_get_comments_and_timeline,
    "issueCreateComment": issue_create_comment,
    "issueEditComment": issue_edit_comment,
    "repoListPullRequests": repo_list_pull_requests,
    "repoGetPullRequest": repo_get_pull_request,
    "repoCreatePullRequest": repo_create_pull_request,
    "repoEditPullRequest": repo_edit_pull_request,
    "repoCreatePullReviewRequests": repo_create_pull_review_requests,
    "repoListPullReviews": repo_list_pull_reviews,
    "repoDeleteBranch": repo_delete_branch,
    "repoGetContents": repo_get_contents,
    "repoGetRepoPermissions": repo_get_repo_permissions,
    "orgIsMember": org_is_member,
    "orgListTeams": org_list_teams,
    "orgListTeamMember": org_list_team_member,
    "userGetCurrent": user_get_current,
    "userGet": user_get,
}
