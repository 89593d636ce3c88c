"""How GitLab's JSON answers become Fleetwarden's values: issues, notes, merge requests,
approvals and an issue's label and assignee changes, read defensively — a field missing or
of the wrong type is :class:`~fleet.forge.api.fields.Malformed`, which the client
turns into a :class:`~fleet.forge.model.ForgeApiError`.

GitLab's words are bridged here: an issue ``opened`` is open, a merge request ``merged``
is closed and merged; a description GitLab writes ``null`` is empty; a draft is what its
``draft`` field says, and its title's draft prefix (``Draft:``, ``[Draft]``, ``(Draft)``,
``Draft -``, the old ``WIP:``) is what lifting it takes off. Who assigned an issue is
read from GitLab's system notes, in the words GitLab writes them
(``SystemNotes::IssuablesService#change_issuable_assignees``: "assigned to @a, @b, and
@c and unassigned @d").
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, Final, Literal

from fleet.forge.api.fields import Malformed, as_object, field_int, field_obj, field_str
from fleet.forge.model import ForgeComment, ForgeIssue, ForgePull, ForgeReview, IssueChange

DRAFT_PREFIX: Final = "Draft: "
# GitLab's draft prefixes (MergeRequest::DRAFT_REGEX, and the WIP ones older GitLabs read).
_DRAFT: Final = re.compile(
    r"\A\s*(?:\[draft\]|\(draft\)|draft:|draft\s+-|\[wip\]|wip:)\s*", re.IGNORECASE
)
_ASSIGNED: Final = "assigned to "
_UNASSIGNED: Final = "unassigned "
_MENTION: Final = re.compile(r"@([A-Za-z0-9_][A-Za-z0-9_.-]*)")


def is_draft_title(title: str) -> bool:
    """Whether ``title`` starts with a draft prefix GitLab reads."""
    return _DRAFT.match(title) is not None


def without_draft(title: str) -> str:
    """``title`` with the draft prefixes GitLab reads taken off (however many)."""
    while (found := _DRAFT.match(title)) is not None:
        title = title[found.end() :]
    return title


def _time(data: Mapping[str, Any], key: str) -> datetime:
    try:
        when = datetime.fromisoformat(field_str(data, key).replace("Z", "+00:00"))
    except ValueError:
        raise Malformed(key) from None
    return when if when.tzinfo is not None else when.replace(tzinfo=UTC)


def _username(data: Mapping[str, Any], key: str) -> str:
    return field_str(field_obj(data, key), "username")


def _users(data: Mapping[str, Any], key: str) -> tuple[str, ...]:
    items = data.get(key) or []
    if not isinstance(items, list) or not all(isinstance(item, Mapping) for item in items):
        raise Malformed(key)
    return tuple(field_str(item, "username") for item in items)


def _labels(data: Mapping[str, Any]) -> tuple[str, ...]:
    items = data.get("labels") or []
    if not isinstance(items, list):
        raise Malformed("labels")
    names = []
    for item in items:  # names, or objects with ``with_labels_details``
        name = (
            item
            if isinstance(item, str)
            else field_str(item, "name")
            if isinstance(item, Mapping)
            else None
        )
        if name is None:
            raise Malformed("labels")
        names.append(name)
    return tuple(names)


def _open_or_closed(data: Mapping[str, Any]) -> Literal["open", "closed"]:
    state = field_str(data, "state")
    if state == "opened":
        return "open"
    if state in ("closed", "merged", "locked"):
        return "closed"
    raise Malformed("state")


def issue_of(data: Any) -> ForgeIssue:
    """An issue from GitLab's issue entity."""
    data = as_object(data, "issue")
    return ForgeIssue(
        number=field_int(data, "iid"),
        title=field_str(data, "title"),
        body=field_str(data, "description", default=""),
        author=_username(data, "author"),
        labels=_labels(data),
        assignees=_users(data, "assignees"),
        state=_open_or_closed(data),
        url=field_str(data, "web_url"),
        updated_at=_time(data, "updated_at"),
    )


def is_system(data: Any) -> bool:
    """Whether a note is one GitLab wrote itself (a label, an assignee, an approval)."""
    return isinstance(data, Mapping) and data.get("system") is True


