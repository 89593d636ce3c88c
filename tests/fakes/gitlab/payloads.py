"""GitLab webhook payloads shaped as GitLab documents its events, for the tests (posted by
:func:`tests.fakes.gitlab.hooks.gitlab_delivery`).

The shapes are gitlabhq ``doc/user/project/integrations/webhook_events.md`` (GitLab 18):
``object_kind`` and ``event_type``, the acting ``user``, the ``project`` (and the
deprecated ``repository``), ``object_attributes``, an issue's ``labels``, ``assignees`` and
``changes`` (each changed association as ``{"previous": …, "current": …}``), a note's
``issue`` or ``merge_request``. Times are written as GitLab writes them: an issue's and a
merge request's ISO 8601 (``2013-12-03T17:15:43Z``), a note's and a change's Ruby-style
(``2015-05-17 18:08:09 UTC``). Numbers are ``iid``: an issue and a merge request have their
own series, and their global ``id`` is another number altogether.

Every builder returns ``(event name, payload)``: the event name is the ``X-Gitlab-Event``
GitLab sends it with.
"""

from __future__ import annotations

import zlib
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from fleet.ledger.records.forge import Slug

Payload = dict[str, Any]
Event = tuple[str, Payload]

GITLAB_URL = "https://gitlab.example.com"
_AVATAR = "https://www.gravatar.com/avatar/{}?s=80&d=identicon"


def ruby_time(at: datetime | None) -> str:
    """A time as GitLab's hooks write a note's: ``2015-05-17 18:08:09 UTC``."""
    return (at or datetime.now(UTC)).astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def iso_time(at: datetime | None) -> str:
    """A time as GitLab's hooks write an issue's: ``2013-12-03T17:15:43Z``."""
    return (at or datetime.now(UTC)).astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _id(text: str, top: int = 1_000_000) -> int:
    return zlib.crc32(text.encode()) % top + 1


def gitlab_user(login: str) -> Payload:
    """A user as hooks show one (``hook_attrs``)."""
    return {
        "id": _id(login, 100_000),
        "name": login.capitalize(),
        "username": login,
        "avatar_url": _AVATAR.format(f"{zlib.crc32(login.encode()):08x}"),
        "email": "[REDACTED]",
    }


def gitlab_project(repo: Slug) -> Payload:
    """A project as hooks show one."""
    web = f"{GITLAB_URL}/{repo}"
    return {
        "id": _id(str(repo)),
        "name": repo.name,
        "description": "",
        "web_url": web,
        "avatar_url": None,
        "git_ssh_url": f"git@gitlab.example.com:{repo}.git",
        "git_http_url": f"{web}.git",
        "namespace": repo.owner.rsplit("/", 1)[-1],
        "visibility_level": 20,
        "path_with_namespace": str(repo),
        "default_branch": "main",
        "ci_config_path": None,
        "homepage": web,
        "url": f"git@gitlab.example.com:{repo}.git",
        "ssh_url": f"git@gitlab.example.com:{repo}.git",
        "http_url": f"{web}.git",
    }


def gitlab_repository(repo: Slug) -> Payload:
    """The deprecated ``repository`` hooks still carry."""
    return {
        "name": repo.name,
        "url": f"{GITLAB_URL}/{repo}.git",
        "description": "",
        "homepage": f"{GITLAB_URL}/{repo}",
    }


def gitlab_label(title: str, repo: Slug) -> Payload:
    """A project label as hooks show one."""
    return {
        "id": _id(title, 100_000),
        "title": title,
        "color": "#6699cc",
        "project_id": _id(str(repo)),
        "created_at": "2026-01-02T03:04:05Z",
        "updated_at": "2026-01-02T03:04:05Z",
        "template": False,
        "description": None,
        "type": "ProjectLabel",
        "group_id": None,
    }


def _base(kind: str, repo: Slug, sender: str, *, confidential: bool = False) -> Payload:
    return {
        "object_kind": kind,
        "event_type": f"confidential_{kind}" if confidential else kind,
        "user": gitlab_user(sender),
        "project": gitlab_project(repo),
        "repository": gitlab_repository(repo),
    }


