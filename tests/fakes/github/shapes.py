"""The JSON objects the fake GitHub answers with, whole, as GitHub's description draws
them (``simple-user``, ``repository``, ``issue``, ``issue-comment``, ``pull-request``,
``pull-request-review``, ``content-file``, ``check-run``, ``installation``, …): every
required field, in its described type, so the answers pass the description's check.

API URLs point at the fake's own root (``api``); web URLs at ``https://github.com``.
"""

from __future__ import annotations

import base64
import hashlib
from datetime import datetime
from typing import Any, Final

from tests.fakes.github.auth import Installation
from tests.fakes.github.records import (
    Account,
    CheckRun,
    Comment,
    Issue,
    IssueEvent,
    Repo,
    Review,
)

WEB: Final = "https://github.com"
DOCS: Final = "https://docs.github.com/rest"
Json = dict[str, Any]


def stamp(when: datetime | None) -> str | None:
    """GitHub's timestamp: ``2024-05-01T12:00:00Z``."""
    return None if when is None else when.strftime("%Y-%m-%dT%H:%M:%SZ")


def node_id(kind: str, number: int) -> str:
    return base64.b64encode(f"{kind}:{number}".encode()).decode().rstrip("=")


def blob_sha(data: bytes) -> str:
    """Git's blob id of ``data`` (what GitHub calls a content's ``sha``)."""
    return hashlib.sha1(b"blob %d\0" % len(data) + data, usedforsecurity=False).hexdigest()


def error(status: int, message: str, **extra: Any) -> Json:
    """GitHub's error body (``basic-error``; ``validation-error`` with ``errors``)."""
    return {"message": message, "documentation_url": DOCS, "status": str(status), **extra}


def user(account: Account, api: str) -> Json:
    url = f"{api}/users/{account.login}"
    return {
        "login": account.login,
        "id": account.id,
        "node_id": node_id("User", account.id),
        "avatar_url": f"https://avatars.githubusercontent.com/u/{account.id}?v=4",
        "gravatar_id": "",
        "url": url,
        "html_url": f"{WEB}/{account.login}",
        "followers_url": f"{url}/followers",
        "following_url": f"{url}/following{{/other_user}}",
        "gists_url": f"{url}/gists{{/gist_id}}",
        "starred_url": f"{url}/starred{{/owner}}{{/repo}}",
        "subscriptions_url": f"{url}/subscriptions",
        "organizations_url": f"{url}/orgs",
        "repos_url": f"{url}/repos",
        "events_url": f"{url}/events{{/privacy}}",
        "received_events_url": f"{url}/received_events",
        "type": account.type,
        "site_admin": False,
        "user_view_type": "public",
    }


_REPO_LINKS: Final = {
    "archive_url": "/{archive_format}{/ref}",
    "assignees_url": "/assignees{/user}",
    "blobs_url": "/git/blobs{/sha}",
    "branches_url": "/branches{/branch}",
    "collaborators_url": "/collaborators{/collaborator}",
    "comments_url": "/comments{/number}",
    "commits_url": "/commits{/sha}",
    "compare_url": "/compare/{base}...{head}",
    "contents_url": "/contents/{+path}",
    "contributors_url": "/contributors",
    "deployments_url": "/deployments",
    "downloads_url": "/downloads",
    "events_url": "/events",
    "forks_url": "/forks",
    "git_commits_url": "/git/commits{/sha}",
    "git_refs_url": "/git/refs{/sha}",
    "git_tags_url": "/git/tags{/sha}",
    "hooks_url": "/hooks",
    "issue_comment_url": "/issues/comments{/number}",
    "issue_events_url": "/issues/events{/number}",
    "issues_url": "/issues{/number}",
    "keys_url": "/keys{/key_id}",
    "labels_url": "/labels{/name}",
    "languages_url": "/languages",
    "merges_url": "/merges",
    "milestones_url": "/milestones{/number}",
    "notifications_url": "/notifications{?since,all,participating}",
    "pulls_url": "/pulls{/number}",
    "releases_url": "/releases{/id}",
    "stargazers_url": "/stargazers",
    "statuses_url": "/statuses/{sha}",
    "subscribers_url": "/subscribers",
    "subscription_url": "/subscription",
    "tags_url": "/tags",
    "teams_url": "/teams",
    "trees_url": "/git/trees{/sha}",
}


