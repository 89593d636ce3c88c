"""Gitea webhook payloads built to Gitea's own structs, for the tests (signed and posted by
:func:`tests.fakes.forge.webhook_sender.gitea_delivery`).

The shapes are go-gitea/gitea's ``modules/structs`` (``IssuePayload``,
``IssueCommentPayload``, ``PullRequestPayload`` and ``ReviewPayload``; ``Issue``,
``PullRequest``, ``Comment``, ``User``, ``Repository``, ``Label``) and what
``services/webhook/notifier.go`` puts in them: a label change is ``issue_label`` with
action ``label_updated`` (or ``label_cleared``) and the issue as it now is, naming no label;
an assignment is ``issue_assign`` with action ``assigned``/``unassigned`` and the issue's
assignees as they now are; a comment on a pull request is ``pull_request_comment`` with
``is_pull`` and the pull request; a review is ``pull_request_review_approved``,
``…_rejected`` or ``…_comment`` with action ``reviewed`` and ``review: {type, content}``.

Each builder returns ``(event type, payload)``.
"""

from __future__ import annotations

import zlib
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from fleet.ledger.records.forge import Slug

Payload = dict[str, Any]
Event = tuple[str, Payload]

GITEA_URL = "https://gitea.example.com"
_ISSUE_TYPES = {
    "label_updated": "issue_label",
    "label_cleared": "issue_label",
    "assigned": "issue_assign",
    "unassigned": "issue_assign",
    "milestoned": "issue_milestone",
    "demilestoned": "issue_milestone",
}
_REVIEW_TYPES = {
    "approved": "pull_request_review_approved",
    "rejected": "pull_request_review_rejected",
    "comment": "pull_request_review_comment",
}


def go_time(at: datetime | None) -> str:
    """A time as Go's encoding/json writes a ``time.Time`` (RFC 3339)."""
    return (at or datetime.now(UTC)).isoformat(timespec="seconds").replace("+00:00", "Z")


def _id(text: str, top: int = 100_000) -> int:
    return zlib.crc32(text.encode()) % top + 1


def user(login: str) -> Payload:
    """A ``structs.User`` (with the ``username`` Gitea adds for older clients)."""
    return {
        "id": _id(login),
        "login": login,
        "login_name": "",
        "source_id": 0,
        "full_name": "",
        "email": f"{login}@noreply.gitea.example.com",
        "avatar_url": f"{GITEA_URL}/avatars/{zlib.crc32(login.encode()):08x}",
        "html_url": f"{GITEA_URL}/{login}",
        "language": "",
        "is_admin": False,
        "last_login": "0001-01-01T00:00:00Z",
        "created": "2024-01-02T03:04:05Z",
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
        "username": login,
    }


def repository(repo: Slug) -> Payload:
    """A ``structs.Repository``."""
    return {
        "id": _id(str(repo)),
        "owner": user(repo.owner),
        "name": repo.name,
        "full_name": str(repo),
        "description": "",
        "empty": False,
        "private": False,
        "fork": False,
        "template": False,
        "mirror": False,
        "size": 25,
        "language": "",
        "languages_url": f"{GITEA_URL}/api/v1/repos/{repo}/languages",
        "html_url": f"{GITEA_URL}/{repo}",
        "url": f"{GITEA_URL}/api/v1/repos/{repo}",
        "link": "",
        "ssh_url": f"git@gitea.example.com:{repo}.git",
        "clone_url": f"{GITEA_URL}/{repo}.git",
        "original_url": "",
        "website": "",
        "stars_count": 0,
        "forks_count": 0,
        "watchers_count": 1,
        "open_issues_count": 1,
        "open_pr_counter": 0,
        "release_counter": 0,
        "default_branch": "main",
        "archived": False,
        "created_at": "2024-01-02T03:04:05Z",
        "updated_at": "2024-01-02T03:04:05Z",
        "archived_at": "1970-01-01T00:00:00Z",
        "permissions": {"admin": True, "push": True, "pull": True},
        "has_issues": True,
        "internal_tracker": {
            "enable_time_tracker": True,
            "allow_only_contributors_to_track_time": True,
            "enable_issue_dependencies": True,
        },
        "has_wiki": True,
        "has_pull_requests": True,
        "has_projects": True,
        "projects_mode": "all",
        "has_releases": True,
        "has_packages": True,
        "has_actions": True,
        "ignore_whitespace_conflicts": False,
        "allow_merge_commits": True,
        "allow_rebase": True,
        "allow_rebase_explicit": True,
        "allow_squash_merge": True,
        "allow_fast_forward_only_merge": True,
        "allow_rebase_update": True,
        "allow_manual_merge": False,
        "autodetect_manual_merge": False,
        "default_delete_branch_after_merge": False,
        "default_merge_style": "merge",
        "default_allow_maintainer_edit": False,
        "avatar_url": "",
        "internal": False,
        "mirror_interval": "",
        "object_format_name": "sha1",
        "mirror_updated": "0001-01-01T00:00:00Z",
        "topics": [],
        "licenses": [],
    }


