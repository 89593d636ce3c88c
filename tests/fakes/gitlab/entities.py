"""The JSON the fake GitLab server answers with: GitLab's API entities (``UserBasic``,
``Note``, ``MergeRequest``, ``Member``, …) as GitLab writes them, from the fake's state,
and its error answers (``{"message": "404 Project Not Found"}``)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from tests.fakes.gitlab.state import Issue, LabelEvent, MergeRequest, Note, Project, Status, User


def when(moment: datetime | None) -> str | None:
    """GitLab's timestamps: ISO 8601 with milliseconds, in UTC (``…T08:00:00.000Z``)."""
    if moment is None:
        return None
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def message(text: str) -> dict[str, Any]:
    return {"message": text}


def user_basic(site: str, user: User) -> dict[str, Any]:
    return {
        "id": user.id,
        "username": user.username,
        "public_email": None,
        "name": user.name,
        "state": "active",
        "locked": False,
        "avatar_url": None,
        "web_url": f"{site}/{user.username}",
    }


def user_public(site: str, user: User) -> dict[str, Any]:
    return {
        **user_basic(site, user),
        "created_at": when(user.created),
        "bio": "",
        "bot": user.bot,
        "email": f"{user.username}@example.invalid",
        "commit_email": f"{user.username}@example.invalid",
        "two_factor_enabled": False,
        "external": False,
        "private_profile": False,
    }


def note(site: str, project: Project, made: Note, author: User) -> dict[str, Any]:
    return {
        "id": made.id,
        "type": None,
        "body": made.body,
        "author": user_basic(site, author),
        "created_at": when(made.created),
        "updated_at": when(made.updated),
        "system": made.system,
        "noteable_id": made.noteable_id,
        "noteable_type": made.noteable_type,
        "project_id": project.id,
        "resolvable": False,
        "confidential": made.internal,
        "internal": made.internal,
        "noteable_iid": made.noteable_iid,
        "commands_changes": {},
    }


def issue(site: str, project: Project, found: Issue, users: dict[str, User]) -> dict[str, Any]:
    assignees = [user_basic(site, users[a.lower()]) for a in found.assignees]
    return {
        "id": found.id,
        "iid": found.iid,
        "project_id": project.id,
        "title": found.title,
        "description": found.description or None,  # GitLab writes null for no description
        "state": found.state,
        "created_at": when(found.created),
        "updated_at": when(found.updated),
        "closed_at": when(found.closed_at),
        "labels": list(found.labels),
        "author": user_basic(site, users[found.author.lower()]),
        "assignees": assignees,
        "assignee": assignees[0] if assignees else None,
        "user_notes_count": sum(1 for n in found.notes if not n.system),
        "upvotes": 0,
        "downvotes": 0,
        "confidential": found.confidential,
        "discussion_locked": None,
        "issue_type": "issue",
        "type": "ISSUE",
        "web_url": f"{site}/{project.full_path}/-/issues/{found.iid}",
        "references": {
            "short": f"#{found.iid}",
            "relative": f"#{found.iid}",
            "full": f"{project.full_path}#{found.iid}",
        },
    }


def merge_request(
    site: str, project: Project, mr: MergeRequest, users: dict[str, User]
) -> dict[str, Any]:
    author = user_basic(site, users[mr.author.lower()])
    merged_by = user_basic(site, users[mr.merged_by.lower()]) if mr.merged_by else None
    return {
        "id": mr.id,
        "iid": mr.iid,
        "project_id": project.id,
        "title": mr.title,
        "description": mr.description or None,
        "state": mr.state,
        "created_at": when(mr.created),
        "updated_at": when(mr.updated),
        "merged_by": merged_by,
        "merge_user": merged_by,
        "merged_at": when(mr.merged_at),
        "closed_by": None,
        "closed_at": when(mr.closed_at),
        "target_branch": mr.target_branch,
        "source_branch": mr.source_branch,
        "user_notes_count": sum(1 for n in mr.notes if not n.system),
        "upvotes": 0,
        "downvotes": 0,
        "author": author,
        "assignees": [],
        "assignee": None,
        "reviewers": [user_basic(site, users[r.lower()]) for r in mr.reviewers],
        "source_project_id": project.id,
        "target_project_id": project.id,
        "labels": [],
        "draft": mr.draft,
        "work_in_progress": mr.draft,
        "milestone": None,
        "merge_when_pipeline_succeeds": False,
        "merge_status": "can_be_merged",
        "detailed_merge_status": "draft_status" if mr.draft else "mergeable",
        "sha": mr.sha,
        "merge_commit_sha": None,
        "squash_commit_sha": None,
        "discussion_locked": None,
        "should_remove_source_branch": None,
        "force_remove_source_branch": False,
        "reference": f"!{mr.iid}",
        "references": {
            "short": f"!{mr.iid}",
            "relative": f"!{mr.iid}",
            "full": f"{project.full_path}!{mr.iid}",
        },
        "web_url": f"{site}/{project.full_path}/-/merge_requests/{mr.iid}",
        "squash": False,
        "squash_on_merge": False,
        "has_conflicts": False,
        "blocking_discussions_resolved": True,
    }


def approvals(site: str, mr: MergeRequest, users: dict[str, User], doer: str) -> dict[str, Any]:
    mine = any(u.lower() == doer.lower() for u, _ in mr.approvals)
    return {
        "user_has_approved": mine,
        "user_can_approve": not mine and mr.author.lower() != doer.lower(),
        "approved": bool(mr.approvals),
        "approved_by": [
            {"user": user_basic(site, users[u.lower()]), "approved_at": when(at)}
            for u, at in mr.approvals
        ],
    }


def label_event(site: str, event: LabelEvent, users: dict[str, User]) -> dict[str, Any]:
    return {
        "id": event.id,
        "user": user_basic(site, users[event.user.lower()]),
        "created_at": when(event.created),
        "resource_type": "Issue",
        "resource_id": event.resource_id,
        "label": {
            "id": event.label_id,
            "name": event.label,
            "color": "#0033CC",
            "description": None,
            "description_html": "",
            "text_color": "#FFFFFF",
        },
        "action": event.action,
    }


def member(site: str, user: User, level: int) -> dict[str, Any]:
    return {
        **user_basic(site, user),
        "access_level": level,
        "created_at": when(user.created),
        "expires_at": None,
        "membership_state": "active",
    }


def project(site: str, found: Project) -> dict[str, Any]:
    return {
        "id": found.id,
        "description": None,
        "name": found.path,
        "name_with_namespace": found.full_path.replace("/", " / "),
        "path": found.path,
        "path_with_namespace": found.full_path,
        "created_at": when(found.created),
        "default_branch": found.default_branch,
        "web_url": f"{site}/{found.full_path}",
        "visibility": found.visibility,
    }


def status(site: str, made: Status, author: User) -> dict[str, Any]:
    return {
        "id": made.id,
        "sha": made.sha,
        "ref": None,
        "status": made.state,
        "name": made.name,
        "target_url": None,
        "description": made.description,
        "created_at": when(made.created),
        "started_at": None,
        "finished_at": None,
        "allow_failure": False,
        "coverage": None,
        "author": user_basic(site, author),
    }