def repository(repo: Repo, owner: Account, api: str) -> Json:
    url = f"{api}/repos/{repo.owner}/{repo.name}"
    web = f"{WEB}/{repo.owner}/{repo.name}"
    open_issues = sum(1 for issue in repo.issues.values() if issue.state == "open")
    shape: Json = {key: url + tail for key, tail in _REPO_LINKS.items()}
    shape.update(
        id=repo.id,
        node_id=node_id("Repository", repo.id),
        name=repo.name,
        full_name=f"{repo.owner}/{repo.name}",
        owner=user(owner, api),
        private=repo.private,
        html_url=web,
        description=None,
        fork=False,
        url=url,
        clone_url=f"{web}.git",
        git_url=f"git://github.com/{repo.owner}/{repo.name}.git",
        ssh_url=f"git@github.com:{repo.owner}/{repo.name}.git",
        svn_url=web,
        mirror_url=None,
        homepage=None,
        language=None,
        forks=0,
        forks_count=0,
        stargazers_count=0,
        watchers_count=0,
        watchers=0,
        size=0,
        default_branch=repo.default_branch,
        open_issues=open_issues,
        open_issues_count=open_issues,
        has_issues=True,
        has_projects=False,
        has_wiki=False,
        has_pages=False,
        has_downloads=False,
        archived=False,
        disabled=False,
        visibility="private" if repo.private else "public",
        license=None,
        pushed_at=stamp(repo.created_at),
        created_at=stamp(repo.created_at),
        updated_at=stamp(repo.created_at),
    )
    return shape


def label(repo: Repo, name: str, api: str) -> Json:
    number = repo.label_id(name)
    return {
        "id": number,
        "node_id": node_id("Label", number),
        "url": f"{api}/repos/{repo.owner}/{repo.name}/labels/{name}",
        "name": name,
        "description": None,
        "color": "ededed",
        "default": False,
    }


def issue(repo: Repo, item: Issue, accounts: Any, api: str) -> Json:
    """``issue``: ``accounts`` maps a login to its :class:`Account` (``.get``)."""
    base = f"{api}/repos/{repo.owner}/{repo.name}"
    kind = "pull" if item.pull is not None else "issues"
    assignees = [user(accounts.get(login), api) for login in item.assignees]
    shape: Json = {
        "id": item.id,
        "node_id": node_id("Issue", item.id),
        "url": f"{base}/issues/{item.number}",
        "repository_url": base,
        "labels_url": f"{base}/issues/{item.number}/labels{{/name}}",
        "comments_url": f"{base}/issues/{item.number}/comments",
        "events_url": f"{base}/issues/{item.number}/events",
        "html_url": f"{WEB}/{repo.owner}/{repo.name}/{kind}/{item.number}",
        "timeline_url": f"{base}/issues/{item.number}/timeline",
        "number": item.number,
        "state": item.state,
        "state_reason": item.state_reason,
        "title": item.title,
        "body": item.body,
        "user": user(accounts.get(item.author), api),
        "labels": [label(repo, name, api) for name in item.labels],
        "assignee": assignees[0] if assignees else None,
        "assignees": assignees,
        "milestone": None,
        "locked": False,
        "active_lock_reason": None,
        "comments": len(item.comments),
        "closed_at": stamp(item.closed_at),
        "created_at": stamp(item.created_at),
        "updated_at": stamp(item.updated_at),
        "author_association": repo.association(item.author),
    }
    if item.pull is not None:
        shape["draft"] = item.pull.draft
        shape["pull_request"] = {
            "url": f"{base}/pulls/{item.number}",
            "html_url": f"{WEB}/{repo.owner}/{repo.name}/pull/{item.number}",
            "diff_url": f"{WEB}/{repo.owner}/{repo.name}/pull/{item.number}.diff",
            "patch_url": f"{WEB}/{repo.owner}/{repo.name}/pull/{item.number}.patch",
            "merged_at": stamp(item.pull.merged_at),
        }
    return shape


def issue_event(repo: Repo, item: IssueEvent, accounts: Any, api: str) -> Json:
    """``labeled-issue-event``, ``assigned-issue-event`` and their undoings."""
    shape: Json = {
        "id": item.id,
        "node_id": node_id("LabeledEvent" if "label" in item.event else "AssignedEvent", item.id),
        "url": f"{api}/repos/{repo.owner}/{repo.name}/issues/events/{item.id}",
        "actor": user(accounts.get(item.actor), api),
        "event": item.event,
        "commit_id": None,
        "commit_url": None,
        "created_at": stamp(item.created_at),
        "performed_via_github_app": None,
    }
    if item.event in ("labeled", "unlabeled"):
        shape["label"] = {"name": item.name, "color": "ededed"}
    else:
        shape["assignee"] = user(accounts.get(item.name), api)
        shape["assigner"] = shape["actor"]
    return shape


