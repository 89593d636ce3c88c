"""How GitHub's JSON answers become Fleetwarden's values: issues, comments, pull requests,
an issue's label and assignee changes, and reviews. Each is read through :class:`Shape`,
defensively: a field missing or of the wrong kind is a
:class:`~fleet.forge.model.ForgeApiError` naming the call that gave it, never a KeyError.
GitHub's words are bridged here: a deleted account is ``ghost``, a pull request with a
``merged_at`` is merged, and a review its author has not sent yet is no review.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, Final, Literal

from fleet.forge.model import (
    ChangeKind,
    ForgeApiError,
    ForgeComment,
    ForgeIssue,
    ForgePull,
    ForgeReview,
    IssueChange,
)

_CHANGES: Final[Mapping[str, ChangeKind]] = {
    "labeled": "labeled",
    "unlabeled": "unlabeled",
    "assigned": "assigned",
    "unassigned": "unassigned",
}


class Shape:
    """Reads one JSON object of an answer, saying which call gave it when a field is
    missing or of the wrong kind."""

    def __init__(self, data: Any, what: str) -> None:
        if not isinstance(data, dict):
            raise ForgeApiError(f"GitHub answered {what} with no JSON object")
        self.data: dict[str, Any] = data
        self.what = what

    def _bad(self, key: str) -> ForgeApiError:
        return ForgeApiError(f"GitHub answered {self.what} without a usable {key!r}")

    def number(self, key: str) -> int:
        value = self.data.get(key)
        if not isinstance(value, int) or isinstance(value, bool):
            raise self._bad(key)
        return value

    def string(self, key: str) -> str:
        value = self.data.get(key)
        if not isinstance(value, str):
            raise self._bad(key)
        return value

    def text(self, key: str) -> str:
        """A string that GitHub may leave null (a body): empty then."""
        value = self.data.get(key)
        if value is None:
            return ""
        if not isinstance(value, str):
            raise self._bad(key)
        return value

    def flag(self, key: str) -> bool:
        return self.data.get(key) is True

    def time(self, key: str) -> datetime:
        try:
            when = datetime.fromisoformat(self.string(key))
        except ValueError:
            raise self._bad(key) from None
        return when if when.tzinfo else when.replace(tzinfo=UTC)

    def sub(self, key: str) -> Shape:
        return Shape(self.data.get(key), f"{self.what} ({key})")

    def login(self, key: str = "user") -> str:
        value = self.data.get(key)
        if value is None:
            return "ghost"  # GitHub's name for a deleted account
        return Shape(value, self.what).string("login")

    def logins(self, key: str) -> tuple[str, ...]:
        items = self.data.get(key) or []
        if not isinstance(items, list):
            raise self._bad(key)
        return tuple(Shape(item, self.what).string("login") for item in items)

    def state(self) -> Literal["open", "closed"]:
        value = self.string("state")
        if value == "open":
            return "open"
        if value == "closed":
            return "closed"
        raise self._bad("state")


def issue_of(data: Any, what: str) -> ForgeIssue:
    shape = Shape(data, what)
    labels = shape.data.get("labels") or []
    if not isinstance(labels, list):
        raise ForgeApiError(f"GitHub answered {what} without a usable 'labels'")
    names = tuple(
        label if isinstance(label, str) else Shape(label, what).string("name") for label in labels
    )
    return ForgeIssue(
        number=shape.number("number"),
        title=shape.string("title"),
        body=shape.text("body"),
        author=shape.login(),
        labels=names,
        assignees=shape.logins("assignees"),
        state=shape.state(),
        url=shape.string("html_url"),
        updated_at=shape.time("updated_at"),
        is_pull=shape.data.get("pull_request") is not None,
    )


def comment_of(data: Any, what: str) -> ForgeComment:
    shape = Shape(data, what)
    return ForgeComment(
        id=shape.number("id"),
        author=shape.login(),
        body=shape.text("body"),
        created_at=shape.time("created_at"),
        url=shape.string("html_url"),
    )


def pull_of(data: Any, what: str) -> ForgePull:
    shape = Shape(data, what)
    head = shape.sub("head")
    return ForgePull(
        number=shape.number("number"),
        title=shape.string("title"),
        body=shape.text("body"),
        author=shape.login(),
        head=head.string("ref"),
        base=shape.sub("base").string("ref"),
        head_sha=head.string("sha"),
        state=shape.state(),
        merged=shape.flag("merged") or shape.data.get("merged_at") is not None,
        draft=shape.flag("draft"),
        url=shape.string("html_url"),
        updated_at=shape.time("updated_at"),
        node_id=shape.text("node_id"),
    )


def change_of(data: Any, what: str) -> IssueChange | None:
    """A label or assignee given or taken; None for any other event of an issue."""
    shape = Shape(data, what)
    kind = _CHANGES.get(str(shape.data.get("event")))
    if kind is None:
        return None
    labels = kind in ("labeled", "unlabeled")
    name = shape.sub("label").string("name") if labels else shape.login("assignee")
    return IssueChange(kind, name, shape.login("actor"), shape.time("created_at"))


def review_of(data: Any, what: str) -> ForgeReview | None:
    """A submitted review; None for one still pending (its author has not sent it)."""
    shape = Shape(data, what)
    if shape.data.get("submitted_at") is None or shape.string("state") == "PENDING":
        return None
    return ForgeReview(
        id=shape.number("id"),
        author=shape.login(),
        state=shape.string("state").lower(),
        body=shape.text("body"),
        submitted_at=shape.time("submitted_at"),
    )
