"""A GitLab delivery's payload read into a :class:`~fleet.forge.model.ForgeEvent`
(:func:`gitlab_event`), as GitLab's webhook events are documented
(``doc/user/project/integrations/webhook_events.md`` in gitlabhq).

Every payload names its kind (``object_kind``), who acted (``user.username``), the project
(``project.path_with_namespace``: ``group/sub/name``) and the object
(``object_attributes``). An issue and a merge request are numbered by their ``iid``, each
in its own series (issue 3 and merge request !3 may both be), never by their global
``id``. What the forge runs read:

    Issue Hook, ``open`` ......... LABELED with a trigger label it carries, else ASSIGNED
                                   to the bot, else OPENED (its description)
    Issue Hook, ``update`` ....... LABELED / UNLABELED with the trigger label that
                                   ``changes.labels`` added / took, else ASSIGNED /
                                   UNASSIGNED when ``changes.assignees`` gave / took the bot
    Issue Hook, ``close`` ........ CLOSED
    Note Hook on an Issue ........ COMMENT on the issue's iid
    Note Hook on a MergeRequest .. COMMENT on the merge request's iid (``is_pull``)
    Merge Request Hook ........... PULL_CLOSED on ``merge`` (merged) and ``close``
    anything else ................ OTHER: a reopen, an edited note, a system note, a note
                                   on a commit or a snippet, an approval (no words),
                                   pushes, pipelines, system hooks, a confidential issue's
                                   or an internal note (which Fleetwarden's public answers
                                   must not spread)

Whether an issue or a note is confidential is read from the payload, which the hook's token
or signature vouches for (``object_attributes.confidential``; a note's ``internal`` flag,
its ``event_type`` and its issue's ``confidential``), never from the ``X-Gitlab-Event``
header, which no signature covers: a ``Confidential Issue Hook`` renamed ``Issue Hook`` on
the way is still confidential, and a payload that does not say ``false`` is taken as
confidential.

An issue's label and assignment events are marked ``confirm``: the delivery says what
changed, but whether its sender changed it is asked of GitLab's own record (its resource
label events and system notes, :meth:`~fleet.forge.model.ForgeApi.issue_changes`) first.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from typing import Any, Final

from fleet.forge.events.delivery import BadDelivery
from fleet.forge.events.payload import EPOCH, Payload, among, is_trigger
from fleet.forge.model import EventKind, ForgeEvent
from fleet.forge.schema import ForgeEntry
from fleet.ledger.records.forge import Slug

_ISSUE: Final = "Issue Hook"
_CONFIDENTIAL_ISSUE: Final = "Confidential Issue Hook"
_STOPS: Final = frozenset({EventKind.CLOSED, EventKind.UNLABELED, EventKind.UNASSIGNED})
"""What a confidential issue's event may do: stop its run, never start or feed one."""
_NOTE: Final = "Note Hook"
_CONFIDENTIAL_NOTE: Final = "Confidential Note Hook"
_MERGE_REQUEST: Final = "Merge Request Hook"
_KINDS: Final = {
    _ISSUE: ("issue", "work_item"),
    _CONFIDENTIAL_ISSUE: ("issue", "work_item"),
    _NOTE: ("note",),
    _CONFIDENTIAL_NOTE: ("note",),
    _MERGE_REQUEST: ("merge_request",),
}
_NOTE_CREATED: Final = (None, "create")  # GitLab before 16.11 sent no action: a new note


def gitlab_event(p: Payload, base: dict[str, Any], entry: ForgeEntry | None) -> ForgeEvent:
    """The event of a GitLab delivery named ``base["name"]`` (its ``X-Gitlab-Event``);
    :class:`BadDelivery` (400) when the payload is not the one its event says.

    ``entry`` is the forge's configuration: an issue's labels are read against its trigger
    label prefix, its assignees against the bot's login."""
    name = base["name"]
    wanted = _KINDS.get(name)
    if wanted is not None and p.get("object_kind") not in wanted:
        raise BadDelivery(400, f"the payload is not what {name} carries")
    if name in (_ISSUE, _CONFIDENTIAL_ISSUE) and p.get("object_kind") == "issue":
        said = _issue(p, base, entry)
        if not _confidential_issue(p):
            return said
        # Made confidential mid-run, an issue's close, unlabel or unassign still stops its
        # run; nothing of it starts one or reaches an agent, and nothing more of it is read.
        if said.kind in _STOPS:
            return said
        return replace(
            said, kind=EventKind.OTHER, body="", label=None, assignee=None, confirm=False
        )
    if name in (_NOTE, _CONFIDENTIAL_NOTE):
        return _note(p, base)
    if name == _MERGE_REQUEST:
        return _merge_request(p, base)
    return _other(p, base)


def project(p: Payload) -> Slug:
    """The project the payload is about, ``group/sub/name`` (400 without one)."""
    try:
        return Slug.parse(p.text("project.path_with_namespace"))
    except ValueError:
        raise BadDelivery(400, "the payload's project.path_with_namespace is no path") from None


def _actor(p: Payload) -> str:
    return p.optional_text("user.username") or p.optional_text("user_username") or ""


def _issue(p: Payload, base: dict[str, Any], entry: ForgeEntry | None) -> ForgeEvent:
    action = p.get("object_attributes.action")
    kind, label, assignee = EventKind.OTHER, None, None
    if action == "open":
        kind, label, assignee = _given_at_open(p, entry)
    elif action == "update":
        kind, label, assignee = _changed(p, entry)
    elif action == "close":
        kind = EventKind.CLOSED
    return ForgeEvent(
        **base,
        kind=kind,
        repo=project(p),
        number=p.number("object_attributes.iid"),
        is_pull=False,
        actor=_actor(p),
        at=p.time("object_attributes.updated_at", "object_attributes.created_at"),
        body=p.text("object_attributes.description", "") if kind is EventKind.OPENED else "",
        label=label,
        assignee=assignee,
        confirm=kind in _CONFIRMED,
    )