def label(name: str, repo: Slug) -> Payload:
    """A ``structs.Label``."""
    number = _id(name, 10_000)
    return {
        "id": number,
        "name": name,
        "exclusive": False,
        "is_archived": False,
        "color": "e11d21",
        "description": "",
        "url": f"{GITEA_URL}/api/v1/repos/{repo}/labels/{number}",
    }


def issue(
    repo: Slug,
    number: int,
    *,
    author: str,
    title: str = "Spelling error in the README file",
    body: str = "It looks like you accidently spelled 'commit' with two 't's.",
    labels: Sequence[str] = (),
    assignees: Sequence[str] = (),
    state: str = "open",
    is_pull: bool = False,
    at: datetime | None = None,
) -> Payload:
    """A ``structs.Issue`` (``is_pull``: a pull request seen as an issue)."""
    kind = "pulls" if is_pull else "issues"
    people = [user(login) for login in assignees]
    return {
        "id": _id(f"{repo}#{number}"),
        "url": f"{GITEA_URL}/api/v1/repos/{repo}/issues/{number}",
        "html_url": f"{GITEA_URL}/{repo}/{kind}/{number}",
        "number": number,
        "user": user(author),
        "original_author": "",
        "original_author_id": 0,
        "title": title,
        "body": body,
        "ref": "",
        "assets": [],
        "labels": [label(name, repo) for name in labels],
        "milestone": None,
        "assignee": people[0] if people else None,
        "assignees": people or None,
        "state": state,
        "is_locked": False,
        "comments": 0,
        "created_at": "2024-01-02T03:04:05Z",
        "updated_at": go_time(at),
        "closed_at": go_time(at) if state == "closed" else None,
        "due_date": None,
        "time_estimate": 0,
        "pull_request": _pull_meta(repo, number) if is_pull else None,
        "repository": {
            "id": _id(str(repo)),
            "name": repo.name,
            "owner": repo.owner,
            "full_name": str(repo),
        },
        "pin_order": 0,
    }


def _pull_meta(repo: Slug, number: int) -> Payload:
    return {
        "merged": False,
        "merged_at": None,
        "draft": False,
        "html_url": f"{GITEA_URL}/{repo}/pulls/{number}",
    }


def pull(
    repo: Slug,
    number: int,
    *,
    author: str,
    head: str = "changes",
    base: str = "main",
    merged: bool = False,
    state: str = "open",
    title: str = "Update the README with new information",
    body: str = "This is a pretty simple change that we need to pull into main.",
    at: datetime | None = None,
) -> Payload:
    """A ``structs.PullRequest`` from branch ``head`` of ``repo`` itself."""
    when = go_time(at)
    return {
        "id": _id(f"{repo}!{number}"),
        "url": f"{GITEA_URL}/{repo}/pulls/{number}",
        "number": number,
        "user": user(author),
        "title": title,
        "body": body,
        "labels": [],
        "milestone": None,
        "assignee": None,
        "assignees": None,
        "requested_reviewers": None,
        "requested_reviewers_teams": None,
        "state": state,
        "draft": False,
        "is_locked": False,
        "comments": 0,
        "review_comments": 0,
        "additions": 1,
        "deletions": 1,
        "changed_files": 1,
        "html_url": f"{GITEA_URL}/{repo}/pulls/{number}",
        "diff_url": f"{GITEA_URL}/{repo}/pulls/{number}.diff",
        "patch_url": f"{GITEA_URL}/{repo}/pulls/{number}.patch",
        "mergeable": True,
        "merged": merged,
        "merged_at": when if merged else None,
        "merge_commit_sha": "34c5c7793cb3b279e22454cb6750c80560547b3a" if merged else None,
        "merged_by": user(author) if merged else None,
        "allow_maintainer_edit": False,
        "base": _branch(repo, base, "f95f852bd8fca8fcc58a9a2d6c842781e32a215e"),
        "head": _branch(repo, head, "ec26c3e57ca3a959ca5aad62de7213c562f8c821"),
        "merge_base": "f95f852bd8fca8fcc58a9a2d6c842781e32a215e",
        "due_date": None,
        "created_at": "2024-01-02T03:04:05Z",
        "updated_at": when,
        "closed_at": when if state == "closed" else None,
        "pin_order": 0,
    }


