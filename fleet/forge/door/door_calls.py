"""The calls an agent makes through the forge door, as JSON: their shapes, parsed and
checked (:func:`parse_call`), before the door weighs them against the run's scope."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Final, Literal

from fleet.hostile_json import JsonRefused, read_object

MAX_PATH: Final = 400
MAX_REF: Final = 200
MAX_TITLE: Final = 256
MAX_SUMMARY: Final = 4000
_MAX_NUMBER: Final = 2**31 - 1
_NOT_IN_PATH = re.compile(r"[\x00-\x1f\x7f-\x9f\\]")  # controls, backslash
_REF = re.compile(r"[A-Za-z0-9][A-Za-z0-9._/-]*")


class BadCall(ValueError):
    """A body that is not a call; the message says what is wrong, ``op`` what it was."""

    def __init__(self, message: str, op: str = "?") -> None:
        super().__init__(message)
        self.op = op


ReadWhat = Literal["issue", "pull", "comments", "file"]


@dataclass(frozen=True, slots=True)
class Read:
    """Read an issue, a pull request, an issue's comments (``number``; a pull request's:
    ``pull``, where the forge numbers the two apart) or a file."""

    what: ReadWhat
    number: int | None = None
    path: str | None = None
    ref: str | None = None
    op: str = "read"
    pull: bool = False


@dataclass(frozen=True, slots=True)
class Comment:
    """Comment on ``number`` (``None``: the run's issue), or on the run's pull request
    (``pull``)."""

    number: int | None
    body: str
    op: str = "comment"
    pull: bool = False


@dataclass(frozen=True, slots=True)
class Describe:
    """Replace the description of the run's pull request."""

    body: str
    op: str = "describe"


@dataclass(frozen=True, slots=True)
class OpenPull:
    """Open the run's pull request from its branch."""

    title: str
    body: str
    draft: bool
    op: str = "pr"


@dataclass(frozen=True, slots=True)
class Done:
    """Say the work is over: ``ok`` or ``failed``, with a summary."""

    status: str
    summary: str
    op: str = "done"


Call = Read | Comment | Describe | OpenPull | Done

_FIELDS: Final = {
    "read": {"what", "number", "path", "ref", "pull"},
    "comment": {"number", "body", "pull"},
    "describe": {"body"},
    "pr": {"title", "body", "draft"},
    "done": {"status", "summary"},
}


def parse_call(body: bytes) -> Call:
    """The call a request body carries; :class:`BadCall` saying what is wrong."""
    try:
        data = read_object(body)
    except JsonRefused as exc:
        raise BadCall(f"{exc}") from None
    op = data.pop("op", None)
    if not isinstance(op, str) or op not in _FIELDS:
        raise BadCall('"op" must be one of read, comment, describe, pr, done')
    unknown = set(data) - _FIELDS[op]
    if unknown:
        raise BadCall(f"unknown fields for {op}: {', '.join(sorted(unknown))}", op)
    if op == "read":
        return _parse_read(data)
    if op == "comment":
        number = data.get("number")
        on = None if number is None else _number(number, op)
        return Comment(on, _text(data, "body", op), pull=_flag(data, "pull", op))
    if op == "describe":
        return Describe(_text(data, "body", op))
    if op == "pr":
        title = _text(data, "title", op).strip()
        if len(title) > MAX_TITLE or "\n" in title or "\r" in title:
            raise BadCall(f'"title" must be one line of at most {MAX_TITLE} characters', op)
        body_text = data.get("body", "")
        if not isinstance(body_text, str):
            raise BadCall('"body" must be a string', op)
        draft = data.get("draft", False)
        if not isinstance(draft, bool):
            raise BadCall('"draft" must be true or false', op)
        return OpenPull(title, body_text, draft)
    status = data.get("status")
    if status not in ("ok", "failed"):
        raise BadCall('"status" must be "ok" or "failed"', op)
    summary = data.get("summary", "")
    if not isinstance(summary, str) or len(summary) > MAX_SUMMARY:
        raise BadCall(f'"summary" must be a string of at most {MAX_SUMMARY} characters', op)
    return Done(status, summary)


def _parse_read(data: dict[str, object]) -> Read:
    what = data.get("what")
    if what == "file":
        if "number" in data or "pull" in data:
            raise BadCall('a file is read by "path", with no "number"', "read")
        ref = data.get("ref")
        if ref is not None and (
            not isinstance(ref, str) or len(ref) > MAX_REF or not _REF.fullmatch(ref)
        ):
            raise BadCall('"ref" must be a branch, tag or commit name', "read")
        return Read("file", path=_path(data.get("path")), ref=ref)
    if what in ("issue", "pull", "comments"):
        if "path" in data or "ref" in data:
            raise BadCall(f'{what} is read by "number" only', "read")
        kind: ReadWhat = "issue" if what == "issue" else "pull" if what == "pull" else "comments"
        pull = _flag(data, "pull", "read")
        if pull and kind != "comments":
            raise BadCall('"pull" goes with "what": "comments"', "read")
        return Read(kind, number=_number(data.get("number"), "read"), pull=pull)
    raise BadCall('"what" must be one of issue, pull, comments, file', "read")


def _flag(data: dict[str, object], key: str, op: str) -> bool:
    value = data.get(key, False)
    if not isinstance(value, bool):
        raise BadCall(f'"{key}" must be true or false', op)
    return value


def _number(value: object, op: str) -> int:
    if type(value) is not int or not 0 < value <= _MAX_NUMBER:
        raise BadCall('"number" must be an issue or pull request number', op)
    return value


def _text(data: dict[str, object], field: str, op: str) -> str:
    value = data.get(field)
    if not isinstance(value, str) or not value.strip():
        raise BadCall(f'"{field}" must be a string with some text in it', op)
    return value


def _path(value: object) -> str:
    """A file's path in the repository: relative, with no ``..`` and nothing odd in it."""
    if not isinstance(value, str) or not 0 < len(value) <= MAX_PATH:
        raise BadCall(f'"path" must be a file\'s path of at most {MAX_PATH} characters', "read")
    parts = value.split("/")
    if (
        value.startswith("/")
        or _NOT_IN_PATH.search(value)
        or any(part in ("", ".", "..") for part in parts)
    ):
        raise BadCall('"path" must be relative to the repository, with no "." or ".."', "read")
    return value