_CONFIRMED: Final = frozenset(
    {EventKind.LABELED, EventKind.UNLABELED, EventKind.ASSIGNED, EventKind.UNASSIGNED}
)
_Read = tuple[EventKind, str | None, str | None]


def _given_at_open(p: Payload, entry: ForgeEntry | None) -> _Read:
    """An issue opened: GitLab sends one delivery, with the labels and assignees it was
    opened with (no ``changes`` of them), where GitHub sends one per label too."""
    for label in _titles(p.get("labels")):
        if is_trigger(entry, label):
            return EventKind.LABELED, label, None
    login = entry.login if entry is not None and entry.trigger.assign else None
    if login is not None and among(login, _usernames(p.get("assignees"))):
        return EventKind.ASSIGNED, None, login
    return EventKind.OPENED, None, None


def _changed(p: Payload, entry: ForgeEntry | None) -> _Read:
    """An issue updated: the trigger label ``changes.labels`` added (else took), or the bot
    given (else taken) in ``changes.assignees``; OTHER when neither moved."""
    before, after = (
        _titles(p.get("changes.labels.previous")),
        _titles(p.get("changes.labels.current")),
    )
    for label in after:
        if label not in before and is_trigger(entry, label):
            return EventKind.LABELED, label, None
    for label in before:
        if label not in after and is_trigger(entry, label):
            return EventKind.UNLABELED, label, None
    if entry is None:
        return EventKind.OTHER, None, None
    had = among(entry.login, _usernames(p.get("changes.assignees.previous")))
    has = among(entry.login, _usernames(p.get("changes.assignees.current")))
    if has and not had:
        return EventKind.ASSIGNED, None, entry.login
    if had and not has:
        return EventKind.UNASSIGNED, None, entry.login
    return EventKind.OTHER, None, None


def _note(p: Payload, base: dict[str, Any]) -> ForgeEvent:
    noteable = p.get("object_attributes.noteable_type")
    is_pull = noteable == "MergeRequest"
    number = 0
    if noteable == "Issue":
        number = p.number("issue.iid")
    elif is_pull:
        number = p.number("merge_request.iid")
    new = p.get("object_attributes.action") in _NOTE_CREATED
    system = p.get("object_attributes.system") is True
    confidential = _confidential_note(p, on_issue=noteable == "Issue")
    comment = number > 0 and new and not system and not confidential
    return ForgeEvent(
        **base,
        kind=EventKind.COMMENT if comment else EventKind.OTHER,
        repo=project(p),
        number=number,
        is_pull=is_pull,
        actor=_actor(p),
        at=p.time("object_attributes.created_at", "object_attributes.updated_at"),
        body=p.text("object_attributes.note", "") if comment else "",
        head=p.optional_text("merge_request.source_branch") if is_pull else None,
        comment_id=p.number("object_attributes.id"),
    )


def _confidential_issue(p: Payload) -> bool:
    """Whether the issue is confidential, as the payload says: anything but ``false``
    (the field missing, or not a boolean) is taken as confidential."""
    return p.get("object_attributes.confidential") is not False


def _confidential_note(p: Payload, *, on_issue: bool) -> bool:
    """Whether the note is for fewer eyes than a public answer reaches: an internal note,
    or any note on a confidential issue (the issue's ``confidential`` not ``false``)."""
    internal = p.get("object_attributes.internal") is True
    internal = internal or p.get("object_attributes.confidential") is True
    if internal or p.get("event_type") == "confidential_note":
        return True
    return on_issue and p.get("issue.confidential") is not False


def _merge_request(p: Payload, base: dict[str, Any]) -> ForgeEvent:
    action = p.get("object_attributes.action")
    closed = action in ("merge", "close")
    return ForgeEvent(
        **base,
        kind=EventKind.PULL_CLOSED if closed else EventKind.OTHER,
        repo=project(p),
        number=p.number("object_attributes.iid"),
        is_pull=True,
        actor=_actor(p),
        at=p.time("object_attributes.updated_at", "object_attributes.created_at"),
        merged=action == "merge",
        head=p.optional_text("object_attributes.source_branch"),
    )


def _other(p: Payload, base: dict[str, Any]) -> ForgeEvent:
    """An event the forge runs do not act on, read as far as it goes: its project and its
    object's number where it has them (a system hook's has neither)."""
    try:
        repo = project(p)
    except BadDelivery:
        repo = Slug("", "")
    iid = p.get("object_attributes.iid")
    number = iid if isinstance(iid, int) and not isinstance(iid, bool) else 0
    try:
        at = p.time("object_attributes.updated_at", "object_attributes.created_at")
    except BadDelivery:  # answered all the same: nothing is done with it
        at = EPOCH
    return ForgeEvent(
        **base,
        kind=EventKind.OTHER,
        repo=repo,
        number=number,
        is_pull=p.get("object_kind") == "merge_request",
        actor=_actor(p),
        at=at,
    )


def _titles(items: object) -> tuple[str, ...]:
    """The title of each label in ``items`` (GitLab's label objects)."""
    return _each(items, "title")


def _usernames(items: object) -> tuple[str, ...]:
    return _each(items, "username")


def _each(items: object, key: str) -> tuple[str, ...]:
    if not isinstance(items, list):
        return ()
    return tuple(
        text
        for item in items
        if isinstance(item, Mapping) and isinstance(text := item.get(key), str)
    )