def _issue_object(
    repo: Slug,
    number: int,
    author: str,
    *,
    title: str,
    body: str,
    labels: Sequence[str],
    assignees: Sequence[str],
    state: str,
    at: datetime | None,
    confidential: bool = False,
) -> Payload:
    return {
        "id": _id(f"{repo}#issue{number}"),
        "iid": number,
        "title": title,
        "description": body,
        "assignee_ids": [gitlab_user(login)["id"] for login in assignees],
        "assignee_id": gitlab_user(assignees[0])["id"] if assignees else None,
        "author_id": gitlab_user(author)["id"],
        "project_id": _id(str(repo)),
        "created_at": iso_time(at),
        "updated_at": iso_time(at),
        "updated_by_id": None,
        "confidential": confidential,
        "discussion_locked": None,
        "due_date": None,
        "milestone_id": None,
        "state_id": 1 if state == "opened" else 2,
        "state": state,
        "type": "Issue",
        "url": f"{GITLAB_URL}/{repo}/-/issues/{number}",
        "labels": [gitlab_label(name, repo) for name in labels],
    }


_ISSUE_STATES = {"open": "opened", "close": "closed", "reopen": "opened", "update": "opened"}


def gitlab_issue(
    action: str,
    *,
    repo: Slug,
    number: int,
    sender: str,
    author: str | None = None,
    labels: Sequence[str] = (),
    previous_labels: Sequence[str] | None = None,
    assignees: Sequence[str] = (),
    previous_assignees: Sequence[str] | None = None,
    title: str = "Fix the parser",
    body: str = "The parser drops the last line of every file.",
    at: datetime | None = None,
    confidential: bool = False,
) -> Event:
    """An Issue Hook of ``action`` (``open``, ``close``, ``reopen``, ``update``) by
    ``sender`` on issue ``number`` as it now is (``labels``, ``assignees``); with
    ``previous_labels`` / ``previous_assignees``, ``changes`` says they were those."""
    name = "Confidential Issue Hook" if confidential else "Issue Hook"
    payload = _base("issue", repo, sender, confidential=confidential)
    attributes = _issue_object(
        repo,
        number,
        author or sender,
        title=title,
        body=body,
        labels=labels,
        assignees=assignees,
        state=_ISSUE_STATES.get(action, "opened"),
        at=at,
        confidential=confidential,
    )
    attributes["updated_by_id"] = gitlab_user(sender)["id"]
    attributes["action"] = action
    payload["object_attributes"] = attributes
    payload["labels"] = [gitlab_label(label, repo) for label in labels]
    payload["assignees"] = [gitlab_user(login) for login in assignees]
    if assignees:
        payload["assignee"] = gitlab_user(assignees[0])
    now = at or datetime.now(UTC)
    changes: Payload = {
        "updated_at": {"previous": ruby_time(now - timedelta(minutes=1)), "current": ruby_time(now)}
    }
    if previous_labels is not None:
        changes["labels"] = {
            "previous": [gitlab_label(label, repo) for label in previous_labels],
            "current": payload["labels"],
        }
    if previous_assignees is not None:
        changes["assignees"] = {
            "previous": [gitlab_user(login) for login in previous_assignees],
            "current": payload["assignees"],
        }
    payload["changes"] = changes
    return name, payload


def _merge_request_object(
    repo: Slug,
    number: int,
    author: str,
    *,
    source_branch: str,
    title: str,
    body: str,
    state: str,
    at: datetime | None,
    draft: bool = False,
) -> Payload:
    project = gitlab_project(repo)
    return {
        "id": _id(f"{repo}!{number}"),
        "iid": number,
        "target_branch": "main",
        "source_branch": source_branch,
        "source_project_id": project["id"],
        "target_project_id": project["id"],
        "author_id": gitlab_user(author)["id"],
        "assignee_ids": [],
        "assignee_id": None,
        "reviewer_ids": [],
        "title": f"Draft: {title}" if draft else title,
        "description": body,
        "created_at": iso_time(at),
        "updated_at": iso_time(at),
        "milestone_id": None,
        "state_id": {"opened": 1, "closed": 2, "merged": 3}[state],
        "state": state,
        "merge_status": "can_be_merged",
        "detailed_merge_status": "mergeable",
        "work_in_progress": draft,
        "draft": draft,
        "url": f"{GITLAB_URL}/{repo}/-/merge_requests/{number}",
        "source": project,
        "target": project,
        "last_commit": {
            "id": "0123456789abcdef0123456789abcdef01234567",
            "message": "Fix the parser\n",
            "title": "Fix the parser",
            "timestamp": "2026-03-01T09:00:00+00:00",
            "url": f"{GITLAB_URL}/{repo}/-/commit/0123456789abcdef0123456789abcdef01234567",
            "author": {"name": author, "email": "[REDACTED]"},
        },
        "labels": [],
    }


_MR_STATES = {"merge": "merged", "close": "closed"}


