"""The JSON the fake Gitea server answers with, built as Gitea's ``services/convert`` builds
it: whole objects (``user``, ``labels``, ``repo``, URLs, counters), ``null`` where Gitea's
Go structs hold a nil pointer or slice (no assignees, no milestone, not merged).

``site`` is the server's root (``http://127.0.0.1:PORT``); the API is under ``/api/v1``.
"""

from __future__ import annotations

import base64
from datetime import datetime
from typing import Any

from tests.fakes.gitea.state import (
    Access,
    Change,
    Comment,
    Issue,
    Label,
    Repo,
    Review,
    Team,
    User,
    World,
)

Json = dict[str, Any]
ZERO_TIME = "0001-01-01T00:00:00Z"


def stamp(when: datetime | None) -> str | None:
    """Gitea's time: RFC 3339, whole seconds, ``Z`` for UTC."""
    return None if when is None else when.strftime("%Y-%m-%dT%H:%M:%SZ")


def error(site: str, message: str) -> Json:
    """Gitea's APIError."""
    return {"message": message, "url": f"{site}/api/swagger"}


def not_found(site: str, message: str | None = None, errors: list[str] | None = None) -> Json:
    """Gitea's 404 answer (``errors`` is null when there are none)."""
    return {
        "errors": errors or None,
        "message": message or "The target couldn't be found.",
        "url": f"{site}/api/swagger",
    }


def user(world: World, login: str, site: str) -> Json:
    found = world.user(login)
    if found is None:
        found = world.add_user(login)
    return user_of(found, site)


NO_REPLY_ADDRESS = "noreply.localhost"  # Gitea's default: noreply. and DOMAIN (localhost)


def user_of(u: User, site: str, doer: User | None = None) -> Json:
    """``u`` as Gitea shows them to ``doer`` (services/convert/user.go): their own address
    to a site admin or to themselves, or to anyone when they do not keep it private; else
    the no-reply placeholder, ``LOGIN@NO_REPLY_ADDRESS``."""
    authed = doer is not None and (doer.is_admin or doer.id == u.id)
    shown = bool(u.email) and doer is not None and (authed or not u.keep_email_private)
    return {
        "id": u.id,
        "login": u.login,
        "login_name": "",
        "full_name": u.full_name,
        "email": u.email if shown else f"{u.login.lower()}@{NO_REPLY_ADDRESS}",
        "avatar_url": f"{site}/avatars/{u.id:032x}",
        "language": "",
        "is_admin": False,
        "last_login": ZERO_TIME,
        "created": stamp(u.created),
        "restricted": False,
        "active": False,
        "prohibit_login": False,
        "location": "",
        "website": "",
        "description": "",
        "visibility": "public",
        "followers_count": 0,
        "following_count": 0,
        "starred_repos_count": 0,
        "username": u.login,
    }


def organization(u: User, site: str) -> Json:
    return {
        "id": u.id,
        "name": u.login,
        "full_name": u.full_name,
        "email": "",
        "avatar_url": f"{site}/avatars/{u.id:032x}",
        "description": "",
        "website": "",
        "location": "",
        "visibility": "public",
        "repo_admin_change_team_access": False,
        "username": u.login,
    }


def team(world: World, t: Team, site: str) -> Json:
    org = world.user(t.org)
    units = ["repo.code", "repo.issues", "repo.pulls", "repo.releases", "repo.wiki"]
    mode = "owner" if t.permission == "owner" else t.permission
    return {
        "id": t.id,
        "name": t.name,
        "description": t.description,
        "organization": organization(org, site) if org else None,
        "includes_all_repositories": t.all_repos,
        "permission": mode,
        "units": units,
        "units_map": {unit: mode for unit in units},
        "can_create_org_repo": t.permission in ("admin", "owner"),
    }


