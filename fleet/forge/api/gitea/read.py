"""How Gitea's JSON answers become Fleetwarden's values: issues, comments, pull requests
and reviews, read defensively — a field missing or of the wrong type is
:class:`~fleet.forge.api.fields.Malformed`, which the client turns into a
:class:`~fleet.forge.model.ForgeApiError`.

Gitea's words are bridged here: a draft pull request is one whose title starts with
``WIP:`` or ``[WIP]`` (Gitea's default prefixes), ``REQUEST_CHANGES`` is GitHub's
``changes_requested``, and a review request (``REQUEST_REVIEW``) is no review.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, Final, Literal

from fleet.forge.api.fields import Malformed, field_int, field_obj, field_str
from fleet.forge.model import ForgeComment, ForgeIssue, ForgePull, ForgeReview, IssueChange
from fleet.ledger.records.forge import Slug

WIP_PREFIX: Final = "WIP: "
# Gitea's default [repository.pull-request] WORK_IN_PROGRESS_PREFIXES, matched uppercased.
_WIP_PREFIXES: Final = ("WIP:", "[WIP]")
_REVIEW_STATES: Final = {
    "APPROVED": "approved",
    "REQUEST_CHANGES": "changes_requested",
    "COMMENT": "commented",
    "PENDING": "pending",
}


def _time(data: Mapping[str, Any], key: str) -> datetime:
    try:
        when = datetime.fromisoformat(field_str(data, key))
    except ValueError:
        raise Malformed(key) from None
    return when if when.tzinfo is not None else when.replace(tzinfo=UTC)


def _login(data: Mapping[str, Any], key: str = "user") -> str:
    return field_str(field_obj(data, key), "login")


def _names(data: Mapping[str, Any], key: str, field: str) -> tuple[str, ...]:
    """The ``field`` of each object in the list ``key`` (users' logins, labels' names)."""
    items = data.get(key) or []  # Gitea writes null for an empty list
    if not isinstance(items, list) or not all(isinstance(item, Mapping) for item in items):
        raise Malformed(key)
    return tuple(field_str(item, field) for item in items)


def _state(data: Mapping[str, Any]) -> Literal["open", "closed"]:
    state = field_str(data, "state")
    if state == "open":
        return "open"
    if state == "closed":
        return "closed"
    raise Malformed("state")


def is_wip(title: str) -> bool:
    """Whether Gitea takes a pull request with ``title`` for a draft."""
    upper = title.upper()
    return any(upper.startswith(prefix) for prefix in _WIP_PREFIXES)


def without_wip(title: str) -> str:
    """``title`` with the prefixes Gitea reads a draft by taken off (however many)."""
    while True:
        upper = title.upper()
        prefix = next((p for p in _WIP_PREFIXES if upper.startswith(p)), None)
        if prefix is None:
            return title
        title = title[len(prefix) :].lstrip()


def issue_of(data: Any) -> ForgeIssue:
    """An issue (or a pull request seen as one) from Gitea's ``Issue``."""
    if not isinstance(data, Mapping):
        raise Malformed("issue")
    return ForgeIssue(
        number=field_int(data, "number"),
        title=field_str(data, "title"),
        body=field_str(data, "body", default=""),
        author=_login(data),
        labels=_names(data, "labels", "name"),
        assignees=_names(data, "assignees", "login"),
        state=_state(data),
        url=field_str(data, "html_url"),
        updated_at=_time(data, "updated_at"),
        is_pull=data.get("pull_request") is not None,
    )


def comment_of(data: Any) -> ForgeComment:
    """A comment from Gitea's ``Comment``."""
    if not isinstance(data, Mapping):
        raise Malformed("comment")
    return ForgeComment(
        id=field_int(data, "id"),
        author=_login(data),
        body=field_str(data, "body", default=""),
        created_at=_time(data, "created_at"),
        url=field_str(data, "html_url"),
    )


def pull_of(data: Any) -> ForgePull:
    """A pull request from Gitea's ``PullRequest``."""
    if not isinstance(data, Mapping):
        raise Malformed("pull request")
    title = field_str(data, "title")
    draft = data.get("draft")  # newer Gitea and Forgejo say it; older ones by the title
    head = field_obj(data, "head")
    return ForgePull(
        number=field_int(data, "number"),
        title=title,
        body=field_str(data, "body", default=""),
        author=_login(data),
        head=field_str(head, "ref"),
        base=field_str(field_obj(data, "base"), "ref"),
        head_sha=field_str(head, "sha"),
        state=_state(data),
        merged=data.get("merged") is True,
        draft=draft if isinstance(draft, bool) else is_wip(title),
        url=field_str(data, "html_url"),
        updated_at=_time(data, "updated_at"),
    )


def review_of(data: Any) -> ForgeReview | None:
    """A review from Gitea's ``PullReview``; None for a review request."""
    if not isinstance(data, Mapping):
        raise Malformed("review")
    state = field_str(data, "state")
    if state == "REQUEST_REVIEW":  # a request for a review, listed among them
        return None
    word = "dismissed" if data.get("dismissed") is True else _REVIEW_STATES.get(state)
    return ForgeReview(
        id=field_int(data, "id"),
        author=_login(data),
        state=word or state.lower(),
        body=field_str(data, "body", default=""),
        submitted_at=_time(data, "submitted_at"),
    )


def change_of(data: Any) -> IssueChange | None:
    """A label or assignee given or taken, from Gitea's ``TimelineComment``; None for any
    other entry of the timeline (a comment, a title changed, …), for a label since deleted
    and for a team's assignment.

    Gitea writes a label's change with ``body`` ``"1"`` when it was added and ``""`` when
    removed (``models/issues/issue_label.go``), an assignee's with ``removed_assignee``."""
    if not isinstance(data, Mapping):
        raise Malformed("timeline comment")
    kind = data.get("type")
    if kind == "label":
        label = data.get("label")
        if not isinstance(label, Mapping):
            return None
        added = field_str(data, "body", default="") == "1"
        name = field_str(label, "name")
        return IssueChange("labeled" if added else "unlabeled", name, _login(data), _when(data))
    if kind == "assignees":
        assignee = data.get("assignee")
        if not isinstance(assignee, Mapping):
            return None
        removed = data.get("removed_assignee") is True
        login = field_str(assignee, "login")
        return IssueChange(
            "unassigned" if removed else "assigned", login, _login(data), _when(data)
        )
    return None


def _when(data: Mapping[str, Any]) -> datetime:
    return _time(data, "created_at")


def head_repo_is(pull: Mapping[str, Any], repo: Slug) -> bool:
    """Whether pull request ``pull`` comes from a branch of ``repo`` itself (no fork)."""
    head = pull.get("head")
    base = pull.get("base")
    if not isinstance(head, Mapping) or not isinstance(base, Mapping):
        return False
    head_repo = head.get("repo")
    if isinstance(head_repo, Mapping) and isinstance(head_repo.get("full_name"), str):
        return str(head_repo["full_name"]).lower() == str(repo).lower()
    return head.get("repo_id") is not None and head.get("repo_id") == base.get("repo_id")