def _branch(repo: Slug, ref: str, sha: str) -> Payload:
    """A ``structs.PRBranchInfo``."""
    return {
        "label": ref,
        "ref": ref,
        "sha": sha,
        "repo_id": _id(str(repo)),
        "repo": repository(repo),
    }


def comment(
    repo: Slug,
    number: int,
    *,
    author: str,
    body: str,
    comment_id: int,
    is_pull: bool = False,
    at: datetime | None = None,
) -> Payload:
    """A ``structs.Comment``."""
    kind = "pulls" if is_pull else "issues"
    return {
        "id": comment_id,
        "html_url": f"{GITEA_URL}/{repo}/{kind}/{number}#issuecomment-{comment_id}",
        "pull_request_url": f"{GITEA_URL}/{repo}/pulls/{number}" if is_pull else "",
        "issue_url": "" if is_pull else f"{GITEA_URL}/{repo}/issues/{number}",
        "user": user(author),
        "original_author": "",
        "original_author_id": 0,
        "body": body,
        "assets": [],
        "created_at": go_time(at),
        "updated_at": go_time(at),
    }


def issue_event(
    action: str,
    *,
    repo: Slug,
    number: int,
    sender: str,
    author: str | None = None,
    labels: Sequence[str] = (),
    assignees: Sequence[str] = (),
    title: str = "Spelling error in the README file",
    body: str = "It looks like you accidently spelled 'commit' with two 't's.",
    at: datetime | None = None,
) -> Event:
    """An ``IssuePayload``: ``issues`` (opened, closed, …), ``issue_label``
    (``label_updated``/``label_cleared``: ``labels`` are the issue's labels now) or
    ``issue_assign`` (``assigned``/``unassigned``: ``assignees`` are its assignees now)."""
    state = "closed" if action == "closed" else "open"
    payload = {
        "action": action,
        "number": number,
        "issue": issue(
            repo,
            number,
            author=author or sender,
            title=title,
            body=body,
            labels=labels,
            assignees=assignees,
            state=state,
            at=at,
        ),
        "repository": repository(repo),
        "sender": user(sender),
        "commit_id": "",
    }
    return _ISSUE_TYPES.get(action, "issues"), payload


def comment_event(
    *,
    repo: Slug,
    number: int,
    sender: str,
    body: str,
    comment_id: int = 1,
    is_pull: bool = False,
    action: str = "created",
    at: datetime | None = None,
) -> Event:
    """An ``IssueCommentPayload``: ``issue_comment``, or ``pull_request_comment`` (with
    ``is_pull`` and the pull request) for a comment on a pull request."""
    payload: Payload = {
        "action": action,
        "issue": issue(repo, number, author=sender, is_pull=is_pull, at=at),
        "comment": comment(
            repo, number, author=sender, body=body, comment_id=comment_id, is_pull=is_pull, at=at
        ),
        "repository": repository(repo),
        "sender": user(sender),
        "is_pull": is_pull,
    }
    if is_pull:
        payload["pull_request"] = pull(repo, number, author=sender, at=at)
    return ("pull_request_comment" if is_pull else "issue_comment"), payload


def pull_event(
    action: str,
    *,
    repo: Slug,
    number: int,
    sender: str,
    head: str = "changes",
    merged: bool = False,
    at: datetime | None = None,
) -> Event:
    """A ``PullRequestPayload`` of event ``pull_request`` (``closed``: merged or not —
    Gitea says both with ``closed``)."""
    state = "closed" if action == "closed" else "open"
    payload = {
        "action": action,
        "number": number,
        "pull_request": pull(
            repo, number, author=sender, head=head, merged=merged, state=state, at=at
        ),
        "requested_reviewer": None,
        "repository": repository(repo),
        "sender": user(sender),
        "commit_id": "",
        "review": None,
    }
    return "pull_request", payload


def review_event(
    kind: str,
    *,
    repo: Slug,
    number: int,
    sender: str,
    body: str = "Please change this.",
    head: str = "changes",
    author: str = "fleetwarden",
    at: datetime | None = None,
) -> Event:
    """A review ``PullRequestPayload``: ``kind`` ``approved``, ``rejected`` (changes
    requested) or ``comment``."""
    event_type = _REVIEW_TYPES[kind]
    payload = {
        "action": "reviewed",
        "number": number,
        "pull_request": pull(repo, number, author=author, head=head, at=at),
        "requested_reviewer": user(sender),
        "repository": repository(repo),
        "sender": user(sender),
        "commit_id": "",
        "review": {"type": event_type, "content": body},
    }
    return event_type, payload