def is_hidden(data: Any) -> bool:
    """Whether a note or an issue is one GitLab shows only to members (an internal note, a
    confidential issue): never read into a prompt, whence it could reach a public post."""
    return isinstance(data, Mapping) and (
        data.get("internal") is True or data.get("confidential") is True
    )


def comment_of(data: Any, page_url: str) -> ForgeComment:
    """A comment from GitLab's note entity; its address is the issue's or merge
    request's page (``page_url``) and the note's anchor."""
    data = as_object(data, "note")
    note_id = field_int(data, "id")
    return ForgeComment(
        id=note_id,
        author=_username(data, "author"),
        body=field_str(data, "body", default=""),
        created_at=_time(data, "created_at"),
        url=f"{page_url}#note_{note_id}" if page_url else "",
    )


def pull_of(data: Any) -> ForgePull:
    """A pull request from GitLab's merge request entity."""
    data = as_object(data, "merge request")
    draft = data.get("draft")
    title = field_str(data, "title")
    sha = data.get("sha")
    return ForgePull(
        number=field_int(data, "iid"),
        title=title,
        body=field_str(data, "description", default=""),
        author=_username(data, "author"),
        head=field_str(data, "source_branch"),
        base=field_str(data, "target_branch"),
        head_sha=sha if isinstance(sha, str) else "",
        state=_open_or_closed(data),
        merged=field_str(data, "state") == "merged",
        draft=draft if isinstance(draft, bool) else is_draft_title(title),
        url=field_str(data, "web_url"),
        updated_at=_time(data, "updated_at"),
    )


def same_project(data: Any, project_id: int | None) -> bool:
    """Whether merge request ``data`` comes from a branch of its target project (no
    fork); with no ``project_id`` known, whether its source and target are the same."""
    if not isinstance(data, Mapping):
        return False
    source = data.get("source_project_id")
    if project_id is not None:
        return source == project_id
    return source is not None and source == data.get("target_project_id")


def approvals_of(data: Any) -> list[ForgeReview]:
    """Each approval of a merge request, as an approved review (GitLab's approvals entity)."""
    data = as_object(data, "approvals")
    items = data.get("approved_by") or []
    if not isinstance(items, list):
        raise Malformed("approved_by")
    found = []
    for item in items:
        item = as_object(item, "approved_by")
        user = field_obj(item, "user")
        at = item.get("approved_at")
        found.append(
            ForgeReview(
                id=field_int(user, "id"),
                author=field_str(user, "username"),
                state="approved",
                body="",
                submitted_at=_time(item, "approved_at")
                if at is not None
                else datetime.min.replace(tzinfo=UTC),
            )
        )
    return found


def label_change_of(data: Any) -> IssueChange | None:
    """A label given or taken, from a resource label event; None for a label since
    deleted (GitLab then writes ``label: null``)."""
    data = as_object(data, "label event")
    label = data.get("label")
    if not isinstance(label, Mapping):
        return None
    action = field_str(data, "action")
    if action not in ("add", "remove"):
        raise Malformed("action")
    kind: Literal["labeled", "unlabeled"] = "labeled" if action == "add" else "unlabeled"
    user = data.get("user")
    actor = field_str(user, "username") if isinstance(user, Mapping) else ""
    return IssueChange(kind, field_str(label, "name"), actor, _time(data, "created_at"))


def assignee_changes_of(data: Any) -> list[IssueChange]:
    """The assignees given and taken that a system note records, by its author; none for
    any other note (and for GitLab's "removed assignee" forms, which name no one)."""
    data = as_object(data, "note")
    if data.get("system") is not True:
        return []
    body = field_str(data, "body", default="")
    if not body.startswith((_ASSIGNED, _UNASSIGNED)):
        return []
    if body.startswith(_UNASSIGNED):
        added, removed = "", body[len(_UNASSIGNED) :]
    else:
        added, found, rest = body.partition(" and unassigned @")
        removed = "@" + rest if found else ""
    added = added.removeprefix(_ASSIGNED).partition(" additionally to ")[0]
    actor = _username(data, "author")
    at = _time(data, "created_at")
    return [
        *(IssueChange("assigned", name, actor, at) for name in _MENTION.findall(added)),
        *(IssueChange("unassigned", name, actor, at) for name in _MENTION.findall(removed)),
    ]