def repository(world: World, repo: Repo, site: str, doer: str) -> Json:
    access = world.access(repo, doer)
    html = f"{site}/{repo.full_name}"
    open_issues = [i for i in repo.issues.values() if i.state == "open"]
    return {
        "id": repo.id,
        "owner": user(world, repo.owner, site),
        "name": repo.name,
        "full_name": repo.full_name,
        "description": "",
        "empty": not repo.branches,
        "private": repo.private,
        "fork": False,
        "template": False,
        "parent": None,
        "mirror": False,
        "size": 0,
        "language": "",
        "languages_url": f"{site}/api/v1/repos/{repo.full_name}/languages",
        "html_url": html,
        "url": f"{site}/api/v1/repos/{repo.full_name}",
        "link": "",
        "ssh_url": f"git@127.0.0.1:{repo.full_name}.git",
        "clone_url": f"{html}.git",
        "original_url": "",
        "website": "",
        "stars_count": 0,
        "forks_count": 0,
        "watchers_count": 1,
        "open_issues_count": sum(1 for i in open_issues if i.pull is None),
        "open_pr_counter": sum(1 for i in open_issues if i.pull is not None),
        "release_counter": 0,
        "default_branch": repo.default_branch,
        "archived": False,
        "created_at": stamp(repo.created),
        "updated_at": stamp(repo.created),
        "archived_at": "1970-01-01T00:00:00Z",
        "permissions": {
            "admin": access in ("admin", "owner"),
            "push": access in ("write", "admin", "owner"),
            "pull": access != "none",
        },
        "has_issues": True,
        "internal_tracker": {
            "enable_time_tracker": True,
            "allow_only_contributors_to_track_time": True,
            "enable_issue_dependencies": True,
        },
        "has_wiki": True,
        "has_pull_requests": True,
        "has_projects": True,
        "has_releases": True,
        "has_packages": True,
        "has_actions": True,
        "ignore_whitespace_conflicts": False,
        "allow_merge_commits": True,
        "allow_rebase": True,
        "allow_rebase_explicit": True,
        "allow_squash_merge": True,
        "allow_rebase_update": True,
        "default_delete_branch_after_merge": False,
        "default_merge_style": "merge",
        "default_allow_maintainer_edit": False,
        "avatar_url": "",
        "internal": False,
        "mirror_interval": "",
        "object_format_name": "sha1",
        "mirror_updated": ZERO_TIME,
        "repo_transfer": None,
    }


def label(repo: Repo, lab: Label, site: str) -> Json:
    return {
        "id": lab.id,
        "name": lab.name,
        "exclusive": False,
        "is_archived": False,
        "color": lab.color,
        "description": lab.description,
        "url": f"{site}/api/v1/repos/{repo.full_name}/labels/{lab.id}",
    }


def _issue_html(repo: Repo, issue: Issue, site: str) -> str:
    kind = "pulls" if issue.pull else "issues"
    return f"{site}/{repo.full_name}/{kind}/{issue.number}"


def _assignees(world: World, issue: Issue, site: str) -> tuple[Json | None, list[Json] | None]:
    people = [user(world, login, site) for login in issue.assignees]
    return (people[0] if people else None), (people or None)


def issue(world: World, repo: Repo, i: Issue, site: str) -> Json:
    assignee, assignees = _assignees(world, i, site)
    pull = None
    if i.pull is not None:
        pull = {
            "merged": i.pull.merged,
            "merged_at": stamp(i.pull.merged_at),
            "draft": i.title.upper().startswith(("WIP:", "[WIP]")),
        }
    return {
        "id": i.id,
        "url": f"{site}/api/v1/repos/{repo.full_name}/issues/{i.number}",
        "html_url": _issue_html(repo, i, site),
        "number": i.number,
        "user": user(world, i.author, site),
        "original_author": "",
        "original_author_id": 0,
        "title": i.title,
        "body": i.body,
        "ref": "",
        "assets": [],
        "labels": [label(repo, world.label(repo, name), site) for name in i.labels],
        "milestone": None,
        "assignee": assignee,
        "assignees": assignees,
        "state": i.state,
        "is_locked": i.locked,
        "comments": len(i.comments),
        "created_at": stamp(i.created),
        "updated_at": stamp(i.updated),
        "closed_at": stamp(i.closed_at),
        "due_date": None,
        "pull_request": pull,
        "repository": {
            "id": repo.id,
            "name": repo.name,
            "owner": repo.owner,
            "full_name": repo.full_name,
        },
        "pin_order": 0,
    }


def comment(world: World, repo: Repo, i: Issue, c: Comment, site: str) -> Json:
    html = _issue_html(repo, i, site)
    return {
        "id": c.id,
        "html_url": f"{html}#issuecomment-{c.id}",
        "pull_request_url": html if i.pull else "",
        "issue_url": "" if i.pull else html,
        "user": user(world, c.author, site),
        "original_author": "",
        "original_author_id": 0,
        "body": c.body,
        "assets": [],
        "created_at": stamp(c.created),
        "updated_at": stamp(c.updated),
    }


