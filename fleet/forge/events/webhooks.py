"""A verified delivery's payload read into a :class:`~fleet.forge.model.ForgeEvent`
(:func:`from_http`: one call from a delivery's headers and body to its verified event).

Gitea's label and assignment events carry the issue as it now is, not the label or the
person added or removed: :func:`parse` reads them against the forge's trigger (its label
prefix and the bot's login). Label and assignment events of both forges are marked
``confirm``, for forge work to ask the forge's record of the issue (GitHub's issue events,
Gitea's timeline) which change the sender made before acting on one. GitLab's payloads are
read in :mod:`fleet.forge.events.gitlab_events`.

Everything in a payload is hostile text, even signed: a signature says which forge sent
it, not that the people who wrote it meant well.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any, Final

from fleet.forge.events.delivery import BadDelivery, DeliveryHeaders, HookKeys
from fleet.forge.events.gitlab_events import gitlab_event
from fleet.forge.events.payload import Payload, among, is_trigger
from fleet.forge.model import EventKind, ForgeEvent, ForgeKind
from fleet.forge.schema import ForgeEntry
from fleet.hostile_json import JsonRefused, read_object

# Gitea's ``X-Gitea-Event-Type`` values, by what they carry (modules/webhook/type.go).
_GITEA_ISSUE_TYPES: Final = {"issues", "issue_assign", "issue_label", "issue_milestone"}
_GITEA_COMMENT_TYPES: Final = {"issue_comment", "pull_request_comment"}
_GITEA_REVIEW_STATES: Final = {
    "pull_request_review_approved": "approved",
    "pull_request_review_rejected": "changes_requested",
    "pull_request_review_comment": "commented",
}


def from_http(
    forge: str,
    entry: ForgeEntry,
    keys: HookKeys | bytes,
    said: DeliveryHeaders,
    body: bytes,
    now: datetime | None = None,
) -> ForgeEvent:
    """The event of a delivery to ``forge`` whose headers ``said`` what they say, checked
    against its body and ``keys`` (its webhook secret; GitLab's signing token too, its
    signature dated at ``now``) first; :class:`BadDelivery` when refused."""
    said.check(keys, body, now)
    return payload_event(forge, said, body, entry=entry)


def parse(
    forge: str,
    kind: ForgeKind,
    headers: Mapping[str, str],
    body: bytes,
    *,
    entry: ForgeEntry | None = None,
) -> ForgeEvent:
    """The event a verified delivery carries (see :func:`payload_event`)."""
    return payload_event(forge, DeliveryHeaders.read(kind, headers), body, entry=entry)


def payload_event(
    forge: str, said: DeliveryHeaders, body: bytes, *, entry: ForgeEntry | None = None
) -> ForgeEvent:
    """The event a verified delivery carries; :class:`BadDelivery` (400) when the body is
    not the payload its event header says.

    ``entry`` is the forge's configuration: Gitea's label and assignment events are read
    against its trigger label prefix and bot login (see :func:`_gitea_issue`)."""
    name, delivery = said.event, said.delivery
    if not name or not delivery:
        raise BadDelivery(400, "no event or delivery header")
    try:
        data = read_object(body)
    except JsonRefused as exc:
        raise BadDelivery(400, f"{exc}") from None
    payload = Payload(data)
    base = {"forge": forge, "delivery": delivery, "name": name}
    if said.kind == "github":
        return _github(payload, base)
    if said.kind == "gitlab":
        return gitlab_event(payload, base, entry)
    return _gitea(payload, base, entry)


_GITHUB_ISSUE_ACTIONS: Final = {
    "opened": EventKind.OPENED,
    "closed": EventKind.CLOSED,
    "labeled": EventKind.LABELED,
    "unlabeled": EventKind.UNLABELED,
    "assigned": EventKind.ASSIGNED,
    "unassigned": EventKind.UNASSIGNED,
}


_CONFIRMED: Final = frozenset(
    {EventKind.LABELED, EventKind.UNLABELED, EventKind.ASSIGNED, EventKind.UNASSIGNED}
)


def _github(p: Payload, base: dict[str, Any]) -> ForgeEvent:
    name, action = base["name"], p.get("action")
    if name == "issues":
        kind = _GITHUB_ISSUE_ACTIONS.get(action) if isinstance(action, str) else None
        return ForgeEvent(
            **base,
            kind=kind or EventKind.OTHER,
            repo=p.slug(),
            number=p.number("issue.number"),
            is_pull=p.get("issue.pull_request") is not None,
            actor=p.actor(),
            at=p.time("issue.updated_at", "issue.created_at"),
            body=p.text("issue.body", "") if kind is EventKind.OPENED else "",
            label=p.optional_text("label.name"),
            assignee=p.optional_text("assignee.login"),
            # Who gave or took a label or an assignment is read from the issue's events,
            # on GitHub as on Gitea: the forge's record, never the delivery's word alone.
            confirm=kind in _CONFIRMED,
        )
    if name == "issue_comment":
        return ForgeEvent(
            **base,
            kind=EventKind.COMMENT if action == "created" else EventKind.OTHER,
            repo=p.slug(),
            number=p.number("issue.number"),
            is_pull=p.get("issue.pull_request") is not None,
            actor=p.actor(),
            at=p.time("comment.created_at"),
            body=p.text("comment.body", ""),
            comment_id=p.number("comment.id"),
        )
    if name == "pull_request":
        return _pull_event(p, base, action)
    if name == "pull_request_review":
        state = p.text("review.state", "").lower()
        return ForgeEvent(
            **base,
            kind=EventKind.REVIEW if action == "submitted" else EventKind.OTHER,
            repo=p.slug(),
            number=p.number("pull_request.number"),
            is_pull=True,
            actor=p.actor(),
            at=p.time("review.submitted_at", "pull_request.updated_at"),
            body=p.text("review.body", ""),
            review_state=state or None,
            head=p.optional_text("pull_request.head.ref"),
            comment_id=p.number("review.id"),
        )
    return _other(p, base)


def _pull_event(p: Payload, base: dict[str, Any], action: str) -> ForgeEvent:
    """A pull request's own event, the same on both forges: closed (merged or not), or
    something forge runs do not act on."""
    return ForgeEvent(
        **base,
        kind=EventKind.PULL_CLOSED if action == "closed" else EventKind.OTHER,
        repo=p.slug(),
        number=p.number("pull_request.number"),
        is_pull=True,
        actor=p.actor(),
        at=p.time("pull_request.closed_at", "pull_request.updated_at"),
        merged=p.get("pull_request.merged") is True,
        head=p.optional_text("pull_request.head.ref"),
    )


def _other(p: Payload, base: dict[str, Any]) -> ForgeEvent:
    number = p.get("issue.number") or p.get("pull_request.number") or p.get("number") or 0
    return ForgeEvent(
        **base,
        kind=EventKind.OTHER,
        repo=p.slug(),
        number=number if isinstance(number, int) and not isinstance(number, bool) else 0,
        is_pull=p.get("pull_request") is not None,
        actor=p.actor(),
        at=p.time("hook.updated_at", "repository.updated_at"),
    )


def _gitea(p: Payload, base: dict[str, Any], entry: ForgeEntry | None) -> ForgeEvent:
    name, action = base["name"], p.get("action")
    if name in _GITEA_ISSUE_TYPES:
        return _gitea_issue(p, base, entry)
    if name in _GITEA_COMMENT_TYPES:
        is_pull = p.get("is_pull") is True or p.get("issue.pull_request") is not None
        return ForgeEvent(
            **base,
            kind=EventKind.COMMENT if action == "created" else EventKind.OTHER,
            repo=p.slug(),
            number=p.number("issue.number"),
            is_pull=is_pull or name == "pull_request_comment",
            actor=p.actor(),
            at=p.time("comment.created_at"),
            body=p.text("comment.body", ""),
            comment_id=p.number("comment.id"),
        )
    if name in _GITEA_REVIEW_STATES:
        return ForgeEvent(
            **base,
            kind=EventKind.REVIEW if action == "reviewed" else EventKind.OTHER,
            repo=p.slug(),
            number=p.number("pull_request.number"),
            is_pull=True,
            actor=p.actor(),
            at=p.time("pull_request.updated_at"),
            body=p.text("review.content", ""),
            review_state=_GITEA_REVIEW_STATES[name],
            head=p.optional_text("pull_request.head.ref"),
        )
    if name.startswith("pull_request"):  # pull_request, pull_request_assign, …_sync, …
        return _pull_event(p, base, action)
    return _other(p, base)


def _gitea_issue(p: Payload, base: dict[str, Any], entry: ForgeEntry | None) -> ForgeEvent:
    """An issue event of Gitea's, whose label and assignment actions say only how the
    issue now is.

    ``label_updated``/``label_cleared``: LABELED with the first trigger label the issue
    carries, or UNLABELED with ``label`` None when it carries none (whatever was
    removed, no trigger label remains). ``assigned``: ASSIGNED to the bot when the bot
    is among the assignees, else to nobody known (None). ``unassigned``: UNASSIGNED from
    the bot when the bot is no longer among them, else from nobody known (None). Each of
    these is marked ``confirm``: what changed, and whether the sender changed it, is
    asked of the forge's record before anything is done (:mod:`fleet.forge.events.changes`)."""
    action = p.get("action")
    labels = p.labels("issue.labels")
    assignees = p.logins("issue.assignees")
    label: str | None = None
    assignee: str | None = None
    login = entry.login if entry is not None else None
    if action in ("label_updated", "label_cleared"):
        triggers = [x for x in labels if is_trigger(entry, x)]
        kind = EventKind.LABELED if triggers else EventKind.UNLABELED
        label = triggers[0] if triggers else None
    elif action == "assigned":
        kind = EventKind.ASSIGNED
        assignee = login if login is not None and among(login, assignees) else None
    elif action == "unassigned":
        kind = EventKind.UNASSIGNED
        assignee = login if login is not None and not among(login, assignees) else None
    elif action == "opened":
        kind = EventKind.OPENED
    elif action == "closed":
        kind = EventKind.CLOSED
    else:
        kind = EventKind.OTHER
    return ForgeEvent(
        **base,
        kind=kind,
        repo=p.slug(),
        number=p.number("issue.number"),
        is_pull=p.get("issue.pull_request") is not None,
        actor=p.actor(),
        at=p.time("issue.updated_at", "issue.created_at"),
        body=p.text("issue.body", "") if kind is EventKind.OPENED else "",
        label=label,
        assignee=assignee,
        confirm=action in _GITEA_READ_FROM_STATE,
    )


_GITEA_READ_FROM_STATE: Final = frozenset(
    {"label_updated", "label_cleared", "assigned", "unassigned"}
)