def comment(repo: Repo, item: Comment, accounts: Any, api: str) -> Json:
    base = f"{api}/repos/{repo.owner}/{repo.name}"
    return {
        "id": item.id,
        "node_id": node_id("IssueComment", item.id),
        "url": f"{base}/issues/comments/{item.id}",
        "html_url": f"{WEB}/{repo.owner}/{repo.name}/issues/{item.number}#issuecomment-{item.id}",
        "body": item.body,
        "user": user(accounts.get(item.author), api),
        "created_at": stamp(item.created_at),
        "updated_at": stamp(item.updated_at),
        "issue_url": f"{base}/issues/{item.number}",
        "author_association": repo.association(item.author),
    }


def _side(repo: Repo, owner: Account, ref: str, sha: str, api: str) -> Json:
    return {
        "label": f"{repo.owner}:{ref}",
        "ref": ref,
        "sha": sha,
        "repo": repository(repo, owner, api),
        "user": user(owner, api),
    }


def pull(repo: Repo, item: Issue, accounts: Any, api: str) -> Json:
    """``pull-request``, whole (lists answer it too: it holds ``pull-request-simple``)."""
    found = item.pull
    if found is None:
        raise ValueError(f"#{item.number} is an issue, not a pull request")
    base = f"{api}/repos/{repo.owner}/{repo.name}"
    web = f"{WEB}/{repo.owner}/{repo.name}/pull/{item.number}"
    owner = accounts.get(repo.owner)
    links = {
        "self": f"{base}/pulls/{item.number}",
        "html": web,
        "issue": f"{base}/issues/{item.number}",
        "comments": f"{base}/issues/{item.number}/comments",
        "review_comments": f"{base}/pulls/{item.number}/comments",
        "review_comment": f"{base}/pulls/comments{{/number}}",
        "commits": f"{base}/pulls/{item.number}/commits",
        "statuses": f"{base}/statuses/{found.head_sha}",
    }
    shape: Json = {
        "url": links["self"],
        "id": found.id,
        "node_id": node_id("PullRequest", found.id),
        "html_url": web,
        "diff_url": f"{web}.diff",
        "patch_url": f"{web}.patch",
        "issue_url": links["issue"],
        "commits_url": links["commits"],
        "review_comments_url": links["review_comments"],
        "review_comment_url": links["review_comment"],
        "comments_url": links["comments"],
        "statuses_url": links["statuses"],
        "_links": {key: {"href": href} for key, href in links.items()},
        "head": _side(repo, owner, found.head, found.head_sha, api),
        "base": _side(repo, owner, found.base, found.base_sha, api),
        "requested_reviewers": [user(accounts.get(who), api) for who in found.requested],
        "requested_teams": [],
        "draft": found.draft,
        "merged": found.merged_at is not None,
        "merged_at": stamp(found.merged_at),
        "merged_by": None if found.merged_by is None else user(accounts.get(found.merged_by), api),
        "merge_commit_sha": found.merge_commit_sha,
        "mergeable": None if found.merged_at or item.state == "closed" else True,
        "rebaseable": None,
        "mergeable_state": "clean" if item.state == "open" else "unknown",
        "auto_merge": None,
        "maintainer_can_modify": False,
        "comments": len(item.comments),
        "review_comments": 0,
        "commits": 1,
        "additions": 1,
        "deletions": 0,
        "changed_files": 1,
    }
    whole = issue(repo, item, accounts, api)
    for key in ("number", "state", "locked", "title", "body", "user", "labels", "milestone"):
        shape[key] = whole[key]
    for key in ("active_lock_reason", "created_at", "updated_at", "closed_at"):
        shape[key] = whole[key]
    for key in ("assignee", "assignees", "author_association"):
        shape[key] = whole[key]
    return shape


def review(repo: Repo, number: int, item: Review, accounts: Any, api: str) -> Json:
    base = f"{api}/repos/{repo.owner}/{repo.name}"
    web = f"{WEB}/{repo.owner}/{repo.name}/pull/{number}#pullrequestreview-{item.id}"
    shape: Json = {
        "id": item.id,
        "node_id": node_id("PullRequestReview", item.id),
        "user": user(accounts.get(item.author), api),
        "body": item.body,
        "state": item.state,
        "html_url": web,
        "pull_request_url": f"{base}/pulls/{number}",
        "_links": {"html": {"href": web}, "pull_request": {"href": f"{base}/pulls/{number}"}},
        "commit_id": item.commit_id,
        "author_association": repo.association(item.author),
    }
    if item.submitted_at is not None:  # a pending review has none (and no null either)
        shape["submitted_at"] = stamp(item.submitted_at)
    return shape