def timeline_entry(world: World, repo: Repo, i: Issue, entry: Comment | Change, site: str) -> Json:
    """A ``TimelineComment`` (``services/convert.ToTimelineComment``): a plain comment, or
    a label given (``body`` "1") or taken (``body`` ""), or an assignee given or taken."""
    html = _issue_html(repo, i, site)
    shape: Json = {
        "id": entry.id,
        "type": "comment",
        "html_url": f"{html}#issuecomment-{entry.id}",
        "pull_request_url": html if i.pull else "",
        "issue_url": "" if i.pull else html,
        "user": user(world, entry.author, site),
        "body": "",
        "created_at": stamp(entry.created),
        "updated_at": stamp(entry.created),
        "old_project_id": 0,
        "project_id": 0,
        "old_milestone": None,
        "milestone": None,
        "tracked_time": None,
        "old_title": "",
        "new_title": "",
        "old_ref": "",
        "new_ref": "",
        "ref_issue": None,
        "ref_comment": None,
        "ref_action": "none",
        "ref_commit_sha": "",
        "review_id": 0,
        "label": None,
        "assignee": None,
        "assignee_team": None,
        "removed_assignee": False,
        "resolve_doer": None,
        "dependent_issue": None,
    }
    if isinstance(entry, Comment):
        shape.update(body=entry.body, updated_at=stamp(entry.updated))
    elif entry.kind == "label":
        given = label(repo, world.label(repo, entry.name), site)
        shape.update(type="label", body="" if entry.removed else "1", label=given)
    else:
        assignee = user(world, entry.name, site)
        shape.update(type="assignees", assignee=assignee, removed_assignee=entry.removed)
    return shape


def _branch(world: World, repo: Repo, ref: str, sha: str, site: str, doer: str) -> Json:
    return {
        "label": ref,
        "ref": ref,
        "sha": sha,
        "repo_id": repo.id,
        "repo": repository(world, repo, site, doer),
    }


def pull(world: World, repo: Repo, i: Issue, site: str, doer: str) -> Json:
    if i.pull is None:
        raise ValueError(f"#{i.number} is not a pull request")
    p = i.pull
    assignee, assignees = _assignees(world, i, site)
    requested = [r.author for r in p.reviews if r.state == "REQUEST_REVIEW"]
    html = _issue_html(repo, i, site)
    base_sha = repo.branches.get(p.base, p.merge_base)
    return {
        "id": p.id,
        "url": html,
        "number": i.number,
        "user": user(world, i.author, site),
        "title": i.title,
        "body": i.body,
        "labels": [label(repo, world.label(repo, name), site) for name in i.labels],
        "milestone": None,
        "assignee": assignee,
        "assignees": assignees,
        "requested_reviewers": [user(world, login, site) for login in requested] or None,
        "state": i.state,
        "is_locked": i.locked,
        "comments": len(i.comments),
        "html_url": html,
        "diff_url": f"{html}.diff",
        "patch_url": f"{html}.patch",
        "mergeable": i.state == "open",
        "merged": p.merged,
        "merged_at": stamp(p.merged_at),
        "merge_commit_sha": p.head_sha if p.merged else None,
        "merged_by": user(world, p.merged_by, site) if p.merged_by else None,
        "allow_maintainer_edit": False,
        "base": _branch(world, repo, p.base, base_sha, site, doer),
        "head": _branch(world, repo, p.head, p.head_sha, site, doer),
        "merge_base": p.merge_base,
        "due_date": None,
        "created_at": stamp(i.created),
        "updated_at": stamp(i.updated),
        "closed_at": stamp(i.closed_at),
        "pin_order": 0,
    }


def review(world: World, repo: Repo, i: Issue, r: Review, site: str) -> Json:
    html = _issue_html(repo, i, site)
    return {
        "id": r.id,
        "user": user(world, r.author, site),
        "team": None,
        "state": r.state,
        "body": r.body,
        "commit_id": r.commit_id,
        "stale": False,
        "official": r.state in ("APPROVED", "REQUEST_CHANGES"),
        "dismissed": r.dismissed,
        "comments_count": 0,
        "submitted_at": stamp(r.submitted),
        "updated_at": stamp(r.submitted),
        "html_url": f"{html}#issuecomment-{r.id}",
        "pull_request_url": html,
    }


def contents(repo: Repo, ref: str, path: str, data: bytes | None, sha: str, site: str) -> Json:
    """A file's entry (``data`` given: with its content) or a directory's (``data`` None)."""
    api = f"{site}/api/v1/repos/{repo.full_name}"
    html = f"{site}/{repo.full_name}/src/branch/{ref}/{path}"
    is_file = data is not None
    return {
        "name": path.rsplit("/", 1)[-1],
        "path": path,
        "sha": sha,
        "last_commit_sha": repo.branches.get(ref, sha),
        "type": "file" if is_file else "dir",
        "size": len(data) if data is not None else 0,
        "encoding": "base64" if is_file else None,
        "content": base64.b64encode(data).decode() if data is not None else None,
        "target": None,
        "url": f"{api}/contents/{path}?ref={ref}",
        "html_url": html,
        "git_url": f"{api}/git/{'blobs' if is_file else 'trees'}/{sha}",
        "download_url": f"{site}/{repo.full_name}/raw/branch/{ref}/{path}" if is_file else None,
        "submodule_git_url": None,
        "_links": {"self": f"{api}/contents/{path}?ref={ref}", "git": "", "html": html},
    }


def permission(world: World, login: str, access: Access, site: str) -> Json:
    return {"permission": access, "role_name": access, "user": user(world, login, site)}