def gitlab_merge_request(
    action: str,
    *,
    repo: Slug,
    number: int,
    sender: str,
    author: str | None = None,
    source_branch: str = "changes",
    title: str = "Fix the parser",
    body: str = "Closes #3",
    draft: bool = False,
    at: datetime | None = None,
) -> Event:
    """A Merge Request Hook of ``action`` (``open``, ``update``, ``approved``, ``merge``,
    ``close``, …) by ``sender`` on merge request ``number``."""
    payload = _base("merge_request", repo, sender)
    attributes = _merge_request_object(
        repo,
        number,
        author or sender,
        source_branch=source_branch,
        title=title,
        body=body,
        state=_MR_STATES.get(action, "opened"),
        at=at,
        draft=draft,
    )
    attributes["action"] = action
    payload["object_attributes"] = attributes
    payload["labels"] = []
    payload["changes"] = {"updated_at": {"previous": ruby_time(at), "current": ruby_time(at)}}
    payload["assignees"] = []
    payload["reviewers"] = []
    return "Merge Request Hook", payload


def gitlab_note(
    *,
    repo: Slug,
    number: int,
    sender: str,
    body: str,
    on: str = "Issue",
    note_id: int = 1241,
    system: bool = False,
    action: str | None = "create",
    source_branch: str = "changes",
    internal: bool = False,
    at: datetime | None = None,
    issue_confidential: bool = False,
) -> Event:
    """A Note Hook: ``sender`` wrote ``body`` on ``on`` (``Issue``, ``MergeRequest``,
    ``Commit``, ``Snippet``) ``number`` (``action`` None: as GitLab before 16.11 sent it;
    ``internal``: an internal note, which GitLab sends as a Confidential Note Hook;
    ``issue_confidential``: a note on a confidential issue, sent the same way)."""
    hidden = internal or issue_confidential
    name = "Confidential Note Hook" if hidden else "Note Hook"
    payload = _base("note", repo, sender, confidential=hidden)
    payload["project_id"] = payload["project"]["id"]
    path = {"Issue": "issues", "MergeRequest": "merge_requests", "Snippet": "snippets"}
    attributes: Payload = {
        "id": note_id,
        "note": body,
        "noteable_type": on,
        "author_id": gitlab_user(sender)["id"],
        "created_at": ruby_time(at),
        "updated_at": ruby_time(at),
        "project_id": payload["project"]["id"],
        "attachment": None,
        "line_code": None,
        "commit_id": "",
        "noteable_id": _id(f"{repo}{on}{number}"),
        "system": system,
        "st_diff": None,
        "internal": internal,
        "url": f"{GITLAB_URL}/{repo}/-/{path.get(on, 'commit')}/{number}#note_{note_id}",
    }
    if action is not None:
        attributes["action"] = action
    payload["object_attributes"] = attributes
    if on == "Issue":
        payload["issue"] = _issue_object(
            repo,
            number,
            sender,
            title="Fix the parser",
            body="",
            labels=(),
            assignees=(),
            state="opened",
            at=at,
            confidential=issue_confidential,
        )
    elif on == "MergeRequest":
        payload["merge_request"] = _merge_request_object(
            repo,
            number,
            sender,
            source_branch=source_branch,
            title="Fix the parser",
            body="",
            state="opened",
            at=at,
        )
    elif on == "Commit":
        attributes["commit_id"] = "cfe32cf61b73a0d5e9f13e774abde7ff789b1660"
        payload["commit"] = {"id": attributes["commit_id"], "message": "Add a file\n"}
    return name, payload


def gitlab_push(*, repo: Slug, sender: str, ref: str = "refs/heads/main") -> Event:
    """A Push Hook of one commit to ``ref``."""
    user = gitlab_user(sender)
    payload: Payload = {
        "object_kind": "push",
        "event_name": "push",
        "before": "95790bf891e76fee5e1747ab589903a6a1f80f22",
        "after": "da1560886d4f094c3e6c9ef40349f7d38b5d27d7",
        "ref": ref,
        "ref_protected": True,
        "checkout_sha": "da1560886d4f094c3e6c9ef40349f7d38b5d27d7",
        "user_id": user["id"],
        "user_name": user["name"],
        "user_username": sender,
        "user_email": "[REDACTED]",
        "user_avatar": user["avatar_url"],
        "project_id": _id(str(repo)),
        "project": gitlab_project(repo),
        "repository": gitlab_repository(repo),
        "commits": [],
        "total_commits_count": 0,
    }
    return "Push Hook", payload