def _entry(repo: Repo, path: str, ref: str, kind: str, data: bytes, api: str) -> Json:
    url = f"{api}/repos/{repo.owner}/{repo.name}/contents/{path}?ref={ref}"
    sha = blob_sha(data) if kind == "file" else hashlib.sha1(path.encode()).hexdigest()
    git = f"{api}/repos/{repo.owner}/{repo.name}/git/{'blobs' if kind == 'file' else 'trees'}/{sha}"
    web = f"{WEB}/{repo.owner}/{repo.name}/{'blob' if kind == 'file' else 'tree'}/{ref}/{path}"
    raw = f"https://raw.githubusercontent.com/{repo.owner}/{repo.name}/{ref}/{path}"
    return {
        "type": kind,
        "size": len(data),
        "name": path.rsplit("/", 1)[-1],
        "path": path,
        "sha": sha,
        "url": url,
        "git_url": git,
        "html_url": web,
        "download_url": raw if kind == "file" else None,
        "_links": {"self": url, "git": git, "html": web},
    }


def content_file(repo: Repo, path: str, ref: str, data: bytes, api: str) -> Json:
    """``content-file``: base64 in lines of 60 characters, as GitHub sends it (past 1 MB
    GitHub sends no content: ``encoding`` ``none``)."""
    shape = _entry(repo, path, ref, "file", data, api)
    if len(data) > 1024 * 1024:
        return {**shape, "encoding": "none", "content": ""}
    encoded = base64.b64encode(data).decode()
    lines = [encoded[i : i + 60] for i in range(0, len(encoded), 60)]
    return {**shape, "encoding": "base64", "content": "".join(line + "\n" for line in lines)}


def content_directory(
    repo: Repo, path: str, ref: str, names: dict[str, bytes | None], api: str
) -> list[Json]:
    """``content-directory``: ``names`` maps a child's path to its bytes (None: a folder)."""
    return [
        _entry(repo, child, ref, "dir" if data is None else "file", data or b"", api)
        for child, data in sorted(names.items())
    ]


def app(app_id: int, slug: str, owner: Account, api: str, when: datetime) -> Json:
    """``integration``: the App itself."""
    return {
        "id": app_id,
        "slug": slug,
        "node_id": node_id("App", app_id),
        "owner": user(owner, api),
        "name": slug,
        "description": None,
        "external_url": f"https://{slug}.example",
        "html_url": f"{WEB}/apps/{slug}",
        "created_at": stamp(when),
        "updated_at": stamp(when),
        "permissions": {"checks": "write", "contents": "write", "issues": "write"},
        "events": ["issues", "issue_comment", "pull_request", "pull_request_review"],
    }


def check_run(repo: Repo, item: CheckRun, app_shape: Json, api: str) -> Json:
    url = f"{api}/repos/{repo.owner}/{repo.name}/check-runs/{item.id}"
    return {
        "id": item.id,
        "head_sha": item.head_sha,
        "node_id": node_id("CheckRun", item.id),
        "external_id": "",
        "url": url,
        "html_url": f"{WEB}/{repo.owner}/{repo.name}/runs/{item.id}",
        "details_url": f"{WEB}/{repo.owner}/{repo.name}/runs/{item.id}",
        "status": item.status,
        "conclusion": item.conclusion,
        "started_at": stamp(item.started_at),
        "completed_at": stamp(item.completed_at),
        "output": {
            "title": item.title,
            "summary": item.summary,
            "text": None,
            "annotations_count": 0,
            "annotations_url": f"{url}/annotations",
        },
        "name": item.name,
        "check_suite": {"id": item.id + 1_000_000},
        "app": app_shape,
        "pull_requests": [],
    }


def installation(
    found: Installation, account: Account, app_id: int, api: str, when: datetime
) -> Json:
    """``installation``: where the App is installed, and what it may do there."""
    return {
        "id": found.id,
        "account": user(account, api),
        "repository_selection": "all" if found.repos is None else "selected",
        "access_tokens_url": f"{api}/app/installations/{found.id}/access_tokens",
        "repositories_url": f"{api}/installation/repositories",
        "html_url": f"{WEB}/settings/installations/{found.id}",
        "app_id": app_id,
        "target_id": account.id,
        "target_type": account.type,
        "permissions": found.permissions,
        "events": ["issues", "issue_comment", "pull_request", "pull_request_review"],
        "created_at": stamp(when),
        "updated_at": stamp(when),
        "single_file_name": None,
        "suspended_by": None,
        "suspended_at": None,
    }
